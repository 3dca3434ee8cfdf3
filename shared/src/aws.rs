//! One SDK configuration per container.
//!
//! `aws-config` reads the standard `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! variables, and every client built from this [`SdkConfig`](aws_config::SdkConfig)
//! honours them: that is how tests and `make demo` point the functions at local servers.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_types::retry::ReconnectMode;

/// Loads the configuration once, at init, sending every call through the process's HTTP
/// stack ([`crate::http::for_sdk`]). Retries use the SDK's standard mode (it retries
/// throttling and transient faults with backoff); each call is further bounded by the
/// caller's [`Deadline`](crate::Deadline).
pub async fn load_sdk_config() -> Result<SdkConfig, crate::Error> {
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::http::for_sdk()?)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                // reqwest cannot close one chosen connection, so the SDK's "close the
                // connection after a transient error" has nothing to act on (and logs an
                // ERROR each time it tries). Its purpose is kept another way: the HTTP
                // client sends every retry on a new connection (crate::http).
                .with_reconnect_mode(ReconnectMode::ReuseAllConnections),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(crate::http::CONNECT_TIMEOUT)
                .operation_attempt_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await)
}
