//! The gate's configuration, read once at init.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::config::{ConfigError, Document, Environment, Vars};
pub use shared::notifier::NotifyOn;

use crate::policy::{Severity, Waiver, is_date};

#[derive(Debug, Clone)]
pub struct Config {
    pub max: BTreeMap<Severity, u32>,
    pub ignore_unfixed: bool,
    pub waivers: Document<Vec<Waiver>>,
    pub max_wait: Duration,
    /// Enhanced (Inspector) findings keep arriving for a while after a scan reports
    /// complete; a pipeline job waits this long after completion before it decides.
    pub findings_settle: Duration,
    pub notify_on: NotifyOn,
    pub pass_tag: Option<String>,
    /// Kept back from the Lambda deadline so a job's result can always be sent.
    pub report_margin: Duration,
}

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

fn limit<E: Environment + ?Sized>(
    vars: &Vars<E>,
    name: &str,
    default: Option<u32>,
) -> Result<Option<u32>, ConfigError> {
    match vars.optional(name)?.map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "unlimited" => Ok(None),
        Some(v) => v.parse::<u32>().map(Some).map_err(|_| {
            ConfigError::malformed(
                name,
                "a whole number of findings, or unlimited",
                "not a number",
            )
        }),
    }
}

impl Config {
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let vars = Vars::new(env);
        let mut max = BTreeMap::new();
        for (name, severity, default) in [
            ("MAX_CRITICAL", Severity::Critical, Some(0)),
            ("MAX_HIGH", Severity::High, Some(0)),
            ("MAX_MEDIUM", Severity::Medium, None),
            ("MAX_LOW", Severity::Low, None),
        ] {
            if let Some(n) = limit(&vars, name, default)? {
                max.insert(severity, n);
            }
        }
        let waivers = vars
            .document("WAIVERS", WAIVERS_EXPECTED, parse_waivers)?
            .unwrap_or(Document::Inline(Vec::new()));
        let notify_on = NotifyOn::from_env(env)?;
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
            ignore_unfixed: vars.flag("IGNORE_UNFIXED", false)?,
            waivers,
            max_wait: vars
                .duration("MAX_WAIT")?
                .unwrap_or(Duration::from_secs(30 * 60)),
            findings_settle: vars
                .duration("FINDINGS_SETTLE")?
                .unwrap_or(Duration::from_secs(60)),
            notify_on,
            pass_tag,
            report_margin: shared::report::report_margin(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::secrets::SecretRef;

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
