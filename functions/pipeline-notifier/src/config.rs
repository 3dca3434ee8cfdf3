//! The notifier's configuration, read once at init.

use std::collections::HashSet;

use serde::Deserialize;
use shared::config::{ConfigError, Environment, SHARED_VARIABLES, Var, Vars};
use shared::glob::Glob;
use shared::secrets::SecretRef;
use shared::slack::SlackApi;

use crate::ecs_event::{ALL_ECS_STATES, EcsState};
use crate::event::{ALL_STATES, Level, PipelineEvent, State};
use crate::recovery::Subject;

pub const DEFAULT_NOTIFY_ON: &str = "pipeline:STARTED,pipeline:SUCCEEDED,pipeline:FAILED,pipeline:STOPPED,pipeline:SUPERSEDED,action:FAILED,approval:STARTED,ecs:IN_PROGRESS,ecs:COMPLETED,ecs:FAILED,ecs:TASK_START_IMPAIRED,ecs:TASK_PLACEMENT_FAILURE,ecs:TASK_CONFIGURATION_FAILURE";

/// The notifier's variables: what the loader reads (with these defaults) and the README shows.
pub const VARIABLES: &[Var] = &[
    Var::defaulted(
        "NOTIFY_ON",
        DEFAULT_NOTIFY_ON,
        "`pipeline:*,action:FAILED`",
        "Which events become messages, as `level:STATE` items. Levels: `pipeline`, `stage`, `action`, `approval` (the manual-approval action; it also matches `action:`). States: `STARTED`, `SUCCEEDED`, `RESUMED`, `FAILED`, `CANCELED`, `STOPPED`, `STOPPING`, `SUPERSEDED`, `ABANDONED`, or `*`. ECS services: `ecs:` with `IN_PROGRESS`, `ROLLING_BACK`, `COMPLETED`, `FAILED`, `TASK_START_IMPAIRED`, `TASK_PLACEMENT_FAILURE`, `TASK_CONFIGURATION_FAILURE`, or `*`. A pipeline or service green again after failing is told wherever its failures go unless the list has `recovery:off`.",
    ),
    Var::optional(
        "FAILURE_MENTION",
        "unset",
        "`<!subteam^S0123ABC>` or `<!here>`",
        "Added to failure messages only. Configuration, so not escaped; it must consist of Slack mentions (`<!…>`, `<@…>`).",
    ),
    Var::optional(
        "SLACK_ROUTES",
        "unset",
        "`[{\"pipeline\":\"prod-*\",\"webhook\":\"ssm:/ops/slack/prod\"},{\"pipeline\":\"billing\",\"channel\":\"C0BILLING\"}]`",
        "Route pipelines, or ECS services with `\"service\"` (a glob on the service's name, or on `cluster/service` when it has a `/`), to another webhook (literal or reference) or, in Web API mode, another channel id; first match wins, `SLACK_CHANNEL` / `SLACK_WEBHOOK_URL` otherwise.",
    ),
    Var::optional(
        "SLACK_BOT_TOKEN",
        "unset (webhook mode)",
        "`ssm:/ops/slack/bot-token`",
        "A bot token (`xoxb-…`, scope `chat:write`), literal or `ssm:`/`secretsmanager:` reference. With it and `IDEMPOTENCY_TABLE`, Web API mode: one live message per execution, updated in place, failures in its thread.",
    ),
    Var::optional(
        "SLACK_CHANNEL",
        "unset",
        "`C0123ABCDEF`",
        "Web API mode: the channel id (not its name: names change) the live messages go to. Invite the bot to it.",
    ),
    Var::defaulted(
        "SLACK_APPROVALS",
        "off",
        "`on`",
        "`on`: a waiting approval gets Approve and Reject buttons, answered by `pipeline-approvals` (the template sets it when that function is deployed). The link to the console stays.",
    ),
    Var::defaulted(
        "SLACK_API_URL",
        "https://slack.com/api",
        "`https://slack-gov.com/api`",
        "Web API mode: where the Slack Web API is (GovSlack has its own).",
    ),
    Var::optional(
        "PIPELINE_FILTER",
        "unset (all)",
        "`prod-*,billing`",
        "Only these pipelines (globs); events of others are acknowledged and dropped.",
    ),
    Var::optional(
        "DELIVERED_STATES",
        "unset (no check)",
        "`STARTED,SUCCEEDED,FAILED`",
        "The states the EventBridge rule delivers (the template sets it from `PipelineEventStates`). A state `NOTIFY_ON` names outside it is a configuration error, since it could never arrive.",
    ),
];

