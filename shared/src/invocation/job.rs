//! A CodePipeline job's flow: claim the job, decide within the work share of the budget
//! (guarded against a panic and the deadline), report exactly once, notify, reply.
//!
//! A job must get exactly one final answer, or the stage hangs until CodePipeline times it
//! out; and the job path never fails the invocation, because a job's event carries
//! `artifactCredentials` and a failed invocation's event is kept whole in the dead-letter
//! queue. So every way out of this flow is an answer: the function's, or, when the path itself
//! errs, panics or hangs, a failure with the reason, told to a person.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::budget::{ANSWER_RESERVE, FALLBACK_RESERVE};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::guard::{Guarded, guarded};
use crate::idempotency::Once;
use crate::jobs::{FailureKind, JobOutcome, ReportJob, Reported};
use crate::notifier::{Notification, Notify};
use crate::report::{Answerer, ReportNotice};

use super::Invocation;

/// Why a decision did not come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// The work share of the budget ran out first.
    OutOfTime,
    /// The decision panicked (logged where it was caught).
    Panicked,
}

/// What a function answers a job with.
pub struct JobAnswer<D> {
    pub outcome: JobOutcome,
    /// What a person is told: posted when `wanted`, and whenever the report itself fails.
    pub notification: Notification,
    /// Whether the answer is worth a post by itself (`NOTIFY_ON`).
    pub wanted: bool,
    /// The function's own fields in the reply (a verdict).
    pub detail: D,
}

/// A function that answers CodePipeline jobs supplies the decision; [`answer`] does the rest.
pub trait Job: Sync {
    /// What the function read from the job, its id included.
    type Request: Send + Sync;
    /// What the guarded part of the decision came to.
    type Evaluation: Send;
    /// The function's own fields in the reply.
    type Detail: Serialize + Send;

    /// Named in the job's failure message when the path itself fails ("the scan gate").
    const WHO: &'static str;
    /// What happens while no report arrives ("the pipeline's scan-gate action waits until
    /// CodePipeline times it out").
    const IF_UNREPORTED: &'static str;

    fn job_id(request: &Self::Request) -> &str;
    /// For people: "CodePipeline job 5c1f… for prod-api:1.42.0".
    fn subject(&self, request: &Self::Request) -> String;
    /// Kept back from the deadline so the answer can always be reported (`REPORT_MARGIN`).
    fn report_margin(&self) -> Duration;
    /// The part of the decision that may hang or panic, bounded by `deadline`.
    fn evaluate(
        &self,
        request: &Self::Request,
        deadline: &Deadline,
        now: i64,
    ) -> impl Future<Output = Self::Evaluation> + Send;
    /// What stands for the evaluation when it did not come back.
    fn unfinished(&self, request: &Self::Request, why: Unfinished, now: i64) -> Self::Evaluation;
    /// The answer from the evaluation (and any side effect of a final one, such as a tag),
    /// within `deadline`.
    fn conclude(
        &self,
        request: &Self::Request,
        evaluation: Self::Evaluation,
        deadline: &Deadline,
        now: i64,
    ) -> impl Future<Output = JobAnswer<Self::Detail>> + Send;
    /// The notice when the job could not be answered at all: `why` in one sentence.
    fn unanswered(&self, request: &Self::Request, why: String) -> Notification;
}

/// How a job invocation ended, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum JobReply<D> {
    Reported {
        /// `continue`, `succeeded` or `failed`.
        result: &'static str,
        #[serde(flatten)]
        detail: D,
        /// `Recorded`, `AlreadyReported` or `NotReported`.
        reported: &'static str,
        notified: bool,
    },
    /// Answered already, or being answered by another invocation.
    Duplicate {
        #[serde(rename = "jobId")]
        job_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The path failed; the job was failed with the reason (when that went through).
    Unanswered {
        #[serde(rename = "jobId")]
        job_id: String,
        reason: String,
        #[serde(rename = "failedJob")]
        failed_job: bool,
    },
}

