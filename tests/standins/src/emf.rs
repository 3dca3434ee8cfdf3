//! Reads CloudWatch embedded metric format (EMF) lines out of a function's log and holds each
//! to the rules CloudWatch Logs applies before it extracts a metric, from the specification
//! (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
//! the root is a JSON object with `_aws.Timestamp` (milliseconds since the epoch) and
//! `_aws.CloudWatchMetrics` (directives with `Namespace`, `Dimensions`, `Metrics`); every
//! dimension a set names is a string member of the root; every metric's value is a number
//! or an array of at most 100 numbers at the root; at most 30 dimensions per set and 100
//! metrics per directive. A line that breaks a rule would be dropped by CloudWatch, so a
//! test fails naming the rule. And one rule of Lambda's: a line with `level` has an RFC 3339
//! `timestamp`, or the log-level filter treats it as INFO.

use serde_json::Value;

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The metric lines of a log, each checked.
#[derive(Debug)]
pub struct Emf {
    pub lines: Vec<Value>,
}

/// Every log line that is a JSON object with `_aws`, checked against the format's rules.
pub fn parse(logs: &[String]) -> Emf {
    let lines = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .inspect(check)
        .collect();
    Emf { lines }
}

/// Runs `work` as `function` with metrics on, and reads the metrics it wrote the way
/// CloudWatch would ([`parse`]).
pub async fn captured<F: std::future::Future>(function: &'static str, work: F) -> (F::Output, Emf) {
    let (metrics, _) = shared::metrics::Metrics::from_env(function, &[("METRICS", "on")]);
    let (output, lines) = metrics.capture(work).await;
    (output, parse(&lines))
}

