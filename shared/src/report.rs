//! Answering a pipeline job or a lifecycle hook: report it once, then tell people — with one
//! deadline margin, one rule for "already reported", and a notification whenever the report
//! itself fails, because then the pipeline or the deployment hangs until its own timeout.

use std::future::Future;
use std::time::Duration;

use crate::config::{ConfigError, Environment, Var, Vars};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::idempotency::Idempotency;
use crate::jobs::{JobOutcome, ReportJob, Reported};
use crate::notifier::{Notification, Notify};
use crate::slack::{Block, Mrkdwn};

use crate::budget::MIN_REPORT_MARGIN;
pub use crate::budget::REPORT_MARGIN as DEFAULT_REPORT_MARGIN;

/// Declared by each function that reports a job or a hook.
pub const REPORT_MARGIN: Var = Var::defaulted(
    "REPORT_MARGIN",
    "10s",
    "`15s`",
    "Time kept back from the Lambda deadline so the job result or hook status is always sent (at least `1s`). One setting, one default, read by `shared::report`.",
);

/// `REPORT_MARGIN`: how long before the Lambda deadline the work stops so the report still
/// goes out. At least 1 s; its default is declared in [`REPORT_MARGIN`].
pub fn report_margin<E: Environment + ?Sized>(vars: &Vars<E>) -> Result<Duration, ConfigError> {
    let margin = vars.with_default("REPORT_MARGIN", vars.duration("REPORT_MARGIN")?)?;
    if margin < MIN_REPORT_MARGIN {
        return Err(ConfigError::malformed(
            "REPORT_MARGIN",
            "at least 1s",
            "too small to report in",
        ));
    }
    Ok(margin)
}

/// What is being answered, and what a person should hear about it.
pub struct ReportNotice {
    /// The job id or hook execution id: what "already notified" is remembered by.
    pub key: String,
    /// For people: "CodePipeline job 5c1f…", "AfterAllowTraffic hook of d-ABC".
    pub subject: String,
    /// What happens when no report arrives: "the stage waits for CodePipeline's timeout".
    pub if_unreported: &'static str,
    pub notification: Notification,
    /// Whether the verdict itself is worth a post (`NOTIFY_ON`); a failed report is always
    /// posted regardless.
    pub wanted: bool,
    /// Whether this is a final answer (a hook status, a job's verdict) rather than "still
    /// working" (a continuation). Only a final answer is posted after "already reported".
    pub decisive: bool,
    /// Whether a report that failed for a reason a retry can fix is left to Lambda's retry
    /// (the invocation returns an error). Not for pipeline jobs: their event carries
    /// `artifactCredentials`, and a failed invocation's event ends in the dead-letter queue.
    /// Those are told to a person and acknowledged instead.
    pub lambda_retries: bool,
}

/// Reports, then notifies. One per container: it remembers (in the container's one memory,
/// the idempotency store's) which answers it has notified, and claims each job there so a
/// redelivered one is answered once.
pub struct Answerer<N> {
    notifier: N,
    idempotency: Idempotency,
}

/// How a delivered notice is remembered beside the claims in the container's memory.
fn notified_key(key: &str) -> String {
    format!("notified/{key}")
}

/// How an answer ended, for the invocation's result and its log.
#[derive(Debug, PartialEq, Eq)]
pub struct Receipt {
    /// `None`: the report did not go through, and a person was told (when a channel works).
    pub reported: Option<Reported>,
    /// Whether a notification was delivered by this call.
    pub notified: bool,
}

impl Receipt {
    /// For the invocation's result: `Recorded`, `AlreadyReported` or `NotReported`.
    pub fn reported_name(&self) -> &'static str {
        match self.reported {
            Some(Reported::Recorded) => "Recorded",
            Some(Reported::AlreadyReported) => "AlreadyReported",
            None => "NotReported",
        }
    }
}

impl<N: Notify> Answerer<N> {
    pub fn new(notifier: N, idempotency: Idempotency) -> Self {
        Self {
            notifier,
            idempotency,
        }
    }

