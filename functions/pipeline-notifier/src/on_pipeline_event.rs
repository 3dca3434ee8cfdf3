//! A CodePipeline state-change event: whether it is posted (`PIPELINE_FILTER`, `NOTIFY_ON`),
//! and where — one message per event to the webhook, or into the execution's live message in
//! Web API mode — claimed so that a redelivery posts nothing twice.

use serde::Serialize;
use shared::invocation::once::{self, Handled, Key};
use shared::metrics;
use std::future::Future;

use shared::notifier::{ChannelOutcome, Notification, Notify};
use shared::{Deadline, Error};

use crate::app::PipelineNotifier;
use crate::config::Config;
use crate::event::{Level, PipelineEvent, State};
use crate::live::{Live, LiveEvent, Reply};
use crate::lookup::ExecutionLookup;
use crate::recovery::{Cause, Change, Outcome, Place, Subject};
use crate::render::{RenderOptions, epoch, render};

/// What an event came to, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum EventReply {
    Notified {
        #[serde(rename = "eventId")]
        event_id: String,
    },
    /// Not a CodePipeline state change we understand.
    Ignored { reason: String },
    /// Understood, but configuration says not to post it (or it was already posted).
    Skipped {
        #[serde(rename = "eventId")]
        event_id: String,
        reason: String,
    },
}

/// Why a redelivered event is skipped, in either mode.
const DUPLICATE: &str = "already posted (duplicate delivery)";

/// `Events` {Outcome = notified | skipped | ignored | duplicate | failed}.
const EVENTS: metrics::Metric = metrics::Metric::count("Events");

pub(crate) fn count_event(outcome: &str) {
    metrics::count(&EVENTS, &[("Outcome", outcome)]);
}

/// Slack's outcome of a post the notifier made itself (not through the shared notifier,
/// which counts its own): counted in `Notifications`, then as [`delivered`].
pub(crate) fn slack_delivered(outcome: ChannelOutcome) -> Result<bool, Error> {
    metrics::count(
        &metrics::NOTIFICATIONS,
        &[("Channel", "slack"), ("Outcome", outcome.metric_outcome())],
    );
    delivered(outcome)
}

/// A channel's outcome as a claimed piece of work: delivered or not, or why it failed.
pub(crate) fn delivered(outcome: ChannelOutcome) -> Result<bool, Error> {
    match outcome {
        ChannelOutcome::Delivered => Ok(true),
        ChannelOutcome::NotConfigured => Ok(false),
        ChannelOutcome::Failed(e) => Err(e),
    }
}

fn render_options(config: &Config) -> RenderOptions<'_> {
    RenderOptions {
        failure_mention: config.failure_mention.as_deref(),
        action_failures_posted: config.notify_on.posts_action_failures(),
        approvals: config.approvals,
    }
}

