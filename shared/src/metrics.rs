//! Metrics people alarm on, as CloudWatch embedded metric format (EMF) lines on stdout:
//! CloudWatch Logs turns them into metrics, so recording one costs no API call and no
//! latency. What the invocation records is kept in a task-local recorder and written once,
//! when the invocation ends ([`Metrics::around`]); outside an invocation recording does
//! nothing, so code that records needs no handle passed to it.
//!
//! Dimensions are bounded (function, channel, outcome, verdict, hook, ...): a pipeline name,
//! repository or application is written beside the metrics (searchable in Logs Insights)
//! and becomes a dimension only when `METRICS_DIMENSIONS` names it, because each distinct
//! value is a new metric CloudWatch bills for.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

use crate::config::{ConfigError, Environment, Vars};
use crate::telemetry::{now_millis, rfc3339};

pub const DEFAULT_NAMESPACE: &str = "ContainerDeliveryOps";
/// The dimension every metric carries: which of the suite's functions recorded it.
pub const FUNCTION: &str = "Function";
/// The names `METRICS_DIMENSIONS` may opt in to (what [`context`] is called with).
pub const OPTIONAL_DIMENSIONS: &[&str] = &["Pipeline", "Repository", "Application", "Cluster"];

// The format's limits (CloudWatch embedded metric format specification).
const MAX_METRICS_PER_DIRECTIVE: usize = 100;
const MAX_VALUES_PER_METRIC: usize = 100;
// CloudWatch's own limit on a dimension value is 1024; names in Slack-sized text are shorter.
const MAX_DIMENSION_VALUE_CHARS: usize = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

/// A metric and how it is aggregated. `rollup` names the dimensions of a second,
/// function-independent series (e.g. `Notifications` by `Outcome` alone), for one alarm
/// across every function; empty means the per-function series only.
#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub rollup: &'static [&'static str],
}

impl Metric {
    pub const fn count(name: &'static str) -> Self {
        Self {
            name,
            unit: Unit::Count,
            rollup: &[],
        }
    }

    pub const fn seconds(name: &'static str) -> Self {
        Self {
            name,
            unit: Unit::Seconds,
            rollup: &[],
        }
    }

    pub const fn with_rollup(self, rollup: &'static [&'static str]) -> Self {
        Self { rollup, ..self }
    }
}

// The metrics every function records through `shared`.
pub const NOTIFICATIONS: Metric = Metric::count("Notifications").with_rollup(&["Outcome"]);
pub const SLACK_RETRIES: Metric = Metric::count("SlackRetries");
pub const CONFIG_ERRORS: Metric = Metric::count("ConfigErrors");
pub const COLD_START: Metric = Metric::count("ColdStart");
pub const REPORT_FAILURES: Metric = Metric::count("ReportFailures");

#[derive(Debug)]
struct Datum {
    metric: &'static Metric,
    dimensions: Vec<(&'static str, String)>,
    value: f64,
}

#[derive(Debug, Default)]
struct Recorder {
    data: Vec<Datum>,
    context: BTreeMap<&'static str, String>,
}

tokio::task_local! {
    static RECORDER: RefCell<Recorder>;
}

/// Adds `value` to `metric` under these dimensions (counts add up; seconds are kept each).
pub fn record(metric: &'static Metric, dimensions: &[(&'static str, &str)], value: f64) {
    if !value.is_finite() {
        return;
    }
    let dimensions = dimensions
        .iter()
        .map(|(key, value)| (*key, dimension_value(value)))
        .collect();
    let _ = RECORDER.try_with(|r| {
        r.borrow_mut().data.push(Datum {
            metric,
            dimensions,
            value,
        })
    });
}

/// One more of `metric`.
pub fn count(metric: &'static Metric, dimensions: &[(&'static str, &str)]) {
    record(metric, dimensions, 1.0);
}

/// What this invocation is about (`Pipeline`, `Repository`, ...): written beside its
/// metrics, and a dimension of them when `METRICS_DIMENSIONS` names `key`.
pub fn context(key: &'static str, value: &str) {
    let _ = RECORDER.try_with(|r| {
        r.borrow_mut().context.insert(key, dimension_value(value));
    });
}

fn dimension_value(value: &str) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return "unknown".into();
    }
    trimmed.chars().take(MAX_DIMENSION_VALUE_CHARS).collect()
}

/// The first invocation of a process is its cold start.
static COLD: AtomicBool = AtomicBool::new(true);

