//! The validator's configuration, read once at init. A bad configuration does not stop the
//! function: every invocation then reports Failed with the reason, because a hook that
//! never answers holds the deployment for an hour.

use std::time::Duration;

use shared::config::{ConfigError, Document, Environment, SHARED_VARIABLES, Var, Vars};
pub use shared::notifier::NotifyOn;
use shared::secrets::SecretRef;

use crate::checks::{CHECKS_EXPECTED, CheckBook, parse_book};

/// The CodeDeploy lifecycle event hook the function serves (`HOOK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeDeployHook {
    BeforeInstall,
    AfterInstall,
    AfterAllowTestTraffic,
    BeforeAllowTraffic,
    AfterAllowTraffic,
}

impl CodeDeployHook {
    pub const ALL: [CodeDeployHook; 5] = [
        CodeDeployHook::BeforeInstall,
        CodeDeployHook::AfterInstall,
        CodeDeployHook::AfterAllowTestTraffic,
        CodeDeployHook::BeforeAllowTraffic,
        CodeDeployHook::AfterAllowTraffic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::BeforeInstall => "BeforeInstall",
            Self::AfterInstall => "AfterInstall",
            Self::AfterAllowTestTraffic => "AfterAllowTestTraffic",
            Self::BeforeAllowTraffic => "BeforeAllowTraffic",
            Self::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(text.trim()))
    }

    /// What a Failed report from this hook makes CodeDeploy do, for the notification.
    pub fn consequence_of_failure(self) -> &'static str {
        match self {
            Self::AfterAllowTraffic => {
                "CodeDeploy stops the deployment and, if rollback is enabled, shifts traffic back"
            }
            _ => {
                "CodeDeploy stops the deployment before production traffic reaches the new version"
            }
        }
    }
}

/// How long an alarm bake may run across ECS-native invocations unless `MAX_BAKE` says.
pub const DEFAULT_MAX_BAKE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone)]
pub struct Config {
    /// The CodeDeploy hook this function serves; ECS-native invocations name their stage
    /// themselves and do not need it.
    pub hook: Option<CodeDeployHook>,
    pub checks: Document<CheckBook>,
    pub notify_on: NotifyOn,
    /// Kept back from the Lambda deadline so the status can always be reported.
    pub report_margin: Duration,
    /// The longest an alarm bake may run across ECS-native invocations.
    pub max_bake: Duration,
    /// Signs the bake state handed to ECS between invocations.
    pub state_key: Option<SecretRef>,
}

/// The validator's variables: what the loader reads (with these defaults) and the README shows.
pub const VARIABLES: &[Var] = &[
    Var::optional(
        "HOOK",
        "unset (ECS-native hooks only: a CodeDeploy hook then reports Failed)",
        "`AfterAllowTraffic`",
        "The CodeDeploy hook: `BeforeInstall`, `AfterInstall`, `AfterAllowTestTraffic`, `BeforeAllowTraffic` or `AfterAllowTraffic`. Named in reports and messages. ECS-native hook invocations carry their lifecycle stage and ignore it.",
    ),
    Var::required(
        "CHECKS",
        "see below, or `ssm:/canary/prod-api`",
        "The check book: inline JSON, or an SSM parameter / Secrets Manager secret holding it (read on first use, then kept for `CONFIG_TTL`). Never taken from the event.",
    ),
    Var::defaulted(
        "NOTIFY_ON",
        "FAIL",
        "`ALL`",
        "Which verdicts are notified. `ALL` also posts when an ECS-native bake starts (it ends with a verdict).",
    ),
    Var::defaulted(
        "MAX_BAKE",
        "60m",
        "`2h`",
        "ECS-native hooks: the longest an alarm bake may run across invocations (`IN_PROGRESS` callbacks); reaching it answers `FAILED`.",
    ),
    Var::optional(
        "HOOK_STATE_KEY",
        "unset (the bake state is bound to its deployment and checked, not signed)",
        "`secretsmanager:canary/hook-state-key`",
        "ECS-native hooks: the key (a literal, `ssm:` or `secretsmanager:` reference) that signs the bake state returned in `hookDetails`, so only this function can make one that passes a deployment.",
    ),
    shared::report::REPORT_MARGIN,
];

