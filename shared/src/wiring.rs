//! What every function's composition root is built from: one SDK configuration, one Slack
//! client and one secret reader per container. `main.rs` makes them for Lambda; tests and
//! the demo make them with local endpoints and quicker retries, and then run the same
//! composition root, so they exercise the real wiring.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::config::Environment;
use crate::error::Error;
use crate::notifier::{Notifier, NotifierConfig};
use crate::secrets::Secrets;
use crate::slack::SlackClient;

pub struct Wiring {
    pub sdk: SdkConfig,
    pub slack: SlackClient,
    pub secrets: Arc<Secrets>,
}

impl Wiring {
    pub fn new(sdk: SdkConfig, slack: SlackClient) -> Self {
        let secrets = Arc::new(Secrets::new(&sdk));
        Self {
            sdk,
            slack,
            secrets,
        }
    }

    /// The production wiring, from the Lambda environment.
    pub async fn for_lambda() -> Result<Self, Error> {
        let sdk = crate::aws::load_sdk_config().await;
        Ok(Self::new(sdk, SlackClient::new()?))
    }

    pub fn region(&self) -> String {
        self.sdk.region().map(|r| r.to_string()).unwrap_or_default()
    }

    /// The notifier from `SLACK_WEBHOOK_URL` and `SNS_TOPIC_ARN` alone, built apart from the
    /// rest of a function's configuration so a broken configuration still reaches a person.
    pub fn notifier<E: Environment + ?Sized>(&self, env: &E) -> Notifier {
        let (config, problems) = NotifierConfig::from_env_each(env);
        for problem in &problems {
            tracing::error!(error = %problem, "a notification channel is misconfigured and left out");
        }
        Notifier::new(config, &self.sdk, self.slack.clone(), self.secrets.clone())
    }
}
