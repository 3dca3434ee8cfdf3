//! A CodePipeline job: the image named in `UserParameters` judged, PASS succeeding the job with
//! output variables (and `PASS_TAG`), FAIL failing it with the reasons, and PENDING asking
//! CodePipeline to invoke again — until `MAX_WAIT`, past which the gate fails closed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use shared::Deadline;
use shared::invocation::job::{Job, JobAnswer, Unfinished};
use shared::jobs::{FailureKind, JobOutcome, ReportJob};
use shared::metrics;
use shared::notifier::{Notification, Notify};
use shared::report::DEFAULT_REPORT_MARGIN;

use crate::app::{Gate, wants};
use crate::event::JobRequest;
use crate::policy::{Severity, counts_line};
use crate::registry::Registry;
use crate::render::{RegistryLocation, render, render_failure};
use crate::verdict::{VERDICTS, Verdict, record_verdict};

/// What a job's answer will be, before it is sent.
pub enum Decision {
    Final(Box<Verdict>),
    /// Transient: ask CodePipeline to invoke again.
    Wait(String),
    Broken(FailureKind, String),
}

/// The state a job carries between invocations: when its first one came (`MAX_WAIT` counts
/// from there).
#[derive(serde::Serialize, serde::Deserialize)]
struct Continuation {
    since: i64,
}

/// The gate's own field in a job's reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobVerdict {
    pub verdict: Option<&'static str>,
}

impl<R, J, N> Gate<R, J, N> {
    /// When the job's first invocation came, from its continuation token; `Err` for a token
    /// this function did not issue.
    fn since(job: &JobRequest, now: i64) -> Result<i64, String> {
        match job
            .continuation
            .as_deref()
            .map(serde_json::from_str::<Continuation>)
        {
            None => Ok(now),
            Some(Ok(c)) => Ok(c.since),
            Some(Err(_)) => Err("unreadable continuation token".to_owned()),
        }
    }

    fn subject_of(job: &JobRequest) -> String {
        job.parameters
            .as_ref()
            .map(|i| i.describe())
            .unwrap_or_else(|_| "(bad UserParameters)".into())
    }

    fn registry_of<'a>(&'a self, job: &'a JobRequest) -> RegistryLocation<'a> {
        RegistryLocation {
            region: &self.region,
            account: job.account.as_deref().unwrap_or(""),
        }
    }
}

