//! An ECS service event: told as `NOTIFY_ON`'s `ecs:` items select, to the service's route,
//! claimed so that a redelivery posts nothing twice; then recorded among the service's
//! outcomes, which may make a recovery due.
//!
//! A service that cannot start its tasks says so again every few minutes (each a new event):
//! each kind of trouble is told once an hour per service.
//!
//! In Web API mode a deployment's events keep one live message per deployment (its rollback
//! included, [`crate::live::service`]); a service's trouble is a message of its own.

use shared::invocation::once::{self, Handled, Key};
use shared::metrics;
use shared::notifier::Notify;
use shared::{Deadline, Error};

use crate::app::PipelineNotifier;
use crate::config::Config;
use crate::ecs_event::{EcsEvent, EcsState};
use crate::ecs_lookup::{DeploymentInfo, DeploymentLookup};
use crate::ecs_render::{EcsRenderOptions, render_ecs};
use crate::live::Live;
use crate::live::service::ServiceEvent;
use crate::on_pipeline_event::{EventReply, count_event, slack_delivered};
use crate::recovery::{Cause, Change, Outcome, Place, Subject};
use crate::render::epoch;

/// How long one kind of service trouble is told once for.
const TROUBLE_WINDOW_SECS: i64 = 3600;

impl<L, N> PipelineNotifier<L, N>
where
    L: DeploymentLookup + Sync,
    N: Notify + Sync,
{
    pub(crate) async fn on_ecs_event(
        &self,
        config: &Config,
        e: &EcsEvent,
        deadline: &Deadline,
    ) -> Result<EventReply, Error> {
        let service = e.qualified_service();
        metrics::context("Service", &service);
        let subject = Subject::Service(&service);
        let wanted = config.notify_on.wants_ecs(e.state);
        let live = match (&self.ports.live, config.channel_for(subject)) {
            (Some(live), Some(channel)) if e.state.is_deployment() => Some((live, channel)),
            _ => None,
        };
        let (told, info) = if let Some((live, channel)) = live {
            // Every deployment event shapes the service's live message, selected or not.
            match Box::pin(self.tell_ecs_live(live, channel, config, e, wanted, deadline)).await {
                Ok((reply, info)) => (Ok(reply), info),
                Err(err) => (Err(err), None),
            }
        } else if wanted {
            match Box::pin(self.tell_ecs(config, e, subject, deadline)).await {
                Ok((reply, info)) => (Ok(reply), info),
                Err(err) => (Err(err), None),
            }
        } else {
            tracing::info!(event_id = %e.id, service = %service, state = e.state.name(), "event skipped: not selected by NOTIFY_ON");
            count_event("skipped");
            // A completion is a success only if it was not a rollback's.
            let info = if e.state == EcsState::Completed {
                self.describe(e, deadline).await
            } else {
                None
            };
            let reply = EventReply::Skipped {
                event_id: e.id.clone(),
                reason: "not selected by NOTIFY_ON".into(),
            };
            (Ok(reply), info)
        };
        // A completion counts only with ECS's word on it (a duplicate delivery, or a post that
        // failed, has not asked yet).
        let info = match info {
            None if e.state == EcsState::Completed => Box::pin(self.describe(e, deadline)).await,
            known => known,
        };
        let mut recorded = Ok(());
        let place = Place {
            region: &e.region,
            account: e.account.as_deref(),
        };
        for change in outcome_changes(e, info.as_ref()) {
            recorded =
                Box::pin(self.record_outcome(config, subject, &change, &place, deadline)).await;
            if recorded.is_err() {
                break;
            }
        }
        let reply = told?;
        recorded?;
        Ok(reply)
    }

    /// Web API mode: the deployment event goes into its service's live message (a failure's
    /// details also in its thread), and to SNS as a message of its own when selected.
    async fn tell_ecs_live(
        &self,
        live: &Live,
        channel: &str,
        config: &Config,
        e: &EcsEvent,
        wanted: bool,
        deadline: &Deadline,
    ) -> Result<(EventReply, Option<DeploymentInfo>), Error> {
        let info = self.describe(e, deadline).await;
        let options = EcsRenderOptions {
            failure_mention: config.failure_mention.as_deref(),
        };
        let single = wanted.then(|| render_ecs(e, info.as_ref(), &options));
        let request = ServiceEvent {
            event: e,
            channel,
            info: info.as_ref(),
            message: single.as_ref().map(|n| &n.slack),
        };
        let claims = self.ports.answerer.idempotency();
        let (slack, sns) = self
            .live_and_sns(
                Key::Event(&e.id),
                single.as_ref(),
                |by| async move {
                    slack_delivered(live.deliver_service(&request, claims, &by).await)
                },
                deadline,
            )
            .await?;
        let reply = if slack.is_none() && sns.is_none_or(|s| !s) {
            count_event("duplicate");
            EventReply::Skipped {
                event_id: e.id.clone(),
                reason: "already posted (duplicate delivery)".into(),
            }
        } else if slack != Some(true) && sns != Some(true) {
            count_event("skipped");
            EventReply::Skipped {
                event_id: e.id.clone(),
                reason: "not selected by NOTIFY_ON; the live message shows it".into(),
            }
        } else {
            count_event("notified");
            tracing::info!(event_id = %e.id, service = %e.qualified_service(), state = e.state.name(), "service's live message up to date");
            EventReply::Notified {
                event_id: e.id.clone(),
            }
        };
        Ok((reply, info))
    }

    /// The deployment's details, or `None` when ECS cannot say in time.
    async fn describe(&self, e: &EcsEvent, deadline: &Deadline) -> Option<DeploymentInfo> {
        if !e.state.is_deployment() {
            return None;
        }
        let capped = deadline.capped(shared::budget::LOOKUP_BUDGET);
        match self.ports.lookup.deployment(e, &capped).await {
            Ok(info) => Some(info),
            Err(err) => {
                tracing::warn!(event_id = %e.id, error = %err, "the service deployment could not be described; posting without its revisions");
                None
            }
        }
    }

    /// Posts the event's message under its claim; with the deployment's details when this
    /// delivery was the one that described it.
    async fn tell_ecs(
        &self,
        config: &Config,
        e: &EcsEvent,
        subject: Subject<'_>,
        deadline: &Deadline,
    ) -> Result<(EventReply, Option<DeploymentInfo>), Error> {
        let trouble_key;
        let key = if e.state.is_deployment() {
            Key::Event(&e.id)
        } else {
            let at = e
                .time
                .as_deref()
                .and_then(epoch)
                .unwrap_or_else(shared::budget::now_secs);
            trouble_key = format!(
                "{}/{}/{}",
                e.qualified_service(),
                e.state.name(),
                at.div_euclid(TROUBLE_WINDOW_SECS)
            );
            Key::Fact("ecs-trouble", &trouble_key)
        };
        let options = EcsRenderOptions {
            failure_mention: config.failure_mention.as_deref(),
        };
        let posted = if self.ports.live.is_some() && config.channel_for(subject).is_some() {
            // Web API mode, where only a service's trouble comes (a deployment keeps its live
            // message): nothing to describe.
            let message = render_ecs(e, None, &options);
            Box::pin(self.tell_once(config, subject, key, message, deadline))
                .await
                .map(|told| {
                    if told {
                        Handled::Done(None)
                    } else {
                        Handled::Skipped(once::Duplicate::Skipped {
                            reason: "already told",
                        })
                    }
                })
        } else {
            // Described under the claim: a duplicate asks ECS nothing.
            once::handle(
                self.ports.answerer.idempotency(),
                Some(key),
                deadline,
                |by| async move {
                    let info = self.describe(e, &by).await;
                    let message = render_ecs(e, info.as_ref(), &options);
                    self.notify_routed(config, subject, message, &by).await?;
                    Ok(info)
                },
            )
            .await
        };
        match posted {
            Ok(Handled::Done(info)) => {
                count_event("notified");
                tracing::info!(event_id = %e.id, service = %e.qualified_service(), state = e.state.name(), "notified");
                let reply = EventReply::Notified {
                    event_id: e.id.clone(),
                };
                Ok((reply, info))
            }
            Ok(Handled::Skipped(_)) => {
                count_event("duplicate");
                let reason = if e.state.is_deployment() {
                    "already posted (duplicate delivery)"
                } else {
                    "this trouble was told within the hour"
                };
                tracing::info!(event_id = %e.id, service = %e.qualified_service(), state = e.state.name(), reason, "event skipped");
                let reply = EventReply::Skipped {
                    event_id: e.id.clone(),
                    reason: reason.into(),
                };
                Ok((reply, None))
            }
            Err(err) => {
                count_event("failed");
                Err(err)
            }
        }
    }
}

