//! `make bench`'s policy case: ecr-scan-gate's policy engine, in-process, judging 1,000
//! enhanced findings under a 20-rule `POLICY` document, as the gate judges one large image.
//!
//! The document and the findings are built here, the same every run (a fixed linear
//! congruential generator, no RNG crate): rules over severity, exploit and fix available,
//! Inspector score, CVSS, package, vulnerability id and repository, block, warn and allow
//! mixed, ending in catch-all thresholds; findings mostly ACTIVE (some SUPPRESSED or CLOSED in
//! Inspector), severities skewed to MEDIUM and LOW, a few with a public exploit. The other
//! variables are at the gate's defaults (`MAX_*`, no waivers), as a deployed gate holds them.
//!
//! Measured: parsing the document (the gate does it once per refresh of `POLICY`, not per
//! finding), p50 of N; then `evaluate` over all the findings, p50 and p99 of N after a
//! warm-up. Prints one JSON line:
//! `{"rules":20,"findings":1000,"parse_us_p50":…,"evaluate_us_p50":…,"evaluate_us_p99":…}`.
//!
//! Usage: bench-policy [--quick]   (`--quick`: N = 3, so the harness cannot rot; the numbers
//! mean nothing). Exits non-zero if the document does not parse or the evaluation does not
//! block, warn and allow: the case must measure real work.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ecr_scan_gate::policy::{Evaluation, Finding, Policy, Rule, Severity, evaluate, parse_policy};
use serde_json::{Value, json};

/// The repository the image is judged for: the `payments-*` rule applies, `sandbox-*` not.
const REPOSITORY: &str = "payments-api";
const TODAY: &str = "2026-12-06";
const SOON: &str = "2026-12-13";
const FINDINGS: usize = 1000;

/// Knuth's MMIX constants; the high half of the state is the output.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }

    /// Uniform enough in `0..n` for a benchmark's mix.
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }
}

/// A policy as a team might write one: exemptions first, then what must never ship, then
/// rules being rolled out in warn mode, then thresholds for whatever is left.
fn policy_document() -> String {
    let rule = |name: &str, action: &str, max: Option<u32>, when: Value| {
        let mut r = json!({"name": name, "action": action, "when": when});
        if let Some(max) = max {
            r["max"] = json!(max);
        }
        r
    };
    let rules = vec![
        // Exemptions.
        rule(
            "kernel-headers",
            "allow",
            None,
            json!({"package": "linux-libc-*"}),
        ),
        rule(
            "sandbox-repositories",
            "allow",
            None,
            json!({"repository": "sandbox-*"}),
        ),
        rule(
            "disputed-glibc",
            "allow",
            None,
            json!({"id": "CVE-2019-101002?", "package": "*libc*"}),
        ),
        // Never ship.
        rule(
            "exploited-critical",
            "block",
            Some(0),
            json!({"severity_at_least": "CRITICAL", "exploit_available": true}),
        ),
        rule(
            "exploited-high-with-fix",
            "block",
            Some(0),
            json!({"severity_at_least": "HIGH", "exploit_available": true, "fix_available": true}),
        ),
        rule(
            "log4j",
            "block",
            Some(0),
            json!({"package": "log4j-*", "severity_at_least": "MEDIUM"}),
        ),
        rule(
            "tls-libraries",
            "block",
            Some(0),
            json!({"package": "*ssl*", "severity_at_least": "HIGH", "fix_available": true}),
        ),
        rule(
            "payments-critical-fixable",
            "block",
            Some(0),
            json!({"repository": "payments-*", "severity_at_least": "CRITICAL", "fix_available": true}),
        ),
        rule(
            "hot-score-fixable",
            "block",
            Some(1),
            json!({"score_at_least": 9.0, "fix_available": true}),
        ),
        rule(
            "cvss-8-exploited",
            "block",
            Some(0),
            json!({"cvss_at_least": 8.0, "exploit_available": true}),
        ),
        // Rolling out.
        rule(
            "exploited-medium",
            "warn",
            Some(0),
            json!({"severity_at_least": "MEDIUM", "exploit_available": true}),
        ),
        rule(
            "curl-medium",
            "warn",
            Some(0),
            json!({"package": "*curl*", "severity_at_least": "MEDIUM"}),
        ),
        rule(
            "go-x-packages",
            "warn",
            Some(2),
            json!({"package": "golang.org/x/*", "cvss_at_least": 5.0}),
        ),
        rule(
            "python-deps-scored",
            "warn",
            Some(5),
            json!({"package": "py*", "score_at_least": 6.0}),
        ),
        rule(
            "unfixable-high",
            "warn",
            Some(5),
            json!({"severity_at_least": "HIGH", "fix_available": false}),
        ),
        rule("unfixable", "allow", None, json!({"fix_available": false})),
        // Thresholds for the rest.
        rule(
            "critical",
            "block",
            Some(0),
            json!({"severity_at_least": "CRITICAL"}),
        ),
        rule(
            "high",
            "block",
            Some(5),
            json!({"severity_at_least": "HIGH"}),
        ),
        rule(
            "medium",
            "warn",
            Some(50),
            json!({"severity_at_least": "MEDIUM"}),
        ),
        rule(
            "low",
            "warn",
            Some(300),
            json!({"severity_at_least": "LOW"}),
        ),
    ];
    serde_json::to_string_pretty(&json!({ "rules": rules })).expect("a JSON value serialises")
}

