//! A CodePipeline job: the migration launched on the first invocation, looked at on each
//! continuation, and the job answered with its true outcome — `TASK_ARN` and `EXIT_CODE` when it
//! succeeded, the reasons and the log tail when it failed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use shared::Deadline;
use shared::invocation::job::{Job, JobAnswer, Unfinished};
use shared::jobs::{FailureKind, JobOutcome, ReportJob};
use shared::metrics;
use shared::notifier::{Notification, Notify};

use crate::ecs::{Cluster, LogTail};
use crate::entry::JobRequest;
use crate::handler::{Continuation, Handler, JobStep, MAX_JOB_MESSAGE};
use crate::render::{failure_message, render_outcome, render_problem};
use crate::task::task_id;

/// The runner adds nothing of its own to a job's reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoDetail {}

impl<C, L, J, N> Job for Handler<C, L, J, N>
where
    C: Cluster + Sync,
    L: LogTail + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    type Request = JobRequest;
    type Evaluation = JobStep;
    type Detail = NoDetail;

    const WHO: &'static str = "the migration runner";
    const IF_UNREPORTED: &'static str =
        "the pipeline's migration action waits until CodePipeline times it out";

    fn job_id(request: &JobRequest) -> &str {
        &request.job_id
    }

    fn subject(&self, request: &JobRequest) -> String {
        format!("CodePipeline job {}", request.job_id)
    }

    fn report_margin(&self) -> Duration {
        self.margin()
    }

    async fn evaluate(&self, job: &JobRequest, deadline: &Deadline, now: i64) -> JobStep {
        Box::pin(self.job_step(job, deadline, now)).await
    }

    fn unfinished(&self, job: &JobRequest, why: Unfinished, now: i64) -> JobStep {
        match why {
            // Nothing is lost by asking to be invoked again: a task this job launched is
            // found again by its trigger tag, and the token it had is kept.
            Unfinished::OutOfTime => JobStep::Continue {
                token: job
                    .continuation
                    .as_deref()
                    .and_then(Continuation::parse)
                    .unwrap_or_else(|| Continuation::waiting(&job.job_id, now, 0)),
                summary: "this check did not finish in time; checking again".into(),
                task: None,
            },
            Unfinished::Panicked => JobStep::Broken(
                FailureKind::JobFailed,
                "internal error while running the migration; see the function's log".into(),
            ),
        }
    }

    async fn conclude(
        &self,
        job: &JobRequest,
        step: JobStep,
        _deadline: &Deadline,
        _now: i64,
    ) -> JobAnswer<NoDetail> {
        let place = self.place(self.setup.as_ref().ok());
        let subject = self.subject(job);
        let (outcome, notification, wanted) = match step {
            JobStep::Continue {
                token,
                summary,
                task,
            } => {
                tracing::info!(job_id = %job.job_id, summary, "not finished; CodePipeline will invoke again");
                let n = render_problem(
                    &format!("Migration for {subject} still in progress"),
                    &summary,
                    task.as_deref(),
                    &place,
                );
                let outcome = JobOutcome::InProgress {
                    continuation_token: token.token(),
                    summary,
                };
                (outcome, n, false)
            }
            JobStep::Finished { outcome: o, tell } => {
                let n = render_outcome(&o, Some(&subject), &place);
                let outcome = if o.succeeded() {
                    let exit = o
                        .judgement
                        .exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_default();
                    JobOutcome::Succeeded {
                        summary: format!(
                            "Migration task {} succeeded (exit {exit})",
                            task_id(&o.task_arn)
                        ),
                        output_variables: BTreeMap::from([
                            ("TASK_ARN".to_owned(), o.task_arn.clone()),
                            ("EXIT_CODE".to_owned(), exit),
                        ]),
                    }
                } else {
                    tracing::info!(job_id = %job.job_id, task = %o.task_arn, reasons = ?o.reasons(), "the migration failed");
                    JobOutcome::Failed {
                        kind: FailureKind::JobFailed,
                        message: failure_message(&o, MAX_JOB_MESSAGE),
                    }
                };
                (outcome, n, tell)
            }
            JobStep::Broken(kind, message) => {
                if kind == FailureKind::ConfigurationError {
                    metrics::count(&metrics::CONFIG_ERRORS, &[]);
                }
                let n = render_problem(
                    &format!("Migration failed for {subject}"),
                    &message,
                    None,
                    &place,
                );
                (JobOutcome::Failed { kind, message }, n, true)
            }
        };
        JobAnswer {
            outcome,
            notification,
            wanted,
            detail: NoDetail {},
        }
    }

    fn unanswered(&self, job: &JobRequest, why: String) -> Notification {
        render_problem(
            &format!("Migration job {} could not be answered", job.job_id),
            &why,
            None,
            &self.place(self.setup.as_ref().ok()),
        )
    }
}