/// Which kinds of event become messages. `approval` is the manual-approval action; an
/// approval event matches both `approval:STATE` and `action:STATE`. `ecs:STATE` selects ECS
/// service events; recoveries are told unless `recovery:off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOn {
    pipelines: HashSet<(Kind, State)>,
    ecs: HashSet<EcsState>,
    recoveries: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Level(Level),
    Approval,
}

impl NotifyOn {
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut set = HashSet::new();
        let mut ecs = HashSet::new();
        let mut recoveries = true;
        for item in items {
            let (kind, state) = item
                .split_once(':')
                .ok_or_else(|| format!("item {item:?} is not level:STATE"))?;
            let kind = match kind.trim().to_ascii_lowercase().as_str() {
                "ecs" => {
                    let state = state.trim().to_ascii_uppercase();
                    if state == "*" {
                        ecs.extend(ALL_ECS_STATES);
                    } else {
                        ecs.insert(EcsState::parse(&state).ok_or_else(|| {
                            format!("unknown ECS state {state:?} (IN_PROGRESS, ROLLING_BACK, COMPLETED, FAILED, TASK_START_IMPAIRED, TASK_PLACEMENT_FAILURE, TASK_CONFIGURATION_FAILURE)")
                        })?);
                    }
                    continue;
                }
                "recovery" => {
                    recoveries = match state.trim().to_ascii_lowercase().as_str() {
                        "on" => true,
                        "off" => false,
                        other => return Err(format!("recovery:{other} is neither on nor off")),
                    };
                    continue;
                }
                "pipeline" => Kind::Level(Level::Pipeline),
                "stage" => Kind::Level(Level::Stage),
                "action" => Kind::Level(Level::Action),
                "approval" => Kind::Approval,
                other => {
                    return Err(format!(
                        "unknown level {other:?} (pipeline, stage, action, approval, ecs, recovery)"
                    ));
                }
            };
            let state = state.trim().to_ascii_uppercase();
            if state == "*" {
                set.extend(ALL_STATES.iter().map(|s| (kind, *s)));
            } else {
                let s = State::parse(&state).ok_or_else(|| format!("unknown state {state:?}"))?;
                set.insert((kind, s));
            }
        }
        Ok(Self {
            pipelines: set,
            ecs,
            recoveries,
        })
    }

    pub fn wants(&self, event: &PipelineEvent) -> bool {
        self.pipelines
            .contains(&(Kind::Level(event.level), event.state))
            || (event.is_approval() && self.pipelines.contains(&(Kind::Approval, event.state)))
    }

    pub fn wants_ecs(&self, state: EcsState) -> bool {
        self.ecs.contains(&state)
    }

    /// Whether a pipeline or service green again after failing is told (unless `recovery:off`).
    pub fn tells_recoveries(&self) -> bool {
        self.recoveries
    }

    /// Whether failing actions get their own message, so a pipeline failure can be short.
    pub fn posts_action_failures(&self) -> bool {
        self.pipelines
            .contains(&(Kind::Level(Level::Action), State::Failed))
    }
}

/// Where a pipeline's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// One message per event, to an incoming webhook.
    Webhook(SecretRef),
    /// One live message per execution, in this channel (Web API mode).
    Channel(String),
}

/// What a route matches: pipelines by name, or ECS services by name (or by
/// `cluster/service` when the glob has a `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteFor {
    Pipeline(Glob),
    Service(Glob),
}

