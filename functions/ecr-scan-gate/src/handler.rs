//! One input in: a verdict, and for a pipeline job exactly one report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shared::config::LoadError;
use shared::dedupe::RecentEvents;
use shared::guard::{Guarded, guarded};
use shared::jobs::{FailureKind, JobOutcome, ReportJob};
use shared::notifier::Notify;
use shared::secrets::Secrets;
use shared::{Deadline, Error};

use crate::config::{Config, NotifyOn, parse_waivers};
use crate::entry::{Entry, ImageRef, JobRequest, ScanEvent, parse};
use crate::policy::{Policy, Severity};
use crate::registry::{Promotion, Registry};
use crate::render::{Place, render};
use crate::verdict::{Verdict, decide};

/// Kept back from the Lambda deadline so the job result can always be sent.
const REPORT_MARGIN: Duration = Duration::from_secs(5);

pub struct Handler<R, J, N> {
    pub config: Config,
    pub registry: R,
    pub jobs: J,
    pub notifier: N,
    /// Reads `WAIVERS` when it is a reference.
    pub secrets: Option<Arc<Secrets>>,
    pub region: String,
    recent: RecentEvents,
}

/// What a job's answer will be, before it is sent.
enum Decision {
    Final(Box<Verdict>),
    /// Transient: ask CodePipeline to invoke again.
    Wait(String),
    Broken(FailureKind, String),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continuation {
    since: i64,
}

impl<R: Registry, J: ReportJob, N: Notify> Handler<R, J, N> {
    pub fn new(
        config: Config,
        registry: R,
        jobs: J,
        notifier: N,
        secrets: Option<Arc<Secrets>>,
        region: String,
    ) -> Self {
        Self {
            config,
            registry,
            jobs,
            notifier,
            secrets,
            region,
            recent: RecentEvents::new(512),
        }
    }

    /// `now` is seconds since the epoch (a parameter so tests can move time).
    pub async fn handle(
        &self,
        event: &Value,
        deadline: Deadline,
        now: i64,
    ) -> Result<Value, Error> {
        match parse(event) {
            // Boxed: the two futures are deep, and unboxed they overflow the compiler's
            // layout query depth once the runtime wraps them.
            Ok(Entry::Job(job)) => Box::pin(self.job(job, deadline, now)).await,
            Ok(Entry::Scan(scan)) => Box::pin(self.scan_event(scan, deadline, now)).await,
            Err(why) => {
                tracing::warn!(reason = %why.0, "input ignored");
                Ok(json!({"outcome": "ignored", "reason": why.0}))
            }
        }
    }

    async fn policy(&self, deadline: &Deadline) -> Result<Policy, Error> {
        let waivers = self
            .config
            .waivers
            .load(self.secrets.as_deref(), deadline, parse_waivers)
            .await
            .map_err(|e| match e {
                // Kept as it came: whether a retry may help is the store's to say.
                LoadError::Unreadable { error, .. } => error,
                LoadError::Invalid { from, why } => {
                    Error::bad_input(format!("waivers in {from}: {why}"))
                }
            })?
            .into_owned();
        Ok(Policy {
            max: self.config.max.clone(),
            ignore_unfixed: self.config.ignore_unfixed,
            waivers,
        })
    }

    /// `settle`: how long after an enhanced scan completes before its findings are trusted.
    /// Only a pipeline job can afford to wait (it is invoked again); a scan event that
    /// decided PENDING would never be decided, so events judge at once.
    async fn judge(
        &self,
        image: &ImageRef,
        deadline: &Deadline,
        now: i64,
        settle: Duration,
    ) -> Result<Verdict, Error> {
        let policy = self.policy(deadline).await?;
        let scan = self.registry.scan(image, deadline).await?;
        Ok(decide(scan, &image.repository, &policy, now, settle))
    }

