//! The check book: which checks run for which deployment group, parsed and validated from
//! `CHECKS`. Checks come only from configuration; nothing in the hook event can add one or
//! point one elsewhere.
//!
//! ```json
//! {
//!   "default": [{"type": "http", "url": "https://test.example.com:8443/health"}],
//!   "deployment_groups": {
//!     "prod-api-dg": [
//!       {"type": "http", "name": "health", "url": "https://api-test.internal:8443/health",
//!        "expect_status": [200], "json_pointer": "/status", "json_equals": "UP",
//!        "max_latency": "800ms", "attempts": 10, "interval": "2s", "min_success_ratio": 0.9},
//!       {"type": "alarms", "alarms": ["prod-api-5xx", "prod-api-p99"], "bake": "5m"}
//!     ]
//!   }
//! }
//! ```
//!
//! A bare list is the default set.
//!
//! ECS-native deployments (ECS runs blue/green, linear or canary itself and invokes the hook)
//! choose their set by service, and optionally by lifecycle stage, from `ecs_services`. A key
//! is `<cluster>/<service>` or just `<service>` (the longer key wins); its value is a list
//! (every stage the hook is configured for) or an object of stage → list with an optional
//! `default`:
//!
//! ```json
//! {
//!   "ecs_services": {
//!     "prod/prod-api": {
//!       "POST_TEST_TRAFFIC_SHIFT": [{"type": "http", "url": "https://api-test.internal:9443/health"}],
//!       "POST_PRODUCTION_TRAFFIC_SHIFT": [{"type": "alarms", "alarms": ["prod-api-5xx"], "bake": "45m"}]
//!     }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;
use shared::secrets::SecretRef;

mod parse;

pub use parse::parse_book;

/// What the expected format is, for configuration errors.
pub const CHECKS_EXPECTED: &str = r#"a JSON object {"default": [check…], "deployment_groups": {"<group>": [check…]}, "ecs_services": {"<service>": [check…] or {"<STAGE>": [check…]}}} (or a JSON list of checks), or ssm:/parameter/name"#;

pub const MAX_ATTEMPTS: u32 = 100;
pub const MAX_ALARMS: usize = 100;
/// Response bodies are read up to this size; the rest is never downloaded.
pub const BODY_CAP: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct CheckBook {
    pub default: Vec<Check>,
    pub groups: BTreeMap<String, Vec<Check>>,
    /// ECS-native hooks: by `<cluster>/<service>` or `<service>`.
    pub ecs_services: BTreeMap<String, StageSets>,
}

/// The ECS lifecycle stages a hook can be invoked at (ECS developer guide, "Lifecycle hooks
/// for Amazon ECS service deployments"). Book keys are checked against them so a typo is a
/// configuration error rather than a stage that silently never matches.
pub const ECS_STAGES: [&str; 8] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];

/// One ECS service's checks: per stage, and for the stages not named.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageSets {
    pub any_stage: Vec<Check>,
    pub stages: BTreeMap<String, Vec<Check>>,
}

/// Which set applies to an ECS-native hook invocation, and why.
#[derive(Debug, PartialEq)]
pub enum EcsSelection<'a> {
    /// `name` is the book key that matched, for messages and the bake state.
    Found {
        name: String,
        checks: &'a [Check],
    },
    Default(&'a [Check]),
    /// `hookDetails` named a set the book does not have: a typo must not pass.
    UnknownSet(String),
    /// The service has an entry, but nothing for this stage.
    NoStage {
        name: String,
    },
    Nothing,
}

