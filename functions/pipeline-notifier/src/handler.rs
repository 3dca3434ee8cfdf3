//! One event in, at most one message out.

use std::time::Duration;

use serde_json::{Value, json};
use shared::dedupe::RecentEvents;
use shared::idempotency::Idempotency;
use shared::metrics;
use shared::notifier::{ChannelOutcome, Notify};
use shared::{Deadline, Error};

use crate::config::Config;
use crate::event::{PipelineEvent, parse};
use crate::live::{Live, LiveEvent, Reply};
use crate::lookup::ExecutionLookup;
use crate::render::{RenderOptions, render, render_configuration_error};

/// Time kept back from the Lambda deadline so the invocation can still return its result.
const MARGIN: Duration = Duration::from_millis(500);
/// The revision look-up is a nice-to-have: it may not eat the budget for posting.
const LOOKUP_BUDGET: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Notified {
        event_id: String,
    },
    /// Not a CodePipeline state change we understand.
    Ignored {
        reason: String,
    },
    /// Understood, but configuration says not to post it (or it was already posted).
    Skipped {
        event_id: String,
        reason: String,
    },
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        match self {
            Self::Notified { event_id } => json!({"outcome": "notified", "eventId": event_id}),
            Self::Ignored { reason } => json!({"outcome": "ignored", "reason": reason}),
            Self::Skipped { event_id, reason } => {
                json!({"outcome": "skipped", "eventId": event_id, "reason": reason})
            }
        }
    }
}

/// `Events` {Outcome = notified | skipped | ignored | duplicate | failed}.
const EVENTS: metrics::Metric = metrics::Metric::count("Events");

fn count_event(outcome: &str) {
    metrics::count(&EVENTS, &[("Outcome", outcome)]);
}

/// A channel's outcome as a claimed piece of work: delivered or not, or why it failed.
fn delivered(outcome: ChannelOutcome) -> Result<bool, Error> {
    match outcome {
        ChannelOutcome::Delivered => Ok(true),
        ChannelOutcome::NotConfigured => Ok(false),
        ChannelOutcome::Failed(e) => Err(e),
    }
}

/// What the notifier was built with: a configuration, or why there is none.
pub type Setup = Result<Config, String>;

/// The key under which a broken configuration is posted, once per container.
const CONFIG_ERROR_KEY: &str = "configuration-error";

pub struct Handler<L, N> {
    pub setup: Setup,
    pub lookup: L,
    pub notifier: N,
    /// What this container has posted about its own configuration.
    pub recent: RecentEvents,
    pub idempotency: Idempotency,
    /// Web API mode's live messages; `None` in webhook mode.
    pub live: Option<Live>,
}

impl<L: ExecutionLookup, N: Notify> Handler<L, N> {
    /// A bad configuration does not stop the function: stopped at init, it would fail
    /// every event into the dead-letter queue and tell nobody why the channel went quiet.
    /// It starts, posts the error (once per container) through Slack/SNS, which are
    /// configured apart from everything else, and keeps each event for a redrive.
    pub fn new(
        setup: Setup,
        lookup: L,
        notifier: N,
        idempotency: Idempotency,
        live: Option<Live>,
    ) -> Self {
        if let Err(why) = &setup {
            tracing::error!(reason = %why, "configuration error: no pipeline event will be posted until it is fixed");
        }
        Self {
            setup,
            lookup,
            notifier,
            recent: RecentEvents::new(8),
            idempotency,
            live,
        }
    }