    async fn promote(&self, verdict: &Verdict, deadline: &Deadline) -> Option<(String, Promotion)> {
        let (Verdict::Pass { image, .. }, Some(tag)) = (verdict, &self.config.pass_tag) else {
            return None;
        };
        match self
            .registry
            .promote(&image.repository, &image.digest, tag, deadline)
            .await
        {
            Ok(p) => {
                if let Promotion::TagTaken(why) = &p {
                    tracing::warn!(tag, reason = %why, "could not add the pass tag");
                }
                Some((tag.clone(), p))
            }
            Err(e) => {
                tracing::error!(tag, error = %e, "tagging the passed image failed");
                Some((tag.clone(), Promotion::TagTaken(e.to_string())))
            }
        }
    }

    fn wants(&self, verdict: &Verdict) -> bool {
        match verdict {
            Verdict::Fail { .. } => true,
            Verdict::Pass { .. } => self.config.notify_on == NotifyOn::All,
            Verdict::Pending { .. } => false,
        }
    }

    async fn scan_event(
        &self,
        scan: ScanEvent,
        deadline: Deadline,
        now: i64,
    ) -> Result<Value, Error> {
        if !scan.id.is_empty() && self.recent.seen(&scan.id) {
            return Ok(
                json!({"outcome": "skipped", "reason": "already handled by this container"}),
            );
        }
        tracing::info!(image = %scan.image.describe(), status = %scan.status, enhanced = scan.enhanced, counts = ?scan.counts, "scan event");
        let verdict = self
            .judge(&scan.image, &deadline, now, Duration::ZERO)
            .await?;
        let outcome = json!({"outcome": "judged", "verdict": verdict.name()});
        if let Verdict::Pending { reason } = &verdict {
            tracing::info!(image = %scan.image.describe(), reason, "not decided yet; a later scan event will decide");
            return Ok(outcome);
        }
        let promotion = self.promote(&verdict, &deadline).await;
        if self.wants(&verdict) {
            let place = Place {
                region: scan.region.as_deref().unwrap_or(&self.region),
                account: scan.account.as_deref().unwrap_or(""),
            };
            let n = render(
                &verdict,
                &scan.image.repository,
                &scan.image.describe(),
                &place,
                promotion.as_ref(),
            );
            self.notifier.notify(&n, &deadline).await.into_result()?;
        }
        if !scan.id.is_empty() {
            self.recent.record(&scan.id);
        }
        tracing::info!(image = %scan.image.describe(), verdict = verdict.name(), "verdict");
        Ok(outcome)
    }

    async fn decide_job(&self, job: &JobRequest, deadline: &Deadline, now: i64) -> Decision {
        let image = match &job.target {
            Ok(image) => image,
            Err(why) => return Decision::Broken(FailureKind::ConfigurationError, why.clone()),
        };
        let work = self.judge(image, deadline, now, self.config.findings_settle);
        match guarded(deadline, work).await {
            Guarded::OutOfTime => {
                Decision::Wait("the evaluation did not finish in this invocation".into())
            }
            Guarded::Panicked => Decision::Broken(
                FailureKind::JobFailed,
                "internal error while judging the image; see the function's log".into(),
            ),
            Guarded::Finished(Err(e)) if e.is_retryable() => {
                Decision::Wait(format!("transient error: {e}"))
            }
            Guarded::Finished(Err(e)) => Decision::Broken(FailureKind::JobFailed, e.to_string()),
            Guarded::Finished(Ok(Verdict::Pending { reason })) => Decision::Wait(reason),
            Guarded::Finished(Ok(verdict)) => Decision::Final(Box::new(verdict)),
        }
    }

