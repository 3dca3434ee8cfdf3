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
use serde::Deserialize;
use serde_json::Value;
use shared::config::parse_duration;
use shared::secrets::SecretRef;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBook {
    /// `None` when left out; an explicitly empty list is refused.
    #[serde(default)]
    default: Option<Vec<Value>>,
    #[serde(default)]
    deployment_groups: BTreeMap<String, Vec<Value>>,
    #[serde(default)]
    ecs_services: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(rename = "type")]
    _type: String,
    name: Option<String>,
    url: String,
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    expect_status: Option<StatusList>,
    body_contains: Option<String>,
    json_pointer: Option<String>,
    json_equals: Option<Value>,
    max_latency: Option<DurationText>,
    attempts: Option<u32>,
    interval: Option<DurationText>,
    min_success_ratio: Option<f64>,
    timeout: Option<DurationText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlarms {
    #[serde(rename = "type")]
    _type: String,
    name: Option<String>,
    alarms: Vec<String>,
    bake: Option<DurationText>,
    poll: Option<DurationText>,
    #[serde(default)]
    fail_on_insufficient_data: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusList {
    One(u16),
    Many(Vec<u16>),
}

/// `"90s"`, `"5m"`, `"500ms"`, or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

fn duration(field: &str, v: Option<DurationText>, default: Duration) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(DurationText::Seconds(s)) => Ok(Duration::from_secs(s)),
        Some(DurationText::Text(t)) => parse_duration(&t)
            .ok_or_else(|| format!("{field} is not a duration such as 500ms, 30s or 5m")),
    }
}

pub fn parse_book(text: &str) -> Result<CheckBook, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("invalid JSON at line {} column {}", e.line(), e.column()))?;
    let raw = match value {
        Value::Array(list) if list.is_empty() => {
            return Err(
                "no checks configured; a hook that checks nothing would let any release through"
                    .into(),
            );
        }
        Value::Array(list) => RawBook {
            default: Some(list),
            deployment_groups: BTreeMap::new(),
            ecs_services: BTreeMap::new(),
        },
        other @ Value::Object(_) => serde_json::from_value(other).map_err(|e| {
            format!(
                "{} (expected the keys default, deployment_groups and ecs_services)",
                shape_error(&e)
            )
        })?,
        _ => return Err("neither a JSON object nor a list".into()),
    };
    let parse_set = |set: &str, items: Vec<Value>| -> Result<Vec<Check>, String> {
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_check(v).map_err(|why| format!("{set} check #{}: {why}", i + 1)))
            .collect()
    };
    let non_empty = |set: &str, items: Vec<Value>| -> Result<Vec<Check>, String> {
        let checks = parse_set(set, items)?;
        if checks.is_empty() {
            return Err(format!(
                "{set} has no checks; a hook that checks nothing would let any release through"
            ));
        }
        Ok(checks)
    };
    let mut ecs_services = BTreeMap::new();
    for (key, raw) in raw.ecs_services {
        let shape = key.split('/').collect::<Vec<_>>();
        if shape.len() > 2 || shape.iter().any(|part| part.trim().is_empty()) {
            return Err(format!(
                "ecs_services key {key:?} is neither <service> nor <cluster>/<service>"
            ));
        }
        let list = |stage: &str, v: Value| match v {
            Value::Array(items) => Ok(items),
            _ => Err(format!(
                "ECS service {key:?} stage {stage}: expected a list of checks"
            )),
        };
        let sets = match raw {
            Value::Array(items) => StageSets {
                any_stage: non_empty(&format!("ECS service {key:?}"), items)?,
                stages: BTreeMap::new(),
            },
            Value::Object(by_stage) => {
                let mut sets = StageSets::default();
                for (stage, items) in by_stage {
                    let items = list(&stage, items)?;
                    let set = non_empty(&format!("ECS service {key:?} stage {stage}"), items)?;
                    if stage == "default" {
                        sets.any_stage = set;
                    } else if ECS_STAGES.contains(&stage.as_str()) {
                        sets.stages.insert(stage, set);
                    } else {
                        return Err(format!(
                            "ECS service {key:?}: {stage:?} is not a lifecycle stage ({} or default)",
                            ECS_STAGES.join(", ")
                        ));
                    }
                }
                if sets.any_stage.is_empty() && sets.stages.is_empty() {
                    return Err(format!("ECS service {key:?} has no checks"));
                }
                sets
            }
            _ => {
                return Err(format!(
                    "ECS service {key:?}: expected a list of checks, or an object of lifecycle stage to list"
                ));
            }
        };
        ecs_services.insert(key, sets);
    }
    let book = CheckBook {
        default: match raw.default {
            Some(items) if items.is_empty() => {
                return Err(
                    "the default set is empty; leave \"default\" out if deployment groups without their own set should fail"
                        .into(),
                );
            }
            items => parse_set("default", items.unwrap_or_default())?,
        },
        groups: raw
            .deployment_groups
            .into_iter()
            .map(|(g, items)| {
                let set = parse_set(&format!("deployment group {g:?}"), items)?;
                if set.is_empty() {
                    return Err(format!(
                        "deployment group {g:?} has no checks; a hook that checks nothing would let any release through"
                    ));
                }
                Ok((g, set))
            })
            .collect::<Result<_, String>>()?,
        ecs_services,
    };
    if book.default.is_empty() && book.groups.is_empty() && book.ecs_services.is_empty() {
        return Err(
            "no checks configured; a hook that checks nothing would let any release through".into(),
        );
    }
    Ok(book)
}