/// Which set applies to a deployment, and why.
#[derive(Debug, PartialEq)]
pub enum Selection<'a> {
    Group(&'a [Check]),
    Default(&'a [Check]),
    /// The deployment's group is unknown (the look-up failed) and the book has group sets,
    /// so picking the default could check the wrong service.
    Ambiguous,
    Nothing,
}

impl CheckBook {
    pub fn has_group_sets(&self) -> bool {
        !self.groups.is_empty()
    }

    /// `named` (from the service's `hookDetails`) wins; then `<cluster>/<service>`, then
    /// `<service>`, then the book's default set.
    pub fn select_ecs(
        &self,
        named: Option<&str>,
        cluster: &str,
        service: &str,
        stage: &str,
    ) -> EcsSelection<'_> {
        let qualified = format!("{cluster}/{service}");
        let entry = match named {
            Some(n) => match self.ecs_services.get_key_value(n) {
                Some(e) => Some(e),
                None => return EcsSelection::UnknownSet(n.to_owned()),
            },
            None => self
                .ecs_services
                .get_key_value(qualified.as_str())
                .or_else(|| self.ecs_services.get_key_value(service)),
        };
        match entry {
            Some((name, sets)) => match sets.stages.get(stage) {
                Some(set) => EcsSelection::Found {
                    name: name.clone(),
                    checks: set,
                },
                None if !sets.any_stage.is_empty() => EcsSelection::Found {
                    name: name.clone(),
                    checks: &sets.any_stage,
                },
                None => EcsSelection::NoStage { name: name.clone() },
            },
            None if self.default.is_empty() => EcsSelection::Nothing,
            None => EcsSelection::Default(&self.default),
        }
    }

    pub fn select(&self, group: Option<&str>) -> Selection<'_> {
        match group {
            Some(g) => match self.groups.get(g) {
                Some(set) => Selection::Group(set),
                None if self.default.is_empty() => Selection::Nothing,
                None => Selection::Default(&self.default),
            },
            None if self.has_group_sets() => Selection::Ambiguous,
            None if self.default.is_empty() => Selection::Nothing,
            None => Selection::Default(&self.default),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Http(HttpCheck),
    Alarms(AlarmsCheck),
}

impl CheckKind {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Alarms(_) => "alarms",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BodyExpectation {
    Contains(String),
    JsonEquals { pointer: String, value: Value },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub url: Url,
    pub method: reqwest::Method,
    /// Values may be references (`ssm:`, `secretsmanager:`), resolved when the check runs.
    pub headers: Vec<(String, SecretRef)>,
    pub expect_status: Vec<u16>,
    pub body: Vec<BodyExpectation>,
    pub max_latency: Option<Duration>,
    pub attempts: u32,
    pub interval: Duration,
    pub min_success_ratio: f64,
    pub timeout: Duration,
}

impl HttpCheck {
    /// Scheme, host, port and path: never the query or user info, which may hold tokens.
    pub fn target(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{host}{port}{}", self.url.scheme(), self.url.path())
    }

    /// Successes needed out of `attempts`.
    pub fn needed(&self) -> u32 {
        let n = (self.min_success_ratio * f64::from(self.attempts) - 1e-9).ceil();
        (n.max(0.0) as u32).min(self.attempts)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmsCheck {
    pub alarms: Vec<String>,
    /// How long the alarms are watched; zero looks once.
    pub bake: Duration,
    pub poll: Duration,
    /// INSUFFICIENT_DATA is normally tolerated: a new target often has no data points yet.
    pub fail_on_insufficient_data: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn book(v: Value) -> Result<CheckBook, String> {
        parse_book(&v.to_string())
    }

    #[test]
    fn an_empty_default_set_beside_group_sets_is_a_configuration_error() {
        let book = r#"{"default": [], "deployment_groups": {"prod-api": [{"type":"http","url":"https://t.internal/health"}]}}"#;
        assert!(
            parse_book(book)
                .unwrap_err()
                .contains("default set is empty")
        );
        let without = r#"{"deployment_groups": {"prod-api": [{"type":"http","url":"https://t.internal/health"}]}}"#;
        assert!(parse_book(without).is_ok());
    }

    #[test]
    fn http_defaults_are_one_strict_probe_set() {
        let b =
            book(json!([{"type": "http", "url": "https://test.internal:8443/health?token=abc"}]))
                .unwrap();
        let CheckKind::Http(h) = &b.default[0].kind else {
            panic!("not http")
        };
        assert_eq!(h.expect_status, vec![200]);
        assert_eq!((h.attempts, h.needed()), (3, 3));
        assert_eq!(h.timeout, Duration::from_secs(5));
        assert_eq!(b.default[0].name, "GET https://test.internal:8443/health");
        assert!(
            !b.default[0].name.contains("token"),
            "the query may hold secrets"
        );
    }

    #[test]
    fn success_ratio_rounds_up_to_whole_successes() {
        let b = book(json!([{"type": "http", "url": "http://x/", "attempts": 10, "min_success_ratio": 0.9},
                            {"type": "http", "url": "http://x/", "attempts": 3, "min_success_ratio": 0.5}]))
        .unwrap();
        let needed: Vec<u32> = b
            .default
            .iter()
            .map(|c| match &c.kind {
                CheckKind::Http(h) => h.needed(),
                CheckKind::Alarms(_) => 0,
            })
            .collect();
        assert_eq!(needed, vec![9, 2]);
    }

    #[test]
    fn groups_take_precedence_and_unknown_groups_fall_back_to_default() {
        let b = book(json!({
            "default": [{"type": "alarms", "alarms": ["a"]}],
            "deployment_groups": {"prod-dg": [{"type": "alarms", "alarms": ["b", "c"], "bake": "5m"}]}
        }))
        .unwrap();
        assert!(
            matches!(b.select(Some("prod-dg")), Selection::Group(s) if s[0].name == "2 alarms")
        );
        assert!(matches!(b.select(Some("other")), Selection::Default(s) if s[0].name == "alarm a"));
        assert_eq!(b.select(None), Selection::Ambiguous);
        let only_groups =
            book(json!({"deployment_groups": {"g": [{"type": "alarms", "alarms": ["a"]}]}}))
                .unwrap();
        assert_eq!(only_groups.select(Some("other")), Selection::Nothing);
    }

    #[test]
    fn mistakes_are_named_with_where_they_are() {
        for (v, expect) in [
            (json!([]), "no checks configured"),
            (
                json!({"default": [{"type": "http", "url": "ftp://x/"}]}),
                "default check #1",
            ),
            (
                json!([{"type": "http", "url": "http://x/", "expected_status": 200}]),
                "unknown field",
            ),
            (json!([{"type": "tcp", "url": "x"}]), "unknown type"),
            (json!([{"url": "http://x/"}]), "missing \"type\""),
            (
                json!([{"type": "http", "url": "http://x/", "json_pointer": "/a"}]),
                "go together",
            ),
            (
                json!([{"type": "http", "url": "http://x/", "min_success_ratio": 0}]),
                "min_success_ratio",
            ),
            (
                json!([{"type": "http", "url": "http://x/", "attempts": 0}]),
                "attempts",
            ),
            (json!([{"type": "alarms", "alarms": []}]), "alarms is empty"),
            (
                json!([{"type": "alarms", "alarms": ["a"], "bake": "soon"}]),
                "bake is not a duration",
            ),
            (json!({"deployment_groups": {"g": []}}), "has no checks"),
            (json!({"defaults": []}), "unknown field"),
            (
                json!({"default": "hunter2"}),
                "invalid type, expected a sequence",
            ),
        ] {
            let err = book(v.clone()).unwrap_err();
            assert!(err.contains(expect), "{v}: {err}");
        }
    }

    #[test]
    fn header_values_may_be_references() {
        let b = book(json!([{"type": "http", "url": "http://x/", "headers": {"Authorization": "ssm:/canary/token", "Host": "api.example.com"}}])).unwrap();
        let CheckKind::Http(h) = &b.default[0].kind else {
            panic!("not http")
        };
        assert!(h.headers.contains(&(
            "Authorization".into(),
            SecretRef::Ssm("/canary/token".into())
        )));
    }

    #[test]
    fn ecs_services_choose_by_name_then_cluster_and_service_then_stage() {
        let b = book(json!({
            "default": [{"type": "alarms", "alarms": ["fallback"]}],
            "ecs_services": {
                "prod-api": [{"type": "alarms", "alarms": ["any-cluster"]}],
                "prod/prod-api": {
                    "POST_TEST_TRAFFIC_SHIFT": [{"type": "alarms", "alarms": ["test"]}],
                    "default": [{"type": "alarms", "alarms": ["prod-default"]}]
                },
                "staged-only": {"POST_SCALE_UP": [{"type": "alarms", "alarms": ["scaled"]}]}
            }
        }))
        .unwrap();
        let first = |sel: EcsSelection<'_>| match sel {
            EcsSelection::Found { name, checks } => format!("{name}: {}", checks[0].name),
            EcsSelection::Default(checks) => format!("default: {}", checks[0].name),
            other => format!("{other:?}"),
        };
        let pick =
            |named, cluster, service, stage| first(b.select_ecs(named, cluster, service, stage));
        assert_eq!(
            pick(None, "prod", "prod-api", "POST_TEST_TRAFFIC_SHIFT"),
            "prod/prod-api: alarm test"
        );
        assert_eq!(
            pick(None, "prod", "prod-api", "PRE_SCALE_UP"),
            "prod/prod-api: alarm prod-default"
        );
        assert_eq!(
            pick(None, "stage", "prod-api", "PRE_SCALE_UP"),
            "prod-api: alarm any-cluster"
        );
        assert_eq!(
            pick(None, "prod", "other", "PRE_SCALE_UP"),
            "default: alarm fallback"
        );
        assert_eq!(
            pick(Some("staged-only"), "prod", "prod-api", "POST_SCALE_UP"),
            "staged-only: alarm scaled"
        );
        assert_eq!(
            b.select_ecs(Some("staged-only"), "prod", "prod-api", "PRE_SCALE_UP"),
            EcsSelection::NoStage {
                name: "staged-only".into()
            }
        );
        assert_eq!(
            b.select_ecs(Some("typo"), "prod", "prod-api", "PRE_SCALE_UP"),
            EcsSelection::UnknownSet("typo".into())
        );
        let no_default =
            book(json!({"ecs_services": {"a": [{"type": "alarms", "alarms": ["x"]}]}})).unwrap();
        assert_eq!(
            no_default.select_ecs(None, "c", "b", "PRE_SCALE_UP"),
            EcsSelection::Nothing
        );
    }

    #[test]
    fn ecs_service_mistakes_are_configuration_errors() {
        let alarm = json!({"type": "alarms", "alarms": ["a"]});
        for (v, expect) in [
            (
                json!({"ecs_services": {"svc": {"POST_TEST_TRAFIC_SHIFT": [alarm]}}}),
                "is not a lifecycle stage",
            ),
            (json!({"ecs_services": {"svc": []}}), "has no checks"),
            (json!({"ecs_services": {"svc": {}}}), "has no checks"),
            (
                json!({"ecs_services": {"a/b/c": [alarm]}}),
                "neither <service> nor <cluster>/<service>",
            ),
            (
                json!({"ecs_services": {"svc": "health"}}),
                "expected a list of checks",
            ),
            (
                json!({"ecs_services": {"svc": {"PRE_SCALE_UP": {}}}}),
                "expected a list of checks",
            ),
            (
                json!({"ecs_services": {"svc": [{"type": "http", "url": "ftp://x/"}]}}),
                "ECS service \"svc\" check #1",
            ),
        ] {
            let err = book(v.clone()).unwrap_err();
            assert!(err.contains(expect), "{v}: {err}");
        }
    }
}
