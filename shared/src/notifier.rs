//! Fan-out of one notification to Slack and/or SNS, as configured.

use std::sync::Arc;

use crate::config::{ConfigError, Environment, Vars};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::metrics;
use crate::secrets::{SecretRef, Secrets};
use crate::slack::{Message, SlackClient};
use crate::sns::SnsPublisher;

/// One message for both channels: Block Kit for Slack, and the same description as a
/// subject and plain text for SNS (whose subscribers are often e-mail or chat bridges that
/// show text as it is).
#[derive(Debug, Clone)]
pub struct Notification {
    pub subject: String,
    pub slack: Message,
    /// Another webhook for this message (per-pipeline routing); the default otherwise.
    pub slack_route: Option<SecretRef>,
    /// Slack has it another way (a live message through the Web API): SNS only.
    pub slack_elsewhere: bool,
    /// What an SNS subscription's filter policy can select on.
    pub attributes: Attributes,
}

/// How a notice reads at a glance, for an SNS subscription that wants only some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// Something failed or was refused, and a person may need to act. The default: a notice
    /// nobody classified is one a failures-only subscriber must still get.
    #[default]
    Failure,
    Success,
    /// News: a start, a wait for approval, a verdict not yet reached.
    Info,
    /// Green again after failures: what a failures-only subscriber was told about is over,
    /// so a filter for failures should take this too (`{"severity": ["failure", "recovery"]}`).
    Recovery,
}

impl Tone {
    pub fn name(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Success => "success",
            Self::Info => "info",
            Self::Recovery => "recovery",
        }
    }
}

/// SNS message attributes of a notice, which a subscription's filter policy matches ("Amazon
/// SNS message filtering": a subscriber with `{"severity": ["failure"]}` gets failures only).
/// Every publish carries `severity`; `function`, `outcome` and what it is about (`pipeline`,
/// `repository`, `service`, `application`) when known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub function: Option<&'static str>,
    pub severity: Tone,
    /// The state or verdict, as the function names it (`FAILED`, `PASS`, `Succeeded`).
    pub outcome: Option<String>,
    /// (`pipeline`, `prod-api`): the attribute's name and value.
    pub about: Option<(&'static str, String)>,
}

impl Attributes {
    pub fn new(function: &'static str, severity: Tone) -> Self {
        Self {
            function: Some(function),
            severity,
            ..Self::default()
        }
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }

    pub fn about(mut self, kind: &'static str, name: impl Into<String>) -> Self {
        self.about = Some((kind, name.into()));
        self
    }

    /// As (name, value) pairs; `SnsPublisher::publish` leaves out an empty value, which SNS
    /// refuses.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("severity", self.severity.name().to_owned())];
        if let Some(f) = self.function {
            pairs.push(("function", f.to_owned()));
        }
        if let Some(o) = &self.outcome {
            pairs.push(("outcome", o.clone()));
        }
        if let Some((kind, name)) = &self.about {
            pairs.push((kind, name.clone()));
        }
        pairs
    }
}

impl Notification {
    pub fn new(subject: impl Into<String>, message: Message) -> Self {
        Self {
            subject: subject.into(),
            slack: message,
            slack_route: None,
            slack_elsewhere: false,
            attributes: Attributes::default(),
        }
    }

    /// What SNS subscribers can filter this notice on.
    pub fn tagged(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// For SNS only: Slack gets this news another way.
    pub fn sns_only(mut self) -> Self {
        self.slack_elsewhere = true;
        self.slack_route = None;
        self
    }

    /// The SNS text: the Slack message's plain-text form.
    pub fn body(&self) -> String {
        self.slack.to_text()
    }

    pub fn routed_to(mut self, webhook: Option<SecretRef>) -> Self {
        self.slack_route = webhook;
        self
    }
}

#[derive(Debug)]
pub enum ChannelOutcome {
    Delivered,
    NotConfigured,
    Failed(Error),
}

#[derive(Debug)]
pub struct DeliveryReport {
    pub slack: ChannelOutcome,
    pub sns: ChannelOutcome,
}

impl DeliveryReport {
    /// Whether any channel has the message (a dry run delivers nowhere).
    pub fn any_delivered(&self) -> bool {
        matches!(self.slack, ChannelOutcome::Delivered)
            || matches!(self.sns, ChannelOutcome::Delivered)
    }

