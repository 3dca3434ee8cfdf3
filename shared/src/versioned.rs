//! Documents that several containers change at once, merged without losing a write: each
//! change reads the document, applies a pure merge, and writes it back on the condition that
//! nobody wrote in between (a `version` attribute). A write that loses reads again and merges
//! again. It lives in the idempotency table, keyed `<function>#<key>` like the claims, so the
//! role's `dynamodb:LeadingKeys` condition covers it.
//!
//! Unlike a claim, a document is not optional: a caller that cannot read or write it gets an
//! error and decides what a person should see instead. One that cannot be read (its body is
//! not the shape this version writes) is replaced by the next update, under the same version
//! check, and said so at ERROR: left, it would stop every change to it until it expired.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Environment;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::idempotency::{bounded, configured_table, millis, n, now_ms, read_live, s, scoped_key};
use crate::retry::Backoff;

/// DynamoDB refuses items over 400 KB; a document stays well under it so its attributes
/// and key fit too.
const LARGEST_DOCUMENT: usize = 300 * 1024;

/// Writes lost to another container before giving up: each loss means the other one made
/// progress, so this bounds only a pathological pile-up.
const MOST_CONFLICTS: u32 = 12;

const CONFLICT_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(20),
    max: Duration::from_millis(320),
    max_attempts: MOST_CONFLICTS,
};

/// What the table holds under a key.
enum Stored<T> {
    Absent,
    Readable(Versioned<T>),
    /// An item whose body this code cannot read, and its version if it has one.
    Unreadable {
        version: Option<u64>,
        why: String,
    },
}

/// A document and the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// What [`Documents::update`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Updated<T> {
    /// The merge changed the document and this is what was written.
    Changed(Versioned<T>),
    /// The merge changed nothing (a duplicate or an older event); nothing was written.
    Unchanged(Option<Versioned<T>>),
}

impl<T> Updated<T> {
    pub fn current(&self) -> Option<&Versioned<T>> {
        match self {
            Self::Changed(v) => Some(v),
            Self::Unchanged(v) => v.as_ref(),
        }
    }
}

pub struct Documents {
    scope: &'static str,
    client: Client,
    table: String,
    kept_for: Duration,
}

impl Documents {
    pub fn new(scope: &'static str, sdk: &SdkConfig, table: &str, kept_for: Duration) -> Self {
        Self {
            scope,
            client: Client::new(sdk),
            table: table.to_owned(),
            kept_for,
        }
    }

    /// In the table `IDEMPOTENCY_TABLE` names; `None` without one.
    pub fn from_env<E: Environment + ?Sized>(
        scope: &'static str,
        env: &E,
        sdk: &SdkConfig,
        kept_for: Duration,
    ) -> Option<Self> {
        match configured_table(env) {
            Ok(Some(table)) => Some(Self::new(scope, sdk, &table, kept_for)),
            _ => None,
        }
    }

    /// The document as it is now (a consistent read); an expired one is absent.
    pub async fn read<T: DeserializeOwned>(
        &self,
        key: &str,
        deadline: &Deadline,
    ) -> Result<Option<Versioned<T>>, Error> {
        match self.stored(key, deadline).await? {
            Stored::Absent => Ok(None),
            Stored::Readable(v) => Ok(Some(v)),
            Stored::Unreadable { why, .. } => Err(Error::bad_input(why)),
        }
    }

