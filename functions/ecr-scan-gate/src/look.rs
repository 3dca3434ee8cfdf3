//! One look at what a tag or digest names: each image's scan read by digest and decided under
//! the policy and what scan events said of it, and an image index's platforms combined.

use shared::jobs::ReportJob;
use shared::notifier::Notify;
use shared::{Deadline, Error};

use crate::app::Gate;
use crate::config::Config;
use crate::event::ImageRef;
use crate::floor::Told;
use crate::policy::Policy;
use crate::registry::{Registry, Scan, Subject};
use crate::verdict::{EVENT_DECIDED_BY, Judged, Look, Verdict, combine, decide};

/// One look at what a tag or digest names.
pub(crate) struct Looked {
    pub verdict: Verdict,
    /// The digests of the images still waiting.
    pub waiting: Vec<String>,
    /// Platforms of an index that no scan event has told of and whose scan is recent
    /// enough that its event may still come (by name).
    pub unreported: Vec<String>,
}

impl<R, J, N> Gate<R, J, N>
where
    R: Registry + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    /// The verdict on what `image` names now (one image, or every platform of an index).
    /// Pipeline jobs look this way: they are invoked again while it is pending.
    pub(crate) async fn judge(
        &self,
        config: &Config,
        image: &ImageRef,
        deadline: &Deadline,
        now: i64,
    ) -> Result<Verdict, Error> {
        let policy = self.policy(config, deadline).await?;
        let subject = self.ports.registry.resolve(image, deadline).await?;
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

    pub(crate) async fn told_about(
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
            if let Some(t) = self.ports.floors.recall(repository, digest, deadline).await {
                told.push((digest.to_owned(), t));
            }
        }
        told
    }

    /// One look at `subject`, never deciding an image below what scan events said of it
    /// (`told`).
    pub(crate) async fn judge_subject(
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
                let scan = self
                    .ports
                    .registry
                    .scan(repository, digest, deadline)
                    .await?;
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
                    let scan = self
                        .ports
                        .registry
                        .scan(repository, &p.digest, deadline)
                        .await?;
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
}
