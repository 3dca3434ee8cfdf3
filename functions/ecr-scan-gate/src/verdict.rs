//! From a scan and a policy to PASS, FAIL or PENDING.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::metrics;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use crate::floor::Told;
use crate::policy::{Counts, Evaluation, Finding, Policy, Severity, evaluate};
use crate::registry::Scan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// For an image index: each platform image's own verdict (empty for one image).
    pub platforms: Vec<PlatformVerdict>,
    /// Index entries that were not judged, each with why (build attestations, artifacts).
    pub skipped: Vec<String>,
}

/// One platform image of an index, as the message and the metrics tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformVerdict {
    pub platform: String,
    pub digest: String,
    pub verdict: &'static str,
    /// Its counts after waivers, or why it has none (a reason it failed or waits).
    pub summary: String,
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

pub const VERDICTS: metrics::Metric = metrics::Metric::count("Verdicts");
const FINDINGS: metrics::Metric = metrics::Metric::count("Findings");
const WAIVERS_EXPIRED: metrics::Metric = metrics::Metric::count("WaiversExpired");
/// Findings Inspector's suppression rules took out of the count: a suppression rule is
/// organisation-wide and never expires, so how much it hides is worth a graph.
const FINDINGS_SUPPRESSED: metrics::Metric = metrics::Metric::count("FindingsSuppressed");
/// A warn rule over its maximum: what a rule being rolled out would have blocked.
const POLICY_WARNINGS: metrics::Metric =
    metrics::Metric::count("PolicyWarnings").with_rollup(&["Rule"]);

/// `Verdicts` {Verdict}, and for a judged image `Findings` {Severity} that still count
/// after waivers and `WaiversExpired`.
pub fn record_verdict(verdict: &Verdict) {
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
        if !e.suppressed.is_empty() {
            metrics::record(&FINDINGS_SUPPRESSED, &[], e.suppressed.len() as f64);
        }
        for w in &e.warnings {
            metrics::record(
                &POLICY_WARNINGS,
                &[("Rule", &w.rule)],
                w.findings.len() as f64,
            );
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

/// How long after a scan event was sent its image is decided, or failed closed. Lambda retries
/// a failed asynchronous event twice, one minute after the first attempt ends and two after
/// the second (Lambda developer guide, "How Lambda handles errors and retries with
/// asynchronous invocation"), so the third attempt starts at least three minutes after the
/// event even when the first two fail at once (throttling, a claim held elsewhere); with the
/// template's 180 s timeout it then has until past this point to look, and decides, instead
/// of leaving the event to the dead-letter queue. FINDINGS_SETTLE (at most 2 minutes) fits
/// inside it. Also: a scan ECR says completed this long after an event's is a later scan than
/// the one the event told of.
pub const EVENT_DECIDED_BY: Duration = Duration::from_secs(240);

/// What the gate was told about a scan before it looked, and when it looks. A look that
/// contradicts what it was told is never decided on: the image waits, and the caller's own
/// bound (MAX_WAIT for a job, the event's give-up time) fails it closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Look<'a> {
    /// Seconds since the epoch.
    pub now: i64,
    /// How long after an enhanced scan completes before its findings are trusted: Inspector's
    /// findings keep reaching the findings API after the scan reports complete.
    pub settle: Duration,
    /// What scan events said about this image: their counts are a floor for what a look must
    /// show (findings that arrive late arrive in the API after the event), their time starts
    /// the settle, and an Inspector event makes the scan an enhanced one whatever ECR shows.
    pub told: Option<&'a Told>,
}

/// Severities in order of how bad they are, for the floor's "this bad or worse".
const RANKED: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
];

