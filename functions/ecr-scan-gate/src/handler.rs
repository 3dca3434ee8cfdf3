//! One input in: a verdict, and for a pipeline job exactly one report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shared::guard::{Guarded, guarded};
use shared::idempotency::Idempotency;
use shared::jobs::{FailureKind, JobOutcome, ReportJob};
use shared::metrics;
use shared::notifier::Notify;
use shared::report::{Answer, Answerer, DEFAULT_REPORT_MARGIN};
use shared::secrets::Secrets;
use shared::{Deadline, Error};

use crate::config::{Config, NotifyOn, parse_waivers};
use crate::entry::{Entry, ImageRef, JobRequest, ScanEvent, parse};
use crate::floor::{Floors, Told};
use crate::policy::{Policy, Severity};
use crate::registry::Scan;
use crate::registry::{Listed, Promotion, Registry, Subject};
use crate::render::{Place, render, render_failure};
use crate::verdict::{EVENT_DECIDED_BY, Judged, Look, Verdict, combine, decide};

/// One look at what a tag or digest names.
struct Looked {
    verdict: Verdict,
    /// The digests of the images still waiting.
    waiting: Vec<String>,
    /// Platforms of an index that no scan event has told of and whose scan is recent
    /// enough that its event may still come (by name).
    unreported: Vec<String>,
}

/// What the gate was built with: a configuration, or why there is none.
pub type Setup = Result<Config, String>;

/// The key under which a broken configuration is notified, once per container, for scan
/// events (pipeline jobs are each failed and notified with the reason).
const CONFIG_ERROR_KEY: &str = "configuration-error";

/// Pauses between looks while a scan event's findings settle within one invocation.
const LOOK_AGAIN: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(10),
];

const VERDICTS: metrics::Metric = metrics::Metric::count("Verdicts");
const FINDINGS: metrics::Metric = metrics::Metric::count("Findings");
const WAIVERS_EXPIRED: metrics::Metric = metrics::Metric::count("WaiversExpired");

/// `Verdicts` {Verdict}, and for a judged image `Findings` {Severity} that still count
/// after waivers and `WaiversExpired`.
fn record_verdict(verdict: &Verdict) {
    metrics::count(&VERDICTS, &[("Verdict", verdict.name())]);
    let evaluation = match verdict {
        Verdict::Pass { evaluation, .. } => Some(evaluation),
        Verdict::Fail { evaluation, .. } => evaluation.as_ref(),
        Verdict::Pending { .. } => None,
    };
    if let Some(e) = evaluation {
        let mut by_severity: BTreeMap<String, f64> = BTreeMap::new();
        for f in &e.counted {
            *by_severity
                .entry(f.severity.judged_as().name().to_owned())
                .or_default() += 1.0;
        }
        for (severity, n) in by_severity {
            metrics::record(&FINDINGS, &[("Severity", &severity)], n);
        }
        if !e.expired.is_empty() {
            metrics::record(&WAIVERS_EXPIRED, &[], e.expired.len() as f64);
        }
    }
}

pub struct Handler<R, J, N> {
    pub setup: Setup,
    pub registry: R,
    pub jobs: J,
    /// Reports a job once, then notifies; also posts scan-event verdicts.
    pub answerer: Answerer<N>,
    /// Reads `WAIVERS` when it is a reference.
    pub secrets: Option<Arc<Secrets>>,
    pub region: String,
    /// What scan events counted, for the pipeline jobs that judge the same images.
    pub floors: Floors,
}

/// What a job's answer will be, before it is sent.
enum Decision {
    Final(Box<Verdict>),
    /// Transient: ask CodePipeline to invoke again.
    Wait(String),
    Broken(FailureKind, String),
}

