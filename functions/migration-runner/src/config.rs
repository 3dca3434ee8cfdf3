//! The runner's configuration, read once at init. A mistake here does not stop the
//! function: every pipeline job is failed with it (see `app`).

use std::collections::BTreeMap;
use std::time::Duration;

use shared::config::{ConfigError, Environment, SHARED_VARIABLES, Var, Vars};
use shared::glob::Glob;
pub use shared::notifier::NotifyOn;

/// Which task definition a launch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSource {
    /// `TASK_FAMILY`: the family's latest ACTIVE revision at launch time.
    Family(String),
    /// `TASK_DEFINITION`: an ARN or `family:revision`, used as given.
    Pinned(String),
}

impl TaskSource {
    /// What `DescribeTaskDefinition` is asked for: a family name resolves to its latest
    /// ACTIVE revision (ECS API reference, DescribeTaskDefinition).
    pub fn reference(&self) -> &str {
        match self {
            Self::Family(f) | Self::Pinned(f) => f,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capacity {
    LaunchType(String),
    Provider(String),
}

impl Capacity {
    /// Fargate tasks use `awsvpc` networking and cannot start without subnets.
    fn is_fargate(&self) -> bool {
        match self {
            Self::LaunchType(t) => t == "FARGATE",
            Self::Provider(p) => p == "FARGATE" || p == "FARGATE_SPOT",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub cluster: String,
    pub task: TaskSource,
    pub container: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub capacity: Capacity,
    pub command: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub allow_command_override: bool,
    pub max_runtime: Duration,
    pub started_by: String,
    pub log_tail_lines: u32,
    pub notify_on: NotifyOn,
    pub trigger_repository: Option<String>,
    pub trigger_tag: Option<Glob>,
    pub pin_image_digest: bool,
    /// Kept back from the Lambda deadline so a job's result can always be sent.
    pub report_margin: Duration,
}

/// The runner's variables: what the loader reads (with these defaults) and the README shows.
pub const VARIABLES: &[Var] = &[
    Var::required("CLUSTER", "`prod`", "The cluster's name or ARN."),
    Var::optional(
        "TASK_FAMILY",
        "one of the two",
        "`prod-migrate`",
        "The family; its latest ACTIVE revision at launch time runs.",
    ),
    Var::optional(
        "TASK_DEFINITION",
        "one of the two",
        "`prod-migrate:42` or an ARN",
        "A pinned revision, used as given.",
    ),
    Var::required(
        "CONTAINER",
        "`migrate`",
        "The migration container: the one whose command and environment are overridden, whose exit code is `EXIT_CODE`, and whose log tail is read.",
    ),
    Var::optional(
        "SUBNETS",
        "none (required on Fargate)",
        "`subnet-0a…,subnet-0b…`",
        "Subnets for the task's awsvpc network interface.",
    ),
    Var::optional(
        "SECURITY_GROUPS",
        "none",
        "`sg-0c…`",
        "Security groups for the task (the database must let them in).",
    ),
    Var::defaulted(
        "ASSIGN_PUBLIC_IP",
        "DISABLED",
        "`ENABLED`",
        "For subnets without a NAT gateway.",
    ),
    Var::optional(
        "LAUNCH_TYPE",
        "`FARGATE` unless `CAPACITY_PROVIDER` is set",
        "`EC2`",
        "`FARGATE`, `EC2` or `EXTERNAL`; not together with `CAPACITY_PROVIDER`.",
    ),
    Var::optional(
        "CAPACITY_PROVIDER",
        "unset",
        "`FARGATE_SPOT`",
        "Run on this capacity provider instead of a launch type.",
    ),
    Var::optional(
        "COMMAND",
        "the task definition's",
        "`[\"./migrate\",\"up\"]`",
        "Override for the migration container (JSON array).",
    ),
    Var::optional(
        "ENVIRONMENT",
        "none",
        "`{\"LOCK_TIMEOUT\":\"60s\"}`",
        "Extra environment for the migration container (JSON object). Visible in DescribeTasks and CloudTrail: keep secrets in the task definition's `secrets`.",
    ),
    Var::defaulted(
        "ALLOW_COMMAND_OVERRIDE",
        "false",
        "`true`",
        "Whether `UserParameters` or a direct invocation may replace the command.",
    ),
    Var::defaulted(
        "MAX_RUNTIME",
        "30m",
        "`1h`",
        "A pipeline job stops the task and fails after this; also how long a job waits for another migration or for capacity before failing. At most `23h30m`: CodePipeline fails a Lambda invoke action after 24 hours, and the runner stops its task before that whatever the two add up to.",
    ),
    Var::defaulted(
        "STARTED_BY",
        "ops-migration",
        "`billing-migrations`",
        "RunTask `startedBy`, checked at init (at most 36 of `A-Za-z0-9-/_`): the mark by which the runner finds its own tasks.",
    ),
    Var::defaulted(
        "LOG_TAIL_LINES",
        "50",
        "`200`",
        "Lines of the log tail (0–10,000, what one GetLogEvents returns).",
    ),
    Var::optional(
        "TRIGGER_REPOSITORY",
        "none (pushes launch nothing)",
        "`prod-api`",
        "The ECR repository whose successful, tagged pushes launch the migration.",
    ),
    Var::optional(
        "TRIGGER_TAG",
        "any tag",
        "`v*`",
        "Only pushes whose tag matches this glob launch.",
    ),
    Var::defaulted(
        "PIN_IMAGE_DIGEST",
        "false",
        "`true`",
        "Run the pushed image by digest (registers a revision; needs `TRIGGER_REPOSITORY`).",
    ),
    Var::defaulted(
        "NOTIFY_ON",
        "FAIL",
        "`ALL`",
        "`ALL` also posts successes and launches from pushes.",
    ),
    shared::report::REPORT_MARGIN,
];

/// GetLogEvents returns at most 10,000 events per call (CloudWatch Logs API reference).
const MAX_LOG_TAIL_LINES: u32 = 10_000;

/// RunTask's `startedBy`: up to 36 letters, numbers, hyphens, forward slashes and
/// underscores (ECS API reference, RunTask).
pub fn valid_started_by(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 36
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_'))
}

fn string_list(value: &serde_json::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A command override: a non-empty JSON array of strings.
pub fn parse_command(value: &serde_json::Value) -> Result<Vec<String>, String> {
    match string_list(value) {
        Some(c) if !c.is_empty() => Ok(c),
        _ => Err("a command must be a non-empty JSON array of strings".into()),
    }
}

impl Config {
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let lists = [SHARED_VARIABLES, VARIABLES];
        let vars = Vars::declared(env, &lists);
        let cluster = vars.required("CLUSTER", "the ECS cluster's name or ARN")?;
        let task = match (
            vars.optional("TASK_FAMILY")?,
            vars.optional("TASK_DEFINITION")?,
        ) {
            (Some(f), None) => TaskSource::Family(f),
            (None, Some(d)) => TaskSource::Pinned(d),
            (Some(_), Some(_)) => {
                return Err(ConfigError::malformed(
                    "TASK_DEFINITION",
                    "TASK_FAMILY or TASK_DEFINITION, not both",
                    "both are set",
                ));
            }
            (None, None) => {
                return Err(ConfigError::missing(
                    "TASK_FAMILY",
                    "a task definition family (or TASK_DEFINITION: an ARN or family:revision)",
                ));
            }
        };
        let container = vars.required("CONTAINER", "the migration container's name")?;
        let capacity = match (
            vars.optional("LAUNCH_TYPE")?
                .map(|v| v.to_ascii_uppercase()),
            vars.optional("CAPACITY_PROVIDER")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::malformed(
                    "CAPACITY_PROVIDER",
                    "LAUNCH_TYPE or CAPACITY_PROVIDER, not both",
                    "both are set",
                ));
            }
            (None, Some(p)) => Capacity::Provider(p),
            (Some(t), None) if matches!(t.as_str(), "FARGATE" | "EC2" | "EXTERNAL") => {
                Capacity::LaunchType(t)
            }
            (Some(_), None) => {
                return Err(ConfigError::malformed(
                    "LAUNCH_TYPE",
                    "FARGATE, EC2 or EXTERNAL",
                    "unknown launch type",
                ));
            }
            (None, None) => Capacity::LaunchType("FARGATE".into()),
        };
        let subnets = vars.list("SUBNETS")?;
        if subnets.is_empty() && capacity.is_fargate() {
            return Err(ConfigError::missing(
                "SUBNETS",
                "comma-separated subnet ids (Fargate tasks use awsvpc networking)",
            ));
        }
        let assign_public_ip = match vars
            .with_default("ASSIGN_PUBLIC_IP", vars.optional("ASSIGN_PUBLIC_IP")?)?
            .to_ascii_uppercase()
            .as_str()
        {
            "DISABLED" => false,
            "ENABLED" => true,
            _ => {
                return Err(ConfigError::malformed(
                    "ASSIGN_PUBLIC_IP",
                    "ENABLED or DISABLED",
                    "unknown value",
                ));
            }
        };
        let command = vars
            .json::<serde_json::Value>("COMMAND", "a JSON array of strings")?
            .map(|v| {
                parse_command(&v).map_err(|why| {
                    ConfigError::malformed("COMMAND", "a JSON array of strings", why)
                })
            })
            .transpose()?;
        let environment = vars
            .json::<BTreeMap<String, String>>("ENVIRONMENT", "a JSON object of string values")?
            .unwrap_or_default();
        let started_by = vars.with_default("STARTED_BY", vars.optional("STARTED_BY")?)?;
        if !valid_started_by(&started_by) {
            return Err(ConfigError::malformed(
                "STARTED_BY",
                "at most 36 characters of A-Z a-z 0-9 - / _",
                "not a valid startedBy",
            ));
        }
        let log_tail_lines = vars.with_default(
            "LOG_TAIL_LINES",
            vars.parsed::<u32>("LOG_TAIL_LINES", "a number of lines, 0 to 10000")?,
        )?;
        if log_tail_lines > MAX_LOG_TAIL_LINES {
            return Err(ConfigError::malformed(
                "LOG_TAIL_LINES",
                "a number of lines, 0 to 10000",
                "more than GetLogEvents returns",
            ));
        }
        let max_runtime = shared::jobs::within_action_timeout(
            "MAX_RUNTIME",
            vars.with_default("MAX_RUNTIME", vars.duration("MAX_RUNTIME")?)?,
        )?;
        if max_runtime.is_zero() {
            return Err(ConfigError::malformed(
                "MAX_RUNTIME",
                "a duration such as 30m",
                "zero",
            ));
        }
        let trigger_repository = vars.optional("TRIGGER_REPOSITORY")?;
        let pin_image_digest =
            vars.with_default("PIN_IMAGE_DIGEST", vars.flag("PIN_IMAGE_DIGEST")?)?;
        if pin_image_digest && trigger_repository.is_none() {
            return Err(ConfigError::missing(
                "TRIGGER_REPOSITORY",
                "the ECR repository whose pushes launch the migration (PIN_IMAGE_DIGEST pins their digest)",
            ));
        }
        Ok(Self {
            cluster,
            task,
            container,
            subnets,
            security_groups: vars.list("SECURITY_GROUPS")?,
            assign_public_ip,
            capacity,
            command,
            environment,
            allow_command_override: vars.with_default(
                "ALLOW_COMMAND_OVERRIDE",
                vars.flag("ALLOW_COMMAND_OVERRIDE")?,
            )?,
            max_runtime,
            started_by,
            log_tail_lines,
            notify_on: NotifyOn::from_vars(&vars)?,
            trigger_repository,
            trigger_tag: vars.optional("TRIGGER_TAG")?.map(Glob::new),
            pin_image_digest,
            report_margin: shared::report::report_margin(&vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: [(&str, &str); 4] = [
        ("CLUSTER", "prod"),
        ("TASK_FAMILY", "api-migrate"),
        ("CONTAINER", "migrate"),
        ("SUBNETS", "subnet-1, subnet-2"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
        MINIMAL
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load(vars: Vec<(String, String)>) -> Result<Config, ConfigError> {
        let env: std::collections::HashMap<String, String> = vars.into_iter().collect();
        Config::from_env(&env)
    }

    #[test]
    fn defaults_run_on_fargate_without_a_public_ip_and_notify_on_failure() {
        let c = load(with(&[])).unwrap();
        assert_eq!(c.task, TaskSource::Family("api-migrate".into()));
        assert_eq!(c.capacity, Capacity::LaunchType("FARGATE".into()));
        assert_eq!(c.subnets, ["subnet-1", "subnet-2"]);
        assert!(!c.assign_public_ip && !c.allow_command_override && !c.pin_image_digest);
        assert_eq!(c.max_runtime, Duration::from_secs(1800));
        assert_eq!(c.started_by, "ops-migration");
        assert_eq!(c.log_tail_lines, 50);
        assert_eq!(c.notify_on, NotifyOn::Fail);
    }

    /// CodePipeline fails a Lambda invoke action after 24 hours (CodePipeline user guide,
    /// Quotas): a MAX_RUNTIME the runner could never act on is refused at start.
    #[test]
    fn a_max_runtime_past_the_pipeline_action_limit_is_refused() {
        let err = load(with(&[("MAX_RUNTIME", "24h")])).unwrap_err();
        assert_eq!(err.variable, "MAX_RUNTIME");
        assert!(err.to_string().contains("24 hours"), "{err}");
        assert!(load(with(&[("MAX_RUNTIME", "23h")])).is_ok());
    }

    #[test]
    fn started_by_is_checked_against_ecs_rules_at_init() {
        for bad in ["has space", "x".repeat(37).leak() as &str, "semi;colon"] {
            let mut vars = with(&[]);
            vars.push(("STARTED_BY".into(), bad.into()));
            assert_eq!(load(vars).unwrap_err().variable, "STARTED_BY", "{bad}");
        }
        assert!(valid_started_by("ops/migrate_2-a"));
    }

    #[test]
    fn one_task_source_and_one_capacity_choice() {
        assert_eq!(
            load(with(&[("TASK_DEFINITION", "api-migrate:7")]))
                .unwrap_err()
                .variable,
            "TASK_DEFINITION"
        );
        assert_eq!(
            load(with(&[
                ("LAUNCH_TYPE", "EC2"),
                ("CAPACITY_PROVIDER", "spot")
            ]))
            .unwrap_err()
            .variable,
            "CAPACITY_PROVIDER"
        );
        assert_eq!(
            load(with(&[("LAUNCH_TYPE", "LAMBDA")]))
                .unwrap_err()
                .variable,
            "LAUNCH_TYPE"
        );
    }

    #[test]
    fn fargate_needs_subnets() {
        let no_subnets: Vec<(String, String)> = with(&[])
            .into_iter()
            .filter(|(k, _)| k != "SUBNETS")
            .collect();
        assert_eq!(load(no_subnets.clone()).unwrap_err().variable, "SUBNETS");
        let mut ec2 = no_subnets;
        ec2.push(("LAUNCH_TYPE".into(), "EC2".into()));
        assert!(load(ec2).is_ok());
    }

    #[test]
    fn command_and_environment_overrides_are_json() {
        let c = load(with(&[
            ("COMMAND", r#"["./migrate","up"]"#),
            ("ENVIRONMENT", r#"{"LOG_LEVEL":"debug"}"#),
        ]))
        .unwrap();
        assert_eq!(
            c.command.as_deref(),
            Some(&["./migrate".to_owned(), "up".to_owned()][..])
        );
        assert_eq!(c.environment["LOG_LEVEL"], "debug");
        for (name, bad) in [
            ("COMMAND", r#""./migrate up""#),
            ("COMMAND", "[]"),
            ("COMMAND", "[1,2]"),
            ("ENVIRONMENT", r#"{"N":1}"#),
        ] {
            let mut vars = with(&[]);
            vars.push((name.into(), bad.into()));
            assert_eq!(load(vars).unwrap_err().variable, name, "{bad}");
        }
    }

    #[test]
    fn pinning_needs_a_trigger_repository() {
        assert_eq!(
            load(with(&[("PIN_IMAGE_DIGEST", "true")]))
                .unwrap_err()
                .variable,
            "TRIGGER_REPOSITORY"
        );
        assert!(
            load(with(&[
                ("PIN_IMAGE_DIGEST", "true"),
                ("TRIGGER_REPOSITORY", "api")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn the_log_tail_is_limited_to_what_one_call_returns() {
        assert_eq!(
            load(with(&[("LOG_TAIL_LINES", "20000")]))
                .unwrap_err()
                .variable,
            "LOG_TAIL_LINES"
        );
    }
}