/// What the event counted that the look does not show yet, as text. Compared as "this bad or
/// worse" at each ranked severity (a severity nobody rated, or one this gate does not know,
/// ranks as CRITICAL, as the policy judges it), and in all, where the event's TOTAL (Inspector
/// counts only CRITICAL, HIGH and MEDIUM by name) is the floor when it is the larger: a finding
/// Inspector re-scores upwards between the event and the look (MEDIUM to HIGH) still covers
/// what was counted. One scored down shows as missing: a look cannot tell it from one that has
/// not arrived, so it waits, and fails closed if it never shows.
fn below_floor(findings: &[Finding], told: &Told) -> Vec<String> {
    let ranked = |severities: &mut dyn Iterator<Item = (Severity, u32)>| {
        let mut by_rank: Counts = Counts::new();
        for (severity, n) in severities {
            *by_rank.entry(severity.judged_as()).or_default() += n;
        }
        by_rank
    };
    let floor = ranked(&mut told.counts.iter().map(|(s, n)| (s.clone(), *n)));
    // A CLOSED finding is an old one Inspector no longer sees: it cannot stand for one the
    // event counted (an image pushed again while its old findings are closed would pass on
    // them). SUPPRESSED ones are still there, and count.
    let open: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.status.as_deref() != Some("CLOSED"))
        .collect();
    let readable = ranked(&mut open.iter().map(|f| (f.severity.clone(), 1)));
    let at = |counts: &Counts, s: &Severity| counts.get(s).copied().unwrap_or(0);
    let mut missing = Vec::new();
    let (mut told_so_far, mut shown) = (0, 0);
    for (i, severity) in RANKED.iter().enumerate() {
        told_so_far += at(&floor, severity);
        shown += at(&readable, severity);
        if shown < told_so_far && at(&floor, severity) > 0 {
            let worse = if i == 0 { "" } else { " or worse" };
            missing.push(format!(
                "{told_so_far} {}{worse} (readable: {shown})",
                severity.name()
            ));
        }
    }
    let told_in_all = told
        .counts
        .values()
        .sum::<u32>()
        .max(told.total.unwrap_or(0));
    let shown_in_all = u32::try_from(open.len()).unwrap_or(u32::MAX);
    if missing.is_empty() && shown_in_all < told_in_all {
        missing.push(format!("{told_in_all} in all (readable: {shown_in_all})"));
    }
    missing
}

/// The verdict on one image manifest.
pub fn decide(scan: Scan, image: Judged, policy: &Policy, look: &Look) -> Verdict {
    let told = look.told.is_some();
    let told_finished_at = look.told.and_then(|t| t.finished_at);
    match scan {
        Scan::NotStarted => Verdict::Pending {
            reason: if told {
                "the scan event said the scan finished, but ECR has no scan of this image yet"
                    .into()
            } else {
                "no scan of this image yet".into()
            },
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
                "scan status {status}{}. {}",
                description.map(|d| format!(": {d}")).unwrap_or_default(),
                what_to_do(&status)
            )],
            evaluation: None,
        },
        Scan::Complete {
            findings,
            enhanced,
            completed_at,
        } => {
            let mut waiting = Vec::new();
            // A scan ECR completed well after the one an event told of (a re-scan, a newer
            // vulnerability database) answers for itself: the old counts are no floor for it.
            let rescanned = matches!(
                (completed_at, told_finished_at),
                (Some(done), Some(told)) if done > told + EVENT_DECIDED_BY.as_secs() as i64
            );
            if let Some(t) = look.told.filter(|_| !rescanned) {
                let missing = below_floor(&findings, t);
                if !missing.is_empty() {
                    waiting.push(format!(
                        "the scan event counted {} that the findings API does not show yet",
                        missing.join(", ")
                    ));
                }
            }
            let finished = completed_at.max(told_finished_at);
            if (enhanced || look.told.is_some_and(|t| t.enhanced))
                && let Some(done) = finished
                && look.now.saturating_sub(done) < look.settle.as_secs() as i64
            {
                waiting.push(format!(
                    "enhanced scan completed {}s ago; findings may still arrive (FINDINGS_SETTLE {}s)",
                    look.now.saturating_sub(done).max(0),
                    look.settle.as_secs()
                ));
            }
            if !waiting.is_empty() {
                return Verdict::Pending {
                    reason: waiting.join("; "),
                };
            }
            let evaluation = evaluate(
                policy,
                &image.repository,
                &findings,
                &date_of(look.now),
                &date_of(look.now + 7 * 86_400),
            );
            if evaluation.passes() {
                return Verdict::Pass { image, evaluation };
            }
            let mut reasons: Vec<String> = evaluation
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
            reasons.extend(evaluation.breaches.iter().map(breach_line));
            Verdict::Fail {
                image: Some(image),
                reasons,
                evaluation: Some(evaluation),
            }
        }
    }
}

