//! An event handled once across containers: EventBridge and Lambda's asynchronous queue
//! deliver at least once, and a redelivery lands on whichever container is free. The side
//! effect is claimed under a key that makes it unique; a duplicate is acknowledged as skipped.
//! The work's own result is the reply; an error a retry can fix gives the claim back and is
//! returned, so Lambda's retry may claim it at once.

use std::future::Future;

use serde::Serialize;

use crate::deadline::Deadline;
use crate::error::Error;
use crate::idempotency::Idempotency;

/// A claim's key: what one side effect is unique by. One way to build each, so two functions
/// (or two call sites) never claim the same effect under different names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'a> {
    /// An EventBridge event, by its id.
    Event(&'a str),
    /// A fact, told once however many events carry it (`task-stopped`, a task's ARN).
    Fact(&'static str, &'a str),
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Event(id) => write!(f, "event/{id}"),
            Self::Fact(kind, id) => write!(f, "{kind}/{id}"),
        }
    }
}

/// What a duplicate delivery is answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Duplicate {
    Skipped { reason: &'static str },
}

const ALREADY: Duplicate = Duplicate::Skipped {
    reason: "already handled (a duplicate delivery)",
};

/// What handling an event came to: the work's own reply, or a duplicate skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Handled<T> {
    Done(T),
    Skipped(Duplicate),
}

/// Runs `work` once for `key` (an event without an id cannot be claimed, and runs as it
/// comes). `work` is given the deadline less what recording the claim needs.
pub async fn handle<T, F, Fut>(
    idempotency: &Idempotency,
    key: Option<Key<'_>>,
    deadline: &Deadline,
    work: F,
) -> Result<Handled<T>, Error>
where
    F: FnOnce(Deadline) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let reply = match key {
        None => Some(work(*deadline).await?),
        Some(key) => {
            idempotency
                .once_or_retry(&key.to_string(), deadline, work)
                .await?
        }
    };
    Ok(match reply {
        Some(reply) => Handled::Done(reply),
        None => Handled::Skipped(ALREADY),
    })
}
