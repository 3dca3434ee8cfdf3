//! Work whose outcome must always be reported (a pipeline job, a lifecycle hook): it
//! finishes, panics, or runs out of time, and the caller is told which instead of the
//! invocation dying with nothing reported.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::deadline::Deadline;

#[derive(Debug, PartialEq, Eq)]
pub enum Guarded<T> {
    Finished(T),
    /// The work panicked; the panic was logged and contained.
    Panicked,
    /// The deadline passed first; the work was abandoned.
    OutOfTime,
}

pub async fn guarded<F: Future>(deadline: &Deadline, work: F) -> Guarded<F::Output> {
    match deadline.run(AssertUnwindSafe(work).catch_unwind()).await {
        Ok(Ok(value)) => Guarded::Finished(value),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            tracing::error!(panic = %what, "the work panicked; reporting a failure instead");
            Guarded::Panicked
        }
        Err(_) => Guarded::OutOfTime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn finished_work_returns_its_value() {
        assert_eq!(
            guarded(&Deadline::after(Duration::from_secs(1)), async { 7 }).await,
            Guarded::Finished(7)
        );
    }

    #[tokio::test]
    async fn a_panic_is_contained() {
        let r: Guarded<()> = guarded(&Deadline::after(Duration::from_secs(1)), async {
            panic!("boom")
        })
        .await;
        assert_eq!(r, Guarded::Panicked);
    }

    #[tokio::test]
    async fn hanging_work_is_abandoned_at_the_deadline() {
        let r = guarded(
            &Deadline::after(Duration::from_millis(50)),
            tokio::time::sleep(Duration::from_secs(60)),
        )
        .await;
        assert_eq!(r, Guarded::OutOfTime);
    }
}
