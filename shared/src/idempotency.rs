//! Exactly once across containers: a side effect is claimed in a DynamoDB table before it
//! happens and marked done after, so a redelivered event that lands on another container
//! (EventBridge and Lambda's async queue deliver at least once) finds the claim and does
//! nothing.
//!
//! One item per side effect, keyed `<function>#<what makes it unique>`:
//! - `status` `IN_PROGRESS` with `lease_until_ms` (the claimer's Lambda deadline plus a
//!   grace), or `DONE`;
//! - `owner`: who claimed it, so only the claimer marks it done or gives it back;
//! - `expires_at`: epoch seconds, the table's TTL attribute. DynamoDB deletes expired items
//!   only eventually (typically within days), so an expired item counts as absent here too.
//!
//! A claim is one conditional `PutItem`: it succeeds when there is no live item, or when the
//! item is an `IN_PROGRESS` whose lease ran out (its claimer died or timed out). A claim that
//! lost learns from the refusal itself whether the work is done or still held: the put asks
//! for the item that failed the condition (`ReturnValuesOnConditionCheckFailure: ALL_OLD`),
//! and only a refusal that carries none is followed by a consistent read.
//!
//! The store guards against duplicates; it must never be why a person is not told or a job
//! not answered. A store that cannot be reached (throttled past the SDK's retries, denied,
//! missing) is logged and counted, and the work goes ahead with this container's memory as
//! the only guard. Without `IDEMPOTENCY_TABLE` that memory is all there is, and a duplicate
//! on another container repeats the side effect.

mod table;
pub(crate) use table::{bounded, configured_table, n, read_live, s};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use sha2::{Digest, Sha256};

use crate::budget::{CLAIM_CALL_BUDGET, RECORD_RESERVE};
pub use crate::budget::{millis, now_millis as now_ms};
use crate::config::Environment;
use crate::deadline::Deadline;
use crate::dedupe::RecentEvents;
use crate::error::Error;
use crate::metrics::{self, Metric};
use table::{Found, Put, Table, live};

/// Declared in [`crate::config::SHARED_VARIABLES`] with the other variables every function reads.
pub const TABLE_VARIABLE: &str = "IDEMPOTENCY_TABLE";

/// Counted when the store could not be read or written and the work went ahead unguarded.
pub const STORE_FAULTS: Metric = Metric::count("IdempotencyStoreFaults");

/// How long a finished claim is remembered: longer than any redelivery (EventBridge retries
/// for up to 24 hours; Lambda keeps an async event for at most 6).
pub const REMEMBERED_FOR: Duration = Duration::from_secs(48 * 3600);

/// Added to the claimer's deadline before another invocation may take its claim over: a
/// claimer is never overtaken while it can still be working.
pub const LEASE_GRACE: Duration = Duration::from_secs(5);

/// How often a held claim is looked at again while waiting for its holder.
const FIRST_WAIT: Duration = Duration::from_millis(200);
const LONGEST_WAIT: Duration = Duration::from_secs(2);

/// Keys longer than this (an event id is untrusted text) are stored by their SHA-256:
/// DynamoDB allows 2048 bytes in a partition key.
const LONGEST_PLAIN_KEY: usize = 256;

const IN_PROGRESS: &str = "IN_PROGRESS";
const DONE: &str = "DONE";

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// Go ahead; then [`Idempotency::done`] (the effect happened) or
    /// [`Idempotency::release`] (it did not, and a retry should try again).
    Won(Ticket),
    /// The side effect already happened, on this container or another.
    Done,
    /// Another invocation is doing it now; its lease runs out in `lease_left`.
    Held { lease_left: Duration },
}

/// Why an invocation gives up on a claim another one holds.
const HELD_ELSEWHERE: &str = "waiting for another invocation handling the same event";

/// What [`Idempotency::once`] did.
#[derive(Debug)]
pub enum Once<T> {
    Ran(Result<T, Error>),
    /// Nothing: the side effect already happened.
    AlreadyDone,
    /// Nothing: another invocation still held the claim when the deadline came.
    Held {
        lease_left: Duration,
    },
}

