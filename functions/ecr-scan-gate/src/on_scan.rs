//! A scan event (`ECR Image Scan`, `Inspector2 Scan`): the image judged once across
//! containers, never on a look that contradicts what the event said, then tagged and told.
//!
//! Inspector's findings reach the findings API after its scan event, so the event's counts are
//! a floor and `FINDINGS_SETTLE` runs from its time: the gate looks again within the
//! invocation, then returns a retryable error for Lambda's retry, and fails the image closed
//! once the event is `EVENT_DECIDED_BY` old. An untagged image is judged as the image index
//! that lists it (docker buildx tags the index).

use std::time::Duration;

use serde::Serialize;
use shared::invocation::Invocation;
use shared::invocation::once::{self, Handled, Key};
use shared::jobs::ReportJob;
use shared::metrics;
use shared::notifier::Notify;
use shared::{Deadline, Error};

use crate::app::{Gate, wants};
use crate::config::Config;
use crate::event::ScanEvent;
use crate::floor::Told;
use crate::registry::{Listed, Registry, Subject};
use crate::render::{RegistryLocation, render, render_failure};
use crate::verdict::{EVENT_DECIDED_BY, Look, VERDICTS, Verdict, record_verdict};

/// The key under which a broken configuration is notified, once per container (a burst of
/// pushes must not flood the channel with the same configuration error).
const CONFIG_ERROR_KEY: &str = "configuration-error";
/// Pauses between looks while a scan event's findings settle within one invocation.
const LOOK_AGAIN: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(10),
];

/// What a scan event came to, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ScanReply {
    Judged {
        verdict: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Nothing to judge (a build attestation).
    Skipped { reason: String },
    /// A configuration that cannot judge.
    NotJudged { reason: String },
    /// Not an input the gate answers.
    Ignored { reason: String },
}

/// What a scan event's image is, for judging.
enum EventSubject {
    Judge(Subject),
    /// Listed by an image index but not an image to run (a build attestation).
    NotJudged {
        index: String,
    },
}

impl<R, J, N> Gate<R, J, N>
where
    R: Registry + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    /// One scan event, claimed under its id so a redelivery is judged once.
    pub(crate) async fn on_scan(
        &self,
        scan: ScanEvent,
        invocation: Invocation,
    ) -> Result<Handled<ScanReply>, Error> {
        let config = match &self.config {
            Ok(config) => config,
            Err(why) => {
                let reply =
                    Box::pin(self.unconfigured_scan(&scan, why, &invocation.deadline)).await?;
                return Ok(Handled::Done(reply));
            }
        };
        // The event's clock runs from the invocation's start, a wait for a claim included.
        let clock = Clock {
            now: invocation.now,
            started: std::time::Instant::now(),
        };
        let key = (!scan.id.is_empty()).then(|| Key::Event(&scan.id));
        let scan = &scan;
        once::handle(
            self.ports.answerer.idempotency(),
            key,
            &invocation.deadline,
            |by| async move { Box::pin(self.judge_scan_told(config, scan, &by, clock)).await },
        )
        .await
    }

    /// What a scan event's image is part of: the image itself, or, for an untagged image
    /// (a platform image pushed by `docker buildx`, whose tag is on the index), the newest
    /// image index that lists it, which is what a pipeline deploys and what PASS_TAG marks.
    async fn event_subject(
        &self,
        scan: &ScanEvent,
        deadline: &Deadline,
    ) -> Result<EventSubject, Error> {
        let subject = self.ports.registry.resolve(&scan.image, deadline).await?;
        let Subject::Image { digest, tags } = &subject else {
            return Ok(EventSubject::Judge(subject));
        };
        if !tags.is_empty() || !scan.tags.is_empty() {
            return Ok(EventSubject::Judge(subject));
        }
        match self
            .ports
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
    ) -> Result<ScanReply, Error> {
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
                let registry = self.registry_of_scan(scan);
                let n = render_failure(
                    format!("the scan event could not be judged: {e}"),
                    &scan.image.repository,
                    &scan.image.describe(),
                    &registry,
                );
                self.ports
                    .answerer
                    .notifier()
                    .notify(&n, &notify_by)
                    .await
                    .into_result()?;
                Ok(ScanReply::Judged {
                    verdict: "FAIL",
                    reason: Some(e.to_string()),
                })
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
    ) -> Result<ScanReply, Error> {
        tracing::info!(image = %scan.image.describe(), status = %scan.status, enhanced = scan.enhanced, counts = ?scan.counts, "scan event");
        metrics::context("Repository", &scan.image.repository);
        let repository = &scan.image.repository;
        let looks_until = *looks_until;
        let policy = self.policy(config, &looks_until).await?;
        let own_digest = match &scan.image.reference {
            crate::event::Reference::Digest(d) | crate::event::Reference::Tag(d) => d.clone(),
        };
        let own = Told {
            counts: scan.counts.clone(),
            total: scan.total,
            finished_at: scan.time,
            enhanced: scan.enhanced,
        };
        // Kept first, so that a pipeline job or another platform's event looking at this
        // image meanwhile never decides below what this event said.
        self.ports
            .floors
            .remember(repository, &own_digest, &own, &looks_until)
            .await;
        let subject = match self.event_subject(scan, &looks_until).await? {
            EventSubject::Judge(subject) => subject,
            EventSubject::NotJudged { index } => {
                tracing::info!(image = %scan.image.describe(), index, status = %scan.status, "a build attestation of an image index: nothing to judge");
                return Ok(ScanReply::Skipped {
                    reason: format!(
                        "a build attestation listed by the image index {index}, not an image to run"
                    ),
                });
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
        let outcome = ScanReply::Judged {
            verdict: verdict.name(),
            reason: None,
        };
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
                if wants(config, verdict) {
                    let registry = self.registry_of_scan(scan);
                    let n = render(
                        verdict,
                        &scan.image.repository,
                        &scan.image.describe(),
                        &registry,
                        promotion.as_ref(),
                    );
                    self.ports
                        .answerer
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
                match self
                    .ports
                    .answerer
                    .idempotency()
                    .once(&key, deadline, tell)
                    .await
                {
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

    /// A scan event reaching a gate that cannot judge: said once per container, so a burst
    /// of pushes does not flood the channel with the same configuration error.
    /// Where the scanned image lives, for console links: the event's region and account.
    fn registry_of_scan<'a>(&'a self, scan: &'a ScanEvent) -> RegistryLocation<'a> {
        RegistryLocation {
            region: scan.region.as_deref().unwrap_or(&self.region),
            account: scan.account.as_deref().unwrap_or(""),
        }
    }

    async fn unconfigured_scan(
        &self,
        scan: &ScanEvent,
        why: &str,
        deadline: &Deadline,
    ) -> Result<ScanReply, Error> {
        tracing::error!(image = %scan.image.describe(), reason = %why, "scan event not judged: configuration error");
        metrics::count(&metrics::CONFIG_ERRORS, &[]);
        let registry = self.registry_of_scan(scan);
        let n = render_failure(
            format!("configuration error, so scan results are not being judged: {why}"),
            &scan.image.repository,
            &scan.image.describe(),
            &registry,
        );
        self.ports
            .answerer
            .notify_once(CONFIG_ERROR_KEY, &n, deadline)
            .await?;
        Ok(ScanReply::NotJudged {
            reason: format!("configuration error: {why}"),
        })
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