    /// One result for the handler. A Lambda retry replays every channel, so once any
    /// channel has delivered, the others' failures are logged rather than retried: a
    /// duplicate in Slack is worse than a gap in SNS. With nothing delivered, a retryable
    /// failure is returned so Lambda's async retry (and then the DLQ) takes over.
    pub fn into_result(self) -> Result<(), Error> {
        let delivered = matches!(self.slack, ChannelOutcome::Delivered)
            || matches!(self.sns, ChannelOutcome::Delivered);
        let mut failures: Vec<(&str, Error)> = Vec::new();
        if let ChannelOutcome::Failed(e) = self.slack {
            failures.push(("Slack", e));
        }
        if let ChannelOutcome::Failed(e) = self.sns {
            failures.push(("SNS", e));
        }
        if failures.is_empty() {
            return Ok(());
        }
        if delivered {
            for (channel, e) in &failures {
                tracing::error!(channel, error = %e, "notification not delivered to this channel; not retried because another channel already has it");
            }
            return Ok(());
        }
        let pick = failures
            .iter()
            .position(|(_, e)| e.is_retryable())
            .unwrap_or(0);
        let (channel, e) = failures.swap_remove(pick);
        for (other, err) in &failures {
            tracing::error!(channel = other, error = %err, "notification not delivered to this channel");
        }
        tracing::error!(channel, error = %e, "notification not delivered");
        Err(e)
    }
}

/// The port handlers depend on; [`Notifier`] is the real one.
pub trait Notify {
    fn notify(
        &self,
        notification: &Notification,
        deadline: &Deadline,
    ) -> impl std::future::Future<Output = DeliveryReport> + Send;
}

/// Which verdicts a gate or a hook posts: `NOTIFY_ON` = `FAIL` (the default) or `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOn {
    Fail,
    All,
}