const PACKAGES: [&str; 30] = [
    "linux-libc-dev",
    "libc6",
    "glibc",
    "openssl",
    "libssl3",
    "curl",
    "libcurl4",
    "zlib1g",
    "libxml2",
    "sqlite3",
    "perl-base",
    "python3.11",
    "pyyaml",
    "pyopenssl",
    "urllib3",
    "requests",
    "jackson-databind",
    "log4j-core",
    "spring-web",
    "netty-codec-http",
    "lodash",
    "express",
    "semver",
    "golang.org/x/net",
    "golang.org/x/crypto",
    "busybox",
    "ncurses-base",
    "tar",
    "krb5-libs",
    "expat",
];

/// `count` findings as ECR's enhanced scanning hands them to the gate (registry/findings.rs):
/// status, exploit and fix available, Inspector score and CVSS, package and version; no EPSS.
fn findings(count: usize) -> Vec<Finding> {
    let mut rng = Lcg(0x5eed_2026_1206);
    (0..count)
        .map(|_| {
            let severity = match rng.below(100) {
                0..3 => Severity::Critical,
                3..15 => Severity::High,
                15..55 => Severity::Medium,
                55..90 => Severity::Low,
                90..98 => Severity::Informational,
                _ => Severity::Untriaged,
            };
            let package = PACKAGES[rng.below(PACKAGES.len() as u32) as usize];
            let id = if package.contains("libc") && rng.chance(25) {
                format!("CVE-2019-101002{}", 2 + rng.below(4))
            } else if rng.chance(8) {
                const B32: &[u8] = b"23456789cfghjmpqrvwx";
                let mut part = || -> String {
                    (0..4)
                        .map(|_| B32[rng.below(B32.len() as u32) as usize] as char)
                        .collect()
                };
                format!("GHSA-{}-{}-{}", part(), part(), part())
            } else {
                format!("CVE-{}-{}", 2016 + rng.below(10), 1000 + rng.below(59_000))
            };
            // CVSS in tenths by severity; Inspector's score near it. None where unrated.
            let range = match severity {
                Severity::Critical => Some((90, 100)),
                Severity::High => Some((70, 89)),
                Severity::Medium => Some((40, 69)),
                Severity::Low => Some((1, 39)),
                _ => None,
            };
            let cvss: Option<u32> = range.map(|(lo, hi)| lo + rng.below(hi - lo + 1));
            let score = cvss.map(|c| (c + rng.below(11)).saturating_sub(5).clamp(1, 100));
            let bad = matches!(severity, Severity::Critical | Severity::High);
            let exploit = rng.chance(if bad { 20 } else { 5 });
            let fix = match rng.below(100) {
                0..65 => "YES",
                65..70 => "PARTIAL",
                _ => "NO",
            };
            let status = match rng.below(100) {
                0..86 => "ACTIVE",
                86..96 => "SUPPRESSED",
                _ => "CLOSED",
            };
            let version = format!("{}.{}.{}", rng.below(4), rng.below(20), rng.below(30));
            Finding {
                package: Some(package.to_owned()),
                fixed_in: (fix != "NO").then(|| format!("{version}-r1")),
                version: Some(version),
                url: Some(format!("https://nvd.nist.gov/vuln/detail/{id}")),
                fix_available: Some(fix != "NO"),
                status: Some(status.to_owned()),
                exploit_available: Some(exploit),
                // At most 100: tenths of a 0-10 score.
                score: score.map(|s| s as u16),
                cvss: cvss.map(|c| c as u16),
                epss: None,
                ..Finding::new(id, severity)
            }
        })
        .collect()
}

/// The policy as the gate holds it with this document as `POLICY` and the other variables at
/// their defaults (MAX_CRITICAL=0, MAX_HIGH=0, the rest unlimited; no waivers).
fn gate_policy(rules: Vec<Rule>) -> Policy {
    Policy {
        max: BTreeMap::from([(Severity::Critical, 0), (Severity::High, 0)]),
        rules: Some(rules),
        ..Policy::default()
    }
}

fn judge(policy: &Policy, findings: &[Finding]) -> Evaluation {
    evaluate(policy, REPOSITORY, findings, TODAY, SOON)
}

/// As the harness reads its own samples: nearest rank.
fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

