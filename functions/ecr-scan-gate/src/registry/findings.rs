//! Reading one image's scan the way the gate judges it: every page of findings, basic and
//! enhanced alike, and a scan started when none exists, so a repository without scan on push
//! does not hold a pipeline for nothing.

use aws_sdk_ecr::types::ImageIdentifier;
use shared::Error;

use super::{Ecr, Scan};
use crate::policy::{Finding, Severity};

/// A bound on pages: a service that keeps handing back a token must not hold the gate.
const MAX_PAGES: usize = 100;

fn basic_finding(f: aws_sdk_ecr::types::ImageScanFinding) -> Finding {
    let attr = |key: &str| {
        f.attributes()
            .iter()
            .find(|a| a.key() == key)
            .and_then(|a| a.value())
            .map(str::to_owned)
    };
    let severity = Severity::parse(
        f.severity
            .as_ref()
            .map(|s| s.as_str())
            .unwrap_or("UNDEFINED"),
    );
    Finding {
        package: attr("package_name"),
        version: attr("package_version"),
        url: f.uri.clone(),
        // Basic scanning's CVSS2 score, when ECR gives one.
        cvss: attr("CVSS2_SCORE").as_deref().and_then(tenths),
        ..Finding::new(
            f.name.clone().unwrap_or_else(|| "(unnamed)".into()),
            severity,
        )
    }
}

fn enhanced_finding(f: aws_sdk_ecr::types::EnhancedImageScanFinding) -> Finding {
    let details = f.package_vulnerability_details.as_ref();
    let package = details.and_then(|d| d.vulnerable_packages().first());
    // The CVSS base score Inspector used for its score, else the highest a source gave.
    let cvss = f
        .score_details
        .as_ref()
        .and_then(|d| d.cvss.as_ref())
        .map(|c| c.score)
        .filter(|s| *s > 0.0)
        .or_else(|| {
            details
                .map(|d| d.cvss())
                .and_then(|all| all.iter().map(|c| c.base_score).reduce(f64::max))
        })
        // A plain double in the SDK: 0 is what an absent score reads as.
        .filter(|s| *s > 0.0);
    let id = details
        .and_then(|d| d.vulnerability_id.clone())
        .or(f.title.clone())
        .unwrap_or_else(|| "(unnamed)".into());
    Finding {
        status: f.status.as_deref().map(|s| s.trim().to_ascii_uppercase()),
        exploit_available: match f.exploit_available.as_deref() {
            Some("YES") => Some(true),
            Some("NO") => Some(false),
            _ => None,
        },
        // 0 is the SDK's stand-in for "no score" (the field is a plain double).
        score: (f.score > 0.0).then(|| tenths_of(f.score)).flatten(),
        cvss: cvss.and_then(tenths_of),
        package: package.and_then(|p| p.name.clone()),
        packages: details
            .map(|d| d.vulnerable_packages())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.name.clone())
            .collect(),
        version: package.and_then(|p| p.version.clone()),
        fixed_in: package
            .and_then(|p| p.fixed_in_version.clone())
            .filter(|v| !v.is_empty() && v != "NotAvailable"),
        url: details.and_then(|d| d.source_url.clone()),
        fix_available: match f.fix_available.as_deref() {
            Some("NO") => Some(false),
            Some("YES" | "PARTIAL") => Some(true),
            _ => None,
        },
        ..Finding::new(
            id,
            Severity::parse(f.severity.as_deref().unwrap_or("UNDEFINED")),
        )
    }
}

/// A 0–10 score in tenths; anything else is no score.
fn tenths_of(score: f64) -> Option<u16> {
    (score.is_finite() && (0.0..=10.0).contains(&score)).then(|| (score * 10.0).round() as u16)
}

fn tenths(text: &str) -> Option<u16> {
    text.trim().parse::<f64>().ok().and_then(tenths_of)
}

