//! The notifier's configuration, read once at init.

use std::collections::HashSet;

use serde::Deserialize;
use shared::config::{ConfigError, Environment, SHARED_VARIABLES, Var, Vars};
use shared::glob::Glob;
use shared::secrets::SecretRef;

use crate::event::{ALL_STATES, Level, PipelineEvent, State};

pub const DEFAULT_NOTIFY_ON: &str = "pipeline:STARTED,pipeline:SUCCEEDED,pipeline:FAILED,pipeline:STOPPED,pipeline:SUPERSEDED,action:FAILED,approval:STARTED";

/// The notifier's variables: what the loader reads (with these defaults) and the README shows.
pub const VARIABLES: &[Var] = &[
    Var::defaulted(
        "NOTIFY_ON",
        DEFAULT_NOTIFY_ON,
        "`pipeline:*,action:FAILED`",
        "Which events become messages, as `level:STATE` items. Levels: `pipeline`, `stage`, `action`, `approval` (the manual-approval action; it also matches `action:`). States: `STARTED`, `SUCCEEDED`, `RESUMED`, `FAILED`, `CANCELED`, `STOPPED`, `STOPPING`, `SUPERSEDED`, `ABANDONED`, or `*`.",
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
        "`[{\"pipeline\":\"prod-*\",\"webhook\":\"ssm:/ops/slack/prod\"}]`",
        "Route pipelines (glob: `*`, `?`) to other webhooks (literal or reference); first match wins, `SLACK_WEBHOOK_URL` otherwise.",
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
/// approval event matches both `approval:STATE` and `action:STATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOn(HashSet<(Kind, State)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Level(Level),
    Approval,
}

impl NotifyOn {
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut set = HashSet::new();
        for item in items {
            let (kind, state) = item
                .split_once(':')
                .ok_or_else(|| format!("item {item:?} is not level:STATE"))?;
            let kind = match kind.trim().to_ascii_lowercase().as_str() {
                "pipeline" => Kind::Level(Level::Pipeline),
                "stage" => Kind::Level(Level::Stage),
                "action" => Kind::Level(Level::Action),
                "approval" => Kind::Approval,
                other => {
                    return Err(format!(
                        "unknown level {other:?} (pipeline, stage, action, approval)"
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
        Ok(Self(set))
    }

    pub fn wants(&self, event: &PipelineEvent) -> bool {
        self.0.contains(&(Kind::Level(event.level), event.state))
            || (event.is_approval() && self.0.contains(&(Kind::Approval, event.state)))
    }

    /// Whether failing actions get their own message, so a pipeline failure can be short.
    pub fn posts_action_failures(&self) -> bool {
        self.0
            .contains(&(Kind::Level(Level::Action), State::Failed))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub pipeline: Glob,
    pub webhook: SecretRef,
}

#[derive(Deserialize)]
struct RawRoute {
    pipeline: Glob,
    webhook: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub notify_on: NotifyOn,
    pub failure_mention: Option<String>,
    pub routes: Vec<Route>,
    pub pipeline_filter: Vec<Glob>,
}

/// `DELIVERED_STATES` (the template sets it from `PipelineEventStates`): the states the
/// EventBridge rule lets through. A state NOTIFY_ON names outside it would never arrive, and
/// nothing would say so; that is a configuration error. A `*` means "whatever arrives".
fn check_delivered<E: Environment + ?Sized>(
    vars: &Vars<E>,
    notify_items: &[String],
) -> Result<(), ConfigError> {
    let delivered: Vec<String> = vars
        .list("DELIVERED_STATES")?
        .into_iter()
        .map(|s| s.trim().to_ascii_uppercase())
        .collect();
    if delivered.is_empty() {
        return Ok(());
    }
    for item in notify_items {
        let state = item
            .split_once(':')
            .map(|(_, s)| s.trim().to_ascii_uppercase())
            .unwrap_or_default();
        if state != "*" && !delivered.contains(&state) {
            return Err(ConfigError::malformed(
                "NOTIFY_ON",
                "states the EventBridge rule delivers (the stack's PipelineEventStates, DELIVERED_STATES here)",
                format!("{state} is selected but never delivered; add it to PipelineEventStates"),
            ));
        }
    }
    Ok(())
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
        check_delivered(&vars, &notify_items)?;

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

        let expected_routes =
            r#"a JSON list like [{"pipeline":"prod-*","webhook":"ssm:/ops/slack/prod"}]"#;
        let raw: Vec<RawRoute> = vars
            .json("SLACK_ROUTES", expected_routes)?
            .unwrap_or_default();
        let routes = raw
            .into_iter()
            .map(|r| {
                SecretRef::parse(&r.webhook)
                    .map(|webhook| Route {
                        pipeline: r.pipeline,
                        webhook,
                    })
                    .map_err(|why| ConfigError::malformed("SLACK_ROUTES", expected_routes, why))
            })
            .collect::<Result<_, _>>()?;

        Ok(Self {
            notify_on,
            failure_mention,
            routes,
            pipeline_filter: vars
                .list("PIPELINE_FILTER")?
                .into_iter()
                .map(Glob::new)
                .collect(),
        })
    }

    pub fn route_for(&self, pipeline: &str) -> Option<&SecretRef> {
        self.routes
            .iter()
            .find(|r| r.pipeline.matches(pipeline))
            .map(|r| &r.webhook)
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
        assert_eq!(on.0.len(), ALL_STATES.len());
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
            c.route_for("prod-api"),
            Some(&SecretRef::Ssm("/ops/slack/prod".into()))
        );
        assert_eq!(
            c.route_for("dev-api"),
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
    fn pipeline_filter_limits_which_pipelines_are_watched() {
        let env = [("PIPELINE_FILTER", "prod-*, billing")];
        let c = Config::from_env(&env).unwrap();
        assert!(c.watches("prod-api") && c.watches("billing"));
        assert!(!c.watches("sandbox"));
    }
}
