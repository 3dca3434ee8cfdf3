//! The time an invocation has left. Every wait, poll and retry in the suite asks a
//! [`Deadline`] before it sleeps, so nothing outlives the Lambda timeout.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A point in time past which work must not continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
}

/// Returned when the work would not finish (or the wait would not end) before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the invocation's time budget ran out")]
pub struct OutOfTime;

impl Deadline {
    /// From the Lambda context: `deadline` is milliseconds since the Unix epoch.
    pub fn from_context(ctx: &lambda_runtime::Context) -> Self {
        Self::from_epoch_millis(ctx.deadline, SystemTime::now())
    }

    /// Converts a wall-clock deadline to a monotonic one, so a clock step during the
    /// invocation cannot stretch or shrink the budget.
    pub fn from_epoch_millis(deadline_ms: u64, now: SystemTime) -> Self {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let left = u128::from(deadline_ms).saturating_sub(now_ms);
        let left = Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX));
        Self::after(left)
    }

    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        Self {
            at: now
                .checked_add(budget)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// A deadline `margin` earlier: the part of the budget that work may use while
    /// keeping time back for what must happen afterwards (reporting a result).
    pub fn less(&self, margin: Duration) -> Self {
        let earlier = self.at.checked_sub(margin).unwrap_or(self.at);
        Self {
            at: earlier.max(Instant::now().min(self.at)),
        }
    }

    /// Half of the time left: what a report gets, so that however long it takes (an SDK
    /// retry of a timed-out attempt, throttling) the other half is still there to tell a
    /// person; and how long a claim held elsewhere is waited for.
    pub fn half_left(&self) -> Self {
        self.less(self.remaining() / 2)
    }

    /// The earlier of this deadline and `budget` from now.
    pub fn capped(&self, budget: Duration) -> Self {
        let other = Self::after(budget);
        if other.at < self.at { other } else { *self }
    }

    /// Runs `work`, abandoning it when the deadline passes.
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, OutOfTime> {
        tokio::time::timeout(self.remaining(), work)
            .await
            .map_err(|_| OutOfTime)
    }

    /// Sleeps for `wait`, or refuses at once when the wait would end past the deadline:
    /// a wait that cannot be followed by useful work is wasted budget.
    pub async fn sleep(&self, wait: Duration) -> Result<(), OutOfTime> {
        if wait >= self.remaining() {
            return Err(OutOfTime);
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_deadline_in_the_past_leaves_no_budget() {
        let now = SystemTime::now();
        let past = now.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 - 5_000;
        assert!(Deadline::from_epoch_millis(past, now).is_expired());
    }

    #[test]
    fn epoch_deadline_converts_to_remaining_budget() {
        let now = SystemTime::now();
        let in_ten_s = now.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 10_000;
        let left = Deadline::from_epoch_millis(in_ten_s, now).remaining();
        assert!(
            left <= Duration::from_secs(10) && left > Duration::from_secs(9),
            "{left:?}"
        );
    }

    #[test]
    fn less_keeps_a_margin_but_never_goes_before_now() {
        let d = Deadline::after(Duration::from_secs(10));
        let inner = d.less(Duration::from_secs(3)).remaining();
        assert!(inner <= Duration::from_secs(7) && inner > Duration::from_secs(6));
        assert!(d.less(Duration::from_secs(60)).is_expired());
    }

    #[test]
    fn capped_takes_the_earlier_deadline() {
        let d = Deadline::after(Duration::from_secs(100));
        assert!(d.capped(Duration::from_secs(1)).remaining() <= Duration::from_secs(1));
        let short = Deadline::after(Duration::from_secs(1));
        assert_eq!(short.capped(Duration::from_secs(100)), short);
    }

    // Paused time: a sleep would advance tokio's clock by its whole length, so "no wait"
    // is asserted exactly, however busy the machine.
    #[tokio::test(start_paused = true)]
    async fn sleep_past_the_deadline_is_refused_without_waiting() {
        let d = Deadline::after(Duration::from_millis(200));
        let started = tokio::time::Instant::now();
        assert_eq!(d.sleep(Duration::from_secs(5)).await, Err(OutOfTime));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn run_abandons_work_that_outlives_the_deadline() {
        let d = Deadline::after(Duration::from_millis(50));
        let r = d.run(tokio::time::sleep(Duration::from_secs(5))).await;
        assert_eq!(r, Err(OutOfTime));
    }
}