/// What a scan event's image is, for judging.
enum EventSubject {
    Judge(Subject),
    /// Listed by an image index but not an image to run (a build attestation).
    NotJudged {
        index: String,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continuation {
    since: i64,
}

impl<R: Registry, J: ReportJob, N: Notify> Handler<R, J, N> {
    /// A bad configuration does not stop the function: a pipeline job that got no answer
    /// would wait for CodePipeline's timeout. Each job is failed with the reason instead.
    pub fn new(
        setup: Setup,
        registry: R,
        jobs: J,
        notifier: N,
        secrets: Option<Arc<Secrets>>,
        region: String,
        idempotency: Idempotency,
    ) -> Self {
        if let Err(why) = &setup {
            tracing::error!(reason = %why, "configuration error: every pipeline job will be failed with it until it is fixed");
        }
        Self {
            setup,
            registry,
            jobs,
            answerer: Answerer::new(notifier, idempotency),
            secrets,
            region,
            floors: Floors::new(None),
        }
    }

    /// Keeps scan events' counts where pipeline jobs read them (the idempotency table).
    pub fn with_floors(mut self, floors: Floors) -> Self {
        self.floors = floors;
        self
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
            Ok(Entry::Job(job)) => Ok(Box::pin(self.guarded_job(job, deadline, now)).await),
            Ok(Entry::Scan(scan)) => match &self.setup {
                Ok(config) => Box::pin(self.scan_event(config, scan, deadline, now)).await,
                Err(why) => Box::pin(self.unconfigured_scan(&scan, why, &deadline)).await,
            },
            Err(why) => {
                tracing::warn!(reason = %why.0, "input ignored");
                Ok(json!({"outcome": "ignored", "reason": why.0}))
            }
        }
    }

    async fn policy(&self, config: &Config, deadline: &Deadline) -> Result<Policy, Error> {
        let waivers = config
            .waivers
            .load(self.secrets.as_deref(), deadline, parse_waivers)
            .await
            .map_err(|e| e.into_error("waivers"))?
            .into_owned();
        Ok(Policy {
            max: config.max.clone(),
            ignore_unfixed: config.ignore_unfixed,
            waivers,
        })
    }

    /// The verdict on what `image` names now (one image, or every platform of an index).
    /// Pipeline jobs look this way: they are invoked again while it is pending.
    async fn judge(
        &self,
        config: &Config,
        image: &ImageRef,
        deadline: &Deadline,
        now: i64,
    ) -> Result<Verdict, Error> {
        let policy = self.policy(config, deadline).await?;
        let subject = self.registry.resolve(image, deadline).await?;
        // What scan events said about these images: a job never decides below it either.
        let told = self.told_about(&image.repository, &subject, deadline).await;
        let look = Look {
            now,
            settle: config.findings_settle,
            ..Look::default()
        };
        let looked = self
            .judge_subject(&policy, &image.repository, &subject, &told, look, deadline)
            .await?;
        Ok(looked.verdict)
    }

    /// What scan events said about each image of `subject` (kept in the table).
    async fn told_about(
        &self,
        repository: &str,
        subject: &Subject,
        deadline: &Deadline,
    ) -> Vec<(String, Told)> {
        let digests: Vec<&str> = match subject {
            Subject::Image { digest, .. } => vec![digest.as_str()],
            Subject::Index { platforms, .. } => {
                platforms.iter().map(|p| p.digest.as_str()).collect()
            }
        };
        let mut told = Vec::new();
        for digest in digests {
            if let Some(t) = self.floors.recall(repository, digest, deadline).await {
                told.push((digest.to_owned(), t));
            }
        }
        told
    }

    /// One look at `subject`, never deciding an image below what scan events said of it
    /// (`told`).
    async fn judge_subject(
        &self,
        policy: &Policy,
        repository: &str,
        subject: &Subject,
        told: &[(String, Told)],
        look: Look<'_>,
        deadline: &Deadline,
    ) -> Result<Looked, Error> {
        let told_of = |digest: &str| told.iter().find(|(d, _)| d == digest).map(|(_, t)| t);
        let look_at = |digest: &str| Look {
            told: told_of(digest),
            ..look
        };
        let judged = |digest: &str, tags: &[String]| Judged {
            repository: repository.to_owned(),
            digest: digest.to_owned(),
            tags: tags.to_vec(),
            platforms: Vec::new(),
            skipped: Vec::new(),
        };
        match subject {
            Subject::Image { digest, tags } => {
                let scan = self.registry.scan(repository, digest, deadline).await?;
                let verdict = decide(scan, judged(digest, tags), policy, &look_at(digest));
                let waiting = match verdict {
                    Verdict::Pending { .. } => vec![digest.clone()],
                    _ => Vec::new(),
                };
                Ok(Looked {
                    verdict,
                    waiting,
                    unreported: Vec::new(),
                })
            }
            Subject::Index {
                digest,
                tags,
                platforms,
                skipped,
            } => {
                let mut parts = Vec::with_capacity(platforms.len());
                let mut waiting = Vec::new();
                let mut unreported = Vec::new();
                for p in platforms {
                    let scan = self.registry.scan(repository, &p.digest, deadline).await?;
                    // A platform no event told of counts as reported once its scan is older
                    // than an event takes to be decided: its event came and went (or never
                    // will, for an image ECR had scanned before).
                    let completed_at = match &scan {
                        Scan::Complete { completed_at, .. } => *completed_at,
                        _ => None,
                    };
                    let recent = completed_at
                        .is_none_or(|done| look.now - done < EVENT_DECIDED_BY.as_secs() as i64);
                    if told_of(&p.digest).is_none() && recent {
                        unreported.push(p.name.clone());
                    }
                    let verdict = decide(scan, judged(&p.digest, &[]), policy, &look_at(&p.digest));
                    if matches!(verdict, Verdict::Pending { .. }) {
                        waiting.push(p.digest.clone());
                    }
                    parts.push((p.name.clone(), p.digest.clone(), verdict));
                }
                let mut index = judged(digest, tags);
                index.skipped = skipped.clone();
                Ok(Looked {
                    verdict: combine(index, parts),
                    waiting,
                    unreported,
                })
            }
        }
    }

    async fn promote(
        &self,
        config: &Config,
        verdict: &Verdict,
        deadline: &Deadline,
    ) -> Option<(String, Promotion)> {
        let (Verdict::Pass { image, .. }, Some(tag)) = (verdict, &config.pass_tag) else {
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
                Some((tag.clone(), Promotion::from_error(&e)))
            }
        }
    }

