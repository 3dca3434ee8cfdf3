//! One SDK configuration per container.
//!
//! `aws-config` reads the standard `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! variables, and every client built from this [`SdkConfig`](aws_config::SdkConfig)
//! honours them: that is how tests and `make demo` point the functions at local servers.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the configuration once, at init, sending every call through `http` (the
/// process's one client, [`crate::http`]). Retries use the SDK's standard mode (it retries
/// throttling and transient faults with backoff); each call is further bounded by the
/// caller's [`Deadline`](crate::Deadline).
pub async fn load_sdk_config(http: &reqwest::Client) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::http::sdk_http_client(http.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(4))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(crate::http::CONNECT_TIMEOUT)
                .operation_attempt_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await
}