impl<L, N> PipelineNotifier<L, N>
where
    L: ExecutionLookup + Sync,
    N: Notify + Sync,
{
    /// One parsed event, under a working configuration: told as `NOTIFY_ON` says, then
    /// recorded among the pipeline's outcomes, which may make a recovery due.
    pub(crate) async fn on_pipeline_event(
        &self,
        config: &Config,
        e: &PipelineEvent,
        deadline: &Deadline,
    ) -> Result<EventReply, Error> {
        metrics::context("Pipeline", &e.pipeline);
        if !config.watches(&e.pipeline) {
            tracing::info!(event_id = %e.id, pipeline = %e.pipeline, "event skipped: pipeline not in PIPELINE_FILTER");
            count_event("skipped");
            return Ok(EventReply::Skipped {
                event_id: e.id.clone(),
                reason: "pipeline not in PIPELINE_FILTER".into(),
            });
        }
        let told = Box::pin(self.tell(config, e, deadline)).await;
        let recorded = match outcome_change(e) {
            Some(change) => {
                let place = Place {
                    region: &e.region,
                    account: e.account.as_deref(),
                };
                Box::pin(self.record_outcome(
                    config,
                    Subject::Pipeline(&e.pipeline),
                    &change,
                    &place,
                    deadline,
                ))
                .await
            }
            None => Ok(()),
        };
        // The event's own message first: a retry for the recovery finds it claimed.
        let reply = told?;
        recorded?;
        Ok(reply)
    }

    /// The event's own message, as `NOTIFY_ON` selects it.
    async fn tell(
        &self,
        config: &Config,
        e: &PipelineEvent,
        deadline: &Deadline,
    ) -> Result<EventReply, Error> {
        let skip = |reason: &str, outcome: &str| {
            tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), reason, "event skipped");
            count_event(outcome);
            Ok(EventReply::Skipped {
                event_id: e.id.clone(),
                reason: reason.to_owned(),
            })
        };
        let subject = Subject::Pipeline(&e.pipeline);
        if let (Some(live), Some(channel)) = (&self.ports.live, config.channel_for(subject)) {
            // Every event shapes the live message, whatever NOTIFY_ON selects. Boxed: the
            // live message's future is large, and on the stack it overflows a test thread's
            // 2 MiB in a debug build.
            return match Box::pin(self.post_live(live, channel, config, e, deadline)).await? {
                Some(outcome) => Ok(outcome),
                None => skip(DUPLICATE, "duplicate"),
            };
        }
        if !config.notify_on.wants(e) {
            return skip("not selected by NOTIFY_ON", "skipped");
        }
        let posted = once::handle(
            self.ports.answerer.idempotency(),
            Some(Key::Event(&e.id)),
            deadline,
            |by| async move { self.post(config, e, &by).await },
        )
        .await?;
        match posted {
            Handled::Done(outcome) => Ok(outcome),
            // The notifier's own skip rather than the shared reply: it names the event, and
            // counts it as `duplicate` in `Events`.
            Handled::Skipped(_) => skip(DUPLICATE, "duplicate"),
        }
    }

    /// Webhook mode: one message for the event, with the execution's source revision when
    /// the look-up answers in time.
    async fn post(
        &self,
        config: &Config,
        e: &PipelineEvent,
        deadline: &Deadline,
    ) -> Result<EventReply, Error> {
        let info = match self
            .ports
            .lookup
            .execution(
                &e.pipeline,
                &e.execution_id,
                &deadline.capped(shared::budget::LOOKUP_BUDGET),
            )
            .await
        {
            Ok(info) => Some(info),
            Err(err) => {
                tracing::warn!(event_id = %e.id, error = %err, "GetPipelineExecution failed; posting without the source revision");
                None
            }
        };
        let notification = render(e, info.as_ref(), &render_options(config))
            .routed_to(config.webhook_for(Subject::Pipeline(&e.pipeline)).cloned());
        let delivered = self
            .ports
            .answerer
            .notifier()
            .notify(&notification, deadline)
            .await
            .into_result();
        if delivered.is_err() {
            count_event("failed");
        }
        delivered?;
        count_event("notified");
        tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), "notified");
        Ok(EventReply::Notified {
            event_id: e.id.clone(),
        })
    }

    /// Web API mode: the event goes into the execution's live message (and its thread), and
    /// to SNS as a message of its own when `NOTIFY_ON` selects it. Each channel is claimed on
    /// its own, so a retryable failure of one is retried by Lambda without repeating the other
    /// (which is why this does not go through `once::handle`, one claim per event).
    /// `None`: a duplicate.
    async fn post_live(
        &self,
        live: &Live,
        channel: &str,
        config: &Config,
        e: &PipelineEvent,
        deadline: &Deadline,
    ) -> Result<Option<EventReply>, Error> {
        let selected = config.notify_on.wants(e);
        let options = render_options(config);
        let single = selected.then(|| render(e, None, &options));
        let request = LiveEvent {
            event: e,
            channel,
            message: single.as_ref().map(|n| &n.slack),
            reply: Reply::for_event(e, options.action_failures_posted).filter(|_| selected),
        };
        let claims = self.ports.answerer.idempotency();
        let (slack, sns) = self
            .live_and_sns(
                Key::Event(&e.id),
                single.as_ref(),
                |by| async move {
                    slack_delivered(
                        live.deliver(&request, claims, &self.ports.lookup, &by)
                            .await,
                    )
                },
                deadline,
            )
            .await?;
        if slack.is_none() && sns.is_none_or(|s| !s) {
            return Ok(None);
        }
        if slack != Some(true) && sns != Some(true) {
            tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), "folded into the execution's state");
            count_event("skipped");
            return Ok(Some(EventReply::Skipped {
                event_id: e.id.clone(),
                reason: "not selected by NOTIFY_ON; the live message shows it".into(),
            }));
        }
        count_event("notified");
        tracing::info!(event_id = %e.id, pipeline = %e.pipeline, state = e.state.name(), level = e.level.name(), "live message up to date");
        Ok(Some(EventReply::Notified {
            event_id: e.id.clone(),
        }))
    }
}

