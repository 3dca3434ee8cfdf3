//! A CodePipeline job: the migration launched on the first invocation, looked at on each
//! continuation, and the job answered with its true outcome — `TASK_ARN` and `EXIT_CODE` when it
//! succeeded, the reasons and the log tail when it failed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use shared::invocation::job::{Job, JobAnswer, Unfinished};
use shared::jobs::{FailureKind, JobOutcome, ReportJob};
use shared::metrics;
use shared::notifier::{Notification, Notify};
use shared::text::human_duration;
use shared::{Deadline, Error};

use crate::app::Runner;
use crate::config::Config;
use crate::continuation::Continuation;
use crate::ecs::{Cluster, LogTail};
use crate::event::{JobRequest, Trigger};
use crate::judge::TaskOutcome;
use crate::launch::{Launched, TRIGGER_TAG};
use crate::render::{failure_message, render_outcome, render_problem};
use crate::task::{Task, task_id};

/// CodePipeline's failure message limit (PutJobFailureResult `failureDetails.message`).
const MAX_JOB_MESSAGE: usize = 5000;

/// The runner adds nothing of its own to a job's reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoDetail {}

/// The clocks a running job's task is watched by (seconds since the epoch).
#[derive(Clone, Copy)]
struct Times {
    launched: i64,
    job_started: i64,
    now: i64,
}

/// What a job's answer will be, before it is sent.
pub enum JobStep {
    Continue {
        token: Continuation,
        summary: String,
        task: Option<String>,
    },
    /// The task ended (or was stopped). Its STOPPED event tells people, as for every task;
    /// `tell` is for what no event will say (a StopTask that failed).
    Finished {
        outcome: Box<TaskOutcome>,
        tell: bool,
    },
    Broken(FailureKind, String),
}

impl<C, L, J, N> Job for Runner<C, L, J, N>
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
        self.job_step(job, deadline, now).await
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
        let cluster_at = self.cluster_at(self.config.as_ref().ok());
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
                    &cluster_at,
                );
                let outcome = JobOutcome::InProgress {
                    continuation_token: token.token(),
                    summary,
                };
                (outcome, n, false)
            }
            JobStep::Finished { outcome: o, tell } => {
                let n = render_outcome(&o, Some(&subject), &cluster_at);
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
                    &cluster_at,
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
            &self.cluster_at(self.config.as_ref().ok()),
        )
    }
}