fn main() -> ExitCode {
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let (n, warm_up) = if quick { (3, 1) } else { (200, 20) };
    let document = policy_document();
    let findings = findings(FINDINGS);

    let mut parse = Vec::with_capacity(n);
    let mut rules = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let parsed = parse_policy(black_box(&document));
        parse.push(t.elapsed());
        match parsed {
            Ok(parsed) => rules = parsed,
            Err(e) => {
                eprintln!("bench-policy: the generated policy does not parse: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let rule_count = rules.len();
    let policy = gate_policy(rules);

    let e = judge(&policy, &findings);
    if e.breaches.is_empty() || e.warnings.is_empty() || e.allowed.is_empty() {
        eprintln!(
            "bench-policy: the evaluation did no real work: {} blocking rule(s), {} warning(s), {} allowed",
            e.breaches.len(),
            e.warnings.len(),
            e.allowed.len()
        );
        return ExitCode::FAILURE;
    }
    for _ in 0..warm_up {
        black_box(judge(black_box(&policy), black_box(&findings)));
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let e = judge(black_box(&policy), black_box(&findings));
        times.push(t.elapsed());
        black_box(e);
    }
    // Written out, not through json!, so the keys keep the order the docs give.
    println!(
        r#"{{"rules":{},"findings":{},"parse_us_p50":{},"evaluate_us_p50":{},"evaluate_us_p99":{}}}"#,
        rule_count,
        findings.len(),
        micros(percentile(&parse, 50.0)),
        micros(percentile(&times, 50.0)),
        micros(percentile(&times, 99.0)),
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_generated_policy_parses_into_twenty_rules_of_every_kind() {
        let rules = parse_policy(&policy_document()).expect("the generated policy parses");
        assert_eq!(rules.len(), 20);
        let document: Value = serde_json::from_str(&policy_document()).unwrap();
        let conditions: BTreeSet<&str> = document["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["when"].as_object().unwrap().keys())
            .map(String::as_str)
            .collect();
        for condition in [
            "severity_at_least",
            "exploit_available",
            "fix_available",
            "score_at_least",
            "cvss_at_least",
            "package",
            "id",
            "repository",
        ] {
            assert!(conditions.contains(condition), "no rule uses {condition}");
        }
    }

    #[test]
    fn the_findings_are_the_same_every_run_and_a_realistic_mix() {
        let all = findings(FINDINGS);
        assert_eq!(all, findings(FINDINGS), "deterministic");
        assert_eq!(all.len(), FINDINGS);
        let share = |pred: &dyn Fn(&Finding) -> bool| all.iter().filter(|f| pred(f)).count();
        let status = |s: &'static str| move |f: &Finding| f.status.as_deref() == Some(s);
        assert!(share(&status("ACTIVE")) > 800, "mostly ACTIVE");
        assert!(share(&status("SUPPRESSED")) > 50);
        assert!(share(&status("CLOSED")) > 10);
        let severity = |s: Severity| move |f: &Finding| f.severity == s;
        let (medium, low) = (
            share(&severity(Severity::Medium)),
            share(&severity(Severity::Low)),
        );
        let (critical, high) = (
            share(&severity(Severity::Critical)),
            share(&severity(Severity::High)),
        );
        assert!(medium + low > 600 && critical > 0 && high > critical);
        let exploitable = share(&|f| f.exploit_available == Some(true));
        assert!(
            (20..200).contains(&exploitable),
            "{exploitable} exploitable"
        );
    }

    #[test]
    fn evaluation_blocks_warns_and_allows_so_the_case_measures_real_work() {
        let all = findings(FINDINGS);
        let policy = gate_policy(parse_policy(&policy_document()).unwrap());
        let e = judge(&policy, &all);
        assert!(!e.passes(), "an image this size fails this policy");
        let names = |breaches: &[ecr_scan_gate::policy::Breach]| -> BTreeSet<String> {
            breaches.iter().map(|b| b.rule.clone()).collect()
        };
        let blocking = names(&e.breaches);
        let warning = names(&e.warnings);
        let allowing: BTreeSet<String> = e.allowed.iter().map(|(_, r)| r.clone()).collect();
        assert!(blocking.len() >= 4, "blocking rules: {blocking:?}");
        assert!(warning.len() >= 3, "warning rules: {warning:?}");
        assert!(allowing.len() >= 2, "allowing rules: {allowing:?}");
        assert!(blocking.contains("exploited-high-with-fix"), "{blocking:?}");
        assert!(warning.contains("medium"), "{warning:?}");
        // No early rule swallows the rest: the catch-all thresholds still decide findings.
        assert!(blocking.contains("high") || blocking.contains("critical"));
        // Inspector's triage is honoured, and every finding is accounted for once.
        assert!(!e.suppressed.is_empty() && e.closed > 0);
        assert_eq!(
            e.counted.len()
                + e.allowed.len()
                + e.ignored_unfixed.len()
                + e.suppressed.len()
                + e.closed as usize,
            all.len()
        );
    }
}
