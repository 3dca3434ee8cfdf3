//! Reading `CHECKS` into a [`CheckBook`]: strictly, with a reason a person can act on for
//! every refusal, and never echoing a value (it could be a token pasted into the wrong field).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use shared::config::parse_duration;
use shared::secrets::SecretRef;

use super::{
    AlarmsCheck, BodyExpectation, Check, CheckBook, CheckKind, ECS_STAGES, HttpCheck, MAX_ALARMS,
    MAX_ATTEMPTS, StageSets,
};

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