    fn wants(config: &Config, verdict: &Verdict) -> bool {
        match verdict {
            Verdict::Fail { .. } => true,
            Verdict::Pass { .. } => config.notify_on == NotifyOn::All,
            Verdict::Pending { .. } => false,
        }
    }

    async fn scan_event(
        &self,
        config: &Config,
        scan: ScanEvent,
        deadline: Deadline,
        now: i64,
    ) -> Result<Value, Error> {
        // The event's clock runs from the invocation's start, a wait for a claim included.
        let clock = Clock {
            now,
            started: std::time::Instant::now(),
        };
        if scan.id.is_empty() {
            return Box::pin(self.judge_scan_told(config, &scan, &deadline, clock)).await;
        }
        let scan = &scan;
        let judged = self
            .answerer
            .idempotency()
            .once_or_retry(&format!("event/{}", scan.id), &deadline, |by| async move {
                Box::pin(self.judge_scan_told(config, scan, &by, clock)).await
            })
            .await?;
        Ok(judged.unwrap_or_else(
            || json!({"outcome": "skipped", "reason": "already handled (a duplicate delivery)"}),
        ))
    }

    /// What a scan event's image is part of: the image itself, or, for an untagged image
    /// (a platform image pushed by `docker buildx`, whose tag is on the index), the newest
    /// image index that lists it, which is what a pipeline deploys and what PASS_TAG marks.
    async fn event_subject(
        &self,
        scan: &ScanEvent,
        deadline: &Deadline,
    ) -> Result<EventSubject, Error> {
        let subject = self.registry.resolve(&scan.image, deadline).await?;
        let Subject::Image { digest, tags } = &subject else {
            return Ok(EventSubject::Judge(subject));
        };
        if !tags.is_empty() || !scan.tags.is_empty() {
            return Ok(EventSubject::Judge(subject));
        }
        match self
            .registry
            .index_listing(&scan.image.repository, digest, deadline)
            .await?
        {
            Some(Listed::Platform(index)) => {
                tracing::info!(image = %scan.image.describe(), index = index.digest(), "the scanned image is a platform of an image index; judging the index whole");
                Ok(EventSubject::Judge(index))
            }
            Some(Listed::NotJudged { index }) => Ok(EventSubject::NotJudged { index }),
            None => Ok(EventSubject::Judge(subject)),
        }
    }

