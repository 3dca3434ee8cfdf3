//! One SDK configuration per container.
//!
//! `aws-config` reads the standard `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! variables, and every client built from this [`SdkConfig`](aws_config::SdkConfig)
//! honours them: that is how tests and `make demo` point the functions at local servers.

use std::time::Duration;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_types::retry::ReconnectMode;

/// The SDK behaviour version of every SDK configuration in the workspace (the functions' and
/// the stand-ins'), pinned rather than `latest()`: the SDK's documentation says to pin it when
/// code tunes the SDK's behaviour, as the transport, retries and timeouts here are tuned.
/// A version changes defaults: 2026-01-12 turned retries on for every AWS client and set a
/// 3.1 s connect timeout (overridden below, but not in the stand-ins' configuration, which
/// keeps the defaults); 2025-08-07 made the SDK's own HTTP client honour `HTTPS_PROXY` and
/// `NO_PROXY`, which the reqwest stack matches (`shared/tests/proxy_env.rs`, so never below
/// it). When an SDK update supersedes this version, its constructor turns deprecated and
/// clippy (`-D warnings`) fails: the prompt to read what the new one changes before moving.
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Loads the configuration once, at init, sending every call through the process's HTTP
/// stack ([`crate::http::for_sdk`]). Retries use the SDK's standard mode (it retries
/// throttling and transient faults with backoff); each call is further bounded by the
/// caller's [`Deadline`](crate::Deadline).
pub async fn load_sdk_config() -> Result<SdkConfig, crate::Error> {
    let mut loader = aws_config::defaults(behavior_version());
    // Lambda hands the role's credentials and the region over in the environment, the first
    // link of each default chain, which would answer from there anyway. Naming that link
    // skips building the rest at init (a web-identity STS client, the IMDS and profile
    // providers): 1.4M of the 17.7M instructions before the first Runtime API request
    // (docs/performance.md). Anywhere the variables are missing, the default chains as before.
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if set("AWS_REGION") || set("AWS_DEFAULT_REGION") {
        loader = loader.region(EnvironmentVariableRegionProvider::new());
    }
    Ok(loader
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn the_pinned_behaviour_version_keeps_the_sdks_proxy_handling_that_the_http_stack_matches() {
        assert!(behavior_version().is_at_least(BehaviorVersion::v2025_08_07()));
    }
}