/// Answers one invocation of a job. The job is claimed first under its id (CodePipeline gives
/// each continuation a new one): a redelivery of an answered job is acknowledged without a
/// second answer or post, and one still being answered elsewhere is left to that invocation
/// (should it die, Lambda's retry of it takes the claim over).
pub async fn answer<J, R, N>(
    job: &J,
    jobs: &R,
    answerer: &Answerer<N>,
    request: J::Request,
    invocation: Invocation,
) -> JobReply<J::Detail>
where
    J: Job,
    R: ReportJob + Sync,
    N: Notify + Sync,
{
    let job_id = J::job_id(&request).to_owned();
    let key = format!("job/{job_id}");
    let mut reply = None;
    let seen = &mut reply;
    let request = &request;
    let claimed = answerer
        .idempotency()
        .once(&key, &invocation.deadline, |by| async move {
            let answered = Box::pin(answer_guarded(
                job,
                jobs,
                answerer,
                request,
                by,
                invocation.now,
            ))
            .await;
            // Neither answered nor failed: give the claim back, so a redelivery still
            // waiting for it tries, rather than acknowledging a job nobody answered.
            let unanswered = matches!(
                answered,
                JobReply::Unanswered {
                    failed_job: false,
                    ..
                }
            );
            *seen = Some(answered);
            if unanswered {
                return Err(Error::OutOfTime("answering the job"));
            }
            Ok(())
        })
        .await;
    match claimed {
        Once::Ran(_) => reply.unwrap_or(JobReply::Unanswered {
            job_id,
            reason: "the answering path did not finish".into(),
            failed_job: false,
        }),
        Once::AlreadyDone => {
            tracing::info!(
                job_id,
                "this job was already answered (a duplicate delivery); acknowledging without answering again"
            );
            JobReply::Duplicate {
                job_id,
                reason: None,
            }
        }
        Once::Held { .. } => {
            tracing::warn!(
                job_id,
                "another invocation is still answering this job; leaving it to that one"
            );
            JobReply::Duplicate {
                job_id,
                reason: Some("being answered by another invocation".into()),
            }
        }
    }
}

/// The answering path, which never fails the invocation: when it errs, panics or hangs, the
/// job is failed with the reason (should an answer already have landed, CodePipeline keeps
/// that one) and a person is told.
async fn answer_guarded<J, R, N>(
    job: &J,
    jobs: &R,
    answerer: &Answerer<N>,
    request: &J::Request,
    deadline: Deadline,
    now: i64,
) -> JobReply<J::Detail>
where
    J: Job,
    R: ReportJob + Sync,
    N: Notify + Sync,
{
    let job_id = J::job_id(request);
    let inner = deadline.less(FALLBACK_RESERVE);
    let why = match guarded(
        &inner,
        Box::pin(decide_and_report(job, jobs, answerer, request, inner, now)),
    )
    .await
    {
        Guarded::Finished(Ok(reply)) => return reply,
        Guarded::Finished(Err(e)) => e.to_string(),
        Guarded::Panicked => "internal error while answering; see the function's log".into(),
        Guarded::OutOfTime => "ran out of time while answering".into(),
    };
    tracing::error!(job_id, reason = %why, "the job path failed; failing the job and acknowledging the invocation so its event stays out of the dead-letter queue");
    let failure = JobOutcome::Failed {
        kind: FailureKind::JobFailed,
        message: format!("{} could not finish answering: {why}", J::WHO),
    };
    let reported = jobs.report(job_id, failure, &deadline.half_left()).await;
    if reported.is_err() {
        crate::metrics::count(&crate::metrics::REPORT_FAILURES, &[]);
    }
    if let Ok(Reported::AlreadyReported) = reported {
        // An answer landed before the guard fired (a success, say, and then a slow post):
        // CodePipeline keeps it, so "the job is failed" would be false, and would reach
        // on-call through SNS while Slack is the thing that is down.
        tracing::warn!(job_id, reason = %why, "the answering path did not finish, but the job already has its answer; not telling a failure");
        return JobReply::Unanswered {
            job_id: job_id.to_owned(),
            reason: why,
            failed_job: true,
        };
    }
    let consequence = match &reported {
        Ok(_) => "the job is failed".to_owned(),
        Err(e) => format!(
            "the job could not be failed either ({e}): the stage waits until CodePipeline times the action out"
        ),
    };
    let notice = job.unanswered(
        request,
        format!("could not answer CodePipeline job {job_id}: {why}; {consequence}"),
    );
    if let Err(e) = answerer
        .notifier()
        .notify(&notice, &deadline.less(ANSWER_RESERVE))
        .await
        .into_result()
    {
        tracing::error!(job_id, error = %e, "notification failed");
    }
    JobReply::Unanswered {
        job_id: job_id.to_owned(),
        reason: why,
        failed_job: reported.is_ok(),
    }
}

