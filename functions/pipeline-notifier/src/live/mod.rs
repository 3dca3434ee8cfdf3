//! Web API mode: one live Slack message per execution, updated in place, with failures and
//! approvals as replies in its thread.
//!
//! The execution's state is one document in the idempotency table (`live/<pipeline>/<execution
//! id>`), merged under a version check so that events arriving out of order and on several
//! containers at once all land. After merging, the message is brought up to date:
//! - no message yet: the first container to claim `…/post` posts it and stores its `channel`
//!   and `ts`; the others wait on the claim, then update the stored message;
//! - otherwise `chat.update`, and then a look at the document again: if it changed meanwhile,
//!   another update, so the last update Slack applies shows the newest state whatever order
//!   containers finish in;
//! - `message_not_found` (a person deleted it): a new message, claimed on the old `ts` so
//!   only one container posts it.

mod edit;
pub mod service;
pub mod state;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use shared::budget::LOOKUP_BUDGET;
use shared::idempotency::{Idempotency, STORE_FAULTS};
use shared::metrics;
use shared::notifier::ChannelOutcome;
use shared::secrets::{Secret, SecretRef, Secrets};
use shared::slack::{ApiError, Message, SlackApi, SlackClient, SlackError, WebPost};
use shared::versioned::{Documents, Versioned};
use shared::{Deadline, Error};

use crate::event::{Level, PipelineEvent, State};
use crate::lookup::ExecutionLookup;
use state::{Execution, StoredRevision, merge};

/// An execution's document outlives the execution: an approval may wait 7 days, and a
/// retried stage can come back after that.
pub const KEPT_FOR: Duration = Duration::from_secs(14 * 24 * 3600);

/// What an event adds to the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A failure's details; the first of each attempt is also shown in the channel.
    Failure,
    /// An approval waiting: also shown in the channel, where the approver is.
    Approval,
    /// An approval rejected (or expired): in the thread only.
    ApprovalOutcome,
}

impl Reply {
    /// What `e` adds to the thread when `NOTIFY_ON` selects it. A pipeline failure adds its
    /// own reply only when failing actions are not posted, so someone is still mentioned.
    pub fn for_event(e: &PipelineEvent, action_failures_posted: bool) -> Option<Self> {
        if e.is_approval() {
            return match e.state {
                State::Started => Some(Self::Approval),
                State::Failed => Some(Self::ApprovalOutcome),
                _ => None,
            };
        }
        match (e.level, e.state) {
            (Level::Pipeline, State::Failed) => (!action_failures_posted).then_some(Self::Failure),
            (_, State::Failed) => Some(Self::Failure),
            _ => None,
        }
    }
}

/// One event for the live message.
pub struct LiveEvent<'a> {
    pub event: &'a PipelineEvent,
    pub channel: &'a str,
    /// The event's own message when `NOTIFY_ON` selects it (with the mention where one is
    /// due): it may then create the live message, and it is the thread reply.
    pub message: Option<&'a Message>,
    /// What the event adds to the thread, if it is selected.
    pub reply: Option<Reply>,
}

pub struct Live {
    slack: SlackClient,
    api: SlackApi,
    token: SecretRef,
    secrets: Arc<Secrets>,
    documents: Documents,
}

impl Live {
    pub fn new(
        slack: SlackClient,
        api: SlackApi,
        token: SecretRef,
        secrets: Arc<Secrets>,
        documents: Documents,
    ) -> Self {
        Self {
            slack,
            api,
            token,
            secrets,
            documents,
        }
    }

    /// Merges the event into its execution and brings the live message and its thread up to
    /// date. `Delivered` when Slack has it, `NotConfigured` when there was nothing to post
    /// (the state was recorded for the message to come).
    pub async fn deliver<L: ExecutionLookup>(
        &self,
        ev: &LiveEvent<'_>,
        claims: &Idempotency,
        lookup: &L,
        deadline: &Deadline,
    ) -> ChannelOutcome {
        let token = match self.token(deadline).await {
            Ok(t) => t,
            Err(e) => return ChannelOutcome::Failed(e),
        };
        // Boxed: the merge, claim and Slack futures nest deep, and on the stack they overflow
        // a 2 MiB thread in a debug build.
        let result = Box::pin(self.deliver_with(ev, &token, claims, lookup, deadline)).await;
        match result {
            Ok(true) => ChannelOutcome::Delivered,
            Ok(false) => ChannelOutcome::NotConfigured,
            Err(e) => ChannelOutcome::Failed(e),
        }
    }

    /// The bot token, from its store (cached with the suite's TTL).
    async fn token(&self, deadline: &Deadline) -> Result<Secret, Error> {
        self.secrets
            .resolve(&self.token, deadline)
            .await
            .inspect_err(|e| {
                tracing::error!(token = %self.token.describe(), error = %e, "cannot read the Slack bot token");
            })
    }

    /// A message of its own in `channel` (an ECS service's trouble, a recovery), outside any
    /// live message.
    pub async fn post_standalone(
        &self,
        channel: &str,
        message: &Message,
        deadline: &Deadline,
    ) -> ChannelOutcome {
        let token = match self.token(deadline).await {
            Ok(t) => t,
            Err(e) => return ChannelOutcome::Failed(e),
        };
        let posted = self
            .call(self.slack.post_message(
                &self.api,
                &token,
                &WebPost {
                    channel,
                    message,
                    thread_ts: None,
                    reply_broadcast: false,
                },
                deadline,
            ))
            .await;
        match posted {
            Ok(_) => ChannelOutcome::Delivered,
            Err(e) => ChannelOutcome::Failed(e),
        }
    }