    pub async fn handle(&self, event: &Value, deadline: Deadline) -> Result<Outcome, Error> {
        let deadline = deadline.less(MARGIN);
        let config = match &self.setup {
            Ok(c) => c,
            Err(why) => {
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                count_event("failed");
                return self.misconfigured(why, &deadline).await;
            }
        };
        let e = match parse(event) {
            Ok(e) => e,
            Err(why) => {
                tracing::warn!(reason = %why.0, "event ignored");
                count_event("ignored");
                return Ok(Outcome::Ignored { reason: why.0 });
            }
        };
        metrics::context("Pipeline", &e.pipeline);
        let skip = |reason: &str, outcome: &str| {
            tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), reason, "event skipped");
            count_event(outcome);
            Ok(Outcome::Skipped {
                event_id: e.id.clone(),
                reason: reason.to_owned(),
            })
        };
        if !config.watches(&e.pipeline) {
            return skip("pipeline not in PIPELINE_FILTER", "skipped");
        }
        if let (Some(live), Some(channel)) = (&self.live, config.channel_for(&e.pipeline)) {
            // Every event shapes the live message, whatever NOTIFY_ON selects.
            return match Box::pin(self.post_live(live, channel, config, &e, &deadline)).await? {
                Some(outcome) => Ok(outcome),
                None => skip("already posted (duplicate delivery)", "duplicate"),
            };
        }
        if !config.notify_on.wants(&e) {
            return skip("not selected by NOTIFY_ON", "skipped");
        }
        let event = &e;
        let posted = self
            .idempotency
            .once_or_retry(&format!("event/{}", e.id), &deadline, |by| async move {
                self.post(config, event, &by).await
            })
            .await?;
        match posted {
            Some(outcome) => Ok(outcome),
            None => skip("already posted (duplicate delivery)", "duplicate"),
        }
    }

    async fn post(
        &self,
        config: &Config,
        e: &PipelineEvent,
        deadline: &Deadline,
    ) -> Result<Outcome, Error> {
        let info = match self
            .lookup
            .execution(
                &e.pipeline,
                &e.execution_id,
                &deadline.capped(LOOKUP_BUDGET),
            )
            .await
        {
            Ok(info) => Some(info),
            Err(err) => {
                tracing::warn!(event_id = %e.id, error = %err, "GetPipelineExecution failed; posting without the source revision");
                None
            }
        };
        let options = RenderOptions {
            failure_mention: config.failure_mention.as_deref(),
            action_failures_posted: config.notify_on.posts_action_failures(),
        };
        let notification =
            render(e, info.as_ref(), &options).routed_to(config.webhook_for(&e.pipeline).cloned());
        let delivered = self
            .notifier
            .notify(&notification, deadline)
            .await
            .into_result();
        if delivered.is_err() {
            count_event("failed");
        }
        delivered?;
        count_event("notified");
        tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), "notified");
        Ok(Outcome::Notified {
            event_id: e.id.clone(),
        })
    }

    /// Web API mode: the event goes into the execution's live message (and its thread), and
    /// to SNS as a message of its own when `NOTIFY_ON` selects it. Each channel is claimed on
    /// its own, so a retryable failure of one is retried by Lambda without repeating the other.
    /// `None`: a duplicate.
    async fn post_live(
        &self,
        live: &Live,
        channel: &str,
        config: &Config,
        e: &PipelineEvent,
        deadline: &Deadline,
    ) -> Result<Option<Outcome>, Error> {
        let selected = config.notify_on.wants(e);
        let options = RenderOptions {
            failure_mention: config.failure_mention.as_deref(),
            action_failures_posted: config.notify_on.posts_action_failures(),
        };
        let single = selected.then(|| render(e, None, &options));
        let request = LiveEvent {
            event: e,
            channel,
            message: single.as_ref().map(|n| &n.slack),
            reply: Reply::for_event(e, options.action_failures_posted).filter(|_| selected),
        };
        let slack_key = format!("event/{}", e.id);
        let sns_key = format!("event/{}/sns", e.id);
        let (slack, sns) = tokio::join!(
            self.idempotency
                .once_or_retry(&slack_key, deadline, |by| async move {
                    let outcome =
                        Box::pin(live.deliver(&request, &self.idempotency, &self.lookup, &by))
                            .await;
                    metrics::count(
                        &metrics::NOTIFICATIONS,
                        &[("Channel", "slack"), ("Outcome", outcome.metric_outcome())],
                    );
                    delivered(outcome)
                }),
            async {
                let Some(n) = &single else {
                    return Ok(Some(false));
                };
                self.idempotency
                    .once_or_retry(&sns_key, deadline, |by| async move {
                        delivered(self.notifier.notify(&n.clone().sns_only(), &by).await.sns)
                    })
                    .await
            }
        );
        let (slack, sns) = match (slack, sns) {
            (Ok(slack), Ok(sns)) => (slack, sns),
            (Err(a), Err(b)) => {
                count_event("failed");
                // The one Lambda should act on: a retry when either can be retried.
                let (first, other) = if b.is_retryable() && !a.is_retryable() {
                    (b, a)
                } else {
                    (a, b)
                };
                tracing::error!(error = %other, "notification not delivered to this channel");
                return Err(first);
            }
            (Err(e), Ok(other)) | (Ok(other), Err(e)) => {
                if e.is_retryable() || other != Some(true) {
                    count_event("failed");
                    return Err(e);
                }
                // Refused for good on one channel, delivered on the other: logged (and counted
                // by the Notifications metric), nothing to retry.
                tracing::error!(error = %e, "notification not delivered to this channel");
                (other, other)
            }
        };
        if slack.is_none() && sns.is_none_or(|s| !s) {
            return Ok(None);
        }
        if slack != Some(true) && sns != Some(true) {
            tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), "folded into the execution's state");
            count_event("skipped");
            return Ok(Some(Outcome::Skipped {
                event_id: e.id.clone(),
                reason: "not selected by NOTIFY_ON; the live message shows it".into(),
            }));
        }
        count_event("notified");
        tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), "live message up to date");
        Ok(Some(Outcome::Notified {
            event_id: e.id.clone(),
        }))
    }

    async fn misconfigured(&self, why: &str, deadline: &Deadline) -> Result<Outcome, Error> {
        if !self.recent.seen(CONFIG_ERROR_KEY) {
            let n = render_configuration_error(why);
            // A retry would post every event's copy of the same error: logged, not retried.
            match self.notifier.notify(&n, deadline).await.into_result() {
                Ok(()) => self.recent.record(CONFIG_ERROR_KEY),
                Err(e) => tracing::error!(error = %e, "could not post the configuration error"),
            }
        }
        // An error, not an acknowledgement: the event is kept (Lambda's retries, then the
        // dead-letter queue) for a redrive once the configuration is fixed, and the
        // function's Errors alarm fires too.
        Err(Error::AwaitingConfiguration(why.to_owned()))
    }
}
