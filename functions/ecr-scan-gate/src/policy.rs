//! The gate's policy: thresholds by severity, unfixed findings, time-limited waivers.
//! Pure functions of the findings and today's date, so every entry point reaches the same
//! verdict for the same image.

use std::collections::BTreeMap;

use serde::Deserialize;
use shared::glob::Glob;

/// Severities in order of how bad they are. ECR basic scanning uses the first six;
/// Inspector adds UNTRIAGED. A finding nobody has rated (UNDEFINED, UNTRIAGED) and anything
/// else (kept by name) are judged as critical: the gate fails closed, so an unrated, new or
/// garbled severity cannot slip a finding past it. A waiver lets a specific one through.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Informational,
    Undefined,
    Untriaged,
    Unknown(String),
}

impl Severity {
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Self::Critical,
            "HIGH" => Self::High,
            "MEDIUM" => Self::Medium,
            "LOW" => Self::Low,
            "INFORMATIONAL" => Self::Informational,
            "UNDEFINED" => Self::Undefined,
            "UNTRIAGED" => Self::Untriaged,
            other => Self::Unknown(other.to_owned()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Critical => "CRITICAL",
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
            Self::Informational => "INFORMATIONAL",
            Self::Undefined => "UNDEFINED",
            Self::Untriaged => "UNTRIAGED",
            Self::Unknown(name) => name,
        }
    }

    /// The threshold that applies: unrated and unknown severities answer to MAX_CRITICAL.
    pub fn judged_as(&self) -> Severity {
        match self {
            Self::Unknown(_) | Self::Undefined | Self::Untriaged => Self::Critical,
            other => other.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    pub package: Option<String>,
    pub version: Option<String>,
    pub fixed_in: Option<String>,
    pub url: Option<String>,
    /// From enhanced scanning's `fixAvailable`: `Some(false)` for `NO`; unknown otherwise.
    pub fix_available: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    pub id: String,
    /// Repository-name glob; every repository when absent.
    #[serde(default)]
    pub repository: Option<Glob>,
    /// Last day the waiver applies, `YYYY-MM-DD` (UTC).
    pub expires: String,
    pub reason: String,
}

impl Waiver {
    fn covers(&self, finding: &Finding, repository: &str) -> bool {
        self.id.eq_ignore_ascii_case(&finding.id)
            && self
                .repository
                .as_ref()
                .is_none_or(|g| g.matches(repository))
    }
}

/// Dates as `YYYY-MM-DD`, compared as text (valid for that format).
pub fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&text[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&text[8..10].parse::<u32>().unwrap_or(0))
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Highest allowed count per severity; absent means unlimited.
    pub max: BTreeMap<Severity, u32>,
    pub ignore_unfixed: bool,
    pub waivers: Vec<Waiver>,
}

pub type Counts = BTreeMap<Severity, u32>;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    pub before: Counts,
    pub after: Counts,
    /// `(severity, counted, allowed)` for every threshold exceeded.
    pub broken: Vec<(Severity, u32, u32)>,
    /// Findings that still count, worst first.
    pub counted: Vec<Finding>,
    pub waived: Vec<(Finding, Waiver)>,
    /// Waivers that matched a finding but have expired: the finding counts again.
    pub expired: Vec<(Finding, Waiver)>,
    /// Waivers in use that end within a week.
    pub expiring_soon: Vec<Waiver>,
    pub ignored_unfixed: Vec<Finding>,
}

impl Evaluation {
    pub fn passes(&self) -> bool {
        self.broken.is_empty()
    }
}