impl<L, N> PipelineNotifier<L, N>
where
    L: Sync,
    N: Notify + Sync,
{
    /// Web API mode's two deliveries of one message: Slack's (by `slack`) and SNS's copy of
    /// `sns_copy`, each claimed on its own (`key`, `key/sns`), so a
    /// retryable failure of one is retried by Lambda without repeating the other. Each is
    /// `Some(delivered)`, or `None` when a claim says it was done before.
    pub(crate) async fn live_and_sns<F, Fut>(
        &self,
        key: Key<'_>,
        sns_copy: Option<&Notification>,
        slack: F,
        deadline: &Deadline,
    ) -> Result<(Option<bool>, Option<bool>), Error>
    where
        F: FnOnce(Deadline) -> Fut,
        Fut: Future<Output = Result<bool, Error>>,
    {
        let claims = self.ports.answerer.idempotency();
        // Slack's claim is the key itself, the one webhook mode claims too; SNS's is beside it
        // (for an event, `event/<id>/sns`).
        let slack_key = key.to_string();
        let sns_key = format!("{slack_key}/sns");
        let (slack, sns) = tokio::join!(claims.once_or_retry(&slack_key, deadline, slack), async {
            let Some(n) = sns_copy else {
                return Ok(Some(false));
            };
            claims
                .once_or_retry(&sns_key, deadline, |by| async move {
                    let sns_only = n.clone().sns_only();
                    let notifier = self.ports.answerer.notifier();
                    delivered(notifier.notify(&sns_only, &by).await.sns)
                })
                .await
        });
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
        Ok((slack, sns))
    }
}

/// What `e` tells the pipeline's outcomes: how an execution ended, or why it failed.
fn outcome_change(e: &PipelineEvent) -> Option<Change> {
    let at = e
        .time
        .as_deref()
        .and_then(epoch)
        .unwrap_or_else(shared::budget::now_secs);
    // A V2 pipeline's rollback runs an older source again: its success undoes, it fixes nothing.
    let rollback = e
        .trigger
        .as_ref()
        .and_then(|t| t.kind.as_deref())
        .is_some_and(|k| k.ends_with("Rollback"));
    match (e.level, e.state) {
        (Level::Pipeline, State::Succeeded) if rollback => Some(Change::Rollback {
            run: e.execution_id.clone(),
            at,
        }),
        (Level::Pipeline, State::Succeeded | State::Failed) => Some(Change::Ended(Outcome {
            run: e.execution_id.clone(),
            failed: e.state == State::Failed,
            at,
        })),
        (Level::Action, State::Failed) if !e.is_approval() => {
            let mut what = format!(
                "{} in stage {}",
                e.action.as_deref().unwrap_or("an action"),
                e.stage.as_deref().unwrap_or("?")
            );
            if let Some(provider) = e.action_type.as_ref().and_then(|t| t.provider.as_deref()) {
                what.push_str(&format!(" ({provider})"));
            }
            if let Some(summary) = e
                .result
                .as_ref()
                .and_then(|r| r.summary.as_deref())
                .and_then(|s| s.lines().map(str::trim).find(|l| !l.is_empty()))
            {
                what.push_str(&format!(": {summary}"));
            }
            Some(Change::Cause(Cause {
                run: e.execution_id.clone(),
                what,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(state: &str, trigger: &str) -> PipelineEvent {
        crate::event::parse(&json!({
            "id": "e-9", "detail-type": "CodePipeline Pipeline Execution State Change",
            "source": "aws.codepipeline", "time": "2026-11-20T10:00:00Z", "region": "eu-west-1",
            "detail": {"pipeline": "prod-api", "execution-id": "x-1", "state": state,
                "execution-trigger": {"trigger-type": trigger}}
        }))
        .unwrap()
    }

    #[test]
    fn a_rollback_execution_that_succeeds_is_no_fix_and_one_that_fails_is_a_failure() {
        // CodePipeline's V2 stage rollback runs an older source again (trigger type
        // AutomatedRollback or ManualRollback): green, but what broke is not fixed.
        for trigger in ["AutomatedRollback", "ManualRollback"] {
            assert!(matches!(
                outcome_change(&pipeline("SUCCEEDED", trigger)),
                Some(Change::Rollback { .. })
            ));
            assert!(matches!(
                outcome_change(&pipeline("FAILED", trigger)),
                Some(Change::Ended(Outcome { failed: true, .. }))
            ));
        }
        assert!(matches!(
            outcome_change(&pipeline("SUCCEEDED", "StartPipelineExecution")),
            Some(Change::Ended(Outcome { failed: false, .. }))
        ));
        assert_eq!(outcome_change(&pipeline("STOPPED", "Webhook")), None);
    }

    #[test]
    fn each_outcome_is_answered_with_its_own_fields() {
        let reply = |o: EventReply| serde_json::to_value(o).unwrap();
        assert_eq!(
            reply(EventReply::Notified {
                event_id: "e-1".into()
            }),
            json!({"outcome": "notified", "eventId": "e-1"})
        );
        assert_eq!(
            reply(EventReply::Ignored {
                reason: "not ours".into()
            }),
            json!({"outcome": "ignored", "reason": "not ours"})
        );
        assert_eq!(
            reply(EventReply::Skipped {
                event_id: "e-1".into(),
                reason: DUPLICATE.into()
            }),
            json!({"outcome": "skipped", "eventId": "e-1", "reason": DUPLICATE})
        );
    }
}
