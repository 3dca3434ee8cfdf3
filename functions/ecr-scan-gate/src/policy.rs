//! The gate's policy: Inspector's triage, time-limited waivers, then rules (a `POLICY`
//! document, or the `MAX_*` thresholds and `IGNORE_UNFIXED` written as rules). Pure functions
//! of the findings and today's date, so every entry point reaches the same verdict for the
//! same image.

mod rules;

use std::collections::BTreeMap;

use serde::Deserialize;
use shared::glob::Glob;

pub use rules::{
    Action, MAX_RULES, POLICY_EXPECTED, Rule, When, parse_policy, parse_policy_once,
    threshold_rules,
};

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
    /// Inspector's triage of an enhanced finding (`ACTIVE`, `SUPPRESSED`, `CLOSED`); none for
    /// basic scanning.
    pub status: Option<String>,
    /// Enhanced scanning's `exploitAvailable`; unknown for basic scanning.
    pub exploit_available: Option<bool>,
    /// Inspector's score, in tenths (7.5 → 75).
    pub score: Option<u16>,
    /// The CVSS base score, in tenths.
    pub cvss: Option<u16>,
    /// EPSS, in ten-thousandths: Inspector's own findings carry it, ECR's do not.
    pub epss: Option<u16>,
    /// Every vulnerable package an enhanced finding names (`package` is the first).
    pub packages: Vec<String>,
}

impl Finding {
    /// A finding with only what every scan gives; the rest unknown.
    pub fn new(id: impl Into<String>, severity: Severity) -> Self {
        Self {
            id: id.into(),
            severity,
            package: None,
            version: None,
            fixed_in: None,
            url: None,
            fix_available: None,
            status: None,
            exploit_available: None,
            score: None,
            cvss: None,
            epss: None,
            packages: Vec::new(),
        }
    }

    fn triage(&self) -> &str {
        self.status.as_deref().unwrap_or("ACTIVE")
    }
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
    /// The `POLICY` document's rules; when absent, `max` and `ignore_unfixed` are the rules.
    pub rules: Option<Vec<Rule>>,
}

/// A rule that decided more findings than it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub rule: String,
    pub max: u32,
    /// The findings it decided, worst first.
    pub findings: Vec<Finding>,
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
    /// Suppressed in Inspector (a suppression rule): triage the gate honours as a waiver.
    pub suppressed: Vec<Finding>,
    /// Closed in Inspector (no longer present): not counted.
    pub closed: u32,
    /// Allowed by a `POLICY` rule, with its name.
    pub allowed: Vec<(Finding, String)>,
    /// `POLICY` block rules over their maximum: each fails the image, naming its findings.
    pub breaches: Vec<Breach>,
    /// Warn rules over their maximum: reported, never failing the image.
    pub warnings: Vec<Breach>,
    /// Waivers for this repository that matched no finding: stale, or a typo.
    pub unused_waivers: Vec<Waiver>,
    /// Findings no `POLICY` rule decided, judged by the thresholds instead.
    pub by_thresholds: u32,
}

impl Evaluation {
    pub fn passes(&self) -> bool {
        self.broken.is_empty() && self.breaches.is_empty()
    }
}

fn worst_first(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    a.severity
        .judged_as()
        .cmp(&b.severity.judged_as())
        .then_with(|| a.id.cmp(&b.id))
}