    pub fn notifier(&self) -> &N {
        &self.notifier
    }

    /// The function's side effects outside jobs (events, hooks) are claimed here too.
    pub fn idempotency(&self) -> &Idempotency {
        &self.idempotency
    }

    /// Sends the report, then notifies. `report` is given the deadline it must finish by:
    /// half of what is left, so that however long the report takes (an SDK retry of a timed
    /// out attempt, throttling), there is still time to tell a person.
    ///
    /// "Already reported" is not proof that anyone was told: the same answer comes back when
    /// this invocation's own earlier attempt landed and only its response was lost (an SDK
    /// retry after an attempt timed out, a Lambda retry after running out of time) — and that
    /// earlier attempt may have found something else (a Failed hook, this attempt Succeeded).
    /// So the one rule is: post unless this container already delivered a post for this key;
    /// after "already reported", post whatever `NOTIFY_ON` says, and say that the first
    /// answer is the one that stands. Across containers, the claim on the job or hook in the
    /// idempotency store keeps a redelivery from getting here twice; without the store a
    /// duplicate post is possible. A silent failure is not.
    ///
    /// A permanent report failure is posted (whatever `wanted` says) and acknowledged; so is
    /// a retryable one when Lambda may not retry (`lambda_retries`). Otherwise a retryable
    /// failure is returned without a post, for Lambda's retry; when every retry fails the
    /// event reaches the dead-letter queue, whose alarm goes to the alert topic.
    pub async fn answer<F, R>(
        &self,
        mut notice: ReportNotice,
        report: R,
        deadline: &Deadline,
    ) -> Result<Receipt, Error>
    where
        R: FnOnce(Deadline) -> F,
        F: Future<Output = Result<Reported, Error>>,
    {
        let report_deadline = deadline.half_left();
        let reported = match report(report_deadline).await {
            Ok(r) => r,
            Err(e) if e.is_retryable() && notice.lambda_retries => {
                tracing::error!(subject = %notice.subject, error = %e, "the report did not go through; returning an error so Lambda retries");
                return Err(e);
            }
            Err(e) => {
                // Counted only here, where no retry follows: the alarm means a person must act.
                crate::metrics::count(&crate::metrics::REPORT_FAILURES, &[]);
                tracing::error!(subject = %notice.subject, error = %e, consequence = notice.if_unreported, "the report did not go through; notifying so a person can act");
                add_unreported_warning(&mut notice, &e);
                let notified = self.deliver_once(&notice, deadline).await;
                return Ok(Receipt {
                    reported: None,
                    notified,
                });
            }
        };
        let wanted = match reported {
            Reported::Recorded => notice.wanted,
            Reported::AlreadyReported if notice.decisive => {
                add_already_reported_note(&mut notice);
                true
            }
            Reported::AlreadyReported => false,
        };
        let notified = wanted && self.deliver_once(&notice, deadline).await;
        Ok(Receipt {
            reported: Some(reported),
            notified,
        })
    }

    /// [`Answerer::answer`] for a CodePipeline job: `outcome` reported for `job_id` through
    /// `jobs`, then notified.
    pub async fn answer_job<J: ReportJob>(
        &self,
        jobs: &J,
        job_id: &str,
        outcome: JobOutcome,
        notice: ReportNotice,
        deadline: &Deadline,
    ) -> Result<Receipt, Error> {
        let report = |by: Deadline| async move { jobs.report(job_id, outcome, &by).await };
        self.answer(notice, report, deadline).await
    }

    /// Posts `notification` unless this container already delivered one under `key`: a
    /// broken configuration is told once per container, not once per event. A failed post is
    /// returned (a retryable one for Lambda's retry) and not remembered.
    pub async fn notify_once(
        &self,
        key: &str,
        notification: &Notification,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        if self.idempotency.remembers(&notified_key(key)) {
            return Ok(false);
        }
        self.notifier
            .notify(notification, deadline)
            .await
            .into_result()?;
        self.idempotency.remember(&notified_key(key));
        Ok(true)
    }