impl<C: Cluster + Sync, L: LogTail + Sync, J, N> Runner<C, L, J, N> {
    async fn job_step(&self, job: &JobRequest, deadline: &Deadline, now: i64) -> JobStep {
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                return JobStep::Broken(
                    FailureKind::ConfigurationError,
                    format!("configuration error: {why}"),
                );
            }
        };
        let command = match &job.parameters {
            Ok(c) => c.clone(),
            Err(why) => return JobStep::Broken(FailureKind::ConfigurationError, why.clone()),
        };
        if command.is_some() && !config.allow_command_override {
            return JobStep::Broken(
                FailureKind::ConfigurationError,
                "UserParameters overrides the command, but ALLOW_COMMAND_OVERRIDE is false; nothing was launched".into(),
            );
        }
        let max = config.max_runtime.as_secs() as i64;
        let state = match job.continuation.as_deref() {
            None => Continuation::waiting(&job.job_id, now, 0),
            Some(token) => match Continuation::parse(token) {
                Some(state) => state,
                None => {
                    return JobStep::Broken(
                        FailureKind::JobFailed,
                        "the continuation token is not one this function issued; nothing was launched"
                            .into(),
                    );
                }
            },
        };
        match state {
            Continuation::Waiting {
                origin,
                since,
                tries,
                ..
            } if now.saturating_sub(since) >= max => {
                // A launch whose invocation ran out of time may have started the task after all.
                let trigger = Trigger::Job(origin.clone());
                match self.own_task(config, &trigger, deadline).await {
                    Ok(Some(mine)) => {
                        // Its own runtime counts from its creation, not from the wait.
                        let launched = mine.created_at.map(|ms| ms / 1000).unwrap_or(now);
                        let times = Times {
                            launched,
                            job_started: since,
                            now,
                        };
                        self.watch(config, &origin, &mine.task_arn, times, deadline)
                            .await
                    }
                    Ok(None) => JobStep::Broken(
                        FailureKind::JobFailed,
                        format!(
                            "the migration did not start within MAX_RUNTIME ({}): another migration kept running, or ECS had no capacity; no task of this job is running",
                            human_duration(config.max_runtime)
                        ),
                    ),
                    Err(e) => JobStep::Continue {
                        token: Continuation::waiting(&origin, since, tries),
                        summary: format!(
                            "could not check for a task this job may have launched ({e}); checking again"
                        ),
                        task: None,
                    },
                }
            }
            Continuation::Waiting {
                origin,
                since,
                tries,
                ..
            } => {
                self.start_for_job(config, &origin, command, since, tries, now, deadline)
                    .await
            }
            Continuation::Running {
                origin,
                task,
                launched,
                job_started,
                ..
            } => {
                let times = Times {
                    launched,
                    job_started: job_started.unwrap_or(launched),
                    now,
                };
                self.watch(config, &origin, &task, times, deadline).await
            }
        }
    }

    /// This request's task, if it is running (found by its trigger tag).
    async fn own_task(
        &self,
        config: &Config,
        trigger: &Trigger,
        deadline: &Deadline,
    ) -> Result<Option<Task>, Error> {
        let tag = trigger.tag();
        Ok(self
            .ports
            .cluster
            .active_tasks(&config.cluster, &config.started_by, deadline)
            .await?
            .into_iter()
            .find(|t| t.tags.get(TRIGGER_TAG) == Some(&tag)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_for_job(
        &self,
        config: &Config,
        origin: &str,
        command: Option<Vec<String>>,
        since: i64,
        tries: u32,
        now: i64,
        deadline: &Deadline,
    ) -> JobStep {
        let trigger = Trigger::Job(origin.to_owned());
        let wait = |summary: String, task: Option<String>, tries: u32| JobStep::Continue {
            token: Continuation::waiting(origin, since, tries),
            summary,
            task,
        };
        match self
            .launch(config, &trigger, command, None, tries, deadline)
            .await
        {
            Ok(Launched::Running { task, .. }) => JobStep::Continue {
                token: Continuation::running(origin, &task.task_arn, now, since),
                summary: format!("Migration task {} started", task.id()),
                task: Some(task.task_arn),
            },
            Ok(Launched::Busy {
                other,
                family,
                attempts,
            }) => wait(
                format!(
                    "Waiting: migration task {} of {family} is still running; this one starts after it stops",
                    other.id()
                ),
                Some(other.task_arn),
                attempts,
            ),
            Ok(Launched::NoCapacity { why, attempts }) => wait(
                format!("Waiting: ECS has no capacity yet ({why})"),
                None,
                attempts,
            ),
            Ok(Launched::Refused(why)) => {
                JobStep::Broken(FailureKind::JobFailed, format!("nothing launched: {why}"))
            }
            Err(e) if e.is_retryable() => wait(format!("Waiting: {e}; trying again"), None, tries),
            Err(e) => JobStep::Broken(FailureKind::JobFailed, format!("nothing launched: {e}")),
        }
    }

    async fn watch(
        &self,
        config: &Config,
        origin: &str,
        task_arn: &str,
        times: Times,
        deadline: &Deadline,
    ) -> JobStep {
        let Times {
            launched,
            job_started,
            now,
        } = times;
        let elapsed = Duration::from_secs(now.saturating_sub(launched).max(0) as u64);
        let action_age = Duration::from_secs(now.saturating_sub(job_started).max(0) as u64);
        let keep = |summary: String| JobStep::Continue {
            token: Continuation::running(origin, task_arn, launched, job_started),
            summary,
            task: Some(task_arn.to_owned()),
        };
        let task = match self
            .ports
            .cluster
            .describe(&config.cluster, task_arn, deadline)
            .await
        {
            Ok(Some(t)) => t,
            Ok(None) => {
                return JobStep::Broken(
                    FailureKind::JobFailed,
                    format!(
                        "task {task_arn} is not known in cluster {}: it stopped over an hour ago, or the continuation token names a task this function did not start",
                        config.cluster
                    ),
                );
            }
            Err(e) if e.is_retryable() && elapsed < config.max_runtime => {
                return keep(format!(
                    "could not read the task's state ({e}); trying again"
                ));
            }
            Err(e) => return JobStep::Broken(FailureKind::JobFailed, e.to_string()),
        };
        if task.started_by.as_deref() != Some(config.started_by.as_str()) {
            return JobStep::Broken(
                FailureKind::JobFailed,
                format!(
                    "task {task_arn} was not started by this function (startedBy is not {}); not judging it",
                    config.started_by
                ),
            );
        }
        if task.is_stopped() {
            let outcome = self.outcome_of(config, &task, None, deadline).await;
            return JobStep::Finished {
                outcome: Box::new(outcome),
                tell: false,
            };
        }
        // A wait for a launch and the run each count up to MAX_RUNTIME, so together they can
        // outlast the pipeline action: the task is stopped before CodePipeline gives up on
        // the job, which would leave it running with nobody told.
        let out_of_action = action_age >= shared::jobs::longest_job();
        if elapsed >= config.max_runtime || out_of_action {
            let reason = if elapsed >= config.max_runtime {
                format!(
                    "ran longer than MAX_RUNTIME ({})",
                    human_duration(config.max_runtime)
                )
            } else {
                format!(
                    "the pipeline action has run for {}, and CodePipeline fails a Lambda invoke action after 24 hours",
                    human_duration(action_age)
                )
            };
            let stopped = self
                .ports
                .cluster
                .stop(
                    &config.cluster,
                    task_arn,
                    &format!("migration-runner: {reason}"),
                    deadline,
                )
                .await;
            // Stopped, its STOPPED event tells people; not stopped, no event will.
            let (timed_out, tell) = match stopped {
                Ok(()) => (format!("{reason}; the runner stopped it"), false),
                Err(e) => (
                    format!("{reason}; stopping it failed ({e}), so it may still be running"),
                    true,
                ),
            };
            tracing::warn!(task = task_arn, reason = %timed_out, "migration timed out");
            let outcome = self
                .outcome_of(config, &task, Some(timed_out), deadline)
                .await;
            return JobStep::Finished {
                outcome: Box::new(outcome),
                tell,
            };
        }
        keep(format!(
            "Migration task {} is {} after {}",
            task.id(),
            task.last_status,
            human_duration(elapsed)
        ))
    }
}
