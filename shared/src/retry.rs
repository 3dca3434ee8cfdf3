//! One retry loop for the suite: bounded attempts, exponential backoff with jitter, a
//! server's own "retry after" honoured, and never a sleep past the deadline.
//!
//! AWS SDK calls already retry throttling inside the SDK; this loop is for the calls the
//! SDK does not cover (Slack) and for callers that must classify answers themselves.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::deadline::Deadline;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub max_attempts: u32,
}

impl Backoff {
    /// The wait before attempt `attempt + 1` (attempts count from 1): full jitter over an
    /// exponentially growing window, so callers that failed together don't retry together.
    pub fn wait_after(&self, attempt: u32) -> Duration {
        let exp = self.first.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let window = exp.min(self.max);
        let half = window / 2;
        half + jitter(window - half)
    }
}

fn jitter(upto: Duration) -> Duration {
    let nanos = u64::try_from(upto.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    // RandomState is seeded per instance from the OS, which is all the randomness a
    // backoff needs; it spares a dependency on a random-number crate.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(nanos);
    Duration::from_nanos(h.finish() % nanos)
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T, E> {
    Done(T),
    /// Trying again cannot help.
    Permanent(E),
    /// Trying again may help; `after` is the server's own requested wait, if it gave one.
    Retry {
        error: E,
        after: Option<Duration>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum RetryError<E> {
    Permanent(E),
    /// Every allowed attempt failed with a retryable error.
    Exhausted {
        last: E,
        attempts: u32,
    },
    /// The next wait would have ended past the deadline.
    OutOfTime {
        last: E,
        attempts: u32,
    },
}

/// Runs `attempt` (given the 1-based attempt number) until it is done, fails permanently,
/// runs out of attempts, or would have to wait past `deadline`. Each attempt should bound
/// its own I/O by the same deadline.
pub async fn retry<T, E, F, Fut>(
    deadline: &Deadline,
    backoff: &Backoff,
    mut attempt: F,
) -> Result<T, RetryError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut n = 0;
    loop {
        n += 1;
        match attempt(n).await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Permanent(e) => return Err(RetryError::Permanent(e)),
            Attempt::Retry { error, after } => {
                if n >= backoff.max_attempts {
                    return Err(RetryError::Exhausted {
                        last: error,
                        attempts: n,
                    });
                }
                let wait = after.unwrap_or_else(|| backoff.wait_after(n));
                if deadline.sleep(wait).await.is_err() {
                    return Err(RetryError::OutOfTime {
                        last: error,
                        attempts: n,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
        max_attempts: 4,
    };

    #[test]
    fn backoff_grows_and_stays_under_its_cap() {
        for attempt in 1..20 {
            let w = QUICK.wait_after(attempt);
            assert!(w <= QUICK.max, "attempt {attempt}: {w:?}");
        }
        assert!(QUICK.wait_after(1) <= Duration::from_millis(10));
        assert!(QUICK.wait_after(3) >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn retries_until_done() {
        let d = Deadline::after(Duration::from_secs(5));
        let r: Result<u32, RetryError<&str>> = retry(&d, &QUICK, |n| async move {
            if n < 3 {
                Attempt::Retry {
                    error: "busy",
                    after: None,
                }
            } else {
                Attempt::Done(n)
            }
        })
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test]
    async fn permanent_error_stops_at_once() {
        let d = Deadline::after(Duration::from_secs(5));
        let mut calls = 0;
        let r: Result<(), _> = retry(&d, &QUICK, |_| {
            calls += 1;
            async { Attempt::Permanent("no_service") }
        })
        .await;
        assert_eq!(r, Err(RetryError::Permanent("no_service")));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let d = Deadline::after(Duration::from_secs(5));
        let r: Result<(), _> = retry(&d, &QUICK, |_| async {
            Attempt::Retry {
                error: "500",
                after: None,
            }
        })
        .await;
        assert_eq!(
            r,
            Err(RetryError::Exhausted {
                last: "500",
                attempts: 4
            })
        );
    }

    // Paused time: any sleep would show on tokio's clock, so "without sleeping" is exact.
    #[tokio::test(start_paused = true)]
    async fn a_requested_wait_past_the_deadline_ends_the_loop_without_sleeping() {
        let d = Deadline::after(Duration::from_millis(300));
        let started = tokio::time::Instant::now();
        let r: Result<(), _> = retry(&d, &QUICK, |_| async {
            Attempt::Retry {
                error: "429",
                after: Some(Duration::from_secs(30)),
            }
        })
        .await;
        assert_eq!(
            r,
            Err(RetryError::OutOfTime {
                last: "429",
                attempts: 1
            })
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
