//! Logging for Lambda: text or JSON as `AWS_LAMBDA_LOG_FORMAT` says, the level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), and the runtime's per-invocation span that puts
//! the request id on every line.
//!
//! The level is never more verbose than DEBUG: at TRACE, `lambda_runtime` logs every event it
//! receives whole ("raw JSON event received from Lambda"), and a pipeline job's event carries
//! live `artifactCredentials`. A TRACE setting is logged and served as DEBUG. `RUST_LOG` is
//! read as a level only, not as per-crate directives, for the same reason.
//!
//! A JSON line is shaped for Lambda's log-level filter (Lambda developer guide, "Log-level
//! filtering"): Lambda reads a line's `level` only if the line also has an RFC 3339
//! `timestamp`, and files any other line as INFO, which `ApplicationLogLevel` WARN or ERROR
//! then drops, errors included. So every line carries at its top level `timestamp` (UTC,
//! milliseconds), `level` (a name Lambda knows), `message`, the event's own fields, the
//! invocation's `requestId` once and the `functionName`:
//!
//! ```json
//! {"timestamp":"2026-12-06T03:30:33.769Z","level":"WARN","message":"Slack answered with a server error","attempt":1,"status":500,"error":"rollup_error","requestId":"8f5c2d1e-…","functionName":"ops-pipeline-notifier"}
//! ```
//!
//! Text lines carry no time: Lambda filters only JSON lines by level, and CloudWatch Logs
//! stamps every event it receives, so a time in the text would only repeat it.

use std::str::FromStr;

use lambda_runtime::tracing::subscriber;
use lambda_runtime::tracing::subscriber::filter::{FilterFn, LevelFilter, filter_fn};
use lambda_runtime::tracing::subscriber::fmt::format::{FormatEvent, JsonFields, Writer};
use lambda_runtime::tracing::subscriber::fmt::{self, FmtContext, FormattedFields, MakeWriter};
use lambda_runtime::tracing::subscriber::layer::SubscriberExt;
use lambda_runtime::tracing::subscriber::registry::LookupSpan;
use lambda_runtime::tracing::subscriber::util::SubscriberInitExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};

/// The most verbose level the functions log at.
const MOST_VERBOSE: LevelFilter = LevelFilter::DEBUG;

/// The span `lambda_runtime` 1.x opens around each invocation
/// (`lambda_runtime::layers::trace::request_span`); its `requestId` goes on every line.
const INVOKE_SPAN: &str = "Lambda runtime invoke";
/// Of that span's fields, the ones a line carries. Not `xrayTraceId`: the stack does not
/// turn X-Ray on, so it would be the same unsampled id on every line of the invocation.
const INVOCATION_FIELDS: &[&str] = &["requestId", "tenantId"];
/// Keys the line itself sets; an event field of the same name is kept as `fields.<name>`.
const RESERVED: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "requestId",
    "tenantId",
    "functionName",
    "spans",
];

pub fn init_tracing() {
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let (level, capped) = level_for(requested.as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
        json_subscriber(level, function, std::io::stdout).init();
        log_panics();
    } else {
        subscriber::registry()
            .with(filter(level))
            .with(fmt::layer().with_target(false).without_time())
            .init();
    }
    if capped {
        tracing::warn!(
            "log level TRACE is served as DEBUG: at TRACE the runtime would log whole events, artifactCredentials included"
        );
    }
}

