//! The gate's configuration, read once at init.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::config::{ConfigError, Document, Environment, SHARED_VARIABLES, Var, Vars};
pub use shared::notifier::NotifyOn;

use crate::policy::{POLICY_EXPECTED, Rule, Severity, Waiver, is_date, parse_policy};

#[derive(Debug, Clone)]
pub struct Config {
    pub max: BTreeMap<Severity, u32>,
    pub ignore_unfixed: bool,
    pub waivers: Document<Vec<Waiver>>,
    /// Rules over what findings carry; `None`: the MAX_* thresholds and IGNORE_UNFIXED.
    pub policy: Option<Document<Vec<Rule>>>,
    pub max_wait: Duration,
    /// Enhanced (Inspector) findings keep arriving for a while after a scan reports
    /// complete; nothing decides until this long after completion.
    pub findings_settle: Duration,
    pub notify_on: NotifyOn,
    pub pass_tag: Option<String>,
    /// Kept back from the Lambda deadline so a job's result can always be sent.
    pub report_margin: Duration,
}

/// The gate's variables: what the loader reads (with these defaults) and the README shows.
pub const VARIABLES: &[Var] = &[
    Var::defaulted(
        "MAX_CRITICAL",
        "0",
        "`0`",
        "Most CRITICAL findings allowed (or `unlimited`). Findings nobody has rated (`UNDEFINED`, Inspector's `UNTRIAGED`) and unknown severities count here too: the gate fails closed; waive a specific one by id.",
    ),
    Var::defaulted("MAX_HIGH", "0", "`2`", "Most HIGH findings allowed."),
    Var::defaulted(
        "MAX_MEDIUM",
        "unlimited",
        "`10`",
        "Most MEDIUM findings allowed.",
    ),
    Var::defaulted("MAX_LOW", "unlimited", "`10`", "Most LOW findings allowed."),
    Var::defaulted(
        "IGNORE_UNFIXED",
        "false",
        "`true`",
        "Enhanced findings with `fixAvailable: NO` don't count.",
    ),
    Var::optional(
        "WAIVERS",
        "none",
        "`[{\"id\":\"CVE-2024-1234\",\"repository\":\"prod-*\",\"expires\":\"2026-12-31\",\"reason\":\"not reachable\"}]` or `ssm:/ops/ecr/waivers`",
        "Time-limited exceptions. Valid through `expires` (UTC). An expired waiver no longer applies and the report says so; one ending within 7 days is flagged.",
    ),
    Var::optional(
        "POLICY",
        "none (the `MAX_*` thresholds and `IGNORE_UNFIXED`)",
        "`{\"rules\":[{\"name\":\"exploitable-high\",\"action\":\"block\",\"when\":{\"severity_at_least\":\"HIGH\",\"exploit_available\":true,\"fix_available\":true}}]}` or `ssm:/ops/ecr/policy`",
        "Rules over what each finding carries (severity, exploit and fix available, Inspector score, CVSS, package, id, repository), read top-down: the first `block` (more than `max`, default 0, fails the image) or `allow` rule that matches decides the finding; a `warn` rule reports what it would block and passes the finding on. Read before `MAX_*` and `IGNORE_UNFIXED`, which judge what it does not decide; waivers and Inspector's suppressions apply first. A policy that cannot be read fails every judgement closed.",
    ),
    Var::defaulted(
        "MAX_WAIT",
        "30m",
        "`45m`",
        "How long a pipeline job waits for a completed, settled scan before failing closed. At most `23h30m`: CodePipeline fails a Lambda invoke action after 24 hours.",
    ),
    Var::defaulted(
        "FINDINGS_SETTLE",
        "60s",
        "`2m`",
        "How long after an enhanced scan completes before its findings are trusted (Inspector's findings keep arriving after the scan reports complete). A pipeline job is invoked again meanwhile; a scan event waits in its invocation, then Lambda's retries. At most `2m`.",
    ),
    Var::defaulted(
        "NOTIFY_ON",
        "FAIL",
        "`ALL`",
        "Which verdicts are posted (PENDING never is).",
    ),
    Var::optional(
        "PASS_TAG",
        "none",
        "`scan-passed`",
        "Tag added to the same digest on PASS (BatchGetImage + PutImage). Failures are told as what they are: a tag held by another image in an immutable repository, a role that may not tag (AccessDenied), ECR throttling or unavailable (a later pass tries again), or what `BatchGetImage`'s `failures[]` said. The verdict stands either way.",
    ),
    shared::report::REPORT_MARGIN,
];

pub const WAIVERS_EXPECTED: &str = r#"a JSON list of {"id":"CVE-…","repository":"glob","expires":"YYYY-MM-DD","reason":"…"}, or ssm:/parameter/name"#;