fn parse_check(v: Value) -> Result<Check, String> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "http" => {
            let raw: RawHttp = serde_json::from_value(v).map_err(|e| shape_error(&e))?;
            http_check(raw)
        }
        "alarms" => {
            let raw: RawAlarms = serde_json::from_value(v).map_err(|e| shape_error(&e))?;
            alarms_check(raw)
        }
        "" => Err("missing \"type\" (http or alarms)".into()),
        other => Err(format!("unknown type {other:?} (http or alarms)")),
    }
}

/// serde's message without the offending value ("invalid type: string \"…\", expected
/// u32"), which could be a token pasted into the wrong field.
fn shape_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match (text.split_once(':'), text.rsplit_once(", expected ")) {
        (Some((what, _)), Some((_, expected)))
            if what == "invalid type" || what == "invalid value" =>
        {
            format!("{what}, expected {expected}")
        }
        _ => text,
    }
}

fn http_check(raw: RawHttp) -> Result<Check, String> {
    let url = Url::parse(&raw.url).map_err(|e| format!("url is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("url must be http:// or https:// with a host".into());
    }
    let method = match raw.method.as_deref().map(str::to_ascii_uppercase) {
        None => reqwest::Method::GET,
        Some(m) if matches!(m.as_str(), "GET" | "HEAD" | "POST" | "PUT" | "OPTIONS") => {
            reqwest::Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string())?
        }
        Some(_) => return Err("method must be GET, HEAD, POST, PUT or OPTIONS".into()),
    };
    let mut headers = Vec::new();
    for (name, value) in raw.headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("header name {name:?} is not valid"));
        }
        let value = SecretRef::parse(&value).map_err(|why| format!("header {name}: {why}"))?;
        headers.push((name, value));
    }
    let expect_status = match raw.expect_status {
        None => vec![200],
        Some(StatusList::One(s)) => vec![s],
        Some(StatusList::Many(list)) if !list.is_empty() => list,
        Some(StatusList::Many(_)) => return Err("expect_status is an empty list".into()),
    };
    if let Some(bad) = expect_status.iter().find(|s| !(100..=599).contains(*s)) {
        return Err(format!("expect_status {bad} is not an HTTP status"));
    }
    let mut body = Vec::new();
    if let Some(text) = raw.body_contains {
        if text.is_empty() {
            return Err("body_contains is empty".into());
        }
        body.push(BodyExpectation::Contains(text));
    }
    match (raw.json_pointer, raw.json_equals) {
        (Some(pointer), Some(value)) => {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err("json_pointer must start with / (RFC 6901), e.g. /status".into());
            }
            body.push(BodyExpectation::JsonEquals { pointer, value });
        }
        (None, None) => {}
        _ => return Err("json_pointer and json_equals go together".into()),
    }
    let attempts = raw.attempts.unwrap_or(3);
    if !(1..=MAX_ATTEMPTS).contains(&attempts) {
        return Err(format!("attempts must be 1 to {MAX_ATTEMPTS}"));
    }
    let min_success_ratio = raw.min_success_ratio.unwrap_or(1.0);
    if !(min_success_ratio > 0.0 && min_success_ratio <= 1.0) {
        return Err("min_success_ratio must be more than 0 and at most 1".into());
    }
    let timeout = duration("timeout", raw.timeout, Duration::from_secs(5))?;
    if timeout.is_zero() {
        return Err("timeout must be more than zero".into());
    }
    let check = HttpCheck {
        url,
        method,
        headers,
        expect_status,
        body,
        max_latency: raw
            .max_latency
            .map(|d| duration("max_latency", Some(d), Duration::ZERO))
            .transpose()?,
        attempts,
        interval: duration("interval", raw.interval, Duration::from_secs(2))?,
        min_success_ratio,
        timeout,
    };
    let name = raw
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("{} {}", check.method, check.target()));
    Ok(Check {
        name,
        kind: CheckKind::Http(check),
    })
}

fn alarms_check(raw: RawAlarms) -> Result<Check, String> {
    let mut alarms: Vec<String> = raw
        .alarms
        .into_iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    alarms.sort();
    alarms.dedup();
    if alarms.is_empty() {
        return Err("alarms is empty".into());
    }
    if alarms.len() > MAX_ALARMS {
        return Err(format!("at most {MAX_ALARMS} alarms per check"));
    }
    let bake = duration("bake", raw.bake, Duration::ZERO)?;
    let poll = duration("poll", raw.poll, Duration::from_secs(15))?;
    if poll < Duration::from_millis(100) {
        return Err("poll must be at least 100ms".into());
    }
    let name = raw
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            if alarms.len() == 1 {
                format!("alarm {}", alarms[0])
            } else {
                format!("{} alarms", alarms.len())
            }
        });
    Ok(Check {
        name,
        kind: CheckKind::Alarms(AlarmsCheck {
            alarms,
            bake,
            poll,
            fail_on_insufficient_data: raw.fail_on_insufficient_data,
        }),
    })
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
