//! The budget of one invocation: the clock, and every reserve kept back from the Lambda
//! deadline, named once. A reserve is time a later step needs (reporting, recording a claim,
//! returning the answer); work that runs into it would leave that step without time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Kept back from the deadline so a job result or a hook status can always be sent: the
/// default of `REPORT_MARGIN` (`shared::report`).
pub const REPORT_MARGIN: Duration = Duration::from_secs(10);
/// Less than this for the report is a misconfiguration, not a margin.
pub const MIN_REPORT_MARGIN: Duration = Duration::from_secs(1);
/// Kept back for a job path's last resort: failing the job and saying so.
pub const FALLBACK_RESERVE: Duration = Duration::from_secs(2);
/// Kept back from work done under a claim, so the claim can be marked done or released.
pub const RECORD_RESERVE: Duration = Duration::from_millis(500);
/// Kept back to return the answer itself: an ECS-native hook's status is its return value,
/// and a timeout rolls the deployment back; an event's outcome is logged on return; a job's
/// answering path ends before the guard around it fires.
pub const ANSWER_RESERVE: Duration = Duration::from_millis(500);
/// Kept back from the work before a notice (reading what happened), so telling it still has
/// time.
pub const NOTIFY_RESERVE: Duration = Duration::from_secs(1);
/// The most the calls of one claim to the idempotency table may take (never more than half
/// of what is left): the store must never be why a job or a hook goes unanswered.
pub const CLAIM_CALL_BUDGET: Duration = Duration::from_secs(5);
/// The most a nice-to-have look-up (a pipeline's revision) may take from the budget for
/// posting.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(5);

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Now, in milliseconds since the epoch (0 for a clock set before it).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> i64 {
    i64::try_from(now_millis() / 1000).unwrap_or(i64::MAX)
}
