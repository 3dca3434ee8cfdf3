//! What scan events said about an image, remembered so that every later look at it — a
//! pipeline job, or another platform's scan event judging the same image index — never
//! decides below it.
//!
//! A scan event's severity counts are a floor for what the findings API must show (findings
//! reach the API after the event), and its time starts `FINDINGS_SETTLE`. A pipeline job is
//! told nothing itself, and a scan event only about its own image, but the events for the
//! other images usually came first: what each said is kept per digest in the idempotency table
//! (a document under `told/<repository>@<digest>`) for a day. The floor is a guard on top of
//! `FINDINGS_SETTLE`: a table that cannot be read or written is logged, and the look decides on
//! its settle alone — except that an image index is passed from a scan event only once every
//! platform's own event has been kept (the handler says why).

use std::collections::BTreeMap;
use std::time::Duration;

use shared::Deadline;
use shared::versioned::Documents;

use crate::policy::{Counts, Severity};

/// How long an event's counts are kept: long enough for the pipeline that pushed the image to
/// reach its gate; short enough that findings Inspector later closes do not hold the image for
/// good (a floor above what is readable keeps a job waiting until MAX_WAIT fails it).
pub const REMEMBERED_FOR: Duration = Duration::from_secs(24 * 3600);

/// What the latest scan event said about one image: its counts per severity (by name), its
/// TOTAL, when it said the scan finished, and whether it was Inspector's.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default)]
    counts: BTreeMap<String, u32>,
    #[serde(default)]
    total: Option<u32>,
    #[serde(default)]
    finished_at: Option<i64>,
    #[serde(default)]
    enhanced: bool,
}

/// What scan events said about one image, as the verdict reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Told {
    pub counts: Counts,
    /// The event's TOTAL: Inspector names only CRITICAL, HIGH and MEDIUM, so the rest of what
    /// it counted is only in here.
    pub total: Option<u32>,
    /// When a scan event said the image's scan finished (seconds since the epoch).
    pub finished_at: Option<i64>,
    /// An Inspector (enhanced) scan: its findings settle, whatever ECR's answer shows.
    pub enhanced: bool,
}

impl Told {
    /// What the later of two sayings said; for the same scan (the same time, or none), the
    /// higher count per severity. A later scan replaces an earlier one's counts: a re-scan
    /// that finds less must be able to pass.
    pub fn with(self, other: &Told) -> Told {
        if other.finished_at > self.finished_at {
            return other.clone();
        }
        if self.finished_at > other.finished_at {
            return self;
        }
        let mut merged = self;
        for (severity, n) in &other.counts {
            let slot = merged.counts.entry(severity.clone()).or_default();
            *slot = (*slot).max(*n);
        }
        merged.total = merged.total.max(other.total);
        merged.enhanced |= other.enhanced;
        merged
    }
}

impl From<Stored> for Told {
    fn from(s: Stored) -> Self {
        Told {
            counts: s
                .counts
                .into_iter()
                .map(|(severity, n)| (Severity::parse(&severity), n))
                .filter(|(_, n)| *n > 0)
                .collect(),
            total: s.total,
            finished_at: s.finished_at,
            enhanced: s.enhanced,
        }
    }
}

impl From<&Told> for Stored {
    fn from(t: &Told) -> Self {
        Stored {
            counts: t
                .counts
                .iter()
                .map(|(severity, n)| (severity.name().to_owned(), *n))
                .collect(),
            total: t.total,
            finished_at: t.finished_at,
            enhanced: t.enhanced,
        }
    }
}

pub struct Floors {
    documents: Option<Documents>,
}

fn key(repository: &str, digest: &str) -> String {
    format!("told/{repository}@{digest}")
}

impl Floors {
    pub fn new(documents: Option<Documents>) -> Self {
        Self { documents }
    }

    /// Keeps what a scan event said about the image ([`Told::with`] what was kept before).
    /// Kept even when it counted nothing: that the image's event came at all is what tells
    /// the other platforms of an index that this one has been reported.
    pub async fn remember(&self, repository: &str, digest: &str, told: &Told, deadline: &Deadline) {
        let Some(documents) = &self.documents else {
            return;
        };
        let merge = |kept: Option<&Stored>| {
            let before = kept.cloned().map(Told::from);
            let next = match &before {
                Some(b) => b.clone().with(told),
                None => told.clone(),
            };
            (before.as_ref() != Some(&next)).then(|| Stored::from(&next))
        };
        if let Err(e) = documents
            .update(&key(repository, digest), deadline, merge)
            .await
        {
            tracing::warn!(repository, digest, error = %e, "could not keep what the scan event said for the other looks at this image; they decide on FINDINGS_SETTLE alone");
        }
    }

    /// What scan events said about the image, if one came (and it could be read).
    pub async fn recall(
        &self,
        repository: &str,
        digest: &str,
        deadline: &Deadline,
    ) -> Option<Told> {
        let documents = self.documents.as_ref()?;
        match documents
            .read::<Stored>(&key(repository, digest), deadline)
            .await
        {
            Ok(kept) => kept.map(|k| Told::from(k.value)),
            Err(e) => {
                tracing::warn!(repository, digest, error = %e, "could not read what scan events said about this image; deciding on FINDINGS_SETTLE alone");
                None
            }
        }
    }
}