/// What `e` tells the service's outcomes. A rollback's own deployment completing is not a
/// success: the release it undid is not running.
fn outcome_changes(e: &EcsEvent, info: Option<&DeploymentInfo>) -> Vec<Change> {
    let Some(run) = e.deployment_id.clone() else {
        return Vec::new();
    };
    let at = e
        .time
        .as_deref()
        .and_then(epoch)
        .unwrap_or_else(shared::budget::now_secs);
    match e.state {
        EcsState::Failed => {
            let mut changes = vec![Change::Ended(Outcome {
                run: run.clone(),
                failed: true,
                at,
            })];
            if let Some(reason) = &e.reason {
                changes.push(Change::Cause(Cause {
                    run,
                    what: reason.clone(),
                }));
            }
            changes
        }
        EcsState::RollingBack => vec![Change::Rollback { run, at }],
        EcsState::Completed => match info.filter(|i| i.status.is_some()) {
            Some(i) if i.rolled_back() => vec![Change::Rollback { run, at }],
            Some(_) => vec![Change::Ended(Outcome {
                run,
                failed: false,
                at,
            })],
            // Without ECS's word a rollback's completion looks like a release's: a recovery
            // missed is better than a false "green again".
            None => {
                tracing::warn!(deployment = %run, "cannot tell whether this completion was a rollback's; not counted as a success");
                Vec::new()
            }
        },
        _ => Vec::new(),
    }
}