/// Proof of a won claim.
#[derive(Debug)]
#[must_use = "a won claim is marked done or released, or it blocks redeliveries until its lease ends"]
pub struct Ticket {
    key: String,
    /// `None` when the store was not used (no table, or it failed): memory only.
    owner: Option<String>,
}

/// One per container, for one function's side effects.
pub struct Idempotency {
    scope: &'static str,
    table: Option<Table>,
    /// What this container has done, the one memory of it: claims it finished (a duplicate
    /// here needs no round trip, and it is the only guard when the table is absent or
    /// failing), and whatever else a caller asks it to remember ([`Idempotency::remember`]).
    local: RecentEvents,
}

impl Idempotency {
    /// Memory only: duplicates on other containers are not seen.
    pub fn in_memory(scope: &'static str) -> Self {
        Self {
            scope,
            table: None,
            local: RecentEvents::new(512),
        }
    }

    pub fn with_table(scope: &'static str, sdk: &SdkConfig, table: &str) -> Self {
        Self {
            table: Some(Table {
                client: Client::new(sdk),
                name: table.to_owned(),
                lease_grace: LEASE_GRACE,
            }),
            ..Self::in_memory(scope)
        }
    }

    /// From `IDEMPOTENCY_TABLE`; a malformed value is logged and memory used, because the
    /// function must still work without the store.
    pub fn from_env<E: Environment + ?Sized>(
        scope: &'static str,
        env: &E,
        sdk: &SdkConfig,
    ) -> Self {
        match configured_table(env) {
            Ok(Some(table)) => Self::with_table(scope, sdk, &table),
            Ok(None) => Self::in_memory(scope),
            Err(e) => {
                tracing::error!(error = %e, "IDEMPOTENCY_TABLE is unusable; duplicates are caught only within this container");
                Self::in_memory(scope)
            }
        }
    }

    /// Whether this container remembers doing `what` (a notice posted, a claim done).
    pub fn remembers(&self, what: &str) -> bool {
        self.local.seen(what)
    }

    /// Remembers, for the life of the container, that it did `what`; record only what has
    /// happened, so a retry of a failed attempt is never taken for a duplicate.
    pub fn remember(&self, what: &str) {
        self.local.record(what);
    }

    /// A shorter grace than [`LEASE_GRACE`], for tests of a claimer that dies; compiled only
    /// for the tests (the `test-support` feature the stand-ins turn on).
    #[cfg(feature = "test-support")]
    pub fn with_lease_grace(mut self, grace: Duration) -> Self {
        if let Some(table) = &mut self.table {
            table.lease_grace = grace;
        }
        self
    }