impl<R, J, N> Job for Gate<R, J, N>
where
    R: Registry + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    type Request = JobRequest;
    type Evaluation = (Decision, i64);
    type Detail = JobVerdict;

    const WHO: &'static str = "the scan gate";
    const IF_UNREPORTED: &'static str =
        "the pipeline's scan-gate action waits until CodePipeline times it out";

    fn job_id(request: &JobRequest) -> &str {
        &request.job_id
    }

    fn subject(&self, request: &JobRequest) -> String {
        format!(
            "CodePipeline job {} for {}",
            request.job_id,
            Self::subject_of(request)
        )
    }

    fn report_margin(&self) -> Duration {
        self.config
            .as_ref()
            .map(|c| c.report_margin)
            .unwrap_or(DEFAULT_REPORT_MARGIN)
    }

    async fn evaluate(&self, job: &JobRequest, deadline: &Deadline, now: i64) -> (Decision, i64) {
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                let why = format!("configuration error: {why}");
                return (Decision::Broken(FailureKind::ConfigurationError, why), now);
            }
        };
        let since = match Self::since(job, now) {
            Ok(since) => since,
            Err(why) => return (Decision::Broken(FailureKind::JobFailed, why), now),
        };
        let image = match &job.parameters {
            Ok(image) => image,
            Err(why) => {
                let why = why.clone();
                return (
                    Decision::Broken(FailureKind::ConfigurationError, why),
                    since,
                );
            }
        };
        metrics::context("Repository", &image.repository);
        let decision = match Box::pin(self.judge(config, image, deadline, now)).await {
            Err(e) if e.is_retryable() => Decision::Wait(format!("transient error: {e}")),
            Err(e) => Decision::Broken(FailureKind::JobFailed, e.to_string()),
            Ok(Verdict::Pending { reason }) => Decision::Wait(reason),
            Ok(verdict) => Decision::Final(Box::new(verdict)),
        };
        (decision, since)
    }

    fn unfinished(&self, job: &JobRequest, why: Unfinished, now: i64) -> (Decision, i64) {
        let since = Self::since(job, now).unwrap_or(now);
        let decision = match why {
            Unfinished::OutOfTime => {
                Decision::Wait("the evaluation did not finish in this invocation".into())
            }
            Unfinished::Panicked => Decision::Broken(
                FailureKind::JobFailed,
                "internal error while judging the image; see the function's log".into(),
            ),
        };
        (decision, since)
    }

    async fn conclude(
        &self,
        job: &JobRequest,
        (decision, since): (Decision, i64),
        deadline: &Deadline,
        now: i64,
    ) -> JobAnswer<JobVerdict> {
        let subject = Self::subject_of(job);
        // Waits past MAX_WAIT fail closed.
        let decision = match (decision, &self.config) {
            (Decision::Wait(reason), Ok(config))
                if now.saturating_sub(since) >= config.max_wait.as_secs() as i64 =>
            {
                Decision::Final(Box::new(Verdict::Fail {
                    image: None,
                    reasons: vec![format!(
                        "no decision after {} min (MAX_WAIT), failing closed: {reason}",
                        config.max_wait.as_secs() / 60
                    )],
                    evaluation: None,
                }))
            }
            (other, _) => other,
        };
        let (outcome, verdict, promotion) = match decision {
            Decision::Wait(reason) => {
                metrics::count(&VERDICTS, &[("Verdict", "PENDING")]);
                let token = serde_json::to_string(&Continuation { since }).unwrap_or_default();
                tracing::info!(job_id = %job.job_id, image = %subject, reason, "not decided yet; CodePipeline will invoke again");
                let outcome = JobOutcome::InProgress {
                    continuation_token: token,
                    summary: format!("Waiting: {reason}"),
                };
                (outcome, None, None)
            }
            Decision::Broken(kind, message) => {
                // Told to people as a failed verdict without an image: the pipeline stops
                // here either way, and the reason is what they need.
                let verdict = Verdict::Fail {
                    image: None,
                    reasons: vec![message.clone()],
                    evaluation: None,
                };
                record_verdict(&verdict);
                if kind == FailureKind::ConfigurationError {
                    metrics::count(&metrics::CONFIG_ERRORS, &[]);
                }
                (JobOutcome::Failed { kind, message }, Some(verdict), None)
            }
            Decision::Final(verdict) => {
                let verdict = *verdict;
                record_verdict(&verdict);
                let promotion = match &self.config {
                    Ok(config) => self.promote(config, &verdict, deadline).await,
                    Err(_) => None,
                };
                let outcome = final_outcome(&verdict, &subject);
                (outcome, Some(verdict), promotion)
            }
        };
        let repository = job
            .parameters
            .as_ref()
            .map(|i| i.repository.clone())
            .unwrap_or_default();
        let kind = match &outcome {
            JobOutcome::InProgress { .. } => "continue",
            JobOutcome::Succeeded { .. } => "succeeded",
            JobOutcome::Failed { .. } => "failed",
        };
        // A job still waiting has no verdict to tell; should its report be refused, the
        // notification says so and what was being waited for.
        let shown = verdict.clone().unwrap_or_else(|| Verdict::Pending {
            reason: format!("still being judged: {kind}"),
        });
        let wanted = match (&verdict, &self.config) {
            (Some(v), Ok(config)) => wants(config, v),
            (Some(_), Err(_)) => true,
            (None, _) => false,
        };
        JobAnswer {
            outcome,
            notification: render(
                &shown,
                &repository,
                &subject,
                &self.registry_of(job),
                promotion.as_ref(),
            ),
            wanted,
            detail: JobVerdict {
                verdict: verdict.as_ref().map(Verdict::name),
            },
        }
    }

    fn unanswered(&self, job: &JobRequest, why: String) -> Notification {
        let registry = RegistryLocation {
            region: &self.region,
            account: "",
        };
        render_failure(why, "", &format!("job {}", job.job_id), &registry)
    }
}

/// A final verdict as CodePipeline hears it: PASS with output variables, FAIL with reasons.
fn final_outcome(verdict: &Verdict, subject: &str) -> JobOutcome {
    match verdict {
        Verdict::Pass { image, evaluation } => {
            let mut vars = BTreeMap::from([
                ("VERDICT".to_owned(), "PASS".to_owned()),
                ("IMAGE_DIGEST".to_owned(), image.digest.clone()),
            ]);
            for s in [
                Severity::Critical,
                Severity::High,
                Severity::Medium,
                Severity::Low,
            ] {
                vars.insert(
                    s.name().to_owned(),
                    evaluation.after.get(&s).copied().unwrap_or(0).to_string(),
                );
            }
            vars.insert("WAIVED".into(), evaluation.waived.len().to_string());
            if !image.platforms.is_empty() {
                let names: Vec<&str> = image
                    .platforms
                    .iter()
                    .map(|p| p.platform.as_str())
                    .collect();
                vars.insert("PLATFORMS".into(), names.join(","));
            }
            let warned: Vec<&str> = evaluation
                .warnings
                .iter()
                .map(|w| w.rule.as_str())
                .collect();
            JobOutcome::Succeeded {
                summary: format!(
                    "PASS {subject}: {}{}",
                    counts_line(&evaluation.after),
                    if warned.is_empty() {
                        String::new()
                    } else {
                        format!("; warn rules that would block: {}", warned.join(", "))
                    }
                ),
                output_variables: vars,
            }
        }
        Verdict::Fail { reasons, .. } => JobOutcome::Failed {
            kind: FailureKind::JobFailed,
            message: format!("FAIL {subject}: {}", reasons.join("; ")),
        },
        // `evaluate` turns PENDING into a wait, so a final verdict is never pending; answered
        // with a failure rather than a panic should that ever change.
        Verdict::Pending { .. } => JobOutcome::Failed {
            kind: FailureKind::JobFailed,
            message: "internal error: a pending verdict reached the final report".into(),
        },
    }
}