/// Panics naming the first rule `line` breaks.
pub fn check(line: &Value) {
    let fail = |rule: &str| panic!("EMF: {rule}: {line}");
    let Some(root) = line.as_object() else {
        fail("the root must be an object")
    };
    let aws = &root["_aws"];
    match aws["Timestamp"].as_u64() {
        Some(ms) if ms > 1_000_000_000_000 => {}
        _ => fail("_aws.Timestamp must be milliseconds since the epoch"),
    }
    let Some(directives) = aws["CloudWatchMetrics"].as_array() else {
        fail("_aws.CloudWatchMetrics must be an array")
    };
    if directives.is_empty() {
        fail("_aws.CloudWatchMetrics names no directive");
    }
    // Lambda's log-level filter (docs: "Log-level filtering") takes a JSON line for INFO
    // unless it has `level` and an RFC 3339 `timestamp`: below WARN it would be dropped.
    if line.get("level").is_some() {
        let stamp = line["timestamp"].as_str().unwrap_or_default();
        let shaped = stamp.len() >= 20
            && stamp.as_bytes()[4] == b'-'
            && stamp.as_bytes()[10] == b'T'
            && (stamp.ends_with('Z') || stamp[19..].contains(['+', '-']));
        if !shaped {
            fail("a line with `level` needs an RFC 3339 `timestamp` for Lambda to use it");
        }
    }
    if line.to_string().len() > 256 * 1024 {
        fail("a log event is at most 256 KB");
    }
    for directive in directives {
        match directive["Namespace"].as_str() {
            Some(ns) if (1..=255).contains(&ns.len()) && !ns.starts_with("AWS/") => {}
            _ => fail("Namespace must be 1-255 characters and not AWS/"),
        }
        let Some(sets) = directive["Dimensions"].as_array() else {
            fail("Dimensions must be an array of dimension sets")
        };
        for set in sets {
            let Some(keys) = set.as_array() else {
                fail("a dimension set must be an array")
            };
            if keys.len() > 30 {
                fail("a dimension set holds at most 30 dimensions");
            }
            for key in keys {
                let Some(key) = key.as_str() else {
                    fail("a dimension name must be a string")
                };
                match root.get(key).and_then(Value::as_str) {
                    Some(v) if !v.trim().is_empty() && v.len() <= 1024 => {}
                    _ => fail(&format!(
                        "dimension {key} must be a non-empty string member of the root"
                    )),
                }
            }
        }
        let Some(metrics) = directive["Metrics"].as_array() else {
            fail("Metrics must be an array")
        };
        if metrics.is_empty() || metrics.len() > 100 {
            fail("a directive holds 1 to 100 metrics");
        }
        for metric in metrics {
            let Some(name) = metric["Name"].as_str() else {
                fail("a metric must have a Name")
            };
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                fail(&format!("{name}: not a CloudWatch unit: {unit}"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if !values.is_empty()
                        && values.len() <= 100
                        && values.iter().all(Value::is_number) => {}
                _ => fail(&format!(
                    "metric {name} must have a number or up to 100 numbers at the root"
                )),
            }
        }
    }
}

impl Emf {
    /// The total of `metric` over the lines whose root has every `dimensions` value and
    /// that declare it (0 when none do).
    pub fn sum(&self, metric: &str, dimensions: &[(&str, &str)]) -> f64 {
        self.values(metric, dimensions).iter().sum()
    }

    /// Every value of `metric` under these dimensions.
    pub fn values(&self, metric: &str, dimensions: &[(&str, &str)]) -> Vec<f64> {
        self.lines
            .iter()
            .filter(|l| dimensions.iter().all(|(k, v)| l[*k] == *v))
            .filter(|l| declares(l, metric))
            .flat_map(|l| match &l[metric] {
                Value::Array(values) => values.iter().filter_map(Value::as_f64).collect::<Vec<_>>(),
                v => v.as_f64().into_iter().collect(),
            })
            .collect()
    }

    /// The dimension sets `metric` is published under, in its first line.
    pub fn dimension_sets(&self, metric: &str) -> Vec<Vec<String>> {
        self.lines
            .iter()
            .flat_map(|l| {
                l["_aws"]["CloudWatchMetrics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|d| {
                d["Metrics"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["Name"] == metric))
            })
            .and_then(|d| serde_json::from_value(d["Dimensions"].clone()).ok())
            .unwrap_or_default()
    }
}

fn declares(line: &Value, metric: &str) -> bool {
    line["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["Metrics"].as_array())
        .flatten()
        .any(|m| m["Name"] == metric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "_aws": {"Timestamp": 1_790_000_000_000u64, "CloudWatchMetrics": [
                {"Namespace": "ContainerDeliveryOps", "Dimensions": [["Function", "Outcome"]],
                 "Metrics": [{"Name": "Events", "Unit": "Count"}]}
            ]},
            "Function": "pipeline-notifier", "Outcome": "notified", "Events": 1
        })
    }

    #[test]
    fn a_well_formed_line_is_read_and_summed() {
        let emf = parse(&[good().to_string(), "not json".into()]);
        assert_eq!(emf.sum("Events", &[("Outcome", "notified")]), 1.0);
        assert_eq!(emf.sum("Events", &[("Outcome", "skipped")]), 0.0);
    }

    #[test]
    #[should_panic(expected = "dimension Outcome must be")]
    fn a_dimension_missing_from_the_root_is_refused() {
        let mut line = good();
        line.as_object_mut().unwrap().remove("Outcome");
        check(&line);
    }

    #[test]
    #[should_panic(expected = "must have a number")]
    fn a_metric_without_its_value_is_refused() {
        let mut line = good();
        line["Events"] = json!("1");
        check(&line);
    }

    #[test]
    #[should_panic(expected = "RFC 3339")]
    fn a_level_without_a_timestamp_is_refused() {
        let mut line = good();
        line["level"] = json!("WARN");
        check(&line);
    }

    #[test]
    #[should_panic(expected = "Timestamp")]
    fn a_timestamp_in_seconds_is_refused() {
        let mut line = good();
        line["_aws"]["Timestamp"] = json!(1_790_000_000u64);
        check(&line);
    }
}