    async fn job(&self, job: JobRequest, deadline: Deadline, now: i64) -> Result<Value, Error> {
        let work_deadline = deadline.less(REPORT_MARGIN);
        let since = match job
            .continuation
            .as_deref()
            .map(serde_json::from_str::<Continuation>)
        {
            None => Ok(now),
            Some(Ok(c)) => Ok(c.since),
            Some(Err(_)) => Err("unreadable continuation token"),
        };
        let decision = match since {
            Err(why) => Decision::Broken(FailureKind::JobFailed, why.into()),
            Ok(_) => self.decide_job(&job, &work_deadline, now).await,
        };
        let since = since.unwrap_or(now);
        let subject = job
            .target
            .as_ref()
            .map(|i| i.describe())
            .unwrap_or_else(|_| "(bad UserParameters)".into());
        let decision = match decision {
            Decision::Wait(reason)
                if now.saturating_sub(since) >= self.config.max_wait.as_secs() as i64 =>
            {
                Decision::Final(Box::new(Verdict::Fail {
                    image: None,
                    reasons: vec![format!(
                        "no decision after {} min (MAX_WAIT), failing closed: {reason}",
                        self.config.max_wait.as_secs() / 60
                    )],
                    evaluation: None,
                }))
            }
            other => other,
        };

        let (outcome, verdict, promotion) = match decision {
            Decision::Wait(reason) => {
                let token = serde_json::to_string(&Continuation { since }).unwrap_or_default();
                tracing::info!(job_id = %job.job_id, image = %subject, reason, "not decided yet; CodePipeline will invoke again");
                (
                    JobOutcome::InProgress {
                        continuation_token: token,
                        summary: format!("Waiting: {reason}"),
                    },
                    None,
                    None,
                )
            }
            Decision::Broken(kind, message) => (JobOutcome::Failed { kind, message }, None, None),
            Decision::Final(verdict) => {
                let verdict = *verdict;
                let promotion = self.promote(&verdict, &work_deadline).await;
                let outcome = match &verdict {
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
                        let summary = format!(
                            "PASS {}: {}",
                            subject,
                            crate::render::counts_line(&evaluation.after)
                        );
                        JobOutcome::Succeeded {
                            summary,
                            output_variables: vars,
                        }
                    }
                    Verdict::Fail { reasons, .. } => JobOutcome::Failed {
                        kind: FailureKind::JobFailed,
                        message: format!("FAIL {subject}: {}", reasons.join("; ")),
                    },
                    Verdict::Pending { .. } => unreachable_pending(),
                };
                (outcome, Some(verdict), promotion)
            }
        };
        let kind = match &outcome {
            JobOutcome::InProgress { .. } => "continue",
            JobOutcome::Succeeded { .. } => "succeeded",
            JobOutcome::Failed { .. } => "failed",
        };
        if let JobOutcome::Failed { message, .. } = &outcome {
            tracing::warn!(job_id = %job.job_id, image = %subject, message, "failing the job");
        }
        let reported = self.jobs.report(&job.job_id, outcome, &deadline).await?;
        if let Some(v) = verdict.as_ref().filter(|v| self.wants(v)) {
            let place = Place {
                region: &self.region,
                account: job.account.as_deref().unwrap_or(""),
            };
            let repository = job
                .target
                .as_ref()
                .map(|i| i.repository.clone())
                .unwrap_or_default();
            let n = render(v, &repository, &subject, &place, promotion.as_ref());
            // The job result is what matters: a notification failure is logged, not retried.
            if let Err(e) = self.notifier.notify(&n, &deadline).await.into_result() {
                tracing::error!(job_id = %job.job_id, error = %e, "verdict notification failed");
            }
        }
        Ok(
            json!({"outcome": "reported", "result": kind, "verdict": verdict.as_ref().map(Verdict::name), "reported": format!("{reported:?}")}),
        )
    }
}

/// `decide_job` turns Pending into `Decision::Wait`, so a final verdict is never pending;
/// answered with a failure rather than a panic should that ever change.
fn unreachable_pending() -> JobOutcome {
    JobOutcome::Failed {
        kind: FailureKind::JobFailed,
        message: "internal error: a pending verdict reached the final report".into(),
    }
}