/// Decides within the work share (the deadline less `REPORT_MARGIN`), then reports once and
/// notifies within the rest.
async fn decide_and_report<J, R, N>(
    job: &J,
    jobs: &R,
    answerer: &Answerer<N>,
    request: &J::Request,
    deadline: Deadline,
    now: i64,
) -> Result<JobReply<J::Detail>, Error>
where
    J: Job,
    R: ReportJob + Sync,
    N: Notify + Sync,
{
    let job_id = J::job_id(request);
    let work = deadline.less(job.report_margin());
    let evaluation = match guarded(&work, job.evaluate(request, &work, now)).await {
        Guarded::Finished(evaluation) => evaluation,
        Guarded::OutOfTime => job.unfinished(request, Unfinished::OutOfTime, now),
        Guarded::Panicked => job.unfinished(request, Unfinished::Panicked, now),
    };
    let JobAnswer {
        outcome,
        notification,
        wanted,
        detail,
    } = job.conclude(request, evaluation, &work, now).await;
    let result = match &outcome {
        JobOutcome::InProgress { .. } => "continue",
        JobOutcome::Succeeded { .. } => "succeeded",
        JobOutcome::Failed { message, .. } => {
            tracing::warn!(job_id, reason = %message, "failing the job");
            "failed"
        }
    };
    let notice = ReportNotice {
        key: job_id.to_owned(),
        subject: job.subject(request),
        if_unreported: J::IF_UNREPORTED,
        notification,
        wanted,
        // Only a final answer is posted after "already reported"; a continuation is not one.
        decisive: result != "continue",
        // The job's event carries artifactCredentials: never let it reach the DLQ.
        lambda_retries: false,
    };
    // Reporting and notifying end before the guard around them fires, so a slow post is
    // cut short by its own deadline, never taken for an unanswered job.
    let answered = answerer
        .answer_job(
            jobs,
            job_id,
            outcome,
            notice,
            &deadline.less(ANSWER_RESERVE),
        )
        .await?;
    Ok(JobReply::Reported {
        result,
        detail,
        reported: answered.reported_name(),
        notified: answered.notified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::Idempotency;
    use crate::message::{Message, Mrkdwn};
    use crate::notifier::{ChannelOutcome, DeliveryReport};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct PassingJob;

    impl Job for PassingJob {
        type Request = String;
        type Evaluation = ();
        type Detail = ();
        const WHO: &'static str = "the test job";
        const IF_UNREPORTED: &'static str = "the action waits";

        fn job_id(request: &String) -> &str {
            request
        }
        fn subject(&self, request: &String) -> String {
            format!("CodePipeline job {request}")
        }
        fn report_margin(&self) -> Duration {
            Duration::from_secs(1)
        }
        async fn evaluate(&self, _: &String, _: &Deadline, _: i64) {}
        fn unfinished(&self, _: &String, _: Unfinished, _: i64) {}
        async fn conclude(&self, _: &String, _: (), _: &Deadline, _: i64) -> JobAnswer<()> {
            JobAnswer {
                outcome: JobOutcome::Succeeded {
                    summary: "PASS".into(),
                    output_variables: BTreeMap::new(),
                },
                notification: notice("PASS"),
                wanted: true,
                detail: (),
            }
        }
        fn unanswered(&self, _: &String, why: String) -> Notification {
            notice(&why)
        }
    }

    fn notice(text: &str) -> Notification {
        Notification::new("test", Message::new(Mrkdwn::from_untrusted(text)))
    }

    /// CodePipeline as it behaves: the first result for a job is kept, any later one is
    /// refused with InvalidJobStateException (read as AlreadyReported).
    #[derive(Default)]
    struct Pipeline {
        results: Mutex<Vec<&'static str>>,
    }

    impl ReportJob for Pipeline {
        async fn report(
            &self,
            _: &str,
            outcome: JobOutcome,
            _: &Deadline,
        ) -> Result<Reported, Error> {
            let mut results = self.results.lock().unwrap();
            results.push(match outcome {
                JobOutcome::Succeeded { .. } => "success",
                JobOutcome::Failed { .. } => "failure",
                JobOutcome::InProgress { .. } => "continue",
            });
            Ok(if results.len() == 1 {
                Reported::Recorded
            } else {
                Reported::AlreadyReported
            })
        }
    }

    /// A Slack that never answers: each post takes all the time it is given, and returns a
    /// moment after it (a request in flight is cut at its deadline, then its error read).
    #[derive(Default)]
    struct HangingSlack {
        posted: Mutex<Vec<String>>,
    }

    impl Notify for HangingSlack {
        async fn notify(&self, n: &Notification, deadline: &Deadline) -> DeliveryReport {
            self.posted
                .lock()
                .unwrap()
                .push(n.slack.text.text().to_owned());
            tokio::time::sleep(deadline.remaining() + Duration::from_millis(100)).await;
            DeliveryReport {
                slack: ChannelOutcome::Failed(Error::OutOfTime("posting")),
                sns: ChannelOutcome::NotConfigured,
            }
        }
    }

    #[tokio::test]
    async fn a_job_that_succeeded_is_never_told_as_failed_when_its_post_hangs() {
        let pipeline = Pipeline::default();
        let answerer = Answerer::new(HangingSlack::default(), Idempotency::in_memory("test"));
        let invocation = Invocation {
            request_id: "r-1".into(),
            deadline: Deadline::after(Duration::from_secs(4)),
            now: 0,
        };
        let reply = answer(
            &PassingJob,
            &pipeline,
            &answerer,
            "job-1".into(),
            invocation,
        )
        .await;
        assert_eq!(*pipeline.results.lock().unwrap(), ["success"]);
        let posted = answerer.notifier().posted.lock().unwrap().clone();
        assert_eq!(posted.len(), 1, "only the verdict was posted: {posted:?}");
        assert!(posted[0].contains("PASS"), "{posted:?}");
        assert!(
            matches!(
                reply,
                JobReply::Reported {
                    result: "succeeded",
                    ..
                }
            ),
            "{reply:?}"
        );
    }
}