/// "rule `exploitable-high` allows 0 and decided 2 (CVE-1 HIGH, CVE-2 HIGH)": the rule, its
/// maximum, and the first findings it decided, worst first. Also for a warn rule's report.
pub fn breach_line(b: &crate::policy::Breach) -> String {
    let ids: Vec<String> = b
        .findings
        .iter()
        .take(5)
        .map(|f| format!("{} {}", f.id, f.severity.name()))
        .collect();
    format!(
        "rule {} allows {} and decided {} ({}{})",
        b.rule,
        b.max,
        b.findings.len(),
        ids.join(", "),
        if b.findings.len() > ids.len() {
            ", …"
        } else {
            ""
        }
    )
}

/// What a scan status the gate cannot judge from means, and what a person can do about it
/// (the statuses of ECR's ImageScanStatus, ECR API reference; their meanings from ECR's user
/// guide, "Troubleshooting image scanning issues", and ECR Public's ImageScanStatus). The
/// image still fails closed: no judgement is possible.
pub fn what_to_do(status: &str) -> &'static str {
    match status {
        "FAILED" => {
            "the scan failed; start it again (basic scanning: aws ecr start-image-scan; enhanced: push the image again)"
        }
        "UNSUPPORTED_IMAGE" => {
            "ECR cannot scan this image: its operating system, media type or package manager is not supported (for example a scratch image)"
        }
        "SCAN_ELIGIBILITY_EXPIRED" => {
            "Inspector no longer scans this image: its scan duration (Inspector's ECR re-scan setting) ran out. Rebuild and push it (a new digest is scanned), or delete and push it again; a longer duration keeps future images eligible"
        }
        "FINDINGS_UNAVAILABLE" => {
            "ECR has no findings for this image (it may have been scanned before enhanced scanning covered it); push it again for a new scan"
        }
        "LIMIT_EXCEEDED" => {
            "ECR reports a scanning limit reached for this image; see the description, and try again later"
        }
        "IMAGE_SIZE_EXCEEDED" => {
            "the image is larger than Inspector scans (a status Inspector reserves; not in ECR's list today); a smaller image can be judged"
        }
        "IMAGE_ARCHIVED" => "archived images cannot be scanned; restore the image, then scan it",
        "NO_SCAN" => "no scan could be started; see the description",
        _ => "a scan status this gate does not know, so it cannot judge the image",
    }
}

/// Counts after waivers as one line, for a platform's summary.
fn summary_of(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass { evaluation, .. } => crate::policy::counts_line(&evaluation.after),
        Verdict::Fail {
            evaluation: Some(e),
            ..
        } => crate::policy::counts_line(&e.after),
        Verdict::Fail { reasons, .. } => reasons.join("; "),
        Verdict::Pending { reason } => reason.clone(),
    }
}