    /// Runs `work` unless its side effect already happened: `key` is claimed first, marked
    /// done when the work succeeds or fails for good (a retry would only repeat it), and
    /// released when it fails in a way a retry can fix, so the retry may claim it at once.
    /// A panic leaves the claim to its lease. `deadline` bounds the claim and its recording;
    /// `work` is given an earlier one, so that there is time to record it.
    pub async fn once<T, F, Fut>(&self, key: &str, deadline: &Deadline, work: F) -> Once<T>
    where
        F: FnOnce(Deadline) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let ticket = match self.claim(key, deadline).await {
            Claim::Won(ticket) => ticket,
            Claim::Done => return Once::AlreadyDone,
            Claim::Held { lease_left } => return Once::Held { lease_left },
        };
        let result = work(deadline.less(RECORD_RESERVE)).await;
        match &result {
            Err(e) if e.is_retryable() => self.release(ticket, deadline).await,
            _ => self.done(ticket, deadline).await,
        }
        Once::Ran(result)
    }

    /// [`Idempotency::once`] for work Lambda retries (an event, a CodeDeploy hook): `None`
    /// when the side effect already happened (acknowledge it), the work's own result when it
    /// ran, and a retryable error when another invocation still holds the claim, so that
    /// Lambda retries and the retry finds it done (or takes over from a holder that died).
    pub async fn once_or_retry<T, F, Fut>(
        &self,
        key: &str,
        deadline: &Deadline,
        work: F,
    ) -> Result<Option<T>, Error>
    where
        F: FnOnce(Deadline) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        match self.once(key, deadline, work).await {
            Once::Ran(result) => result.map(Some),
            Once::AlreadyDone => {
                tracing::info!(key, "already done (a duplicate delivery); acknowledged");
                Ok(None)
            }
            Once::Held { .. } => {
                tracing::warn!(
                    key,
                    "another invocation is still doing this; returning an error so Lambda retries and finds it done"
                );
                Err(Error::OutOfTime(HELD_ELSEWHERE))
            }
        }
    }

    /// Claims `key` (unique to one side effect of this function) until `deadline` plus a
    /// grace. While another invocation holds it, waits (for at most half the time left) for
    /// it to finish (usually seconds: a post, a report) or for its lease to run out; `Held`
    /// means neither happened in time. Never fails: a store fault is logged and the claim is won
    /// on memory alone.
    pub async fn claim(&self, key: &str, deadline: &Deadline) -> Claim {
        // Waiting may use half the time left, no more: a claim won late, from a holder that
        // died, must still leave this invocation the time to do the work well.
        let stop_waiting = deadline.half_left();
        let mut wait = FIRST_WAIT;
        loop {
            match self.claim_once(key, deadline).await {
                Claim::Held { lease_left } => {
                    // Never past the point where waiting stops, which is within the deadline.
                    let nap = wait
                        .min(lease_left.max(FIRST_WAIT))
                        .min(stop_waiting.remaining());
                    if nap < FIRST_WAIT / 4 {
                        return Claim::Held { lease_left };
                    }
                    tokio::time::sleep(nap).await;
                    wait = (wait * 2).min(LONGEST_WAIT);
                }
                other => return other,
            }
        }
    }

    async fn claim_once(&self, key: &str, deadline: &Deadline) -> Claim {
        let key = self.item_key(key);
        if self.local.seen(&key) {
            return Claim::Done;
        }
        let Some(table) = &self.table else {
            return Claim::Won(Ticket { key, owner: None });
        };
        let owner = invocation_id();
        // The lease covers the whole invocation, but asking may take only a short part of it:
        // a DynamoDB that is slow to answer (the SDK's four attempts of up to ten seconds)
        // would otherwise leave a job no time to be answered, or a hook none to be checked.
        // Past it, the claim is won on memory alone, as for any store fault.
        let ask_by = deadline.half_left().capped(CLAIM_CALL_BUDGET);
        // A claim that loses to a release between its put and a read of the item (the
        // fallback below) tries once more.
        for _ in 0..2 {
            let found = match table.put_claim(&key, &owner, deadline, &ask_by).await {
                Ok(Put::Won) => {
                    return Claim::Won(Ticket {
                        key,
                        owner: Some(owner),
                    });
                }
                Ok(Put::Lost(Some(item))) => Ok(live(item).map(Found::from)),
                // A store that ignores ReturnValuesOnConditionCheckFailure (some emulators of
                // DynamoDB) refuses without the item: then it is read.
                Ok(Put::Lost(None)) => table.read(&key, &ask_by).await,
                Err(e) => return self.unguarded(key, "claim", &e),
            };
            match found {
                Ok(Some(found)) if found.status == DONE => {
                    self.local.record(&key);
                    return Claim::Done;
                }
                // Our own claim: the put landed but its answer was lost, and the SDK's retry
                // of it found the item it had just written.
                Ok(Some(found)) if found.owner == owner => {
                    return Claim::Won(Ticket {
                        key,
                        owner: Some(owner),
                    });
                }
                Ok(Some(found)) => {
                    let left = found.lease_until_ms.saturating_sub(now_ms());
                    return Claim::Held {
                        lease_left: Duration::from_millis(left),
                    };
                }
                Ok(None) => continue,
                Err(e) => return self.unguarded(key, "read a claim", &e),
            }
        }
        self.unguarded(
            key,
            "claim",
            &Error::OutOfTime("a claim that kept changing under it"),
        )
    }

    /// The side effect happened: redeliveries now find it done.
    pub async fn done(&self, ticket: Ticket, deadline: &Deadline) {
        self.local.record(&ticket.key);
        let (Some(table), Some(owner)) = (&self.table, &ticket.owner) else {
            return;
        };
        match table.mark_done(&ticket.key, owner, deadline).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(key = %ticket.key, "another invocation took this claim over after its lease ran out: the side effect may have happened twice")
            }
            Err(e) => {
                metrics::count(&STORE_FAULTS, &[]);
                tracing::error!(key = %ticket.key, error = %e, "could not mark the claim done; a redelivery after its lease may repeat the side effect");
            }
        }
    }

    /// The side effect did not happen (a retryable failure): give the claim back so Lambda's
    /// retry, or a redelivery, can do it at once rather than after the lease.
    pub async fn release(&self, ticket: Ticket, deadline: &Deadline) {
        let (Some(table), Some(owner)) = (&self.table, &ticket.owner) else {
            return;
        };
        if let Err(e) = table.delete_claim(&ticket.key, owner, deadline).await {
            metrics::count(&STORE_FAULTS, &[]);
            tracing::warn!(key = %ticket.key, error = %e, "could not release the claim; a retry waits for its lease to end");
        }
    }

    fn item_key(&self, key: &str) -> String {
        scoped_key(self.scope, key)
    }

    fn unguarded(&self, key: String, doing: &str, e: &Error) -> Claim {
        metrics::count(&STORE_FAULTS, &[]);
        tracing::error!(key = %key, error = %e, "could not {doing} in the idempotency store; going ahead guarded by this container's memory only (a duplicate delivered elsewhere may repeat it)");
        Claim::Won(Ticket { key, owner: None })
    }
}