impl NotifyOn {
    pub fn from_vars<E: Environment + ?Sized>(vars: &Vars<E>) -> Result<Self, ConfigError> {
        match vars
            .optional("NOTIFY_ON")?
            .map(|v| v.to_ascii_uppercase())
            .as_deref()
        {
            None | Some("FAIL") => Ok(Self::Fail),
            Some("ALL") => Ok(Self::All),
            Some(_) => Err(ConfigError::malformed(
                "NOTIFY_ON",
                "FAIL or ALL",
                "unknown value",
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct NotifierConfig {
    pub slack_webhook: Option<SecretRef>,
    pub sns_topic_arn: Option<String>,
}

impl NotifierConfig {
    /// `SLACK_WEBHOOK_URL` (literal or reference) and `SNS_TOPIC_ARN`, both optional.
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let lists = [crate::config::SHARED_VARIABLES];
        let vars = Vars::declared(env, &lists);
        Ok(Self {
            slack_webhook: vars.secret("SLACK_WEBHOOK_URL")?,
            sns_topic_arn: vars.arn("SNS_TOPIC_ARN", "sns")?,
        })
    }

    /// Each channel on its own, whatever else is wrong: a malformed `SNS_TOPIC_ARN` leaves a
    /// good webhook working, and a function whose other settings are broken can still say
    /// so. Returns what is wrong with the channels it left out.
    pub fn from_env_each<E: Environment + ?Sized>(env: &E) -> (Self, Vec<ConfigError>) {
        let lists = [crate::config::SHARED_VARIABLES];
        let vars = Vars::declared(env, &lists);
        let mut problems = Vec::new();
        let slack_webhook = vars.secret("SLACK_WEBHOOK_URL").unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let sns_topic_arn = vars.arn("SNS_TOPIC_ARN", "sns").unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        (
            Self {
                slack_webhook,
                sns_topic_arn,
            },
            problems,
        )
    }
}

pub struct Notifier {
    /// Channels whose variable is set but unusable: counted as failed deliveries, not as
    /// channels nobody configured, so the failed-notifications alarm sees them.
    misconfigured: Vec<&'static str>,
    slack: SlackClient,
    default_webhook: Option<SecretRef>,
    sns: Option<SnsPublisher>,
    secrets: Arc<Secrets>,
}

impl Notifier {
    pub fn new(
        config: NotifierConfig,
        sdk: &aws_config::SdkConfig,
        slack: SlackClient,
        secrets: Arc<Secrets>,
    ) -> Self {
        if config.slack_webhook.is_none() && config.sns_topic_arn.is_none() {
            tracing::warn!(
                "neither SLACK_WEBHOOK_URL nor SNS_TOPIC_ARN is set: dry run, notifications go to the log only"
            );
        }
        Self {
            misconfigured: Vec::new(),
            slack,
            default_webhook: config.slack_webhook,
            sns: config.sns_topic_arn.map(|arn| SnsPublisher::new(sdk, arn)),
            secrets,
        }
    }

    /// Marks the channels these problems (from [`NotifierConfig::from_env_each`]) left out.
    pub fn with_problems(mut self, problems: &[ConfigError]) -> Self {
        for problem in problems {
            match problem.variable.as_str() {
                "SLACK_WEBHOOK_URL" => self.misconfigured.push("slack"),
                "SNS_TOPIC_ARN" => self.misconfigured.push("sns"),
                _ => {}
            }
        }
        self
    }

    pub fn is_dry_run(&self) -> bool {
        self.default_webhook.is_none() && self.sns.is_none()
    }

    async fn to_slack(&self, n: &Notification, deadline: &Deadline) -> ChannelOutcome {
        if n.slack_elsewhere {
            return ChannelOutcome::NotConfigured;
        }
        let Some(webhook) = n.slack_route.as_ref().or(self.default_webhook.as_ref()) else {
            return ChannelOutcome::NotConfigured;
        };
        let url = match self.secrets.resolve(webhook, deadline).await {
            Ok(url) => url,
            Err(e) => {
                tracing::error!(webhook = %webhook.describe(), error = %e, "cannot read the Slack webhook");
                return ChannelOutcome::Failed(e);
            }
        };
        let mut result = self.slack.post(&url, &n.slack, deadline).await;
        if let Err(e) = &result
            && e.means_webhook_gone()
            && !matches!(webhook, SecretRef::Literal(_))
        {
            // A rotated webhook: the cached URL is stale. Read it again at once and, if it
            // changed, post once more instead of failing until the cache expires.
            self.secrets.forget(webhook).await;
            match self.secrets.resolve(webhook, deadline).await {
                Ok(fresh) if fresh != url => {
                    tracing::warn!(webhook = %webhook.describe(), error = %e, "Slack says the webhook is gone; posting to the one stored now");
                    result = self.slack.post(&fresh, &n.slack, deadline).await;
                }
                Ok(_) => {}
                Err(read) => {
                    tracing::error!(webhook = %webhook.describe(), error = %read, "cannot read the Slack webhook again")
                }
            }
        }
        match result {
            Ok(()) => {
                tracing::info!(webhook = %webhook.describe(), "posted to Slack");
                ChannelOutcome::Delivered
            }
            Err(e) => {
                tracing::error!(webhook = %webhook.describe(), error = %e, "Slack post failed");
                ChannelOutcome::Failed(e.into())
            }
        }
    }

    async fn to_sns(&self, n: &Notification, deadline: &Deadline) -> ChannelOutcome {
        let Some(sns) = &self.sns else {
            return ChannelOutcome::NotConfigured;
        };
        match sns
            .publish(&n.subject, &n.body(), &n.attributes.pairs(), deadline)
            .await
        {
            Ok(id) => {
                tracing::info!(topic = sns.topic_arn(), message_id = %id, "published to SNS");
                ChannelOutcome::Delivered
            }
            Err(e) => {
                tracing::error!(topic = sns.topic_arn(), error = %e, "SNS publish failed");
                ChannelOutcome::Failed(e)
            }
        }
    }
}

impl ChannelOutcome {
    /// The `Outcome` dimension of the `Notifications` metric.
    pub fn metric_outcome(&self) -> &'static str {
        match self {
            ChannelOutcome::Delivered => "delivered",
            ChannelOutcome::NotConfigured => "skipped",
            ChannelOutcome::Failed(_) => "failed",
        }
    }
}

impl DeliveryReport {
    /// `slack_elsewhere`: Slack's outcome is counted by whoever delivered it another way.
    fn record_metrics(&self, misconfigured: &[&str], slack_elsewhere: bool) {
        for (channel, outcome) in [("slack", &self.slack), ("sns", &self.sns)] {
            if channel == "slack" && slack_elsewhere {
                continue;
            }
            let name = match outcome {
                ChannelOutcome::NotConfigured if misconfigured.contains(&channel) => "failed",
                other => other.metric_outcome(),
            };
            metrics::count(
                &metrics::NOTIFICATIONS,
                &[("Channel", channel), ("Outcome", name)],
            );
        }
    }
}

impl Notify for Notifier {
    async fn notify(&self, n: &Notification, deadline: &Deadline) -> DeliveryReport {
        let report = if self.is_dry_run() && n.slack_route.is_none() {
            tracing::info!(subject = %n.subject, text = %n.body(), "dry run: would notify");
            DeliveryReport {
                slack: ChannelOutcome::NotConfigured,
                sns: ChannelOutcome::NotConfigured,
            }
        } else {
            let (slack, sns) = tokio::join!(self.to_slack(n, deadline), self.to_sns(n, deadline));
            DeliveryReport { slack, sns }
        };
        report.record_metrics(&self.misconfigured, n.slack_elsewhere);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::SlackError;

    fn failed_slack(retryable: bool) -> ChannelOutcome {
        let e = if retryable {
            SlackError::Unavailable {
                attempts: 5,
                last: "HTTP 500".into(),
            }
        } else {
            SlackError::Rejected {
                status: 404,
                error: "no_service".into(),
            }
        };
        ChannelOutcome::Failed(e.into())
    }

    #[tokio::test]
    async fn a_channel_left_out_for_a_malformed_variable_counts_as_failed_not_skipped() {
        let (m, _) = metrics::Metrics::from_env("pipeline-notifier", &[("METRICS", "on")]);
        let report = DeliveryReport {
            slack: ChannelOutcome::NotConfigured,
            sns: ChannelOutcome::NotConfigured,
        };
        let (_, lines) = m
            .capture(async { report.record_metrics(&["slack"], false) })
            .await;
        let outcome = |channel: &str| {
            lines
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|l| l["Channel"] == channel)
                .map(|l| l["Outcome"].clone())
                .unwrap()
        };
        assert_eq!(outcome("slack"), "failed");
        assert_eq!(outcome("sns"), "skipped");
    }

    #[test]
    fn a_failure_after_another_channel_delivered_is_not_retried() {
        let r = DeliveryReport {
            slack: failed_slack(true),
            sns: ChannelOutcome::Delivered,
        };
        assert!(r.into_result().is_ok());
    }

    #[test]
    fn nothing_delivered_with_a_retryable_failure_asks_for_a_retry() {
        let r = DeliveryReport {
            slack: failed_slack(true),
            sns: ChannelOutcome::NotConfigured,
        };
        assert!(r.into_result().unwrap_err().is_retryable());
    }

    #[test]
    fn a_permanent_failure_alone_is_permanent() {
        let r = DeliveryReport {
            slack: failed_slack(false),
            sns: ChannelOutcome::NotConfigured,
        };
        assert!(!r.into_result().unwrap_err().is_retryable());
    }

    #[test]
    fn config_reads_both_channels_and_checks_the_topic_arn() {
        let env = [
            ("SLACK_WEBHOOK_URL", "ssm:/ops/slack"),
            ("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
        ];
        let c = NotifierConfig::from_env(&env).unwrap();
        assert_eq!(c.slack_webhook, Some(SecretRef::Ssm("/ops/slack".into())));
        let bad = [("SNS_TOPIC_ARN", "my-topic")];
        assert_eq!(
            NotifierConfig::from_env(&bad).unwrap_err().variable,
            "SNS_TOPIC_ARN"
        );
    }
}