    /// [`Self::judge_scan`], with what stops it for good told to a person: a scan event that
    /// cannot be judged (the image gone, a role that may not read it, more findings than the
    /// gate reads) must not vanish in the log.
    async fn judge_scan_told(
        &self,
        config: &Config,
        scan: &ScanEvent,
        deadline: &Deadline,
        clock: Clock,
    ) -> Result<Value, Error> {
        let notify_by = *deadline;
        let looks_by = deadline.less(config.report_margin);
        match self
            .judge_scan(config, scan, &looks_by, &notify_by, clock)
            .await
        {
            Err(e) if !e.is_retryable() => {
                tracing::error!(image = %scan.image.describe(), error = %e, "the scan event could not be judged");
                record_verdict(&Verdict::Fail {
                    image: None,
                    reasons: vec![e.to_string()],
                    evaluation: None,
                });
                let place = Place {
                    region: scan.region.as_deref().unwrap_or(&self.region),
                    account: scan.account.as_deref().unwrap_or(""),
                };
                let n = render_failure(
                    format!("the scan event could not be judged: {e}"),
                    &scan.image.repository,
                    &scan.image.describe(),
                    &place,
                );
                self.answerer
                    .notifier()
                    .notify(&n, &notify_by)
                    .await
                    .into_result()?;
                Ok(json!({"outcome": "judged", "verdict": "FAIL", "reason": e.to_string()}))
            }
            other => other,
        }
    }