/// An image index's verdict from its platforms' verdicts: the worst. A FAIL anywhere fails
/// the index (a look that waits elsewhere cannot turn it into a PASS); otherwise a platform
/// still waiting keeps the whole index waiting; only when every platform passes does the
/// index pass. The counts shown and reported are the platform with the most findings that
/// still count.
pub fn combine(index: Judged, platforms: Vec<(String, String, Verdict)>) -> Verdict {
    let mut image = index;
    image.platforms = platforms
        .iter()
        .map(|(platform, digest, v)| PlatformVerdict {
            platform: platform.clone(),
            digest: digest.clone(),
            verdict: v.name(),
            summary: summary_of(v),
        })
        .collect();
    let mut reasons = Vec::new();
    let mut failed_evaluation = None;
    let mut waiting = Vec::new();
    let mut worst_pass: Option<Evaluation> = None;
    // Every platform's warnings, not only the shown platform's: a warn rule being rolled out
    // must be seen wherever it would block.
    let mut warnings: Vec<crate::policy::Breach> = Vec::new();
    for (platform, _, v) in platforms {
        match v {
            Verdict::Fail {
                reasons: r,
                evaluation,
                ..
            } => {
                reasons.extend(r.into_iter().map(|r| format!("{platform}: {r}")));
                if failed_evaluation.is_none() {
                    failed_evaluation = evaluation;
                }
            }
            Verdict::Pending { reason } => waiting.push(format!("{platform}: {reason}")),
            Verdict::Pass { evaluation, .. } => {
                for w in &evaluation.warnings {
                    match warnings.iter_mut().find(|x| x.rule == w.rule) {
                        Some(x) => x.findings.extend(
                            w.findings
                                .iter()
                                .filter(|f| !x.findings.iter().any(|y| y.id == f.id))
                                .cloned()
                                .collect::<Vec<_>>(),
                        ),
                        None => warnings.push(w.clone()),
                    }
                }
                if worst_pass
                    .as_ref()
                    .is_none_or(|w| evaluation.counted.len() > w.counted.len())
                {
                    worst_pass = Some(evaluation);
                }
            }
        }
    }
    if !reasons.is_empty() {
        return Verdict::Fail {
            image: Some(image),
            reasons,
            evaluation: failed_evaluation,
        };
    }
    if !waiting.is_empty() {
        return Verdict::Pending {
            reason: waiting.join("; "),
        };
    }
    match worst_pass {
        Some(mut evaluation) => {
            evaluation.warnings = warnings;
            Verdict::Pass { image, evaluation }
        }
        // `index::parse` refuses an index without platforms; answered closed regardless.
        None => Verdict::Fail {
            image: Some(image),
            reasons: vec!["the image index lists no image to judge".into()],
            evaluation: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn complete(findings: Vec<Finding>, enhanced: bool, completed_at: Option<i64>) -> Scan {
        Scan::Complete {
            findings,
            enhanced,
            completed_at,
        }
    }

    fn image() -> Judged {
        Judged {
            repository: "app".into(),
            digest: "sha256:ab".into(),
            tags: vec!["1.0".into()],
            platforms: Vec::new(),
            skipped: Vec::new(),
        }
    }

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding::new(id, severity)
    }

    fn critical() -> Finding {
        finding("CVE-1", Severity::Critical)
    }

    fn policy() -> Policy {
        Policy {
            max: BTreeMap::from([(Severity::Critical, 0)]),
            ..Policy::default()
        }
    }

    fn at(now: i64) -> Look<'static> {
        Look {
            now,
            ..Look::default()
        }
    }

    #[test]
    fn unusable_scans_fail_closed_with_their_status_and_what_to_do() {
        let v = decide(
            Scan::Unusable {
                status: "UNSUPPORTED_IMAGE".into(),
                description: Some("not a Linux image".into()),
            },
            image(),
            &policy(),
            &at(0),
        );
        let Verdict::Fail {
            image: None,
            reasons,
            evaluation: None,
        } = v
        else {
            panic!("not failed closed: {v:?}");
        };
        assert_eq!(
            reasons,
            vec![format!(
                "scan status UNSUPPORTED_IMAGE: not a Linux image. {}",
                what_to_do("UNSUPPORTED_IMAGE")
            )]
        );
    }

    /// Every status of ECR's ImageScanStatus (ECR API reference) that cannot be judged has
    /// its own explanation; COMPLETE and ACTIVE are judged, IN_PROGRESS and PENDING waited for.
    #[test]
    fn every_scan_status_ecr_can_answer_is_explained() {
        let unknown = what_to_do("SOMETHING_NEW");
        let mut said = std::collections::HashSet::new();
        for status in [
            "FAILED",
            "UNSUPPORTED_IMAGE",
            "SCAN_ELIGIBILITY_EXPIRED",
            "FINDINGS_UNAVAILABLE",
            "LIMIT_EXCEEDED",
            "IMAGE_ARCHIVED",
        ] {
            let advice = what_to_do(status);
            assert_ne!(advice, unknown, "{status}");
            assert!(
                said.insert(advice),
                "{status} shares another status's words"
            );
        }
    }

    #[test]
    fn unfinished_scans_are_pending() {
        assert_eq!(
            decide(Scan::NotStarted, image(), &policy(), &at(0)).name(),
            "PENDING"
        );
        let in_progress = Scan::InProgress {
            status: "IN_PROGRESS".into(),
            description: None,
        };
        assert_eq!(
            decide(in_progress, image(), &policy(), &at(0)).name(),
            "PENDING"
        );
    }

    #[test]
    fn enhanced_results_wait_to_settle() {
        let now = 1_800_000_000;
        let look = Look {
            now,
            settle: Duration::from_secs(60),
            ..Look::default()
        };
        let fresh = complete(vec![], true, Some(now - 10));
        assert_eq!(decide(fresh, image(), &policy(), &look).name(), "PENDING");
        let settled = complete(vec![], true, Some(now - 120));
        assert_eq!(decide(settled, image(), &policy(), &look).name(), "PASS");
    }

    /// The event's time counts as the scan's completion when ECR's own date is older or
    /// missing: the event is what said the scan finished.
    fn told(counts: &[(Severity, u32)], total: Option<u32>) -> Told {
        Told {
            counts: counts.iter().cloned().collect(),
            total,
            finished_at: None,
            enhanced: true,
        }
    }

    #[test]
    fn an_enhanced_scan_settles_from_the_event_time_too() {
        let now = 1_800_000_000;
        let event = Told {
            finished_at: Some(now - 5),
            ..told(&[], None)
        };
        let look = Look {
            now,
            settle: Duration::from_secs(60),
            told: Some(&event),
        };
        let v = decide(complete(vec![], true, None), image(), &policy(), &look);
        assert_eq!(v.name(), "PENDING", "{v:?}");
    }

    /// Inspector's findings reach the findings API after the scan event (ecperth/
    /// check-aws-inspector and aws/aws-for-fluent-bit#1105 poll for this): a look showing
    /// fewer than the event counted is not a clean image, it is an early look.
    #[test]
    fn a_look_with_fewer_findings_than_the_event_counted_is_never_passed() {
        let floor = told(&[(Severity::Critical, 1)], None);
        let look = Look {
            told: Some(&floor),
            ..at(1_800_000_000)
        };
        let early = complete(vec![finding("CVE-2", Severity::Low)], true, None);
        let Verdict::Pending { reason } = decide(early, image(), &policy(), &look) else {
            panic!("an early look must wait")
        };
        assert!(reason.contains("1 CRITICAL (readable: 0)"), "{reason}");
        let later = complete(vec![critical()], true, None);
        assert_eq!(decide(later, image(), &policy(), &look).name(), "FAIL");
        let more_than_told = complete(
            vec![critical(), finding("CVE-9", Severity::Critical)],
            true,
            None,
        );
        assert_eq!(
            decide(more_than_told, image(), &policy(), &look).name(),
            "FAIL",
            "the counts are a floor, not an exact match"
        );
    }

    /// Inspector re-scores findings as its data changes; a finding scored up between the event
    /// and the look still covers what the event counted, one turned UNTRIAGED still counts in
    /// all, and one scored down is missing: a look cannot tell it from one not yet arrived.
    #[test]
    fn the_floor_is_met_by_findings_this_bad_or_worse() {
        let floor = told(&[(Severity::Medium, 1)], None);
        let look = Look {
            told: Some(&floor),
            ..at(1_800_000_000)
        };
        let scored_up = complete(vec![finding("CVE-5", Severity::High)], true, None);
        assert_ne!(
            decide(scored_up, image(), &policy(), &look).name(),
            "PENDING"
        );
        let scored_down = complete(vec![finding("CVE-5", Severity::Low)], true, None);
        let Verdict::Pending { reason } = decide(scored_down, image(), &policy(), &look) else {
            panic!("a look below the event's count waits")
        };
        assert!(
            reason.contains("1 MEDIUM or worse (readable: 0)"),
            "{reason}"
        );
    }

    /// Inspector's event names only CRITICAL, HIGH and MEDIUM and gives a TOTAL (ECR user
    /// guide, enhanced scanning events): the findings it counted beyond those (LOW,
    /// UNTRIAGED) are waited for in all, and an UNTRIAGED one, judged as CRITICAL, covers
    /// a CRITICAL count.
    #[test]
    fn the_events_total_and_unrated_findings_are_part_of_the_floor() {
        let floor = told(&[(Severity::Medium, 2)], Some(3));
        let look = Look {
            told: Some(&floor),
            ..at(1_800_000_000)
        };
        let two_of_three = complete(
            vec![
                finding("CVE-1", Severity::Medium),
                finding("CVE-2", Severity::Medium),
            ],
            true,
            None,
        );
        let Verdict::Pending { reason } = decide(two_of_three, image(), &policy(), &look) else {
            panic!("the third finding of TOTAL is waited for")
        };
        assert!(reason.contains("3 in all (readable: 2)"), "{reason}");
        let critical = told(&[(Severity::Critical, 1)], Some(1));
        let untriaged = complete(vec![finding("CVE-3", Severity::Untriaged)], true, None);
        let look = Look {
            told: Some(&critical),
            ..at(1_800_000_000)
        };
        assert_eq!(decide(untriaged, image(), &policy(), &look).name(), "FAIL");
    }

    /// A scan ECR completed after the one the event told of (a re-scan) answers for itself.
    #[test]
    fn a_later_scan_is_not_held_to_an_earlier_events_counts() {
        let now = 1_800_000_000;
        let old_event = Told {
            finished_at: Some(now - 3600),
            ..told(&[(Severity::Critical, 1)], None)
        };
        let look = Look {
            told: Some(&old_event),
            ..at(now)
        };
        let rescanned = complete(vec![], false, Some(now - 60));
        assert_eq!(decide(rescanned, image(), &policy(), &look).name(), "PASS");
    }

    #[test]
    fn failure_reasons_name_the_threshold_and_findings() {
        let Verdict::Fail { reasons, .. } = decide(
            complete(vec![critical()], false, None),
            image(),
            &policy(),
            &at(0),
        ) else {
            panic!()
        };
        assert_eq!(
            reasons,
            vec!["1 CRITICAL finding(s) exceed MAX_CRITICAL=0 (CVE-1)"]
        );
    }

    fn platform(name: &str, v: Verdict) -> (String, String, Verdict) {
        (name.into(), format!("sha256:{name}"), v)
    }

    fn pass() -> Verdict {
        decide(complete(vec![], false, None), image(), &policy(), &at(0))
    }

    fn fail() -> Verdict {
        decide(
            complete(vec![critical()], false, None),
            image(),
            &policy(),
            &at(0),
        )
    }

    #[test]
    fn an_index_gets_the_worst_of_its_platforms_and_names_them() {
        let all_pass = combine(
            image(),
            vec![
                platform("linux/amd64", pass()),
                platform("linux/arm64", pass()),
            ],
        );
        let Verdict::Pass { image: judged, .. } = &all_pass else {
            panic!("{all_pass:?}")
        };
        assert_eq!(
            judged.digest, "sha256:ab",
            "the index itself is what passed"
        );
        assert_eq!(judged.platforms.len(), 2);

        let one_fails = combine(
            image(),
            vec![
                platform("linux/amd64", pass()),
                platform("linux/arm64", fail()),
            ],
        );
        let Verdict::Fail { reasons, .. } = &one_fails else {
            panic!("{one_fails:?}")
        };
        assert_eq!(
            reasons,
            &vec!["linux/arm64: 1 CRITICAL finding(s) exceed MAX_CRITICAL=0 (CVE-1)".to_owned()]
        );

        let waiting = Verdict::Pending {
            reason: "scan status IN_PROGRESS".into(),
        };
        let one_waits = combine(
            image(),
            vec![
                platform("linux/amd64", pass()),
                platform("linux/arm64", waiting.clone()),
            ],
        );
        assert_eq!(one_waits.name(), "PENDING");
        let fail_and_wait = combine(
            image(),
            vec![
                platform("linux/amd64", fail()),
                platform("linux/arm64", waiting),
            ],
        );
        assert_eq!(fail_and_wait.name(), "FAIL", "a failure is final");
    }

    #[test]
    fn dates_come_out_as_iso_days() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_795_169_643), "2026-11-20");
    }
}
