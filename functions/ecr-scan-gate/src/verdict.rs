//! From a scan and a policy to PASS, FAIL or PENDING.

use std::time::Duration;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use crate::policy::{Evaluation, Policy, evaluate};
use crate::registry::Scan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass {
        image: Judged,
        evaluation: Evaluation,
    },
    Fail {
        image: Option<Judged>,
        reasons: Vec<String>,
        evaluation: Option<Evaluation>,
    },
    Pending {
        reason: String,
    },
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pass { .. } => "PASS",
            Self::Fail { .. } => "FAIL",
            Self::Pending { .. } => "PENDING",
        }
    }
}

/// `YYYY-MM-DD` of a Unix time, UTC.
pub fn date_of(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .map(|s| s[..10].to_owned())
        .unwrap_or_default()
}

pub fn decide(
    scan: Scan,
    repository: &str,
    policy: &Policy,
    now: i64,
    settle: Duration,
) -> Verdict {
    match scan {
        Scan::NotStarted => Verdict::Pending {
            reason: "no scan of this image yet".into(),
        },
        Scan::InProgress {
            status,
            description,
        } => Verdict::Pending {
            reason: format!(
                "scan status {status}{}",
                description.map(|d| format!(": {d}")).unwrap_or_default()
            ),
        },
        Scan::Unusable {
            status,
            description,
        } => Verdict::Fail {
            image: None,
            reasons: vec![format!(
                "scan status {status}{}",
                description.map(|d| format!(": {d}")).unwrap_or_default()
            )],
            evaluation: None,
        },
        Scan::Complete {
            digest,
            tags,
            findings,
            enhanced,
            completed_at,
        } => {
            if enhanced
                && let Some(done) = completed_at
                && now.saturating_sub(done) < settle.as_secs() as i64
            {
                return Verdict::Pending {
                    reason: format!(
                        "enhanced scan completed {}s ago; findings may still arrive",
                        now - done
                    ),
                };
            }
            let evaluation = evaluate(
                policy,
                repository,
                &findings,
                &date_of(now),
                &date_of(now + 7 * 86_400),
            );
            let image = Judged {
                repository: repository.to_owned(),
                digest,
                tags,
            };
            if evaluation.passes() {
                Verdict::Pass { image, evaluation }
            } else {
                let reasons = evaluation
                    .broken
                    .iter()
                    .map(|(sev, n, max)| {
                        // Unrated and unknown severities count as CRITICAL; they are named.
                        let ids: Vec<String> = evaluation
                            .counted
                            .iter()
                            .filter(|f| f.severity.judged_as() == *sev)
                            .take(5)
                            .map(|f| match &f.severity {
                                own if own == sev => f.id.clone(),
                                own => format!("{} rated {}", f.id, own.name()),
                            })
                            .collect();
                        let var = format!("MAX_{}", sev.name());
                        format!(
                            "{n} {} finding(s) exceed {var}={max} ({}{})",
                            sev.name(),
                            ids.join(", "),
                            if *n as usize > ids.len() { ", …" } else { "" }
                        )
                    })
                    .collect();
                Verdict::Fail {
                    image: Some(image),
                    reasons,
                    evaluation: Some(evaluation),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Finding, Severity};
    use std::collections::BTreeMap;

    fn complete(findings: Vec<Finding>, enhanced: bool, completed_at: Option<i64>) -> Scan {
        Scan::Complete {
            digest: "sha256:ab".into(),
            tags: vec!["1.0".into()],
            findings,
            enhanced,
            completed_at,
        }
    }

    fn critical() -> Finding {
        Finding {
            id: "CVE-1".into(),
            severity: Severity::Critical,
            package: None,
            version: None,
            fixed_in: None,
            url: None,
            fix_available: None,
        }
    }

    fn policy() -> Policy {
        Policy {
            max: BTreeMap::from([(Severity::Critical, 0)]),
            ..Policy::default()
        }
    }

    #[test]
    fn unusable_scans_fail_closed_with_their_status() {
        let v = decide(
            Scan::Unusable {
                status: "UNSUPPORTED_IMAGE".into(),
                description: Some("not a Linux image".into()),
            },
            "app",
            &policy(),
            0,
            Duration::ZERO,
        );
        assert_eq!(
            v,
            Verdict::Fail {
                image: None,
                reasons: vec!["scan status UNSUPPORTED_IMAGE: not a Linux image".into()],
                evaluation: None
            }
        );
    }

    #[test]
    fn unfinished_scans_are_pending() {
        assert_eq!(
            decide(Scan::NotStarted, "app", &policy(), 0, Duration::ZERO).name(),
            "PENDING"
        );
        assert_eq!(
            decide(
                Scan::InProgress {
                    status: "IN_PROGRESS".into(),
                    description: None
                },
                "app",
                &policy(),
                0,
                Duration::ZERO
            )
            .name(),
            "PENDING"
        );
    }

    #[test]
    fn enhanced_results_wait_to_settle() {
        let now = 1_800_000_000;
        assert_eq!(
            decide(
                complete(vec![], true, Some(now - 10)),
                "app",
                &policy(),
                now,
                Duration::from_secs(60)
            )
            .name(),
            "PENDING"
        );
        assert_eq!(
            decide(
                complete(vec![], true, Some(now - 120)),
                "app",
                &policy(),
                now,
                Duration::from_secs(60)
            )
            .name(),
            "PASS"
        );
    }

    #[test]
    fn failure_reasons_name_the_threshold_and_findings() {
        let Verdict::Fail { reasons, .. } = decide(
            complete(vec![critical()], false, None),
            "app",
            &policy(),
            0,
            Duration::ZERO,
        ) else {
            panic!()
        };
        assert_eq!(
            reasons,
            vec!["1 CRITICAL finding(s) exceed MAX_CRITICAL=0 (CVE-1)"]
        );
    }

    #[test]
    fn dates_come_out_as_iso_days() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_795_169_643), "2026-11-20");
    }
}