/// Events up to `level`, and the invocation span whatever the level: it is an INFO span, and
/// a level filter alone would drop it at WARN or ERROR, and with it the request id of every
/// warning and error.
fn filter(level: LevelFilter) -> FilterFn<impl Fn(&Metadata<'_>) -> bool + Send + Sync + 'static> {
    filter_fn(move |meta| {
        *meta.level() <= level
            || (meta.is_span()
                && meta.name() == INVOKE_SPAN
                && meta.target().starts_with("lambda_runtime"))
    })
    .with_max_level_hint(level.max(LevelFilter::INFO))
}

/// The JSON subscriber `init_tracing` installs, writing to `writer` (tests pass a buffer).
fn json_subscriber<W>(
    level: LevelFilter,
    function: Option<String>,
    writer: W,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber::registry().with(filter(level)).with(
        fmt::layer()
            // Span fields kept as JSON, so the request id can be read back out of them.
            .fmt_fields(JsonFields::new())
            .event_format(LambdaJson {
                function: function.filter(|f| !f.is_empty()),
            })
            .with_writer(writer),
    )
}

/// The default hook writes a panic as text on stderr, which Lambda files as INFO and drops at
/// WARN or ERROR; `lambda_runtime`'s own "user handler panicked" line says nothing of where
/// or why. As an ERROR line inside the invocation's span, it is kept, with its request id.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload_as_str().unwrap_or("a panic without a message");
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        tracing::error!(location = %location, "panicked: {message}");
    }));
}

/// The level to log at, and whether the request was more verbose than allowed.
fn level_for(requested: Option<&str>) -> (LevelFilter, bool) {
    let level = requested
        .and_then(|r| LevelFilter::from_str(r.trim()).ok())
        .unwrap_or(LevelFilter::INFO);
    if level > MOST_VERBOSE {
        (MOST_VERBOSE, true)
    } else {
        (level, false)
    }
}

/// The name Lambda's filter knows for a level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL).
/// tracing's own names are the same, WARN included (not WARNING), but they are spelled out
/// here so a change there cannot silently turn every line into INFO.
fn lambda_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// `2026-12-06T03:12:33.123Z`: RFC 3339 in UTC with milliseconds, always the same width so
/// lines sort as text. Lambda's log-level filter and the metric lines both use it.
pub fn rfc3339(millis: u64) -> String {
    let (secs, ms) = (millis / 1000, millis % 1000);
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// in eras of 400 years so leap days need no table).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

pub use crate::budget::now_millis;

/// One JSON object per event, in the shape Lambda's log-level filter reads (module docs).
struct LambdaJson {
    function: Option<String>,
}

impl<S> FormatEvent<S, JsonFields> for LambdaJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let mut invocation = Vec::new();
        let mut spans = Vec::new();
        for span in ctx.event_scope().into_iter().flat_map(|s| s.from_root()) {
            let extensions = span.extensions();
            // JsonFields keeps a span's fields as one JSON object; a span with none has "".
            let recorded: Map<String, Value> = extensions
                .get::<FormattedFields<JsonFields>>()
                .and_then(|f| serde_json::from_str(f).ok())
                .unwrap_or_default();
            if span.name() == INVOKE_SPAN {
                invocation = INVOCATION_FIELDS
                    .iter()
                    .filter_map(|k| Some((*k, recorded.get(*k)?.clone())))
                    .collect();
            } else {
                // Spans of other crates (the SDK's, at DEBUG): named, apart from the line's own
                // keys, so none can shadow them.
                let mut named = Map::new();
                named.insert("name".into(), span.name().into());
                if !recorded.is_empty() {
                    named.insert("fields".into(), Value::Object(recorded));
                }
                spans.push(Value::Object(named));
            }
        }

        let mut line = Line::new(&mut writer)?;
        line.put("timestamp", &rfc3339(now_millis()).into())?;
        line.put("level", &lambda_level(event.metadata().level()).into())?;
        line.put("message", &fields.message.unwrap_or_default().into())?;
        for (name, value) in &fields.others {
            if RESERVED.contains(name) {
                line.put(&format!("fields.{name}"), value)?;
            } else {
                line.put(name, value)?;
            }
        }
        for (name, value) in &invocation {
            line.put(name, value)?;
        }
        if let Some(function) = &self.function {
            line.put("functionName", &function.as_str().into())?;
        }
        if !spans.is_empty() {
            line.put("spans", &Value::Array(spans))?;
        }
        line.end()
    }
}

/// A JSON object written key by key in a fixed order (serde_json's map need not keep the order,
/// and sorted it would put `message` after the event's fields); serde_json does the escaping.
struct Line<'w, 'a> {
    out: &'w mut Writer<'a>,
    first: bool,
}

