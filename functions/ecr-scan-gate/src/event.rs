//! The three ways in: an ECR basic-scan event, an Inspector (enhanced) scan event, or a
//! CodePipeline Lambda invoke job. All end as an image to judge.

use aws_lambda_events::event::ecr_scan::EcrScanEvent;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde::Deserialize;
use serde_json::Value;

use crate::policy::{Counts, counts_from_event};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub reference: Reference,
}

impl ImageRef {
    pub fn describe(&self) -> String {
        match &self.reference {
            Reference::Tag(t) => format!("{}:{t}", self.repository),
            Reference::Digest(d) => format!("{}@{d}", self.repository),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEvent {
    pub id: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub enhanced: bool,
    pub image: ImageRef,
    pub tags: Vec<String>,
    pub status: String,
    /// What the event says. The verdict uses the findings fetched from ECR, and these
    /// counts are a floor a look must reach before it is decided on.
    pub counts: Counts,
    /// The event's `TOTAL`, when it gives one (Inspector's names only CRITICAL, HIGH and
    /// MEDIUM, so the rest of what it counted is only in here).
    pub total: Option<u32>,
    /// The event's `time` (seconds since the epoch): when the scan was said to be done.
    pub time: Option<i64>,
}

/// A pipeline job; its parameters are the image to judge.
pub type JobRequest = shared::jobs::JobRequest<ImageRef>;

/// What the gate is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Scan(ScanEvent),
    Job(JobRequest),
}

pub use shared::error::NotForUs;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserParameters {
    repository: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

/// `UserParameters` must be exactly `{"repository": …, "tag": …}` or with `"digest"`.
pub fn parse_user_parameters(text: Option<&str>) -> Result<ImageRef, String> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("UserParameters is empty; expected {\"repository\":\"app\",\"tag\":\"…\"}")?;
    let p: UserParameters = serde_json::from_str(text).map_err(|e| {
        format!("UserParameters is not {{\"repository\":…, \"tag\"|\"digest\":…}} (JSON error at line {} column {})", e.line(), e.column())
    })?;
    let unresolved = |s: &str| s.contains("#{");
    if p.repository.trim().is_empty() || unresolved(&p.repository) {
        return Err("UserParameters.repository is empty or an unresolved #{variable}".into());
    }
    let reference = match (
        p.tag.filter(|t| !t.trim().is_empty()),
        p.digest.filter(|d| !d.trim().is_empty()),
    ) {
        (Some(tag), None) if !unresolved(&tag) => Reference::Tag(tag),
        (None, Some(digest)) if digest.starts_with("sha256:") => Reference::Digest(digest),
        (Some(_), None) => return Err("UserParameters.tag is an unresolved #{variable}".into()),
        (None, Some(_)) => return Err("UserParameters.digest must start with sha256:".into()),
        (Some(_), Some(_)) => return Err("UserParameters has both tag and digest; give one".into()),
        (None, None) => return Err("UserParameters needs a tag or a digest".into()),
    };
    Ok(ImageRef {
        repository: p.repository,
        reference,
    })
}

/// `arn:aws:ecr:region:account:repository/team/app` → `team/app`.
pub fn repository_name(name_or_arn: &str) -> String {
    match name_or_arn.strip_prefix("arn:") {
        Some(rest) => rest
            .split_once(":repository/")
            .map(|(_, n)| n.to_owned())
            .unwrap_or_else(|| name_or_arn.to_owned()),
        None => name_or_arn.to_owned(),
    }
}

#[derive(Deserialize)]
struct InspectorDetail {
    #[serde(rename = "scan-status")]
    scan_status: Option<String>,
    #[serde(rename = "repository-name")]
    repository_name: Option<String>,
    #[serde(rename = "image-digest")]
    image_digest: Option<String>,
    #[serde(rename = "image-tags", default)]
    image_tags: Vec<String>,
    #[serde(rename = "finding-severity-counts", default)]
    counts: serde_json::Map<String, Value>,
}

pub fn parse(event: &Value) -> Result<Input, NotForUs> {
    if let Some(job) = shared::jobs::job_invocation(event) {
        return Ok(Input::Job(job?.with_parameters(parse_user_parameters)));
    }
    let source = event.get("source").and_then(Value::as_str);
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (enhanced, repository, digest, tags, status, counts) = match (source, detail_type) {
        (Some("aws.ecr"), Some("ECR Image Scan")) => {
            let e: EcrScanEvent = serde_json::from_value(event.clone()).map_err(|e| {
                NotForUs(format!(
                    "malformed ECR Image Scan event (line {} column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            let d = e.detail;
            let counts = serde_json::to_value(&d.finding_severity_counts)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            (
                false,
                d.repository_name,
                d.image_digest,
                d.image_tags,
                d.scan_status,
                counts,
            )
        }
        (Some("aws.inspector2"), Some("Inspector2 Scan")) => {
            let d: InspectorDetail =
                serde_json::from_value(event.get("detail").cloned().unwrap_or(Value::Null))
                    .map_err(|e| {
                        NotForUs(format!(
                            "malformed Inspector2 Scan event (line {} column {})",
                            e.line(),
                            e.column()
                        ))
                    })?;
            (
                true,
                d.repository_name,
                d.image_digest,
                d.image_tags,
                d.scan_status,
                d.counts,
            )
        }
        _ => {
            return Err(NotForUs(
                "neither an ECR Image Scan or Inspector2 Scan event nor a CodePipeline job".into(),
            ));
        }
    };
    let repository = repository
        .filter(|r| !r.is_empty())
        .ok_or_else(|| NotForUs("scan event without repository-name".into()))?;
    let digest = digest
        .filter(|d| !d.is_empty())
        .ok_or_else(|| NotForUs("scan event without image-digest".into()))?;
    let text = |k: &str| {
        event
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Input::Scan(ScanEvent {
        id,
        account: text("account"),
        region: text("region"),
        enhanced,
        image: ImageRef {
            repository: repository_name(&repository),
            reference: Reference::Digest(digest),
        },
        tags,
        status: status.unwrap_or_default(),
        total: counts
            .get("TOTAL")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        counts: counts_from_event(&counts),
        time: event
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::from_str(t, Format::DateTime).ok())
            .map(|t| t.secs()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_parameters_are_parsed_strictly() {
        assert_eq!(
            parse_user_parameters(Some(r#"{"repository":"app","tag":"1.4.2"}"#)),
            Ok(ImageRef {
                repository: "app".into(),
                reference: Reference::Tag("1.4.2".into())
            })
        );
        assert!(
            parse_user_parameters(Some(r#"{"repository":"app","digest":"sha256:ab"}"#)).is_ok()
        );
        for bad in [
            None,
            Some(""),
            Some("app:1.4.2"),
            Some(r#"{"repository":"app"}"#),
            Some(r#"{"repository":"app","tag":"1","digest":"sha256:ab"}"#),
            Some(r##"{"repository":"app","tag":"#{BuildVariables.IMAGE_TAG}"}"##),
            Some(r#"{"repository":"app","digest":"ab12"}"#),
            Some(r#"{"repository":"app","tag":"1","extra":true}"#),
        ] {
            assert!(parse_user_parameters(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repository_arns_are_normalised_to_names() {
        assert_eq!(
            repository_name("arn:aws:ecr:us-east-1:123456789012:repository/team/app"),
            "team/app"
        );
        assert_eq!(repository_name("app"), "app");
    }

    #[test]
    fn a_job_without_an_id_cannot_be_reported() {
        assert!(parse(&json!({"CodePipeline.job": {"data": {}}})).is_err());
    }

    #[test]
    fn a_malformed_job_still_yields_its_id_so_it_can_be_failed() {
        let Input::Job(j) =
            parse(&json!({"CodePipeline.job": {"id": "j-1", "data": "nonsense"}})).unwrap()
        else {
            panic!()
        };
        assert_eq!(j.job_id, "j-1");
        assert!(j.parameters.is_err());
    }
}
