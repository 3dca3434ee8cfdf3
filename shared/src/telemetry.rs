//! Logging for Lambda: text or JSON as `AWS_LAMBDA_LOG_FORMAT` says, the level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), and the runtime's per-invocation span that puts
//! the request id on every line.

pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}