impl<'w, 'a> Line<'w, 'a> {
    fn new(out: &'w mut Writer<'a>) -> Result<Self, std::fmt::Error> {
        out.write_char('{')?;
        Ok(Self { out, first: true })
    }

    fn put(&mut self, key: &str, value: &Value) -> std::fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.out.write_char(',')?;
        }
        write!(self.out, "{}:{value}", Value::from(key))
    }

    fn end(self) -> std::fmt::Result {
        self.out.write_str("}\n")
    }
}

/// An event's fields as JSON values, `message` apart.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    others: Vec<(&'static str, Value)>,
}

impl EventFields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
            }
            // What tracing-log adds to a `log` record: where in a dependency it was logged.
            name if name.starts_with("log.") => {}
            name => self.others.push((name, value)),
        }
    }
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json has no NaN or infinity: those become null, so say them as text.
        let number = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.put(field, number);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    use lambda_runtime::Context;
    use lambda_runtime::layers::trace::request_span;
    use standins::CapturedLog;

    #[test]
    fn trace_is_served_as_debug_and_the_rest_as_asked() {
        assert_eq!(level_for(Some("TRACE")), (LevelFilter::DEBUG, true));
        assert_eq!(level_for(Some("trace")), (LevelFilter::DEBUG, true));
        assert_eq!(level_for(Some("DEBUG")), (LevelFilter::DEBUG, false));
        assert_eq!(level_for(Some("WARN")), (LevelFilter::WARN, false));
        assert_eq!(level_for(None), (LevelFilter::INFO, false));
        assert_eq!(
            level_for(Some("lambda_runtime=trace")),
            (LevelFilter::INFO, false)
        );
    }

    /// The lines `log` writes through the JSON subscriber at `level`, parsed.
    fn json_lines(level: LevelFilter, function: Option<&str>, log: impl FnOnce()) -> Vec<Value> {
        let captured = CapturedLog::default();
        let writer = captured.clone();
        let subscriber =
            json_subscriber(level, function.map(str::to_owned), move || writer.clone());
        tracing::subscriber::with_default(subscriber, log);
        captured
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn invocation(request_id: &str) -> tracing::Span {
        let mut ctx = Context::default();
        ctx.request_id = request_id.into();
        ctx.xray_trace_id = Some("Root=1-00000000-000000000000000000000000;Sampled=0".into());
        request_span(&ctx)
    }

    #[test]
    fn a_line_has_timestamp_level_message_fields_request_id_and_function_at_the_top() {
        let lines = json_lines(LevelFilter::INFO, Some("ops-pipeline-notifier"), || {
            let _in = invocation("req-1").entered();
            tracing::warn!(status = 500, retry = true, webhook = %"ops", "Slack answered 500");
        });
        let [line] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            line,
            &serde_json::json!({
                "timestamp": line["timestamp"],
                "level": "WARN",
                "message": "Slack answered 500",
                "status": 500,
                "retry": true,
                "webhook": "ops",
                "requestId": "req-1",
                "functionName": "ops-pipeline-notifier",
            }),
            "the request id once, no span copies, no xrayTraceId: {keys:?}"
        );
        let stamp = line["timestamp"].as_str().unwrap();
        assert!(
            DateTime::from_str(stamp, Format::DateTime).is_ok() && stamp.ends_with('Z'),
            "{stamp}"
        );
    }

    #[test]
    fn at_warn_and_error_the_lines_kept_still_carry_the_request_id() {
        for level in [LevelFilter::WARN, LevelFilter::ERROR] {
            let lines = json_lines(level, None, || {
                let _in = invocation("req-w").entered();
                tracing::info!("dropped");
                tracing::error!("kept");
            });
            assert_eq!(lines.len(), 1, "{level}: {lines:?}");
            assert_eq!(lines[0]["requestId"], "req-w", "{level}");
        }
    }

    #[test]
    fn the_text_of_a_line_starts_with_timestamp_level_message() {
        let captured = CapturedLog::default();
        let writer = captured.clone();
        let subscriber = json_subscriber(LevelFilter::INFO, None, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || tracing::error!(key = "k", "gone"));
        let text = captured.text();
        assert!(
            text.starts_with(r#"{"timestamp":""#)
                && text.contains(r#"Z","level":"ERROR","message":"gone","key":"k"}"#)
                && text.ends_with("}\n")
                && text.lines().count() == 1,
            "{text}"
        );
    }

    #[test]
    fn every_tracing_level_is_a_level_lambda_knows() {
        let lines = json_lines(LevelFilter::DEBUG, None, || {
            tracing::error!("e");
            tracing::warn!("w");
            tracing::info!("i");
            tracing::debug!("d");
            tracing::trace!("never: the cap is DEBUG");
        });
        let levels: Vec<&str> = lines.iter().map(|l| l["level"].as_str().unwrap()).collect();
        assert_eq!(levels, ["ERROR", "WARN", "INFO", "DEBUG"]);
        assert_eq!(lambda_level(&Level::TRACE), "TRACE");
    }

    #[test]
    fn the_filter_drops_lines_below_the_level() {
        let lines = json_lines(LevelFilter::WARN, None, || {
            tracing::info!("dropped");
            tracing::warn!("kept");
        });
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"], "kept");
    }

    #[test]
    fn text_needing_escapes_and_odd_values_stay_valid_json() {
        let hostile = "line\nbreak \"quoted\" \\ tab\t \u{1} ❌";
        let lines = json_lines(LevelFilter::INFO, Some("f\"n"), || {
            tracing::info!(
                nan = f64::NAN,
                ratio = 0.5,
                big = u64::MAX,
                neg = -3i64,
                detail = ?vec!["a", "b"],
                "{hostile}"
            );
        });
        let line = &lines[0];
        assert_eq!(line["message"], hostile);
        assert_eq!(line["functionName"], "f\"n");
        assert_eq!(line["nan"], "NaN");
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["big"], u64::MAX);
        assert_eq!(line["neg"], -3);
        assert_eq!(line["detail"], r#"["a", "b"]"#);
    }

    #[test]
    fn an_event_field_named_like_a_line_key_is_kept_apart() {
        let lines = json_lines(LevelFilter::INFO, None, || {
            let _in = invocation("req-2").entered();
            tracing::info!(level = "custom", requestId = "spoofed", "m");
        });
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["requestId"], "req-2");
        assert_eq!(line["fields.level"], "custom");
        assert_eq!(line["fields.requestId"], "spoofed");
    }

    #[test]
    fn other_spans_are_named_under_spans_and_outside_an_invocation_there_is_no_request_id() {
        let lines = json_lines(LevelFilter::DEBUG, None, || {
            {
                let _in = invocation("req-3").entered();
                let _sdk = tracing::debug_span!("invoke", rpc.service = "SSM").entered();
                tracing::debug!("sending");
            }
            tracing::info!("between invocations");
        });
        assert_eq!(lines[0]["requestId"], "req-3");
        assert_eq!(
            lines[0]["spans"],
            serde_json::json!([{"name": "invoke", "fields": {"rpc.service": "SSM"}}])
        );
        assert!(lines[1].get("requestId").is_none(), "{}", lines[1]);
        assert!(lines[1].get("spans").is_none(), "{}", lines[1]);
        assert!(
            lines[1].get("functionName").is_none(),
            "no name when none is set"
        );
        assert_eq!(lines[1]["message"], "between invocations");
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_452_762_123), "2026-11-23T16:52:42.123Z");
        assert_eq!(rfc3339(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        // Against an independent reader, over ~300 years in uneven steps.
        let mut ms = 0u64;
        while ms < 10_000_000_000_000 {
            let text = rfc3339(ms);
            let read = DateTime::from_str(&text, Format::DateTime)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(read.to_millis().unwrap(), ms as i64, "{text}");
            ms += 7_777_777_777;
        }
    }
}