    async fn judge_scan(
        &self,
        config: &Config,
        scan: &ScanEvent,
        looks_until: &Deadline,
        deadline: &Deadline,
        clock: Clock,
    ) -> Result<Value, Error> {
        tracing::info!(image = %scan.image.describe(), status = %scan.status, enhanced = scan.enhanced, counts = ?scan.counts, "scan event");
        metrics::context("Repository", &scan.image.repository);
        let repository = &scan.image.repository;
        let looks_until = *looks_until;
        let policy = self.policy(config, &looks_until).await?;
        let own_digest = match &scan.image.reference {
            crate::entry::Reference::Digest(d) | crate::entry::Reference::Tag(d) => d.clone(),
        };
        let own = Told {
            counts: scan.counts.clone(),
            total: scan.total,
            finished_at: scan.time,
            enhanced: scan.enhanced,
        };
        // Kept first, so that a pipeline job or another platform's event looking at this
        // image meanwhile never decides below what this event said.
        self.floors
            .remember(repository, &own_digest, &own, &looks_until)
            .await;
        let subject = match self.event_subject(scan, &looks_until).await? {
            EventSubject::Judge(subject) => subject,
            EventSubject::NotJudged { index } => {
                tracing::info!(image = %scan.image.describe(), index, status = %scan.status, "a build attestation of an image index: nothing to judge");
                return Ok(json!({
                    "outcome": "skipped",
                    "reason": format!("a build attestation listed by the image index {index}, not an image to run"),
                }));
            }
        };
        // Past this the image is failed closed; an event without a time gets this
        // invocation only.
        let give_up_at = scan
            .time
            .map(|t| t + EVENT_DECIDED_BY.as_secs() as i64)
            .unwrap_or(clock.now);
        let mut looks = 0;
        let (looked, own_waits) = loop {
            let at = clock.at();
            // Read again at each look: another platform's event may have come meanwhile.
            let mut told = self.told_about(repository, &subject, &looks_until).await;
            match told.iter_mut().find(|(d, _)| *d == own_digest) {
                Some((_, kept)) => *kept = kept.clone().with(&own),
                None => told.push((own_digest.clone(), own.clone())),
            }
            let look = Look {
                now: at,
                settle: config.findings_settle,
                ..Look::default()
            };
            let looked = self
                .judge_subject(&policy, repository, &subject, &told, look, &looks_until)
                .await?;
            let own_waits = looked.waiting.contains(&own_digest);
            // A FAIL is final whatever still waits: it is told at once.
            let failed = matches!(looked.verdict, Verdict::Fail { .. });
            if !own_waits || failed || at >= give_up_at {
                break (looked, own_waits);
            }
            let pause = LOOK_AGAIN[looks.min(LOOK_AGAIN.len() - 1)]
                .min(Duration::from_secs((give_up_at - at).max(1) as u64));
            looks += 1;
            if looks_until.sleep(pause).await.is_err() {
                break (looked, own_waits);
            }
        };
        let at = clock.at();
        let unreported = looked.unreported;
        let verdict = match looked.verdict {
            Verdict::Pending { reason } if own_waits && at >= give_up_at => {
                let waited = scan
                    .time
                    .map(|t| format!("{}s after the scan event", at.saturating_sub(t)))
                    .unwrap_or_else(|| "in this invocation (the event has no time)".into());
                tracing::warn!(image = %scan.image.describe(), reason, "the findings never showed what the scan event said; failing closed");
                Verdict::Fail {
                    image: None,
                    reasons: vec![format!(
                        "not decided {waited}, failing closed: {reason}. Look at the image's findings in the console, then re-run the scan or the pipeline"
                    )],
                    evaluation: None,
                }
            }
            Verdict::Pending { reason } if own_waits => {
                // A look that contradicts the event is never decided on: Lambda retries the
                // event (the claim is given back), and the retry looks again.
                tracing::warn!(image = %scan.image.describe(), reason, "the findings do not show what the scan event said yet; Lambda will retry the event");
                metrics::count(&VERDICTS, &[("Verdict", "PENDING")]);
                return Err(Error::OutOfTime(
                    "waiting for the findings to show what the scan event counted",
                ));
            }
            Verdict::Pass { image, .. } if !unreported.is_empty() => {
                // A platform whose own event has not come may have findings that event will
                // count and the findings API does not show yet: only a FAIL is final before
                // every platform has been told of.
                Verdict::Pending {
                    reason: format!(
                        "{} of the image index {} not reported by a scan event yet",
                        unreported.join(", "),
                        image.digest
                    ),
                }
            }
            other => other,
        };
        record_verdict(&verdict);
        let outcome = json!({"outcome": "judged", "verdict": verdict.name()});
        if let Verdict::Pending { reason } = &verdict {
            tracing::info!(image = %scan.image.describe(), reason, "not decided yet: another platform of the index is still to be scanned; its own scan event will decide");
            return Ok(outcome);
        }
        // PASS_TAG marks what was pushed by name: an image index, or a tagged image. An
        // untagged image no index lists (yet) may be one platform of an index pushed later,
        // and a tag on it would name one architecture where the pipeline deploys all.
        let promotable = match &subject {
            Subject::Index { .. } => true,
            Subject::Image { tags, .. } => !tags.is_empty() || !scan.tags.is_empty(),
        };
        if !promotable && matches!(verdict, Verdict::Pass { .. }) && config.pass_tag.is_some() {
            tracing::info!(image = %scan.image.describe(), "an untagged image no image index lists: judged, not tagged");
        }
        let tell = |by: Deadline| {
            let verdict = &verdict;
            async move {
                let promotion = if promotable {
                    self.promote(config, verdict, &by).await
                } else {
                    None
                };
                if Self::wants(config, verdict) {
                    let place = Place {
                        region: scan.region.as_deref().unwrap_or(&self.region),
                        account: scan.account.as_deref().unwrap_or(""),
                    };
                    let n = render(
                        verdict,
                        &scan.image.repository,
                        &scan.image.describe(),
                        &place,
                        promotion.as_ref(),
                    );
                    self.answerer
                        .notifier()
                        .notify(&n, &by)
                        .await
                        .into_result()?;
                }
                Ok::<(), Error>(())
            }
        };
        match &subject {
            // Each platform's scan event may decide the same index: one of them tells it.
            Subject::Index { digest, .. } => {
                let key = format!("index-verdict/{digest}/{}", verdict.name());
                match self.answerer.idempotency().once(&key, deadline, tell).await {
                    shared::idempotency::Once::Ran(result) => result?,
                    _ => {
                        tracing::info!(index = %digest, "this index's verdict was already told (another platform's scan event)")
                    }
                }
            }
            Subject::Image { .. } => tell(*deadline).await?,
        }
        tracing::info!(image = %scan.image.describe(), verdict = verdict.name(), "verdict");
        Ok(outcome)
    }