    async fn deliver_once(&self, notice: &ReportNotice, deadline: &Deadline) -> bool {
        if self.idempotency.remembers(&notified_key(&notice.key)) {
            tracing::info!(subject = %notice.subject, "this container already notified this answer; not posting again");
            return false;
        }
        self.deliver(notice, deadline).await
    }

    /// The report is what matters: a notification failure is logged, not retried (a retry
    /// would re-run the whole invocation).
    async fn deliver(&self, notice: &ReportNotice, deadline: &Deadline) -> bool {
        let report = self.notifier.notify(&notice.notification, deadline).await;
        let delivered = report.any_delivered();
        match report.into_result() {
            Ok(()) => {
                self.idempotency.remember(&notified_key(&notice.key));
                delivered
            }
            Err(e) => {
                tracing::error!(subject = %notice.subject, error = %e, "notification failed");
                false
            }
        }
    }
}

fn add_already_reported_note(notice: &mut ReportNotice) {
    let note = format!(
        "The {} had already been answered (by an earlier attempt, or it had already ended); that first answer is the one that stands. This attempt found what is shown here.",
        notice.subject
    );
    notice
        .notification
        .slack
        .blocks
        .push(Block::Context(vec![Mrkdwn::from_untrusted(&note)]));
}

fn add_unreported_warning(notice: &mut ReportNotice, error: &Error) {
    let headline = format!("Could not report the {}", notice.subject);
    let n = &mut notice.notification;
    // A person must act now, whatever the verdict was: a failures-only subscriber gets it.
    n.attributes.severity = crate::notifier::Tone::Failure;
    n.attributes.outcome = Some("UNREPORTED".into());
    n.subject = format!("⚠️ {headline}");
    n.slack.text = Mrkdwn::from_untrusted(&n.subject);
    let warning = Block::section(
        Mrkdwn::new()
            .literal("⚠️ ")
            .bold(&headline)
            .newline()
            .plain(&error.to_string())
            .newline()
            .plain("Until someone acts, ")
            .plain(notice.if_unreported)
            .plain("."),
    );
    n.slack.blocks.insert(0, warning);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::{ChannelOutcome, DeliveryReport};
    use crate::slack::Message;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Posts(Mutex<Vec<Notification>>);

    impl Notify for Posts {
        async fn notify(&self, n: &Notification, _: &Deadline) -> DeliveryReport {
            self.0.lock().unwrap().push(n.clone());
            DeliveryReport {
                slack: ChannelOutcome::Delivered,
                sns: ChannelOutcome::NotConfigured,
            }
        }
    }

    fn answer(wanted: bool) -> ReportNotice {
        ReportNotice {
            key: "job-1".into(),
            subject: "CodePipeline job job-1".into(),
            if_unreported: "the stage waits for CodePipeline's timeout",
            notification: Notification::new(
                "FAIL",
                Message::new(Mrkdwn::from_untrusted("FAIL"))
                    .block(Block::section(Mrkdwn::from_untrusted("the image failed"))),
            ),
            wanted,
            decisive: true,
            lambda_retries: true,
        }
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    /// The earlier attempt may have reported something else (Failed, where this attempt
    /// passed): after "already reported" the post goes out whatever NOTIFY_ON says, and says
    /// the first answer stands.
    #[tokio::test]
    async fn already_reported_is_posted_even_unwanted_when_this_container_has_not_posted() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        let out = a
            .answer(
                answer(false),
                |_| async { Ok(Reported::AlreadyReported) },
                &deadline(),
            )
            .await
            .unwrap();
        assert!(out.notified);
        let posts = a.notifier().0.lock().unwrap();
        assert_eq!(posts.len(), 1);
        assert!(
            posts[0]
                .body()
                .contains("first answer is the one that stands")
        );
    }

    #[tokio::test]
    async fn the_report_gets_half_the_time_left_and_the_post_the_rest() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        let whole = deadline();
        let given = std::sync::Mutex::new(None);
        a.answer(
            answer(true),
            |d| {
                *given.lock().unwrap() = Some(d);
                async { Ok(Reported::Recorded) }
            },
            &whole,
        )
        .await
        .unwrap();
        let given = given.lock().unwrap().unwrap();
        assert!(given.remaining() <= whole.remaining() / 2 + Duration::from_millis(50));
        assert!(given.remaining() >= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_report_refused_twice_in_one_container_is_posted_once() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        for _ in 0..2 {
            a.answer(
                answer(false),
                |_| async { Err(Error::bad_input("refused")) },
                &deadline(),
            )
            .await
            .unwrap();
        }
        assert_eq!(a.notifier().0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_second_answer_for_the_same_key_in_one_container_is_not_posted_again() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        a.answer(
            answer(true),
            |_| async { Ok(Reported::Recorded) },
            &deadline(),
        )
        .await
        .unwrap();
        let again = a
            .answer(
                answer(true),
                |_| async { Ok(Reported::AlreadyReported) },
                &deadline(),
            )
            .await
            .unwrap();
        assert!(!again.notified);
        assert_eq!(a.notifier().0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_report_is_notified_even_when_the_verdict_was_not_wanted() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        let refused = |_| async {
            Err(Error::Aws {
                service: "CodePipeline",
                operation: "PutJobSuccessResult",
                code: Some("AccessDeniedException".into()),
                message: "AccessDeniedException: not authorized".into(),
                retryable: false,
            })
        };
        let out = a.answer(answer(false), refused, &deadline()).await.unwrap();
        assert_eq!(out.reported, None);
        assert!(out.notified);
        let posts = a.notifier().0.lock().unwrap();
        assert_eq!(posts.len(), 1);
        assert!(posts[0].subject.contains("Could not report"));
        assert!(posts[0].body().contains("AccessDeniedException"));
        assert!(posts[0].body().contains("waits for CodePipeline's timeout"));
    }

    /// A PASS that could not be reported is a notice a person must act on: a subscriber that
    /// takes failures only (an SNS filter policy on `severity`) gets it.
    #[tokio::test]
    async fn a_success_that_could_not_be_reported_is_tagged_a_failure() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        let mut notice = answer(true);
        notice.notification = notice.notification.tagged(
            crate::notifier::Attributes::new("ecr-scan-gate", crate::notifier::Tone::Success)
                .outcome("PASS"),
        );
        let refused = |_| async { Err(Error::bad_input("refused")) };
        a.answer(notice, refused, &deadline()).await.unwrap();
        let posts = a.notifier().0.lock().unwrap();
        assert_eq!(posts[0].attributes.severity, crate::notifier::Tone::Failure);
        assert_eq!(posts[0].attributes.outcome.as_deref(), Some("UNREPORTED"));
    }

    #[tokio::test]
    async fn a_retryable_report_failure_is_returned_without_a_post() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        let err = a
            .answer(
                answer(true),
                |_| async { Err(Error::OutOfTime("reporting")) },
                &deadline(),
            )
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert!(a.notifier().0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_retryable_failure_lambda_may_not_retry_is_told_and_acknowledged() {
        let a = Answerer::new(Posts::default(), Idempotency::in_memory("test"));
        let job = ReportNotice {
            lambda_retries: false,
            ..answer(false)
        };
        let out = a
            .answer(
                job,
                |_| async { Err(Error::OutOfTime("reporting")) },
                &deadline(),
            )
            .await
            .unwrap();
        assert_eq!(out.reported, None);
        assert_eq!(a.notifier().0.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_report_margin_defaults_to_ten_seconds_and_refuses_less_than_one() {
        const DECLARED: &[Var] = &[REPORT_MARGIN];
        let lists = [DECLARED];
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            report_margin(&Vars::declared(&none, &lists)).unwrap(),
            DEFAULT_REPORT_MARGIN
        );
        let short = [("REPORT_MARGIN", "500ms")];
        assert_eq!(
            report_margin(&Vars::declared(&short, &lists))
                .unwrap_err()
                .variable,
            "REPORT_MARGIN"
        );
    }
}