impl Config {
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let lists = [SHARED_VARIABLES, VARIABLES];
        let vars = Vars::declared(env, &lists);
        let hook_expected = "one of BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic";
        let hook = vars
            .optional("HOOK")?
            .map(|text| {
                CodeDeployHook::parse(&text).ok_or_else(|| {
                    ConfigError::malformed("HOOK", hook_expected, "not a lifecycle hook")
                })
            })
            .transpose()?;
        let checks = vars
            .document("CHECKS", CHECKS_EXPECTED, parse_book)?
            .ok_or_else(|| ConfigError::missing("CHECKS", CHECKS_EXPECTED))?;
        let notify_on = NotifyOn::from_vars(&vars)?;
        let report_margin = shared::report::report_margin(&vars)?;
        let max_bake = vars.with_default("MAX_BAKE", vars.duration("MAX_BAKE")?)?;
        if max_bake.is_zero() {
            return Err(ConfigError::malformed(
                "MAX_BAKE",
                "a duration such as 60m",
                "zero would fail every bake",
            ));
        }
        let state_key = vars.secret("HOOK_STATE_KEY")?;
        Ok(Self {
            hook,
            checks,
            notify_on,
            report_margin,
            max_bake,
            state_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_CHECK: &str = r#"[{"type":"http","url":"https://test.internal/health"}]"#;

    #[test]
    fn checks_are_required_and_hook_optional_but_checked() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(Config::from_env(&none).unwrap_err().variable, "CHECKS");
        let no_checks = [("HOOK", "AfterAllowTraffic")];
        assert_eq!(Config::from_env(&no_checks).unwrap_err().variable, "CHECKS");
        let bad_hook = [("HOOK", "AfterTraffic"), ("CHECKS", ONE_CHECK)];
        assert_eq!(Config::from_env(&bad_hook).unwrap_err().variable, "HOOK");
        let ecs_only = Config::from_env(&[("CHECKS", ONE_CHECK)]).unwrap();
        assert_eq!(ecs_only.hook, None);
        assert_eq!(ecs_only.max_bake, DEFAULT_MAX_BAKE);
        assert_eq!(ecs_only.state_key, None);
    }

    #[test]
    fn max_bake_and_the_state_key_are_read() {
        let c = Config::from_env(&[
            ("CHECKS", ONE_CHECK),
            ("MAX_BAKE", "2h"),
            ("HOOK_STATE_KEY", "secretsmanager:canary/hook-state-key"),
        ])
        .unwrap();
        assert_eq!(c.max_bake, Duration::from_secs(7200));
        assert!(matches!(
            c.state_key,
            Some(SecretRef::SecretsManager { .. })
        ));
        let zero = Config::from_env(&[("CHECKS", ONE_CHECK), ("MAX_BAKE", "0s")]).unwrap_err();
        assert_eq!(zero.variable, "MAX_BAKE");
    }

    #[test]
    fn inline_checks_are_parsed_and_references_kept() {
        let c = Config::from_env(&[("HOOK", "beforeallowtraffic"), ("CHECKS", ONE_CHECK)]).unwrap();
        assert_eq!(c.hook, Some(CodeDeployHook::BeforeAllowTraffic));
        assert!(matches!(c.checks, Document::Inline(b) if b.default.len() == 1));
        assert_eq!(c.notify_on, NotifyOn::Fail);
        let stored = Config::from_env(&[
            ("HOOK", "AfterAllowTraffic"),
            ("CHECKS", "ssm:/canary/checks"),
        ])
        .unwrap();
        assert_eq!(
            stored.checks,
            Document::Stored(SecretRef::Ssm("/canary/checks".into()))
        );
    }

    #[test]
    fn a_malformed_check_book_names_checks_without_echoing_it() {
        let err = Config::from_env(&[
            ("HOOK", "AfterAllowTraffic"),
            (
                "CHECKS",
                r#"[{"type":"http","url":"https://x/?token=hunter2","attempts":0}]"#,
            ),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "CHECKS");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let plain =
            Config::from_env(&[("HOOK", "AfterAllowTraffic"), ("CHECKS", "health")]).unwrap_err();
        assert_eq!(plain.variable, "CHECKS");
    }

    #[test]
    fn notify_on_is_validated() {
        let all = [
            ("HOOK", "AfterInstall"),
            ("CHECKS", ONE_CHECK),
            ("NOTIFY_ON", "all"),
        ];
        assert_eq!(Config::from_env(&all).unwrap().notify_on, NotifyOn::All);
        let bad = [
            ("HOOK", "AfterInstall"),
            ("CHECKS", ONE_CHECK),
            ("NOTIFY_ON", "never"),
        ];
        assert_eq!(Config::from_env(&bad).unwrap_err().variable, "NOTIFY_ON");
    }
}