    async fn decide_job(
        &self,
        config: &Config,
        job: &JobRequest,
        deadline: &Deadline,
        now: i64,
    ) -> Decision {
        let image = match &job.target {
            Ok(image) => image,
            Err(why) => return Decision::Broken(FailureKind::ConfigurationError, why.clone()),
        };
        let work = self.judge(config, image, deadline, now);
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

    /// The job path never fails the invocation; see [`Answerer::guard_job`].
    async fn guarded_job(&self, job: JobRequest, deadline: Deadline, now: i64) -> Value {
        let job_id = job.job_id.clone();
        let place = Place {
            region: &self.region,
            account: "",
        };
        let render = |why: String| render_failure(why, "", &format!("job {job_id}"), &place);
        let work = |inner: Deadline| Box::pin(self.job(job, inner, now));
        self.answerer
            .guard_job(&self.jobs, &job_id, "the scan gate", deadline, work, render)
            .await
    }

    /// The decision for a job: waits past `MAX_WAIT` fail closed.
    async fn job_decision(
        &self,
        job: &JobRequest,
        work_deadline: &Deadline,
        now: i64,
    ) -> (Decision, i64) {
        let config = match &self.setup {
            Ok(c) => c,
            Err(why) => {
                let why = format!("configuration error: {why}");
                return (Decision::Broken(FailureKind::ConfigurationError, why), now);
            }
        };
        let since = match job
            .continuation
            .as_deref()
            .map(serde_json::from_str::<Continuation>)
        {
            None => now,
            Some(Ok(c)) => c.since,
            Some(Err(_)) => {
                let why = "unreadable continuation token".to_owned();
                return (Decision::Broken(FailureKind::JobFailed, why), now);
            }
        };
        let decision = match self.decide_job(config, job, work_deadline, now).await {
            Decision::Wait(reason)
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
            other => other,
        };
        (decision, since)
    }

    async fn job(&self, job: JobRequest, deadline: Deadline, now: i64) -> Result<Value, Error> {
        let margin = self
            .setup
            .as_ref()
            .map(|c| c.report_margin)
            .unwrap_or(DEFAULT_REPORT_MARGIN);
        let work_deadline = deadline.less(margin);
        if let Ok(image) = &job.target {
            metrics::context("Repository", &image.repository);
        }
        let (decision, since) = Box::pin(self.job_decision(&job, &work_deadline, now)).await;
        let subject = job
            .target
            .as_ref()
            .map(|i| i.describe())
            .unwrap_or_else(|_| "(bad UserParameters)".into());

        let (outcome, verdict, promotion) = match decision {
            Decision::Wait(reason) => {
                metrics::count(&VERDICTS, &[("Verdict", "PENDING")]);
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
                let promotion = match &self.setup {
                    Ok(config) => self.promote(config, &verdict, &work_deadline).await,
                    Err(_) => None,
                };
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
                        if !image.platforms.is_empty() {
                            let names: Vec<&str> = image
                                .platforms
                                .iter()
                                .map(|p| p.platform.as_str())
                                .collect();
                            vars.insert("PLATFORMS".into(), names.join(","));
                        }
                        let summary = format!(
                            "PASS {}: {}",
                            subject,
                            crate::policy::counts_line(&evaluation.after)
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
            tracing::warn!(job_id = %job.job_id, image = %subject, reason = %message, "failing the job");
        }
        let place = Place {
            region: &self.region,
            account: job.account.as_deref().unwrap_or(""),
        };
        let repository = job
            .target
            .as_ref()
            .map(|i| i.repository.clone())
            .unwrap_or_default();
        // A job still waiting has no verdict to tell; should its report be refused, the
        // notification says so and what was being waited for.
        let shown = verdict.clone().unwrap_or_else(|| Verdict::Pending {
            reason: format!("still being judged: {kind}"),
        });
        let wanted = match (&verdict, &self.setup) {
            (Some(v), Ok(config)) => Self::wants(config, v),
            (Some(_), Err(_)) => true,
            (None, _) => false,
        };
        let answer = Answer {
            key: job.job_id.clone(),
            subject: format!("CodePipeline job {} for {subject}", job.job_id),
            if_unreported: "the pipeline's scan-gate action waits until CodePipeline times it out",
            notification: render(&shown, &repository, &subject, &place, promotion.as_ref()),
            wanted,
            decisive: verdict.is_some(),
            // The job event carries artifactCredentials: never let it reach the DLQ.
            lambda_retries: false,
        };
        let answered =
            Box::pin(
                self.answerer
                    .answer_job(&self.jobs, &job.job_id, outcome, answer, &deadline),
            )
            .await?;
        Ok(json!({
            "outcome": "reported",
            "result": kind,
            "verdict": verdict.as_ref().map(Verdict::name),
            "reported": answered.reported_name(),
            "notified": answered.notified,
        }))
    }

    /// A scan event reaching a gate that cannot judge: said once per container, so a burst
    /// of pushes does not flood the channel with the same configuration error.
    async fn unconfigured_scan(
        &self,
        scan: &ScanEvent,
        why: &str,
        deadline: &Deadline,
    ) -> Result<Value, Error> {
        tracing::error!(image = %scan.image.describe(), reason = %why, "scan event not judged: configuration error");
        metrics::count(&metrics::CONFIG_ERRORS, &[]);
        let place = Place {
            region: scan.region.as_deref().unwrap_or(&self.region),
            account: scan.account.as_deref().unwrap_or(""),
        };
        let n = render_failure(
            format!("configuration error, so scan results are not being judged: {why}"),
            &scan.image.repository,
            &scan.image.describe(),
            &place,
        );
        self.answerer
            .notify_once(CONFIG_ERROR_KEY, &n, deadline)
            .await?;
        Ok(json!({"outcome": "not-judged", "reason": format!("configuration error: {why}")}))
    }
}

/// The time of an invocation, in seconds since the epoch: `now` at its start (a parameter, so
/// tests can move it), and what has passed since.
#[derive(Clone, Copy)]
struct Clock {
    now: i64,
    started: std::time::Instant,
}

impl Clock {
    fn at(&self) -> i64 {
        self.now + self.started.elapsed().as_secs() as i64
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