impl RouteFor {
    fn matches(&self, subject: Subject<'_>) -> bool {
        match (self, subject) {
            (Self::Pipeline(g), Subject::Pipeline(p)) => g.matches(p),
            (Self::Service(g), Subject::Service(qualified)) => {
                if g.as_str().contains('/') {
                    g.matches(qualified)
                } else {
                    g.matches(qualified.rsplit('/').next().unwrap_or(qualified))
                }
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub matches: RouteFor,
    pub to: Destination,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    pipeline: Option<Glob>,
    service: Option<Glob>,
    webhook: Option<String>,
    channel: Option<String>,
}

/// Web API mode's settings: the bot token and where the Web API is.
#[derive(Debug, Clone)]
pub struct WebApi {
    pub token: SecretRef,
    pub api: SlackApi,
    /// `SLACK_CHANNEL`: where pipelines no route names go.
    pub channel: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub notify_on: NotifyOn,
    pub failure_mention: Option<String>,
    pub routes: Vec<Route>,
    pub pipeline_filter: Vec<Glob>,
    /// `None`: webhook mode.
    pub web: Option<WebApi>,
    /// `DELIVERED_STATES`, upper-cased; empty when unknown.
    pub delivered_states: Vec<String>,
    /// `SLACK_APPROVALS=on`.
    pub approvals: bool,
}

/// A Slack channel id: `C…` (public), `G…` (private, older), `D…` (direct message).
fn is_channel_id(text: &str) -> bool {
    text.len() >= 9
        && text.len() <= 24
        && matches!(text.as_bytes()[0], b'C' | b'G' | b'D')
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `DELIVERED_STATES` (the template sets it from `PipelineEventStates`): the states the
/// EventBridge rule lets through. A state NOTIFY_ON names outside it would never arrive, and
/// nothing would say so; that is a configuration error. A `*` means "whatever arrives".
/// Returns the delivered states (empty: unknown).
fn check_delivered<E: Environment + ?Sized>(
    vars: &Vars<E>,
    notify_items: &[String],
) -> Result<Vec<String>, ConfigError> {
    let delivered: Vec<String> = vars
        .list("DELIVERED_STATES")?
        .into_iter()
        .map(|s| s.trim().to_ascii_uppercase())
        .collect();
    if delivered.is_empty() {
        return Ok(delivered);
    }
    for item in notify_items {
        let (kind, state) = item
            .split_once(':')
            .map(|(k, s)| (k.trim().to_ascii_lowercase(), s.trim().to_ascii_uppercase()))
            .unwrap_or_default();
        // ECS events and recoveries do not go through the CodePipeline rule's states, and it
        // delivers a pipeline's own SUCCEEDED and FAILED whatever it names (the recovery
        // message needs them).
        let always = kind == "pipeline" && (state == "SUCCEEDED" || state == "FAILED");
        if kind == "ecs" || kind == "recovery" || always {
            continue;
        }
        if state != "*" && !delivered.contains(&state) {
            return Err(ConfigError::malformed(
                "NOTIFY_ON",
                "states the EventBridge rule delivers (the stack's PipelineEventStates, DELIVERED_STATES here)",
                format!("{state} is selected but never delivered; add it to PipelineEventStates"),
            ));
        }
    }
    Ok(delivered)
}

impl Config {
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let lists = [SHARED_VARIABLES, VARIABLES];
        let vars = Vars::declared(env, &lists);
        let notify_items = vars.list("NOTIFY_ON")?;
        if notify_items.is_empty() {
            return Err(ConfigError::malformed(
                "NOTIFY_ON",
                "a list of level:STATE such as pipeline:FAILED,action:FAILED",
                "no items",
            ));
        }
        let notify_on = NotifyOn::parse(&notify_items).map_err(|why| {
            ConfigError::malformed(
                "NOTIFY_ON",
                "a list of level:STATE such as pipeline:FAILED,action:FAILED",
                why,
            )
        })?;
        let delivered_states = check_delivered(&vars, &notify_items)?;

        let failure_mention = vars.optional("FAILURE_MENTION")?;
        if let Some(m) = &failure_mention
            && !is_slack_mention(m)
        {
            return Err(ConfigError::malformed(
                "FAILURE_MENTION",
                "Slack mentions such as <!here>, <!channel>, <!subteam^S123> or <@U123>",
                "not a Slack mention",
            ));
        }

        let expected_routes = r#"a JSON list like [{"pipeline":"prod-*","webhook":"ssm:/ops/slack/prod"}] or [{"service":"prod/*","channel":"C0PROD"}]"#;
        let raw: Vec<RawRoute> = vars
            .json("SLACK_ROUTES", expected_routes)?
            .unwrap_or_default();
        let routes = raw
            .into_iter()
            .map(|r| {
                let to = match (r.webhook, r.channel) {
                    (Some(webhook), None) => SecretRef::parse(&webhook)
                        .map(Destination::Webhook)
                        .map_err(|why| why.to_string()),
                    (None, Some(channel)) if is_channel_id(&channel) => {
                        Ok(Destination::Channel(channel))
                    }
                    (None, Some(_)) => {
                        Err("a channel must be a channel id such as C0123ABCDEF".into())
                    }
                    _ => Err("each route names a webhook or a channel, not both".into()),
                };
                let matches = match (r.pipeline, r.service) {
                    (Some(p), None) => Ok(RouteFor::Pipeline(p)),
                    (None, Some(s)) => Ok(RouteFor::Service(s)),
                    _ => Err("each route names a pipeline or a service, not both".to_owned()),
                };
                to.and_then(|to| matches.map(|matches| Route { matches, to }))
                    .map_err(|why: String| {
                        ConfigError::malformed("SLACK_ROUTES", expected_routes, why)
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let channel = vars.optional("SLACK_CHANNEL")?;
        if let Some(c) = &channel
            && !is_channel_id(c)
        {
            return Err(ConfigError::malformed(
                "SLACK_CHANNEL",
                "a channel id such as C0123ABCDEF (in Slack: the channel's details, at the bottom)",
                "not a channel id",
            ));
        }
        let web = match vars.secret("SLACK_BOT_TOKEN")? {
            Some(token) => {
                let api = vars.optional("SLACK_API_URL")?.unwrap_or_default();
                let api = SlackApi::new(&api).map_err(|_| {
                    ConfigError::malformed("SLACK_API_URL", "an https URL", "not an https URL")
                })?;
                if channel.is_none()
                    && !routes
                        .iter()
                        .any(|r: &Route| matches!(r.to, Destination::Channel(_)))
                {
                    return Err(ConfigError::malformed(
                        "SLACK_CHANNEL",
                        "a channel id for the live messages (SLACK_BOT_TOKEN is set)",
                        "missing, and no route names a channel",
                    ));
                }
                Some(WebApi {
                    token,
                    api,
                    channel,
                })
            }
            None => {
                if channel.is_some()
                    || routes
                        .iter()
                        .any(|r: &Route| matches!(r.to, Destination::Channel(_)))
                {
                    tracing::warn!(
                        "a Slack channel is set but SLACK_BOT_TOKEN is not: webhook mode, channels unused"
                    );
                }
                None
            }
        };

        let approvals = match vars
            .optional("SLACK_APPROVALS")?
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "off" => false,
            "on" => true,
            _ => {
                return Err(ConfigError::malformed(
                    "SLACK_APPROVALS",
                    "on or off",
                    "neither",
                ));
            }
        };
        Ok(Self {
            approvals,
            notify_on,
            failure_mention,
            routes,
            pipeline_filter: vars
                .list("PIPELINE_FILTER")?
                .into_iter()
                .map(Glob::new)
                .collect(),
            web,
            delivered_states,
        })
    }

    /// The first route for `subject`, if any names it.
    pub fn route_for(&self, subject: Subject<'_>) -> Option<&Destination> {
        self.routes
            .iter()
            .find(|r| r.matches.matches(subject))
            .map(|r| &r.to)
    }

    /// The webhook a route sends `subject` to, instead of `SLACK_WEBHOOK_URL`.
    pub fn webhook_for(&self, subject: Subject<'_>) -> Option<&SecretRef> {
        match self.route_for(subject) {
            Some(Destination::Webhook(w)) => Some(w),
            _ => None,
        }
    }

    /// The channel for `subject`'s messages in Web API mode: its route's channel, or
    /// `SLACK_CHANNEL` unless a route sends it to a webhook.
    pub fn channel_for(&self, subject: Subject<'_>) -> Option<&str> {
        let web = self.web.as_ref()?;
        match self.route_for(subject) {
            Some(Destination::Channel(c)) => Some(c),
            Some(Destination::Webhook(_)) => None,
            None => web.channel.as_deref(),
        }
    }

    pub fn watches(&self, pipeline: &str) -> bool {
        self.pipeline_filter.is_empty() || self.pipeline_filter.iter().any(|g| g.matches(pipeline))
    }
}

/// One or more `<!here>`, `<!channel>`, `<!subteam^ID>`, `<@USER>` tokens. The mention is
/// operator configuration and goes to Slack unescaped, so it must be only mentions.
fn is_slack_mention(text: &str) -> bool {
    text.split_whitespace().all(|token| {
        token.len() > 3
            && token.starts_with("<")
            && token.ends_with('>')
            && matches!(token.as_bytes()[1], b'!' | b'@')
            && !token[1..token.len() - 1].contains(['<', '>'])
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_state_the_rule_never_delivers_is_a_configuration_error() {
        let narrowed = [
            ("NOTIFY_ON", "pipeline:FAILED,stage:CANCELED"),
            ("DELIVERED_STATES", "STARTED,SUCCEEDED,FAILED"),
        ];
        // The rule delivers a pipeline's own outcome whatever PipelineEventStates says.
        let outcomes = [
            ("NOTIFY_ON", "pipeline:SUCCEEDED,pipeline:FAILED"),
            ("DELIVERED_STATES", "STARTED"),
        ];
        assert!(Config::from_env(&outcomes).is_ok());
        let err = Config::from_env(&narrowed).unwrap_err();
        assert_eq!(err.variable, "NOTIFY_ON");
        assert!(err.to_string().contains("CANCELED"), "{err}");
        let wildcard = [
            ("NOTIFY_ON", "stage:*"),
            ("DELIVERED_STATES", "STARTED,SUCCEEDED,FAILED"),
        ];
        assert!(Config::from_env(&wildcard).is_ok());
        let defaults = [(
            "DELIVERED_STATES",
            "STARTED,SUCCEEDED,FAILED,STOPPED,SUPERSEDED",
        )];
        assert!(Config::from_env(&defaults).is_ok());
    }

    use super::*;

    #[test]
    fn defaults_apply_when_notify_on_is_unset() {
        let env: [(&str, &str); 0] = [];
        let c = Config::from_env(&env).unwrap();
        assert_eq!(
            c.notify_on,
            NotifyOn::parse(
                &DEFAULT_NOTIFY_ON
                    .split(',')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            )
            .unwrap()
        );
        assert!(c.notify_on.posts_action_failures());
        assert!(c.routes.is_empty() && c.pipeline_filter.is_empty() && c.failure_mention.is_none());
    }

    #[test]
    fn notify_on_errors_name_the_variable() {
        let env = [("NOTIFY_ON", "pipeline:FAILED,deploy:FAILED")];
        let err = Config::from_env(&env).unwrap_err();
        assert_eq!(err.variable, "NOTIFY_ON");
        assert!(err.to_string().contains("unknown level"), "{err}");
        let env = [("NOTIFY_ON", "pipeline:EXPLODED")];
        assert_eq!(Config::from_env(&env).unwrap_err().variable, "NOTIFY_ON");
    }

    #[test]
    fn wildcard_state_expands_to_every_state() {
        let on = NotifyOn::parse(&["stage:*".to_owned()]).unwrap();
        assert_eq!(on.pipelines.len(), ALL_STATES.len());
        let ecs = NotifyOn::parse(&["ecs:*".to_owned()]).unwrap();
        assert!(ALL_ECS_STATES.iter().all(|s| ecs.wants_ecs(*s)));
    }

    #[test]
    fn mentions_must_be_mentions() {
        assert!(is_slack_mention("<!here>"));
        assert!(is_slack_mention("<!subteam^S123> <@U456>"));
        assert!(!is_slack_mention("@here"));
        assert!(!is_slack_mention("<https://evil|x>"));
        let env = [("FAILURE_MENTION", "@oncall")];
        assert_eq!(
            Config::from_env(&env).unwrap_err().variable,
            "FAILURE_MENTION"
        );
    }

    #[test]
    fn routes_match_first_glob_and_hide_webhooks_in_errors() {
        let env = [(
            "SLACK_ROUTES",
            r#"[{"pipeline":"prod-*","webhook":"ssm:/ops/slack/prod"},{"pipeline":"*","webhook":"ssm:/ops/slack/all"}]"#,
        )];
        let c = Config::from_env(&env).unwrap();
        assert_eq!(
            c.webhook_for(Subject::Pipeline("prod-api")),
            Some(&SecretRef::Ssm("/ops/slack/prod".into()))
        );
        assert_eq!(
            c.webhook_for(Subject::Pipeline("dev-api")),
            Some(&SecretRef::Ssm("/ops/slack/all".into()))
        );
        let bad = [(
            "SLACK_ROUTES",
            r#"[{"pipeline":"prod-*","hook":"https://hooks.slack.com/services/SECRET"}]"#,
        )];
        let err = Config::from_env(&bad).unwrap_err();
        assert_eq!(err.variable, "SLACK_ROUTES");
        assert!(!err.to_string().contains("SECRET"));
    }

    #[test]
    fn web_api_mode_needs_a_token_and_a_channel_id_and_routes_may_name_channels() {
        let env = [
            ("SLACK_BOT_TOKEN", "ssm:/ops/slack/bot"),
            ("SLACK_CHANNEL", "C0DEPLOYS01"),
            (
                "SLACK_ROUTES",
                r#"[{"pipeline":"prod-*","channel":"C0PRODOPS01"},{"pipeline":"legacy","webhook":"ssm:/ops/slack/legacy"}]"#,
            ),
        ];
        let c = Config::from_env(&env).unwrap();
        assert_eq!(
            c.channel_for(Subject::Pipeline("prod-api")),
            Some("C0PRODOPS01")
        );
        assert_eq!(
            c.channel_for(Subject::Pipeline("billing")),
            Some("C0DEPLOYS01")
        );
        assert_eq!(
            c.channel_for(Subject::Pipeline("legacy")),
            None,
            "a webhook route keeps webhook mode"
        );
        let named = [("SLACK_BOT_TOKEN", "xoxb-1"), ("SLACK_CHANNEL", "#deploys")];
        assert_eq!(
            Config::from_env(&named).unwrap_err().variable,
            "SLACK_CHANNEL"
        );
        let no_channel = [("SLACK_BOT_TOKEN", "xoxb-1")];
        assert_eq!(
            Config::from_env(&no_channel).unwrap_err().variable,
            "SLACK_CHANNEL"
        );
        let both = [(
            "SLACK_ROUTES",
            r#"[{"pipeline":"*","channel":"C0DEPLOYS01","webhook":"x"}]"#,
        )];
        assert_eq!(
            Config::from_env(&both).unwrap_err().variable,
            "SLACK_ROUTES"
        );
        let no_token = [("SLACK_CHANNEL", "C0DEPLOYS01")];
        let c = Config::from_env(&no_token).unwrap();
        assert!(c.web.is_none() && c.channel_for(Subject::Pipeline("any")).is_none());
    }

    #[test]
    fn ecs_states_and_recovery_are_notify_on_items_the_codepipeline_rule_does_not_check() {
        let env = [
            ("NOTIFY_ON", "pipeline:FAILED,ecs:FAILED,ecs:ROLLING_BACK"),
            ("DELIVERED_STATES", "FAILED"),
        ];
        let c = Config::from_env(&env).unwrap();
        assert!(c.notify_on.wants_ecs(EcsState::Failed));
        assert!(!c.notify_on.wants_ecs(EcsState::Completed));
        assert!(c.notify_on.tells_recoveries(), "on unless turned off");
        let off = [("NOTIFY_ON", "pipeline:FAILED,recovery:off")];
        assert!(!Config::from_env(&off).unwrap().notify_on.tells_recoveries());
        for bad in ["ecs:EXPLODED", "recovery:maybe"] {
            let env = [("NOTIFY_ON", bad)];
            assert_eq!(
                Config::from_env(&env).unwrap_err().variable,
                "NOTIFY_ON",
                "{bad}"
            );
        }
    }

    #[test]
    fn services_are_routed_by_the_same_routes_as_pipelines() {
        let env = [(
            "SLACK_ROUTES",
            r#"[{"service":"prod/*","webhook":"ssm:/ops/slack/prod"},{"service":"checkout","webhook":"ssm:/ops/slack/shop"},{"pipeline":"checkout","webhook":"ssm:/ops/slack/ci"}]"#,
        )];
        let c = Config::from_env(&env).unwrap();
        let hook = |s| c.webhook_for(s).cloned();
        assert_eq!(
            hook(Subject::Service("prod/api")),
            Some(SecretRef::Ssm("/ops/slack/prod".into()))
        );
        assert_eq!(
            hook(Subject::Service("staging/checkout")),
            Some(SecretRef::Ssm("/ops/slack/shop".into()))
        );
        assert_eq!(
            hook(Subject::Pipeline("checkout")),
            Some(SecretRef::Ssm("/ops/slack/ci".into()))
        );
        assert_eq!(hook(Subject::Service("staging/api")), None);
        let both = [(
            "SLACK_ROUTES",
            r#"[{"pipeline":"a","service":"b","webhook":"x"}]"#,
        )];
        assert_eq!(
            Config::from_env(&both).unwrap_err().variable,
            "SLACK_ROUTES"
        );
    }

    #[test]
    fn pipeline_filter_limits_which_pipelines_are_watched() {
        let env = [("PIPELINE_FILTER", "prod-*, billing")];
        let c = Config::from_env(&env).unwrap();
        assert!(c.watches("prod-api") && c.watches("billing"));
        assert!(!c.watches("sandbox"));
    }
}