impl Ecr {
    pub(super) async fn fetch(&self, repository: &str, digest: &str) -> Result<Scan, Error> {
        let id = || ImageIdentifier::builder().image_digest(digest).build();
        let mut findings = Vec::new();
        let mut enhanced = false;
        let mut next: Option<String> = None;
        let mut first: Option<
            aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput,
        > = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .describe_image_scan_findings()
                .repository_name(repository)
                .image_id(id())
                .set_next_token(next.clone())
                .send()
                .await;
            let mut page = match page {
                Ok(p) => p,
                Err(e) => {
                    let e = Error::from_sdk("ECR", "DescribeImageScanFindings", e);
                    if e.aws_code() == Some("ScanNotFoundException") {
                        return self.start_scan(repository, digest).await;
                    }
                    return Err(e);
                }
            };
            if let Some(f) = page.image_scan_findings.as_mut() {
                findings.extend(
                    f.findings
                        .take()
                        .unwrap_or_default()
                        .into_iter()
                        .map(basic_finding),
                );
                let e = f.enhanced_findings.take().unwrap_or_default();
                enhanced |= !e.is_empty();
                findings.extend(e.into_iter().map(enhanced_finding));
            }
            let token = page.next_token.clone().filter(|t| !t.is_empty());
            if first.is_none() {
                first = Some(page);
                let status = first
                    .as_ref()
                    .and_then(|p| p.image_scan_status.as_ref())
                    .and_then(|s| s.status.as_ref())
                    .map(|s| s.as_str().to_owned());
                if status.as_deref() != Some("COMPLETE") && status.as_deref() != Some("ACTIVE") {
                    break;
                }
            }
            if token.is_none() {
                next = None;
                break;
            }
            if token == next {
                return Err(Error::Aws {
                    service: "ECR",
                    operation: "DescribeImageScanFindings",
                    code: None,
                    message: "pagination returned the same token twice".into(),
                    retryable: false,
                });
            }
            next = token;
        }
        if next.is_some() {
            return Err(Error::bad_input(format!(
                "more than {MAX_PAGES} pages of findings"
            )));
        }
        let Some(first) = first else {
            return Ok(Scan::NotStarted);
        };
        let status = first.image_scan_status.as_ref();
        let status_text = status
            .and_then(|s| s.status.as_ref())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".into());
        let description = status.and_then(|s| s.description.clone());
        match status_text.as_str() {
            "COMPLETE" | "ACTIVE" => {}
            "IN_PROGRESS" | "PENDING" => {
                return Ok(Scan::InProgress {
                    status: status_text,
                    description,
                });
            }
            _ => {
                return Ok(Scan::Unusable {
                    status: status_text,
                    description,
                });
            }
        }
        let completed_at = first
            .image_scan_findings
            .as_ref()
            .and_then(|f| f.image_scan_completed_at)
            .map(|t| t.secs());
        Ok(Scan::Complete {
            findings,
            enhanced: enhanced || status_text == "ACTIVE",
            completed_at,
        })
    }

    /// No scan exists: the repository does not scan on push. Waiting for one would hold a
    /// pipeline for the whole MAX_WAIT, so start a basic scan and say so. ECR allows one
    /// manual scan per image per day, which makes this "once": a second start is refused
    /// with LimitExceededException, read as "a scan is on its way". Any other refusal
    /// (enhanced scanning, no permission) means the image cannot be judged: the answer says
    /// why and what to change.
    async fn start_scan(&self, repository: &str, digest: &str) -> Result<Scan, Error> {
        let started = self
            .client
            .start_image_scan()
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await
            .map_err(|e| Error::from_sdk("ECR", "StartImageScan", e));
        match started {
            Ok(_) => {
                tracing::warn!(
                    repository,
                    digest,
                    "no scan existed; started one (turn on scan on push for this repository)"
                );
                Ok(Scan::InProgress {
                    status: "PENDING".into(),
                    description: Some(
                        "no scan existed (the repository does not scan on push), so the gate started one".into(),
                    ),
                })
            }
            Err(e) if e.is_retryable() => Err(e),
            // One manual scan per image per day: a scan was started recently (by us on an
            // earlier invocation, whose result ECR may not show yet, or by someone else).
            // Wait for it; MAX_WAIT still bounds the wait.
            Err(e) if e.aws_code() == Some("LimitExceededException") => Ok(Scan::InProgress {
                status: "PENDING".into(),
                description: Some(
                    "no scan found yet, and a scan of this image was already started today".into(),
                ),
            }),
            Err(e) => Ok(Scan::Unusable {
                status: "NO_SCAN".into(),
                description: Some(format!(
                    "no scan exists and one could not be started ({e}). Turn on scan on push for the repository; with enhanced scanning, check that Amazon Inspector covers it"
                )),
            }),
        }
    }
}
