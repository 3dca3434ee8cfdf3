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

/// What scan events said about one image: the most findings any counted per severity
/// (by name), and the latest time one said its scan finished.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default)]
    counts: BTreeMap<String, u32>,
    #[serde(default)]
    finished_at: Option<i64>,
}

/// What scan events said about one image, as the verdict reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub counts: Counts,
    /// When a scan event said the image's scan finished (seconds since the epoch).
    pub finished_at: Option<i64>,
}

impl Told {
    /// Both sayings at once: the higher count per severity, the later time.
    pub fn with(mut self, other: &Told) -> Told {
        for (severity, n) in &other.counts {
            let slot = self.counts.entry(severity.clone()).or_default();
            *slot = (*slot).max(*n);
        }
        self.finished_at = self.finished_at.max(other.finished_at);
        self
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

    /// Keeps what a scan event said about the image, raising what was kept before (two
    /// events for one image: the larger count per severity and the later time stand). Kept
    /// even when it counted nothing: that the image's event came at all is what tells the
    /// other platforms of an index that this one has been reported.
    pub async fn remember(&self, repository: &str, digest: &str, told: &Told, deadline: &Deadline) {
        let Some(documents) = &self.documents else {
            return;
        };
        let merge = |kept: Option<&Stored>| {
            let mut next = kept.cloned().unwrap_or_default();
            let mut changed = kept.is_none();
            for (severity, n) in &told.counts {
                let slot = next.counts.entry(severity.name().to_owned()).or_default();
                if *n > *slot {
                    *slot = *n;
                    changed = true;
                }
            }
            if told.finished_at > next.finished_at {
                next.finished_at = told.finished_at;
                changed = true;
            }
            changed.then_some(next)
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
            Ok(kept) => kept.map(|k| Told {
                counts: k
                    .value
                    .counts
                    .into_iter()
                    .map(|(severity, n)| (Severity::parse(&severity), n))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                finished_at: k.value.finished_at,
            }),
            Err(e) => {
                tracing::warn!(repository, digest, error = %e, "could not read what scan events said about this image; deciding on FINDINGS_SETTLE alone");
                None
            }
        }
    }
}