/// Parses and checks a waiver list, wherever it came from.
pub fn parse_waivers(text: &str) -> Result<Vec<Waiver>, String> {
    let waivers: Vec<Waiver> = serde_json::from_str(text).map_err(|e| {
        format!(
            "invalid waiver JSON at line {} column {}",
            e.line(),
            e.column()
        )
    })?;
    for w in &waivers {
        if !is_date(&w.expires) {
            return Err(format!(
                "waiver {} has expires {:?}, not YYYY-MM-DD",
                w.id, w.expires
            ));
        }
        if w.reason.trim().is_empty() {
            return Err(format!("waiver {} has no reason", w.id));
        }
    }
    Ok(waivers)
}

/// The longest FINDINGS_SETTLE: a scan event is decided, or failed closed, four minutes after
/// it was sent (`handler::EVENT_DECIDED_BY`, within Lambda's retries of it), and its findings
/// need time after settling to show what it counted.
pub const LONGEST_SETTLE: Duration = Duration::from_secs(2 * 60);

fn settle_within_retries(settle: Duration) -> Result<Duration, ConfigError> {
    if settle > LONGEST_SETTLE {
        return Err(ConfigError::malformed(
            "FINDINGS_SETTLE",
            "at most 2m: a scan event is decided within four minutes, Lambda's retries of it",
            "too long",
        ));
    }
    Ok(settle)
}

/// The gate's longest REPORT_MARGIN: a scan event's looks stop this long before the deadline,
/// and the third of Lambda's attempts (at least three minutes after the event, 180 s long)
/// must still be looking four minutes after the event to decide it.
const LONGEST_MARGIN: Duration = Duration::from_secs(60);

fn margin_within_looks(margin: Duration) -> Result<Duration, ConfigError> {
    if margin > LONGEST_MARGIN {
        return Err(ConfigError::malformed(
            "REPORT_MARGIN",
            "at most 60s for the scan gate: a scan event must still be looked at four minutes after it was sent",
            "too long",
        ));
    }
    Ok(margin)
}

/// A threshold: a number of findings, or `None` for `unlimited`.
fn limit<E: Environment + ?Sized>(vars: &Vars<E>, name: &str) -> Result<Option<u32>, ConfigError> {
    let value = vars.with_default(name, vars.optional(name)?)?;
    if value.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    value.parse::<u32>().map(Some).map_err(|_| {
        ConfigError::malformed(
            name,
            "a whole number of findings, or unlimited",
            "not a number",
        )
    })
}