/// `<scope>#<key>`: the role's `dynamodb:LeadingKeys` condition allows only its own scope.
/// Keys longer than [`LONGEST_PLAIN_KEY`] are stored by their SHA-256.
pub(crate) fn scoped_key(scope: &str, key: &str) -> String {
    if key.len() <= LONGEST_PLAIN_KEY {
        return format!("{scope}#{key}");
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{scope}#sha256:{hex}")
}

/// Unique per claim (or other holder of a lease) across containers: the container's log stream (unique per execution
/// environment), the time and a counter.
pub fn invocation_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stream = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_default();
    let pid = std::process::id();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{stream}/{pid}/{}/{n}", now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_table_a_done_key_is_done_in_this_container_and_unknown_elsewhere() {
        let here = Idempotency::in_memory("fn");
        let elsewhere = Idempotency::in_memory("fn");
        let deadline = Deadline::after(Duration::from_secs(5));
        let Claim::Won(ticket) = here.claim("event-1", &deadline).await else {
            panic!("a first claim wins");
        };
        here.done(ticket, &deadline).await;
        assert!(matches!(
            here.claim("event-1", &deadline).await,
            Claim::Done
        ));
        assert!(matches!(
            elsewhere.claim("event-1", &deadline).await,
            Claim::Won(_)
        ));
    }

    #[tokio::test]
    async fn a_released_claim_is_not_remembered_as_done() {
        let here = Idempotency::in_memory("fn");
        let deadline = Deadline::after(Duration::from_secs(5));
        let Claim::Won(ticket) = here.claim("event-1", &deadline).await else {
            panic!("a first claim wins");
        };
        here.release(ticket, &deadline).await;
        assert!(matches!(
            here.claim("event-1", &deadline).await,
            Claim::Won(_)
        ));
    }

    #[test]
    fn keys_are_scoped_by_function_and_long_untrusted_ones_hashed_to_fit_dynamodb() {
        let store = Idempotency::in_memory("pipeline-notifier");
        assert_eq!(store.item_key("abc"), "pipeline-notifier#abc");
        let long = store.item_key(&"x".repeat(1_000_000));
        assert!(long.starts_with("pipeline-notifier#sha256:"));
        assert!(long.len() < 2048);
        assert_ne!(long, store.item_key(&"y".repeat(1_000_000)));
    }
}