    async fn deliver_with<L: ExecutionLookup>(
        &self,
        ev: &LiveEvent<'_>,
        token: &Secret,
        claims: &Idempotency,
        lookup: &L,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        let e = ev.event;
        let key = format!("live/{}/{}", e.pipeline, e.execution_id);
        let broadcast = ev.reply == Some(Reply::Failure);
        let merged = self
            .documents
            .update(&key, deadline, |s: Option<&Execution>| {
                merge(s, e, broadcast)
            })
            .await;
        let mut x = match merged {
            Ok(m) => match m.current() {
                Some(v) => v.clone(),
                None => return Ok(false),
            },
            Err(fault) => return self.unmerged(ev, token, &fault, deadline).await,
        };
        if x.value.message.is_none() {
            if ev.message.is_none() {
                tracing::info!(event_id = %e.id, "recorded for the live message; NOTIFY_ON selects nothing of it yet");
                return Ok(false);
            }
            // Each step boxed too: measured, that keeps a debug build's test thread within
            // its 2 MiB with room to spare.
            x = Box::pin(self.with_revisions(&key, x, lookup, deadline)).await;
            let claim_key = format!("{key}/post");
            x = Box::pin(self.post_claimed(
                &claim_key, &key, x, ev.channel, None, token, claims, deadline,
            ))
            .await?;
        }
        let updated =
            Box::pin(self.bring_up_to_date(&key, x.clone(), token, claims, deadline)).await;
        // The reply does not wait on the edit: a failure's details and its mention matter more
        // than the top message being current, and a retry would only edit.
        let replied = match (ev.reply, ev.message) {
            (Some(kind), Some(reply)) => {
                let now = updated.as_ref().unwrap_or(&x);
                Box::pin(self.reply(kind, reply, &now.value, e, token, deadline)).await
            }
            _ => Ok(()),
        };
        updated?;
        replied?;
        Ok(true)
    }

    async fn reply(
        &self,
        kind: Reply,
        reply: &Message,
        x: &Execution,
        e: &PipelineEvent,
        token: &Secret,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let Some(top) = &x.message else {
            return Ok(());
        };
        // Approvals are always shown in the channel (an approver has to act); failures once
        // per attempt, so the channel is not flooded by one broken build's parallel actions.
        let broadcast = match kind {
            Reply::Approval => true,
            Reply::Failure => x.broadcast_by.as_deref() == Some(e.id.as_str()),
            Reply::ApprovalOutcome => false,
        };
        self.call(self.slack.post_message(
            &self.api,
            token,
            &WebPost {
                channel: &top.channel,
                message: reply,
                thread_ts: Some(&top.ts),
                reply_broadcast: broadcast,
            },
            deadline,
        ))
        .await?;
        tracing::info!(event_id = %e.id, broadcast, "replied in the execution's thread");
        Ok(())
    }

    /// The store could not be read or written: the event still reaches the channel, as a
    /// message of its own, if it is one a person should see.
    async fn unmerged(
        &self,
        ev: &LiveEvent<'_>,
        token: &Secret,
        fault: &Error,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        metrics::count(&STORE_FAULTS, &[]);
        tracing::error!(event_id = %ev.event.id, error = %fault, "cannot merge the event into its execution's state; posting it as a message of its own");
        let Some(message) = ev.message else {
            if !fault.is_retryable() {
                // Denied, missing, unreadable: a retry would fail the same way.
                return Ok(false);
            }
            // Without the state there is nothing to update: a retry may find the store back.
            return Err(Error::OutOfTime(
                "the live message's state store is unavailable",
            ));
        };
        self.call(self.slack.post_message(
            &self.api,
            token,
            &WebPost {
                channel: ev.channel,
                message,
                thread_ts: None,
                reply_broadcast: false,
            },
            deadline,
        ))
        .await?;
        Ok(true)
    }

    /// The source revisions, looked up once per execution, before the first post.
    async fn with_revisions<L: ExecutionLookup>(
        &self,
        key: &str,
        x: Versioned<Execution>,
        lookup: &L,
        deadline: &Deadline,
    ) -> Versioned<Execution> {
        if x.value.looked_up {
            return x;
        }
        let info = match lookup
            .execution(
                &x.value.pipeline,
                &x.value.execution_id,
                &deadline.capped(LOOKUP_BUDGET),
            )
            .await
        {
            Ok(info) => info,
            Err(err) => {
                tracing::warn!(error = %err, "GetPipelineExecution failed; the live message goes without the source revision");
                return x;
            }
        };
        let revisions: Vec<StoredRevision> =
            info.revisions.iter().take(3).map(Into::into).collect();
        let stored = self
            .documents
            .update(key, deadline, |s: Option<&Execution>| {
                let s = s?;
                (!s.looked_up).then(|| Execution {
                    revisions: revisions.clone(),
                    looked_up: true,
                    content: s.content + 1,
                    ..s.clone()
                })
            })
            .await;
        match stored {
            Ok(u) => u.current().cloned().unwrap_or(x),
            Err(e) => {
                tracing::warn!(error = %e, "could not store the source revision");
                x
            }
        }
    }

    /// A Slack call, its error in the suite's terms.
    async fn call<T>(&self, call: impl Future<Output = Result<T, SlackError>>) -> Result<T, Error> {
        match call.await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.failed(e).await),
        }
    }

    /// Logs a failed Slack call with Slack's own word. A token that stopped working is read
    /// again from its store by the next event: it may have been rotated.
    async fn failed(&self, e: SlackError) -> Error {
        if ApiError::token_gone(&e) {
            self.secrets.forget(&self.token).await;
        }
        tracing::error!(error = %e, "Slack Web API call failed");
        e.into()
    }
}
