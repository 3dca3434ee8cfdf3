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

pub mod state;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use shared::idempotency::{Claim, Idempotency, STORE_FAULTS, invocation_id, millis, now_ms};
use shared::metrics;
use shared::notifier::ChannelOutcome;
use shared::secrets::{Secret, SecretRef, Secrets};
use shared::slack::{ApiError, Message, Posted, SlackApi, SlackClient, SlackError, WebPost};
use shared::versioned::{Documents, Updated, Versioned};
use shared::{Deadline, Error};

use crate::event::{Level, PipelineEvent, State};
use crate::lookup::ExecutionLookup;
use state::{Execution, StoredRevision, merge};
use view::render_live;

/// An execution's document outlives the execution: an approval may wait 7 days, and a
/// retried stage can come back after that.
pub const KEPT_FOR: Duration = Duration::from_secs(14 * 24 * 3600);

/// The revision look-up may not eat the budget for posting.
const LOOKUP_BUDGET: Duration = Duration::from_secs(5);

/// Edits one editor makes before giving the role back: each round means events kept
/// arriving while it edited, so this bounds only an endless stream.
const MOST_ROUNDS: u32 = 20;

/// Time an editor keeps to record what it showed and give the role back.
const EDIT_RESERVE: Duration = Duration::from_secs(2);

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
        let token = match self.secrets.resolve(&self.token, deadline).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(token = %self.token.describe(), error = %e, "cannot read the Slack bot token");
                return ChannelOutcome::Failed(e);
            }
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

    /// Posts the live message under the claim `claim_key` (unless another invocation posted
    /// it) and stores where it is. `replacing` is the message a person deleted, if that is
    /// why; `None` for the first post.
    #[allow(clippy::too_many_arguments)]
    async fn post_claimed(
        &self,
        claim_key: &str,
        key: &str,
        x: Versioned<Execution>,
        channel: &str,
        replacing: Option<&Posted>,
        token: &Secret,
        claims: &Idempotency,
        deadline: &Deadline,
    ) -> Result<Versioned<Execution>, Error> {
        let ticket = match claims.claim(claim_key, deadline).await {
            Claim::Won(ticket) => ticket,
            Claim::Done => {
                let x = self.reread(key, x, deadline).await?;
                if x.value.message.as_ref() == replacing {
                    // Done, but where it was posted never reached the store: a retry may find
                    // it there, or find the claim given back.
                    tracing::error!(
                        "the live message was posted by another invocation but its place is not stored"
                    );
                    return Err(Error::OutOfTime(
                        "the live message's place is not stored yet",
                    ));
                }
                return Ok(x);
            }
            Claim::Held { .. } => {
                return Err(Error::OutOfTime(
                    "another invocation is posting this execution's message",
                ));
            }
        };
        // The claim may have been won after the poster finished and released it for a
        // retry; what is stored now decides.
        let x = self.reread(key, x, deadline).await?;
        if x.value.message.as_ref() != replacing {
            claims.done(ticket, deadline).await;
            return Ok(x);
        }
        let shown = x.value.content;
        let posted = self
            .call(self.slack.post_message(
                &self.api,
                token,
                &WebPost {
                    channel,
                    message: &render_live(&x.value),
                    thread_ts: None,
                    reply_broadcast: false,
                },
                deadline,
            ))
            .await;
        let posted = match posted {
            Ok(p) => p,
            Err(e) => {
                claims.release(ticket, deadline).await;
                return Err(e);
            }
        };
        tracing::info!(channel = %posted.channel, ts = %posted.ts, "posted the execution's live message");
        let stored = self
            .documents
            .update(key, deadline, |s: Option<&Execution>| {
                let s = s?;
                Some(Execution {
                    message: Some(posted.clone()),
                    shown: shown.max(if s.message.as_ref() == replacing {
                        0
                    } else {
                        s.shown
                    }),
                    ..s.clone()
                })
            })
            .await;
        match stored {
            Ok(u) => {
                claims.done(ticket, deadline).await;
                Ok(u.current().cloned().unwrap_or(x))
            }
            Err(e) => {
                // Given back: a message nobody can update would freeze the execution's news,
                // and a second message (posted by the retry) is the lesser harm.
                claims.release(ticket, deadline).await;
                tracing::error!(error = %e, channel = %posted.channel, ts = %posted.ts, "posted the live message but could not store where; a retry posts it again");
                Err(Error::OutOfTime("storing where the live message is"))
            }
        }
    }

    async fn reread(
        &self,
        key: &str,
        x: Versioned<Execution>,
        deadline: &Deadline,
    ) -> Result<Versioned<Execution>, Error> {
        Ok(self.documents.read(key, deadline).await?.unwrap_or(x))
    }

    /// Updates the message until it shows the newest state. One invocation at a time edits
    /// (the editor, a lease in the document): it edits until what it showed is the newest
    /// state and then gives the role back in the same conditional write, so an event merged
    /// meanwhile is either seen by the editor or finds no editor and edits itself. The others
    /// only merge. Slack never gets two edits of one message at once, and a burst of events
    /// becomes a few edits, within `chat.update`'s rate limit.
    async fn bring_up_to_date(
        &self,
        key: &str,
        x: Versioned<Execution>,
        token: &Secret,
        claims: &Idempotency,
        deadline: &Deadline,
    ) -> Result<Versioned<Execution>, Error> {
        if x.value.message.is_none() || x.value.shown >= x.value.content {
            return Ok(x);
        }
        let me = invocation_id();
        let lease_until = now_ms().saturating_add(millis(deadline.remaining()));
        let taken = self
            .documents
            .update(key, deadline, |s: Option<&Execution>| {
                let s = s?;
                let held = s.editor.is_some() && s.editor_until_ms > now_ms();
                (s.shown < s.content && !held).then(|| Execution {
                    editor: Some(me.clone()),
                    editor_until_ms: lease_until,
                    ..s.clone()
                })
            })
            .await?;
        let mut x = match taken {
            Updated::Changed(x) => x,
            // Shown already, or another invocation is editing and will show this too.
            Updated::Unchanged(now) => return Ok(now.unwrap_or(x)),
        };
        for _ in 0..MOST_ROUNDS {
            let Some(at) = x.value.message.clone() else {
                return Ok(x);
            };
            let rendered = x.value.content;
            let updated = self
                .slack
                .update_message(&self.api, token, &at, &render_live(&x.value), deadline)
                .await;
            match updated {
                Ok(()) => {}
                Err(e) if e.api_error() == Some(ApiError::MESSAGE_NOT_FOUND) => {
                    tracing::warn!(channel = %at.channel, ts = %at.ts, "the live message was deleted; posting it again");
                    let claim_key = format!("{key}/repost/{}", at.ts);
                    x = Box::pin(self.post_claimed(
                        &claim_key,
                        key,
                        x,
                        &at.channel,
                        Some(&at),
                        token,
                        claims,
                        deadline,
                    ))
                    .await?;
                    continue;
                }
                Err(e) => {
                    self.give_back(key, &me, deadline).await;
                    return Err(self.failed(e).await);
                }
            }
            let recorded = self
                .documents
                .update(key, deadline, |s: Option<&Execution>| {
                    let s = s?;
                    let mut next = s.clone();
                    if s.message.as_ref() == Some(&at) {
                        next.shown = s.shown.max(rendered);
                    }
                    if next.shown >= s.content && s.editor.as_deref() == Some(me.as_str()) {
                        next.editor = None;
                        next.editor_until_ms = 0;
                    }
                    (next != *s).then_some(next)
                })
                .await?;
            x = recorded.current().cloned().unwrap_or(x);
            if x.value.editor.as_deref() != Some(me.as_str()) {
                return Ok(x);
            }
            if deadline.remaining() < EDIT_RESERVE {
                self.give_back(key, &me, deadline).await;
                return Err(Error::OutOfTime("bringing the live message up to date"));
            }
        }
        self.give_back(key, &me, deadline).await;
        Ok(x)
    }

    /// Gives the editor role back early (a failed edit, no time left), so the next event's
    /// invocation need not wait for the lease to run out.
    async fn give_back(&self, key: &str, me: &str, deadline: &Deadline) {
        let released = self
            .documents
            .update(key, deadline, |s: Option<&Execution>| {
                let s = s?;
                (s.editor.as_deref() == Some(me)).then(|| Execution {
                    editor: None,
                    editor_until_ms: 0,
                    ..s.clone()
                })
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not give the editor role back; it lapses with this invocation's deadline");
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
