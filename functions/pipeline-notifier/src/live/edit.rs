//! Keeping the one live message current: posted once under a claim, edited by one invocation
//! at a time (the editor, a lease in the execution's document) until it shows the newest
//! state, and posted again, once, when a person deleted it.

use std::time::Duration;

use shared::budget::{millis, now_millis};
use shared::idempotency::{Claim, Idempotency, invocation_id};
use shared::secrets::Secret;
use shared::slack::{ApiError, Posted, WebPost};
use shared::versioned::{Updated, Versioned};
use shared::{Deadline, Error};

use super::Live;
use super::state::Execution;
use super::view::render_live;

/// Edits one editor makes before giving the role back: each round means events kept
/// arriving while it edited, so this bounds only an endless stream.
const MOST_ROUNDS: u32 = 20;

/// Time an editor keeps to record what it showed and give the role back.
const EDIT_RESERVE: Duration = Duration::from_secs(2);

impl Live {
    /// Posts the live message under the claim `claim_key` (unless another invocation posted
    /// it) and stores where it is. `replacing` is the message a person deleted, if that is
    /// why; `None` for the first post.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn post_claimed(
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
    pub(super) async fn bring_up_to_date(
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
        let lease_until = now_millis().saturating_add(millis(deadline.remaining()));
        let taken = self
            .documents
            .update(key, deadline, |s: Option<&Execution>| {
                let s = s?;
                let held = s.editor.is_some() && s.editor_until_ms > now_millis();
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
                    // Boxed for a debug build's stack, as in `deliver_with`.
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
}