/// `today` and `soon` (today + 7 days) are `YYYY-MM-DD`. In order: Inspector's triage
/// (CLOSED is gone, SUPPRESSED is waived), the gate's own waivers, then the first rule that
/// matches decides each finding; a block rule deciding more than its maximum fails the image.
pub fn evaluate(
    policy: &Policy,
    repository: &str,
    findings: &[Finding],
    today: &str,
    soon: &str,
) -> Evaluation {
    // A POLICY's rules come first; a finding none of them decides falls to the thresholds
    // (MAX_*, IGNORE_UNFIXED), so a policy that forgets a case never passes it unjudged. A
    // policy that means "the rest is fine" says so with a last allow rule.
    let mut rules: Vec<Rule> = policy.rules.clone().unwrap_or_default();
    let written = rules.len();
    rules.extend(threshold_rules(&policy.max, policy.ignore_unfixed));
    let rules = rules.as_slice();
    let mut e = Evaluation::default();
    let mut decided: Vec<Vec<Finding>> = vec![Vec::new(); rules.len()];
    let mut waivers_used = vec![false; policy.waivers.len()];
    for f in findings {
        *e.before.entry(f.severity.clone()).or_default() += 1;
        let matching: Vec<(usize, &Waiver)> = policy
            .waivers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.covers(f, repository))
            .collect();
        // A waiver whose finding Inspector suppressed or closed is not stale: it is in use.
        for (i, _) in &matching {
            waivers_used[*i] = true;
        }
        match f.triage() {
            "CLOSED" => {
                e.closed += 1;
                continue;
            }
            "SUPPRESSED" => {
                e.suppressed.push(f.clone());
                continue;
            }
            // ACTIVE, or a status this gate does not know: it counts.
            _ => {}
        }
        if let Some((_, w)) = matching.iter().find(|(_, w)| w.expires.as_str() >= today) {
            if w.expires.as_str() <= soon && !e.expiring_soon.contains(w) {
                e.expiring_soon.push((*w).clone());
            }
            e.waived.push((f.clone(), (*w).clone()));
            continue;
        }
        if let Some((_, w)) = matching.first() {
            e.expired.push((f.clone(), (*w).clone()));
        }
        // A warn rule notes what it would block and lets the finding go on down the list: a
        // rule being rolled out never loosens the gate. Block and allow rules decide.
        let mut deciding = None;
        for (i, rule) in rules.iter().enumerate() {
            if !rule.decides(f, repository) {
                continue;
            }
            if matches!(rule.action, Action::Warn { .. }) {
                decided[i].push(f.clone());
                continue;
            }
            deciding = Some(i);
            break;
        }
        if deciding.is_some_and(|i| i >= written) && written > 0 {
            e.by_thresholds += 1;
        }
        match deciding {
            Some(i) if rules[i].action == Action::Allow => {
                if rules[i].name == "IGNORE_UNFIXED" && i >= written {
                    e.ignored_unfixed.push(f.clone());
                } else {
                    e.allowed.push((f.clone(), rules[i].name.clone()));
                }
                continue;
            }
            Some(i) => decided[i].push(f.clone()),
            // No rule speaks of it: it counts, and nothing fails for it.
            None => {}
        }
        *e.after.entry(f.severity.clone()).or_default() += 1;
        e.counted.push(f.clone());
    }
    e.counted.sort_by(worst_first);
    for (rule, mut findings) in rules.iter().zip(decided) {
        let (max, warn) = match rule.action {
            Action::Block { max } => (max, false),
            Action::Warn { max } => (max, true),
            Action::Allow => continue,
        };
        let n = u32::try_from(findings.len()).unwrap_or(u32::MAX);
        if n <= max {
            continue;
        }
        findings.sort_by(worst_first);
        match (&rule.threshold, warn) {
            (Some(severity), _) => e.broken.push((severity.clone(), n, max)),
            (None, false) => e.breaches.push(Breach {
                rule: rule.name.clone(),
                max,
                findings,
            }),
            (None, true) => e.warnings.push(Breach {
                rule: rule.name.clone(),
                max,
                findings,
            }),
        }
    }
    e.unused_waivers = policy
        .waivers
        .iter()
        .zip(waivers_used)
        .filter(|(w, used)| !used && w.repository.as_ref().is_none_or(|g| g.matches(repository)))
        .map(|(w, _)| w.clone())
        .collect();
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
            package: Some("openssl".into()),
            version: Some("3.0.1".into()),
            ..Finding::new(id, Severity::parse(severity))
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

    fn enhanced(id: &str, severity: &str, exploit: bool, fix: bool) -> Finding {
        Finding {
            status: Some("ACTIVE".into()),
            exploit_available: Some(exploit),
            fix_available: Some(fix),
            ..finding(id, severity)
        }
    }

    fn with_rules(json: &str) -> Policy {
        Policy {
            rules: Some(parse_policy(json).expect("a valid policy")),
            ..Policy::default()
        }
    }

    const EXPLOITABLE_HIGH: &str = r#"{"rules": [
        {"name": "no-critical", "action": "block", "when": {"severity_at_least": "CRITICAL"}},
        {"name": "exploitable-high", "action": "block",
         "when": {"severity_at_least": "HIGH", "exploit_available": true, "fix_available": true}}
    ]}"#;

    #[test]
    fn the_same_findings_are_judged_under_three_policies() {
        let findings = [
            enhanced("CVE-1", "HIGH", false, true),
            enhanced("CVE-2", "MEDIUM", true, true),
            enhanced("CVE-3", "LOW", false, false),
        ];
        // The thresholds (no CRITICAL, no HIGH): the HIGH blocks, named after MAX_HIGH.
        let thresholds = evaluate(&default_policy(), "app", &findings, TODAY, SOON);
        assert_eq!(thresholds.broken, vec![(Severity::High, 1, 0)]);
        // Block a HIGH only with an exploit and a fix: this HIGH has no exploit.
        let risk = evaluate(&with_rules(EXPLOITABLE_HIGH), "app", &findings, TODAY, SOON);
        assert!(risk.passes(), "{risk:?}");
        // The same rule in warn mode, reaching MEDIUM: reported, never failing.
        let warn = with_rules(
            r#"{"rules": [{"name": "exploitable-medium", "action": "warn",
                "when": {"severity_at_least": "MEDIUM", "exploit_available": true}}]}"#,
        );
        let warned = evaluate(&warn, "app", &findings, TODAY, SOON);
        assert!(warned.passes());
        assert_eq!(warned.warnings.len(), 1);
        assert_eq!(warned.warnings[0].rule, "exploitable-medium");
        assert_eq!(warned.warnings[0].findings[0].id, "CVE-2");
    }

    #[test]
    fn an_exploitable_fixable_high_blocks_where_a_plain_high_passes() {
        let policy = with_rules(EXPLOITABLE_HIGH);
        let plain = evaluate(
            &policy,
            "app",
            &[enhanced("CVE-1", "HIGH", false, true)],
            TODAY,
            SOON,
        );
        assert!(plain.passes());
        let exploitable = evaluate(
            &policy,
            "app",
            &[enhanced("CVE-2", "HIGH", true, true)],
            TODAY,
            SOON,
        );
        assert!(!exploitable.passes());
        assert_eq!(exploitable.breaches[0].rule, "exploitable-high");
        assert_eq!(exploitable.breaches[0].findings[0].id, "CVE-2");
    }

    #[test]
    fn missing_data_never_lets_a_finding_through() {
        // Basic scanning says nothing of exploits: a block rule on them still blocks...
        let policy = with_rules(EXPLOITABLE_HIGH);
        let basic = evaluate(&policy, "app", &[finding("CVE-1", "HIGH")], TODAY, SOON);
        assert!(
            !basic.passes(),
            "unknown exploitability is not 'no exploit'"
        );
        // ...and an allow rule on them does not allow.
        let allow = with_rules(
            r#"{"rules": [
                {"name": "no-exploit", "action": "allow", "when": {"exploit_available": false}},
                {"name": "no-high", "action": "block", "when": {"severity_at_least": "HIGH"}}
            ]}"#,
        );
        let e = evaluate(&allow, "app", &[finding("CVE-1", "HIGH")], TODAY, SOON);
        assert_eq!(e.breaches[0].rule, "no-high");
        assert!(e.allowed.is_empty());
    }

    #[test]
    fn a_suppressed_finding_never_blocks_and_a_closed_one_is_not_counted() {
        let mut suppressed = finding("CVE-1", "CRITICAL");
        suppressed.status = Some("SUPPRESSED".into());
        let mut closed = finding("CVE-2", "CRITICAL");
        closed.status = Some("CLOSED".into());
        for policy in [default_policy(), with_rules(EXPLOITABLE_HIGH)] {
            let e = evaluate(
                &policy,
                "app",
                &[suppressed.clone(), closed.clone()],
                TODAY,
                SOON,
            );
            assert!(e.passes(), "{e:?}");
            assert_eq!(e.suppressed, vec![suppressed.clone()]);
            assert_eq!(e.closed, 1);
            assert!(e.counted.is_empty());
        }
        // A status Inspector may add later counts, as ACTIVE does.
        let mut odd = finding("CVE-3", "CRITICAL");
        odd.status = Some("REOPENED".into());
        assert!(!evaluate(&default_policy(), "app", &[odd], TODAY, SOON).passes());
    }

    #[test]
    fn the_first_matching_rule_decides_a_finding() {
        let policy = with_rules(
            r#"{"rules": [
                {"name": "kernel-headers", "action": "allow", "when": {"package": "linux-libc-*"}},
                {"name": "no-high", "action": "block", "when": {"severity_at_least": "HIGH"}}
            ]}"#,
        );
        let mut headers = finding("CVE-1", "CRITICAL");
        headers.package = Some("linux-libc-dev".into());
        let e = evaluate(
            &policy,
            "app",
            &[headers.clone(), finding("CVE-2", "LOW")],
            TODAY,
            SOON,
        );
        assert!(e.passes());
        assert_eq!(e.allowed, vec![(headers, "kernel-headers".into())]);
        assert_eq!(e.counted.len(), 1, "the LOW no rule speaks of still counts");
    }

    #[test]
    fn a_waiver_that_matched_nothing_is_named() {
        let waiver = |id: &str, repository: Option<&str>| Waiver {
            id: id.into(),
            repository: repository.map(|r| serde_json::from_value(serde_json::json!(r)).unwrap()),
            expires: "2026-12-31".into(),
            reason: "r".into(),
        };
        let policy = Policy {
            waivers: vec![
                waiver("CVE-1", None),
                waiver("CVE-9", None),
                waiver("CVE-8", Some("other-*")),
            ],
            ..default_policy()
        };
        let e = evaluate(&policy, "app", &[finding("CVE-1", "HIGH")], TODAY, SOON);
        let unused: Vec<&str> = e.unused_waivers.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(
            unused,
            ["CVE-9"],
            "another repository's waiver is not this image's business"
        );
    }

    #[test]
    fn a_policy_that_cannot_be_read_says_why_without_its_text() {
        for (bad, why) in [
            (r#"{"rules": []}"#, "no rules"),
            (
                r#"{"rules": [{"name": "x", "action": "block", "when": {"sevrity": "HIGH"}}]}"#,
                "unknown field",
            ),
            (
                r#"{"rules": [{"name": "x", "action": "deny"}]}"#,
                "not block, warn or allow",
            ),
            (
                r#"{"rules": [{"name": "x", "action": "allow", "max": 2}]}"#,
                "no max",
            ),
            (
                r#"{"rules": [{"name": "x", "action": "block", "when": {"score_at_least": 11}}]}"#,
                "between 0 and 10",
            ),
            (
                r#"{"rules": [{"name": "x", "action": "block", "when": {"severity_at_least": "UNTRIAGED"}}]}"#,
                "not CRITICAL",
            ),
            (
                r#"{"rules": [{"name": "x", "action": "block"}, {"name": "x", "action": "warn"}]}"#,
                "two rules",
            ),
            ("not json s3cr3t", "invalid policy JSON"),
            (
                r#"{"rules": [{"name": "x", "action": "block", "when": {"exploit_available": "s3cr3t"}}]}"#,
                "wrong type",
            ),
            (
                r#"{"rules": [{"name": "x", "action": "block", "when": {"epss_at_least": 0.1}}]}"#,
                "carry no EPSS",
            ),
            (
                r#"{"rules": [{"name": "two words", "action": "block"}]}"#,
                "characters from",
            ),
        ] {
            let err = parse_policy(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn scores_compare_in_tenths() {
        let policy = with_rules(
            r#"{"rules": [{"name": "hot", "action": "block", "when": {"score_at_least": 8.8, "cvss_at_least": 7.5}}]}"#,
        );
        let scored = |score: u16, cvss: u16| Finding {
            score: Some(score),
            cvss: Some(cvss),
            ..finding("CVE-1", "MEDIUM")
        };
        assert!(!evaluate(&policy, "app", &[scored(88, 75)], TODAY, SOON).passes());
        assert!(evaluate(&policy, "app", &[scored(87, 99)], TODAY, SOON).passes());
        assert!(evaluate(&policy, "app", &[scored(99, 74)], TODAY, SOON).passes());
    }

    #[test]
    fn a_warn_rule_never_loosens_the_gate() {
        // Rolling out a warn rule above an existing block rule: the CRITICAL it notes is
        // still blocked by the rule below it, on basic scanning (exploit unknown) too.
        let policy = with_rules(
            r#"{"rules": [
                {"name": "exploitable-medium", "action": "warn",
                 "when": {"severity_at_least": "MEDIUM", "exploit_available": true}},
                {"name": "no-critical", "action": "block", "when": {"severity_at_least": "CRITICAL"}}
            ]}"#,
        );
        for critical in [
            enhanced("CVE-1", "CRITICAL", true, true),
            finding("CVE-1", "CRITICAL"),
        ] {
            let e = evaluate(&policy, "app", &[critical], TODAY, SOON);
            assert!(!e.passes(), "{e:?}");
            assert_eq!(e.breaches[0].rule, "no-critical");
            assert_eq!(e.warnings[0].rule, "exploitable-medium");
        }
    }

    #[test]
    fn a_finding_no_rule_decides_falls_to_the_thresholds() {
        // A one-rule policy about exploitable HIGHs says nothing of a CRITICAL without an
        // exploit: MAX_CRITICAL=0 still judges it.
        let only_exploitable_high = r#"{"rules": [{"name": "exploitable-high", "action": "block",
            "when": {"severity_at_least": "HIGH", "exploit_available": true}}]}"#;
        let policy = Policy {
            rules: Some(parse_policy(only_exploitable_high).unwrap()),
            ..default_policy()
        };
        let critical = enhanced("CVE-1", "CRITICAL", false, true);
        let e = evaluate(&policy, "app", std::slice::from_ref(&critical), TODAY, SOON);
        assert_eq!(e.broken, vec![(Severity::Critical, 1, 0)]);
        assert_eq!(e.by_thresholds, 1);
        // A policy that means "the rest is fine" says so.
        let relaxed = Policy {
            rules: Some(
                parse_policy(
                    r#"{"rules": [
                        {"name": "exploitable-high", "action": "block",
                         "when": {"severity_at_least": "HIGH", "exploit_available": true}},
                        {"name": "the-rest", "action": "allow"}
                    ]}"#,
                )
                .unwrap(),
            ),
            ..default_policy()
        };
        assert!(evaluate(&relaxed, "app", &[critical], TODAY, SOON).passes());
    }

    #[test]
    fn an_allow_rule_on_packages_needs_every_package_to_match() {
        let policy = with_rules(
            r#"{"rules": [
                {"name": "kernel-headers", "action": "allow", "when": {"package": "linux-libc-*"}},
                {"name": "no-high", "action": "block", "when": {"severity_at_least": "HIGH"}}
            ]}"#,
        );
        let mut both = finding("CVE-1", "HIGH");
        both.packages = vec!["linux-libc-dev".into(), "openssl".into()];
        assert!(!evaluate(&policy, "app", &[both], TODAY, SOON).passes());
        let mut headers_only = finding("CVE-2", "HIGH");
        headers_only.packages = vec!["linux-libc-dev".into()];
        assert!(evaluate(&policy, "app", &[headers_only], TODAY, SOON).passes());
    }

    #[test]
    fn rule_ids_match_without_case() {
        let policy = with_rules(
            r#"{"rules": [{"name": "log4shell", "action": "block", "when": {"id": "cve-2021-44228"}}]}"#,
        );
        let e = evaluate(
            &policy,
            "app",
            &[finding("CVE-2021-44228", "LOW")],
            TODAY,
            SOON,
        );
        assert!(!e.passes());
    }
}
