//! What every function's composition root is built from: one SDK configuration, one Slack
//! client and one secret reader per container. `main.rs` makes them for Lambda; tests and
//! the demo make them with local endpoints and quicker retries, and then run the same
//! composition root, so they exercise the real clients.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::config::{Environment, ProcessEnv, Vars};
use crate::error::Error;
use crate::idempotency::Idempotency;
use crate::metrics::Metrics;
use crate::notifier::{Notifier, NotifierConfig};
use crate::secrets::{DEFAULT_TTL, Secrets};
use crate::slack::SlackClient;

pub struct Clients {
    pub sdk: SdkConfig,
    pub slack: SlackClient,
    pub secrets: Arc<Secrets>,
}

impl Clients {
    /// With values from SSM and Secrets Manager kept for the default time to live.
    pub fn new(sdk: SdkConfig, slack: SlackClient) -> Self {
        Self::with_config_ttl(sdk, slack, DEFAULT_TTL)
    }

    pub fn with_config_ttl(sdk: SdkConfig, slack: SlackClient, ttl: Duration) -> Self {
        let secrets = Arc::new(Secrets::with_ttl(&sdk, ttl));
        Self {
            sdk,
            slack,
            secrets,
        }
    }

    /// The production clients, from the Lambda environment. `CONFIG_TTL` (default 5 min) is how
    /// long a value read from SSM or Secrets Manager is used before it is read again; a bad
    /// value is logged and the default used, so notifications still work.
    pub async fn for_lambda() -> Result<Self, Error> {
        let lists = [crate::config::SHARED_VARIABLES];
        let ttl = match Vars::declared(&ProcessEnv, &lists).duration("CONFIG_TTL") {
            Ok(ttl) => ttl.unwrap_or(DEFAULT_TTL),
            Err(e) => {
                tracing::error!(error = %e, "CONFIG_TTL is malformed; using the default");
                DEFAULT_TTL
            }
        };
        let sdk = crate::aws::load_sdk_config().await?;
        Ok(Self::with_config_ttl(sdk, SlackClient::new()?, ttl))
    }

    pub fn region(&self) -> String {
        self.sdk.region().map(|r| r.to_string()).unwrap_or_default()
    }

    /// The metrics settings (`METRICS`, `METRICS_NAMESPACE`, `METRICS_DIMENSIONS`); a bad
    /// one is logged and its default used, never stopping the function. `function` is the
    /// `Function` dimension: the crate's name, the same for every stack.
    pub fn metrics<E: Environment + ?Sized>(&self, env: &E, function: &'static str) -> Metrics {
        let (metrics, problems) = Metrics::from_env(function, env);
        for problem in &problems {
            tracing::error!(error = %problem, "a metrics setting is malformed; using its default");
        }
        metrics
    }

    /// The store of claimed side effects (`IDEMPOTENCY_TABLE`), keys scoped by `function`.
    pub fn idempotency<E: Environment + ?Sized>(
        &self,
        function: &'static str,
        env: &E,
    ) -> Idempotency {
        Idempotency::from_env(function, env, &self.sdk)
    }

    /// The notifier from `SLACK_WEBHOOK_URL` and `SNS_TOPIC_ARN` alone, built apart from the
    /// rest of a function's configuration so a broken configuration still reaches a person.
    pub fn notifier<E: Environment + ?Sized>(&self, env: &E) -> Notifier {
        let (config, problems) = NotifierConfig::from_env_each(env);
        for problem in &problems {
            tracing::error!(error = %problem, "a notification channel is misconfigured and left out");
        }
        Notifier::new(config, &self.sdk, self.slack.clone(), self.secrets.clone())
            .with_problems(&problems)
    }
}
