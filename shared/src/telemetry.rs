//! Logging for Lambda: text or JSON as `AWS_LAMBDA_LOG_FORMAT` says, the level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), and the runtime's per-invocation span that puts
//! the request id on every line.
//!
//! The level is never more verbose than DEBUG: at TRACE, `lambda_runtime` logs every event it
//! receives whole ("raw JSON event received from Lambda"), and a pipeline job's event carries
//! live `artifactCredentials`. A TRACE setting is logged and served as DEBUG. `RUST_LOG` is
//! read as a level only, not as per-crate directives, for the same reason.

use std::str::FromStr;

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};

/// The most verbose level the functions log at.
const MOST_VERBOSE: LevelFilter = LevelFilter::DEBUG;

pub fn init_tracing() {
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let (level, capped) = level_for(requested.as_deref());
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy("");
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let collector = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter);
    if json {
        collector.json().init();
    } else {
        collector.init();
    }
    if capped {
        tracing::warn!(
            "log level TRACE is served as DEBUG: at TRACE the runtime would log whole events, artifactCredentials included"
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