#[derive(Debug, Clone)]
pub struct Metrics {
    enabled: bool,
    namespace: String,
    function: &'static str,
    opted_in: Vec<String>,
    /// Lambda drops JSON lines below the function's application log level, and takes a line
    /// for INFO unless it has both `level` and an RFC 3339 `timestamp`: at WARN or ERROR the
    /// metrics, which the alarms read, would vanish. They carry the configured level itself:
    /// it always passes, and it is the least severe level that does, so a metric line passes
    /// for an error (in a `level = "ERROR"` query) only when nothing less severe is kept.
    /// ERROR or FATAL would pass too, but would put a metric line among the errors at every
    /// setting. `None` (no `AWS_LAMBDA_LOG_LEVEL`, or one Lambda does not know): the line is
    /// filed as INFO, which is what a function without an application log level keeps.
    level: Option<&'static str>,
}

impl Metrics {
    /// `METRICS` (on unless `off`), `METRICS_NAMESPACE`, `METRICS_DIMENSIONS`. A bad value is
    /// returned beside metrics that still work (the default in its place), so a typo in a
    /// metrics setting never stops a function.
    pub fn from_env<E: Environment + ?Sized>(
        function: &'static str,
        env: &E,
    ) -> (Self, Vec<ConfigError>) {
        let lists = [crate::config::SHARED_VARIABLES];
        let vars = Vars::declared(env, &lists);
        let mut problems = Vec::new();
        let enabled = vars.flag("METRICS").unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let namespace = match vars.optional("METRICS_NAMESPACE") {
            Ok(Some(ns)) if valid_namespace(&ns) => ns,
            Ok(Some(_)) => {
                problems.push(ConfigError::malformed(
                    "METRICS_NAMESPACE",
                    "1 to 255 characters of letters, digits and . - _ / # : (not starting with a colon)",
                    "not a CloudWatch namespace",
                ));
                DEFAULT_NAMESPACE.into()
            }
            Ok(None) => DEFAULT_NAMESPACE.into(),
            Err(e) => {
                problems.push(e);
                DEFAULT_NAMESPACE.into()
            }
        };
        let mut opted_in = Vec::new();
        match vars.list("METRICS_DIMENSIONS") {
            Ok(names) => {
                for name in names {
                    match OPTIONAL_DIMENSIONS
                        .iter()
                        .find(|d| d.eq_ignore_ascii_case(&name))
                    {
                        Some(known) => opted_in.push((*known).to_owned()),
                        None => problems.push(ConfigError::malformed(
                            "METRICS_DIMENSIONS",
                            "a comma-separated list of Pipeline, Repository, Application, Cluster",
                            "an unknown dimension",
                        )),
                    }
                }
            }
            Err(e) => problems.push(e),
        }
        let level = vars
            .optional("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .flatten()
            .and_then(|l| lambda_level(&l));
        (
            Self {
                enabled: enabled.unwrap_or(true),
                namespace,
                function,
                opted_in,
                level,
            },
            problems,
        )
    }

    /// Runs one invocation's work with a recorder, then writes its metrics to stdout.
    pub async fn around<F: Future>(&self, work: F) -> F::Output {
        let (output, lines) = self.capture(work).await;
        if !lines.is_empty() {
            let mut out = std::io::stdout().lock();
            for line in &lines {
                // A closed stdout loses metrics, never the invocation.
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
        output
    }

    /// [`Metrics::around`] without the writing: the lines it would write. Tests use it.
    pub async fn capture<F: Future>(&self, work: F) -> (F::Output, Vec<String>) {
        let (output, recorder) = RECORDER
            .scope(RefCell::new(Recorder::default()), async {
                if COLD.swap(false, Ordering::Relaxed) {
                    count(&COLD_START, &[]);
                }
                let output = work.await;
                let recorder = RECORDER.with(|r| std::mem::take(&mut *r.borrow_mut()));
                (output, recorder)
            })
            .await;
        if !self.enabled {
            return (output, Vec::new());
        }
        (output, self.render(recorder, now_millis()))
    }

    /// One line per set of dimension values; in it, one directive per way of aggregating.
    fn render(&self, recorder: Recorder, timestamp: u64) -> Vec<String> {
        let extra: Vec<(&'static str, String)> = recorder
            .context
            .iter()
            .filter(|(key, _)| self.opted_in.iter().any(|o| o == *key))
            .map(|(key, value)| (*key, value.clone()))
            .collect();
        // Lines keyed by their dimension values; values per metric name.
        let mut lines: BTreeMap<Vec<(&'static str, String)>, BTreeMap<&'static str, Entry>> =
            BTreeMap::new();
        for datum in recorder.data {
            let mut dimensions = datum.dimensions;
            dimensions.sort();
            dimensions.dedup_by(|a, b| a.0 == b.0);
            let entry = lines
                .entry(dimensions)
                .or_default()
                .entry(datum.metric.name)
                .or_insert_with(|| Entry {
                    metric: datum.metric,
                    values: Vec::new(),
                });
            match datum.metric.unit {
                Unit::Count if !entry.values.is_empty() => entry.values[0] += datum.value,
                _ if entry.values.len() < MAX_VALUES_PER_METRIC => entry.values.push(datum.value),
                _ => {}
            }
        }
        let mut rendered = Vec::new();
        for (dimensions, metrics) in lines {
            let entries: Vec<Entry> = metrics.into_values().collect();
            for chunk in entries.chunks(MAX_METRICS_PER_DIRECTIVE) {
                rendered.push(self.line(&dimensions, &extra, &recorder.context, chunk, timestamp));
            }
        }
        rendered
    }

    fn line(
        &self,
        dimensions: &[(&'static str, String)],
        extra: &[(&'static str, String)],
        context: &BTreeMap<&'static str, String>,
        entries: &[Entry],
        timestamp: u64,
    ) -> String {
        let mut root = Map::new();
        if let Some(level) = &self.level {
            root.insert("level".into(), json!(level));
            root.insert("timestamp".into(), json!(rfc3339(timestamp)));
        }
        // Context first, so a recorded dimension of the same name wins.
        for (key, value) in context {
            root.insert((*key).into(), json!(value));
        }
        root.insert(FUNCTION.into(), json!(self.function));
        for (key, value) in dimensions {
            root.insert((*key).into(), json!(value));
        }
        let mut primary: Vec<&str> = vec![FUNCTION];
        primary.extend(dimensions.iter().map(|(k, _)| *k));
        // Opted-in dimensions add a set; the function-level one stays, because alarms and
        // the dashboard read exactly that combination.
        let mut detailed = primary.clone();
        for (key, _) in extra {
            if !detailed.contains(key) {
                detailed.push(key);
            }
        }

        // Directives grouped by their dimension sets (the rollup differs per metric).
        let mut directives: BTreeMap<Vec<Vec<&str>>, Vec<Value>> = BTreeMap::new();
        for entry in entries {
            let mut sets = vec![primary.clone()];
            if detailed.len() > primary.len() {
                sets.push(detailed.clone());
            }
            let rollup: Vec<&str> = entry
                .metric
                .rollup
                .iter()
                .copied()
                .filter(|k| dimensions.iter().any(|(d, _)| d == k))
                .collect();
            if !rollup.is_empty() && rollup.len() == entry.metric.rollup.len() {
                sets.push(rollup);
            }
            directives
                .entry(sets)
                .or_default()
                .push(json!({"Name": entry.metric.name, "Unit": entry.metric.unit.as_str()}));
            let value = match entry.values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert(entry.metric.name.into(), value);
        }
        let directives: Vec<Value> = directives
            .into_iter()
            .map(|(sets, metrics)| {
                json!({"Namespace": self.namespace, "Dimensions": sets, "Metrics": metrics})
            })
            .collect();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}),
        );
        Value::Object(root).to_string()
    }
}

#[derive(Debug)]
struct Entry {
    metric: &'static Metric,
    values: Vec<f64>,
}

/// CloudWatch namespaces: 1-255 of `[0-9A-Za-z.\-_/#:]`, not starting with `:` (and not
/// `AWS/`, which is AWS's own).
fn valid_namespace(ns: &str) -> bool {
    (1..=255).contains(&ns.len())
        && !ns.starts_with(':')
        && !ns.starts_with("AWS/")
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c))
}

/// `level` as Lambda names it (Lambda developer guide, "Log-level filtering"): a name it does
/// not know would be filed as INFO, so none is written.
fn lambda_level(level: &str) -> Option<&'static str> {
    ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(level.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERDICTS: Metric = Metric::count("Verdicts");
    const WAIT: Metric = Metric::seconds("Wait");

    fn metrics(env: &[(&str, &str)]) -> Metrics {
        let map: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (m, problems) = Metrics::from_env("ecr-scan-gate", &map);
        assert!(problems.is_empty(), "{problems:?}");
        m
    }

    async fn captured(m: &Metrics, work: impl FnOnce()) -> Vec<Value> {
        let (_, lines) = m.capture(async { work() }).await;
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn counts_under_the_same_dimensions_add_up_on_one_line() {
        let m = metrics(&[]);
        let out = captured(&m, || {
            count(&VERDICTS, &[("Verdict", "FAIL")]);
            count(&VERDICTS, &[("Verdict", "FAIL")]);
            count(&VERDICTS, &[("Verdict", "PASS")]);
        })
        .await;
        let fail = out.iter().find(|l| l["Verdict"] == "FAIL").unwrap();
        assert_eq!(fail["Verdicts"], 2.0);
        assert_eq!(fail["Function"], "ecr-scan-gate");
        let directive = &fail["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], DEFAULT_NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function", "Verdict"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Verdicts", "Unit": "Count"}])
        );
        assert!(out.iter().any(|l| l["Verdict"] == "PASS"));
    }

    #[tokio::test]
    async fn a_rollup_adds_a_function_independent_dimension_set() {
        let m = metrics(&[]);
        let out = captured(&m, || {
            count(
                &NOTIFICATIONS,
                &[("Channel", "slack"), ("Outcome", "failed")],
            );
        })
        .await;
        let line = out.iter().find(|l| l["Outcome"] == "failed").unwrap();
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Channel", "Outcome"], ["Outcome"]])
        );
    }

    #[tokio::test]
    async fn seconds_are_kept_each_and_context_is_a_dimension_only_when_opted_in() {
        let m = metrics(&[("METRICS_DIMENSIONS", "pipeline")]);
        let out = captured(&m, || {
            context("Pipeline", "prod-api");
            context("Repository", "prod/api");
            record(&WAIT, &[], 1.5);
            record(&WAIT, &[], 2.5);
        })
        .await;
        let line = out.iter().find(|l| l.get("Wait").is_some()).unwrap();
        assert_eq!(line["Wait"], json!([1.5, 2.5]));
        assert_eq!(line["Pipeline"], "prod-api");
        assert_eq!(line["Repository"], "prod/api", "written beside the metrics");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"], ["Function", "Pipeline"]]),
            "the function-level set the alarms read stays"
        );
    }

    #[tokio::test]
    async fn off_writes_nothing_and_recording_outside_an_invocation_is_a_no_op() {
        count(&VERDICTS, &[("Verdict", "PASS")]);
        let m = metrics(&[("METRICS", "off")]);
        assert!(captured(&m, || count(&VERDICTS, &[])).await.is_empty());
    }

    #[tokio::test]
    async fn lines_carry_the_configured_log_level_and_a_timestamp_so_lambda_keeps_them() {
        let m = metrics(&[("AWS_LAMBDA_LOG_LEVEL", "warn")]);
        let out = captured(&m, || count(&VERDICTS, &[])).await;
        assert_eq!(out[0]["level"], "WARN");
        let at = out[0]["timestamp"].as_str().unwrap();
        let ms = out[0]["_aws"]["Timestamp"].as_u64().unwrap();
        assert_eq!(at, rfc3339(ms), "the same instant as the metrics'");
    }

    #[tokio::test]
    async fn every_level_the_template_allows_is_written_and_an_unknown_one_is_not() {
        for (setting, written) in [
            ("DEBUG", Some("DEBUG")),
            ("INFO", Some("INFO")),
            ("warn", Some("WARN")),
            ("ERROR", Some("ERROR")),
            ("WARNING", None),
        ] {
            let m = metrics(&[("AWS_LAMBDA_LOG_LEVEL", setting)]);
            let out = captured(&m, || count(&VERDICTS, &[])).await;
            assert_eq!(out[0]["level"].as_str(), written, "{setting}");
            assert_eq!(
                out[0]["timestamp"].is_string(),
                written.is_some(),
                "{setting}"
            );
            standins::emf::check(&out[0]);
        }
    }

    #[test]
    fn a_bad_setting_is_reported_and_the_default_used() {
        let env = [
            ("METRICS_NAMESPACE", "AWS/Lambda"),
            ("METRICS_DIMENSIONS", "PipelineExecutionId"),
        ];
        let (m, problems) = Metrics::from_env("pipeline-notifier", &env);
        assert_eq!(problems.len(), 2);
        assert_eq!(m.namespace, DEFAULT_NAMESPACE);
        assert!(m.enabled);
    }

    #[tokio::test]
    async fn empty_or_long_dimension_values_are_bounded() {
        let m = metrics(&[]);
        let long = "x".repeat(2000);
        let out = captured(&m, || {
            count(&VERDICTS, &[("Verdict", " ")]);
            count(&VERDICTS, &[("Verdict", &long)]);
        })
        .await;
        // The process's first capture also carries its ColdStart line: only Verdicts count.
        let verdicts: Vec<&str> = out.iter().filter_map(|l| l["Verdict"].as_str()).collect();
        assert_eq!(verdicts.len(), 2, "{out:?}");
        assert!(verdicts.contains(&"unknown"));
        assert!(verdicts.iter().all(|v| v.len() <= 250));
    }
}