/// `today` and `soon` (today + 7 days) are `YYYY-MM-DD`.
pub fn evaluate(
    policy: &Policy,
    repository: &str,
    findings: &[Finding],
    today: &str,
    soon: &str,
) -> Evaluation {
    let mut e = Evaluation::default();
    for f in findings {
        *e.before.entry(f.severity.clone()).or_default() += 1;
        if policy.ignore_unfixed && f.fix_available == Some(false) {
            e.ignored_unfixed.push(f.clone());
            continue;
        }
        let matching: Vec<&Waiver> = policy
            .waivers
            .iter()
            .filter(|w| w.covers(f, repository))
            .collect();
        if let Some(w) = matching.iter().find(|w| w.expires.as_str() >= today) {
            if w.expires.as_str() <= soon && !e.expiring_soon.contains(w) {
                e.expiring_soon.push((*w).clone());
            }
            e.waived.push((f.clone(), (*w).clone()));
            continue;
        }
        if let Some(w) = matching.first() {
            e.expired.push((f.clone(), (*w).clone()));
        }
        *e.after.entry(f.severity.clone()).or_default() += 1;
        e.counted.push(f.clone());
    }
    e.counted.sort_by(|a, b| {
        a.severity
            .judged_as()
            .cmp(&b.severity.judged_as())
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut judged: Counts = BTreeMap::new();
    for (sev, n) in &e.after {
        *judged.entry(sev.judged_as()).or_default() += n;
    }
    for (sev, max) in &policy.max {
        let n = judged.get(sev).copied().unwrap_or(0);
        if n > *max {
            e.broken.push((sev.clone(), n, *max));
        }
    }
    e
}

/// The order counts are told in.
const ORDER: [Severity; 6] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
    Severity::Undefined,
];

/// CRITICAL to LOW always (a zero is news too); other severities only when present.
pub fn counts_line(counts: &Counts) -> String {
    let mut parts: Vec<String> = ORDER[..4]
        .iter()
        .map(|s| format!("{} {}", counts.get(s).copied().unwrap_or(0), s.name()))
        .collect();
    for (s, n) in counts
        .iter()
        .filter(|(s, n)| !ORDER[..4].contains(s) && **n > 0)
    {
        parts.push(format!("{n} {}", s.name()));
    }
    parts.join(" · ")
}

/// Counts from an event's `finding-severity-counts`: a severity absent from it means 0.
pub fn counts_from_event(map: &serde_json::Map<String, serde_json::Value>) -> Counts {
    map.iter()
        .filter(|(k, _)| k.as_str() != "TOTAL")
        .filter_map(|(k, v)| Some((Severity::parse(k), u32::try_from(v.as_u64()?).ok()?)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: &str) -> Finding {
        Finding {
            id: id.into(),
            severity: Severity::parse(severity),
            package: Some("openssl".into()),
            version: Some("3.0.1".into()),
            fixed_in: None,
            url: None,
            fix_available: None,
        }
    }

    fn default_policy() -> Policy {
        Policy {
            max: BTreeMap::from([(Severity::Critical, 0), (Severity::High, 0)]),
            ..Policy::default()
        }
    }

    const TODAY: &str = "2026-11-22";
    const SOON: &str = "2026-11-29";

    #[test]
    fn clean_image_passes() {
        let e = evaluate(
            &default_policy(),
            "app",
            &[finding("CVE-1", "LOW"), finding("CVE-2", "MEDIUM")],
            TODAY,
            SOON,
        );
        assert!(e.passes());
        assert_eq!(e.after.get(&Severity::Low), Some(&1));
    }

    #[test]
    fn each_threshold_is_enforced() {
        let findings = [
            finding("CVE-1", "CRITICAL"),
            finding("CVE-2", "HIGH"),
            finding("CVE-3", "HIGH"),
            finding("CVE-4", "MEDIUM"),
        ];
        let e = evaluate(&default_policy(), "app", &findings, TODAY, SOON);
        assert_eq!(
            e.broken,
            vec![(Severity::Critical, 1, 0), (Severity::High, 2, 0)]
        );

        let lenient = Policy {
            max: BTreeMap::from([
                (Severity::Critical, 1),
                (Severity::High, 2),
                (Severity::Medium, 0),
            ]),
            ..Policy::default()
        };
        let e = evaluate(&lenient, "app", &findings, TODAY, SOON);
        assert_eq!(e.broken, vec![(Severity::Medium, 1, 0)]);
        assert_eq!(e.counted[0].id, "CVE-1", "worst first");
    }

    #[test]
    fn absent_severity_keys_in_event_counts_mean_zero() {
        let map = serde_json::json!({"HIGH": 2, "TOTAL": 2})
            .as_object()
            .unwrap()
            .clone();
        let counts = counts_from_event(&map);
        assert_eq!(counts.get(&Severity::High), Some(&2));
        assert_eq!(counts.get(&Severity::Critical), None);
        assert!(counts_from_event(&serde_json::Map::new()).is_empty());
    }

    #[test]
    fn unrated_findings_are_judged_as_critical() {
        let e = evaluate(
            &default_policy(),
            "app",
            &[finding("CVE-7", "UNDEFINED"), finding("CVE-8", "UNTRIAGED")],
            TODAY,
            SOON,
        );
        assert_eq!(e.broken, vec![(Severity::Critical, 2, 0)]);
    }

    #[test]
    fn unknown_severities_are_judged_as_critical() {
        let e = evaluate(
            &default_policy(),
            "app",
            &[finding("CVE-9", "CATASTROPHIC")],
            TODAY,
            SOON,
        );
        assert_eq!(e.broken, vec![(Severity::Critical, 1, 0)]);
        assert_eq!(e.after.keys().next().unwrap().name(), "CATASTROPHIC");
    }

    #[test]
    fn a_waiver_removes_its_finding_by_id_and_repository_glob() {
        let waiver = Waiver {
            id: "cve-1".into(),
            repository: Some(Glob::new("team/*")),
            expires: "2027-01-31".into(),
            reason: "not reachable".into(),
        };
        let policy = Policy {
            waivers: vec![waiver.clone()],
            ..default_policy()
        };
        let e = evaluate(
            &policy,
            "team/app",
            &[finding("CVE-1", "CRITICAL")],
            TODAY,
            SOON,
        );
        assert!(e.passes());
        assert_eq!(e.waived.len(), 1);
        let other_repo = evaluate(
            &policy,
            "billing",
            &[finding("CVE-1", "CRITICAL")],
            TODAY,
            SOON,
        );
        assert!(!other_repo.passes());
    }

    #[test]
    fn an_expired_waiver_no_longer_applies_and_is_reported() {
        let waiver = Waiver {
            id: "CVE-1".into(),
            repository: None,
            expires: "2026-11-21".into(),
            reason: "r".into(),
        };
        let policy = Policy {
            waivers: vec![waiver],
            ..default_policy()
        };
        let e = evaluate(&policy, "app", &[finding("CVE-1", "CRITICAL")], TODAY, SOON);
        assert!(!e.passes());
        assert_eq!(e.expired.len(), 1);
        assert!(e.waived.is_empty());
    }

    #[test]
    fn a_waiver_ending_within_a_week_is_flagged_and_still_applies() {
        let waiver = Waiver {
            id: "CVE-1".into(),
            repository: None,
            expires: "2026-11-22".into(),
            reason: "r".into(),
        };
        let policy = Policy {
            waivers: vec![waiver.clone()],
            ..default_policy()
        };
        let e = evaluate(&policy, "app", &[finding("CVE-1", "HIGH")], TODAY, SOON);
        assert!(e.passes(), "valid through its last day");
        assert_eq!(e.expiring_soon, vec![waiver]);
    }

    #[test]
    fn ignore_unfixed_skips_only_findings_without_a_fix() {
        let mut unfixed = finding("CVE-1", "CRITICAL");
        unfixed.fix_available = Some(false);
        let mut fixable = finding("CVE-2", "CRITICAL");
        fixable.fix_available = Some(true);
        let policy = Policy {
            ignore_unfixed: true,
            ..default_policy()
        };
        let e = evaluate(&policy, "app", &[unfixed.clone(), fixable], TODAY, SOON);
        assert_eq!(e.broken, vec![(Severity::Critical, 1, 0)]);
        assert_eq!(e.ignored_unfixed, vec![unfixed.clone()]);
        let strict = evaluate(&default_policy(), "app", &[unfixed], TODAY, SOON);
        assert!(
            !strict.passes(),
            "without IGNORE_UNFIXED an unfixed critical counts"
        );
    }

    #[test]
    fn dates_are_checked() {
        assert!(is_date("2026-01-31"));
        assert!(!is_date("2026-13-01"));
        assert!(!is_date("26-01-31"));
        assert!(!is_date("2026/01/31"));
    }
}