    async fn stored<T: DeserializeOwned>(
        &self,
        key: &str,
        deadline: &Deadline,
    ) -> Result<Stored<T>, Error> {
        let id = scoped_key(self.scope, key);
        let Some(item) = read_live(&self.client, &self.table, &id, deadline).await? else {
            return Ok(Stored::Absent);
        };
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let version = number("version");
        if version.is_none() && item.contains_key("version") {
            // No condition can name a version that is not a number: leave it for a person.
            return Err(Error::bad_input(format!(
                "the stored document {id} has a version that is not a number"
            )));
        }
        let Some(doc) = item.get("doc").and_then(|v| v.as_s().ok()) else {
            return Ok(Stored::Unreadable {
                version,
                why: format!("the stored document {id} has no body"),
            });
        };
        match (version, serde_json::from_str(doc)) {
            (Some(version), Ok(value)) => Ok(Stored::Readable(Versioned { value, version })),
            (None, _) => Ok(Stored::Unreadable {
                version,
                why: format!("the stored document {id} has no version"),
            }),
            (_, Err(e)) => Ok(Stored::Unreadable {
                version,
                why: format!(
                    "the stored document {id} is unreadable (line {} column {})",
                    e.line(),
                    e.column()
                ),
            }),
        }
    }

    /// Applies `merge` to the current document (`None` when there is none) and writes the
    /// result, unless `merge` returns `None` (nothing to change). When another container
    /// wrote first, reads again and merges again, so `merge` must be a pure function of the
    /// document it is given.
    pub async fn update<T, F>(
        &self,
        key: &str,
        deadline: &Deadline,
        mut merge: F,
    ) -> Result<Updated<T>, Error>
    where
        T: Serialize + DeserializeOwned + Clone,
        F: FnMut(Option<&T>) -> Option<T>,
    {
        let id = scoped_key(self.scope, key);
        for conflict in 0..MOST_CONFLICTS {
            let (current, unreadable) = match self.stored::<T>(key, deadline).await? {
                Stored::Absent => (None, None),
                Stored::Readable(v) => (Some(v), None),
                Stored::Unreadable { version, why } => {
                    tracing::error!(reason = %why, "replacing a stored document that cannot be read");
                    (None, Some(version))
                }
            };
            let Some(next) = merge(current.as_ref().map(|c| &c.value)) else {
                return Ok(Updated::Unchanged(current));
            };
            let version = match (&current, unreadable) {
                (Some(c), _) => c.version + 1,
                (None, Some(Some(v))) => v + 1,
                _ => 1,
            };
            let doc = serde_json::to_string(&next)
                .map_err(|e| Error::bad_input(format!("cannot write {id}: {e}")))?;
            if doc.len() > LARGEST_DOCUMENT {
                return Err(Error::bad_input(format!(
                    "the document {id} would be {} bytes, over the {LARGEST_DOCUMENT} allowed",
                    doc.len()
                )));
            }
            let expires = (now_ms() / 1000).saturating_add(millis(self.kept_for) / 1000);
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("id", s(&id))
                .item("version", n(version))
                .item("doc", s(&doc))
                .item("expires_at", n(expires));
            put = match (&current, unreadable) {
                (Some(c), _) => put
                    .condition_expression("version = :read")
                    .expression_attribute_values(":read", n(c.version)),
                // Replaced only as it was read: nobody wrote a readable one meanwhile.
                (None, Some(Some(v))) => put
                    .condition_expression("version = :read")
                    .expression_attribute_values(":read", n(v)),
                (None, Some(None)) => put.condition_expression("attribute_not_exists(version)"),
                // An expired item that TTL has not deleted yet is overwritten as absent.
                (None, None) => put
                    .condition_expression("attribute_not_exists(id) OR expires_at < :now_s")
                    .expression_attribute_values(":now_s", n(now_ms() / 1000)),
            };
            match bounded(deadline, "writing a shared document", put.send()).await? {
                Ok(_) => {
                    return Ok(Updated::Changed(Versioned {
                        value: next,
                        version,
                    }));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                {
                    tracing::debug!(key = %id, conflict, "another container wrote first; merging again");
                    // Whoever won is finishing its own work: a short, jittered pause spreads
                    // the retries of containers that lost together.
                    if deadline
                        .sleep(CONFLICT_BACKOFF.wait_after(conflict + 1))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => return Err(Error::from_sdk("DynamoDB", "PutItem", e)),
            }
        }
        Err(Error::OutOfTime(
            "merging a shared document others kept changing",
        ))
    }
}