impl Config {
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let lists = [SHARED_VARIABLES, VARIABLES];
        let vars = Vars::declared(env, &lists);
        let mut max = BTreeMap::new();
        for (name, severity) in [
            ("MAX_CRITICAL", Severity::Critical),
            ("MAX_HIGH", Severity::High),
            ("MAX_MEDIUM", Severity::Medium),
            ("MAX_LOW", Severity::Low),
        ] {
            if let Some(n) = limit(&vars, name)? {
                max.insert(severity, n);
            }
        }
        let waivers = vars
            .document("WAIVERS", WAIVERS_EXPECTED, parse_waivers)?
            .unwrap_or(Document::Inline(Vec::new()));
        let policy = vars.document("POLICY", POLICY_EXPECTED, parse_policy)?;
        let notify_on = NotifyOn::from_vars(&vars)?;
        let pass_tag = vars.optional("PASS_TAG")?;
        if let Some(tag) = &pass_tag
            && !(tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(ConfigError::malformed(
                "PASS_TAG",
                "an image tag ([A-Za-z0-9._-], at most 128 characters)",
                "not a valid tag",
            ));
        }
        Ok(Self {
            max,
            ignore_unfixed: vars.with_default("IGNORE_UNFIXED", vars.flag("IGNORE_UNFIXED")?)?,
            waivers,
            policy,
            max_wait: shared::jobs::within_action_timeout(
                "MAX_WAIT",
                vars.with_default("MAX_WAIT", vars.duration("MAX_WAIT")?)?,
            )?,
            findings_settle: settle_within_retries(
                vars.with_default("FINDINGS_SETTLE", vars.duration("FINDINGS_SETTLE")?)?,
            )?,
            notify_on,
            pass_tag,
            report_margin: margin_within_looks(shared::report::report_margin(&vars)?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::secrets::SecretRef;

    #[test]
    fn an_inline_policy_is_checked_at_init_and_a_stored_one_is_read_later() {
        let good = r#"{"rules": [{"name": "no-critical", "action": "block", "when": {"severity_at_least": "CRITICAL"}}]}"#;
        assert!(matches!(
            Config::from_env(&[("POLICY", good)]).unwrap().policy,
            Some(Document::Inline(rules)) if rules.len() == 1
        ));
        let bad =
            Config::from_env(&[("POLICY", r#"{"rules": [{"name": "x", "action": "deny"}]}"#)])
                .unwrap_err();
        assert_eq!(bad.variable, "POLICY");
        assert!(matches!(
            Config::from_env(&[("POLICY", "ssm:/ops/ecr/policy")])
                .unwrap()
                .policy,
            Some(Document::Stored(_))
        ));
        let env: [(&str, &str); 0] = [];
        assert!(
            Config::from_env(&env).unwrap().policy.is_none(),
            "the thresholds, as before"
        );
    }

    #[test]
    fn defaults_block_critical_and_high_only() {
        let env: [(&str, &str); 0] = [];
        let c = Config::from_env(&env).unwrap();
        assert_eq!(
            c.max,
            BTreeMap::from([(Severity::Critical, 0), (Severity::High, 0)])
        );
        assert_eq!(c.max_wait, Duration::from_secs(1800));
        assert_eq!(c.notify_on, NotifyOn::Fail);
        assert!(!c.ignore_unfixed && c.pass_tag.is_none());
    }

    /// CodePipeline fails a Lambda invoke action after 24 hours; Lambda retries an event
    /// twice over three minutes. Limits past those would never be reached.
    #[test]
    fn waits_past_what_the_callers_allow_are_refused_at_start() {
        assert_eq!(
            Config::from_env(&[("MAX_WAIT", "25h")])
                .unwrap_err()
                .variable,
            "MAX_WAIT"
        );
        assert!(Config::from_env(&[("MAX_WAIT", "23h")]).is_ok());
        assert_eq!(
            Config::from_env(&[("FINDINGS_SETTLE", "10m")])
                .unwrap_err()
                .variable,
            "FINDINGS_SETTLE"
        );
        assert_eq!(
            Config::from_env(&[("REPORT_MARGIN", "2m")])
                .unwrap_err()
                .variable,
            "REPORT_MARGIN"
        );
    }

    #[test]
    fn thresholds_accept_numbers_and_unlimited() {
        let env = [("MAX_HIGH", "unlimited"), ("MAX_MEDIUM", "5")];
        let c = Config::from_env(&env).unwrap();
        assert_eq!(
            c.max,
            BTreeMap::from([(Severity::Critical, 0), (Severity::Medium, 5)])
        );
        let bad = [("MAX_LOW", "many")];
        assert_eq!(Config::from_env(&bad).unwrap_err().variable, "MAX_LOW");
    }

    #[test]
    fn waivers_inline_are_checked_and_references_are_kept_for_later() {
        let env = [(
            "WAIVERS",
            r#"[{"id":"CVE-1","repository":"app*","expires":"2027-01-01","reason":"vendor fix pending"}]"#,
        )];
        assert!(
            matches!(Config::from_env(&env).unwrap().waivers, Document::Inline(w) if w.len() == 1)
        );
        let stored = [("WAIVERS", "ssm:/ops/ecr/waivers")];
        assert_eq!(
            Config::from_env(&stored).unwrap().waivers,
            Document::Stored(SecretRef::Ssm("/ops/ecr/waivers".into()))
        );
        for bad in [
            r#"[{"id":"CVE-1","expires":"next week","reason":"x"}]"#,
            r#"[{"id":"CVE-1","expires":"2027-01-01","reason":" "}]"#,
            r#"[{"id":"CVE-1","expires":"2027-01-01","reason":"x","until":"never"}]"#,
            "not-a-list",
        ] {
            let env = [("WAIVERS", bad)];
            assert_eq!(
                Config::from_env(&env).unwrap_err().variable,
                "WAIVERS",
                "{bad}"
            );
        }
    }

    #[test]
    fn notify_on_and_pass_tag_are_validated() {
        assert_eq!(
            Config::from_env(&[("NOTIFY_ON", "all")]).unwrap().notify_on,
            NotifyOn::All
        );
        assert_eq!(
            Config::from_env(&[("NOTIFY_ON", "sometimes")])
                .unwrap_err()
                .variable,
            "NOTIFY_ON"
        );
        assert_eq!(
            Config::from_env(&[("PASS_TAG", "scan passed")])
                .unwrap_err()
                .variable,
            "PASS_TAG"
        );
        assert_eq!(
            Config::from_env(&[("PASS_TAG", "scan-passed")])
                .unwrap()
                .pass_tag
                .as_deref(),
            Some("scan-passed")
        );
    }
}
