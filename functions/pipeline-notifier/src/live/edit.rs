//! Keeping a live message current (an execution's, an ECS deployment's): posted once under a claim, edited by one invocation
//! at a time (the editor, a lease in the document) until it shows the newest
//! state, and posted again, once, when a person deleted it.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::budget::{millis, now_millis};
use shared::idempotency::{Claim, Idempotency, invocation_id};
use shared::secrets::Secret;
use shared::slack::{ApiError, Message, Posted, WebPost};
use shared::versioned::{Updated, Versioned};
use shared::{Deadline, Error};

use super::Live;
use super::state::Execution;
use super::view::render_live;

/// A document a live message shows: an execution, or an ECS service's deployment. What the
/// editing needs of it: where its message is, how much changed and was shown, the editor's
/// lease, and the message it renders to.
pub trait LiveDocument: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync {
    fn message(&self) -> Option<&Posted>;
    fn set_message(&mut self, message: Option<Posted>);
    /// Bumped by every change to what the message shows.
    fn content(&self) -> u64;
    /// The `content` the message showed when last updated.
    fn shown(&self) -> u64;
    fn set_shown(&mut self, shown: u64);
    /// The invocation editing the message now, and until when (epoch ms) it may.
    fn editor(&self) -> (Option<&str>, u64);
    fn set_editor(&mut self, editor: Option<String>, until_ms: u64);
    fn render(&self) -> Message;
    /// Which story the document tells now, when one key holds one story after another (an
    /// ECS service's deployments): a post claimed for one story is not stored into the next.
    fn episode(&self) -> &str {
        ""
    }
}

impl LiveDocument for Execution {
    fn message(&self) -> Option<&Posted> {
        self.message.as_ref()
    }
    fn set_message(&mut self, message: Option<Posted>) {
        self.message = message;
    }
    fn content(&self) -> u64 {
        self.content
    }
    fn shown(&self) -> u64 {
        self.shown
    }
    fn set_shown(&mut self, shown: u64) {
        self.shown = shown;
    }
    fn editor(&self) -> (Option<&str>, u64) {
        (self.editor.as_deref(), self.editor_until_ms)
    }
    fn set_editor(&mut self, editor: Option<String>, until_ms: u64) {
        self.editor = editor;
        self.editor_until_ms = until_ms;
    }
    fn render(&self) -> Message {
        render_live(self)
    }
}

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
    pub(super) async fn post_claimed<D: LiveDocument>(
        &self,
        claim_key: &str,
        key: &str,
        x: Versioned<D>,
        channel: &str,
        replacing: Option<&Posted>,
        token: &Secret,
        claims: &Idempotency,
        deadline: &Deadline,
    ) -> Result<Versioned<D>, Error> {
        let episode = x.value.episode().to_owned();
        let ticket = match claims.claim(claim_key, deadline).await {
            Claim::Won(ticket) => ticket,
            Claim::Done => {
                let x = self.reread(key, x, deadline).await?;
                if x.value.message() == replacing {
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
                    "another invocation is posting this live message",
                ));
            }
        };
        // The claim may have been won after the poster finished and released it for a
        // retry; what is stored now decides.
        let x = self.reread(key, x, deadline).await?;
        // Posted meanwhile, or the document moved on to another story (whose own claim posts).
        if x.value.message() != replacing || x.value.episode() != episode {
            claims.done(ticket, deadline).await;
            return Ok(x);
        }
        let shown = x.value.content();
        let posted = self
            .call(self.slack.post_message(
                &self.api,
                token,
                &WebPost {
                    channel,
                    message: &x.value.render(),
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
        tracing::info!(channel = %posted.channel, ts = %posted.ts, "posted the live message");
        let stored = self
            .documents
            .update(key, deadline, |s: Option<&D>| {
                let s = s.filter(|s| s.episode() == episode)?;
                let mut next = s.clone();
                next.set_shown(shown.max(if s.message() == replacing {
                    0
                } else {
                    s.shown()
                }));
                next.set_message(Some(posted.clone()));
                Some(next)
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

    async fn reread<D: LiveDocument>(
        &self,
        key: &str,
        x: Versioned<D>,
        deadline: &Deadline,
    ) -> Result<Versioned<D>, Error> {
        Ok(self.documents.read(key, deadline).await?.unwrap_or(x))
    }

    /// Updates the message until it shows the newest state. One invocation at a time edits
    /// (the editor, a lease in the document): it edits until what it showed is the newest
    /// state and then gives the role back in the same conditional write, so an event merged
    /// meanwhile is either seen by the editor or finds no editor and edits itself. The others
    /// only merge. Slack never gets two edits of one message at once, and a burst of events
    /// becomes a few edits, within `chat.update`'s rate limit.
    pub(super) async fn bring_up_to_date<D: LiveDocument>(
        &self,
        key: &str,
        x: Versioned<D>,
        token: &Secret,
        claims: &Idempotency,
        deadline: &Deadline,
    ) -> Result<Versioned<D>, Error> {
        if x.value.message().is_none() || x.value.shown() >= x.value.content() {
            return Ok(x);
        }
        let me = invocation_id();
        let lease_until = now_millis().saturating_add(millis(deadline.remaining()));
        let taken = self
            .documents
            .update(key, deadline, |s: Option<&D>| {
                let s = s?;
                let (editor, until) = s.editor();
                let held = editor.is_some() && until > now_millis();
                (s.shown() < s.content() && !held).then(|| {
                    let mut next = s.clone();
                    next.set_editor(Some(me.clone()), lease_until);
                    next
                })
            })
            .await?;
        let mut x = match taken {
            Updated::Changed(x) => x,
            // Shown already, or another invocation is editing and will show this too.
            Updated::Unchanged(now) => return Ok(now.unwrap_or(x)),
        };
        for _ in 0..MOST_ROUNDS {
            let Some(at) = x.value.message().cloned() else {
                return Ok(x);
            };
            let rendered = x.value.content();
            let updated = self
                .slack
                .update_message(&self.api, token, &at, &x.value.render(), deadline)
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
                    self.give_back::<D>(key, &me, deadline).await;
                    return Err(self.failed(e).await);
                }
            }
            let recorded = self
                .documents
                .update(key, deadline, |s: Option<&D>| {
                    let s = s?;
                    let mut next = s.clone();
                    if s.message() == Some(&at) {
                        next.set_shown(s.shown().max(rendered));
                    }
                    if next.shown() >= s.content() && s.editor().0 == Some(me.as_str()) {
                        next.set_editor(None, 0);
                    }
                    (next != *s).then_some(next)
                })
                .await?;
            x = recorded.current().cloned().unwrap_or(x);
            if x.value.editor().0 != Some(me.as_str()) {
                return Ok(x);
            }
            if deadline.remaining() < EDIT_RESERVE {
                self.give_back::<D>(key, &me, deadline).await;
                return Err(Error::OutOfTime("bringing the live message up to date"));
            }
        }
        self.give_back::<D>(key, &me, deadline).await;
        Ok(x)
    }

    /// Gives the editor role back early (a failed edit, no time left), so the next event's
    /// invocation need not wait for the lease to run out.
    async fn give_back<D: LiveDocument>(&self, key: &str, me: &str, deadline: &Deadline) {
        let released = self
            .documents
            .update(key, deadline, |s: Option<&D>| {
                let s = s?;
                (s.editor().0 == Some(me)).then(|| {
                    let mut next = s.clone();
                    next.set_editor(None, 0);
                    next
                })
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not give the editor role back; it lapses with this invocation's deadline");
        }
    }
}
