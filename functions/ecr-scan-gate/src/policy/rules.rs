//! The policy document (`POLICY`): rules over what a finding carries, read top-down, the first
//! that matches deciding the finding. Without one, `MAX_*` and `IGNORE_UNFIXED` are written
//! as rules of the same kind ([`threshold_rules`]), so there is one way of judging.

use serde::Deserialize;
use shared::glob::Glob;

use super::{Finding, Severity};

/// The most rules a document may hold: enough for any team's policy, and a bound on the work
/// per finding.
pub const MAX_RULES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub when: When,
    /// Set for the rules written from `MAX_*`: their breach is told as "exceed MAX_HIGH=0".
    pub threshold: Option<Severity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// More than `max` findings decided by this rule fail the image.
    Block { max: u32 },
    /// More than `max` findings decided by this rule are reported, and the image is not
    /// failed for them: how a new rule is rolled out.
    Warn { max: u32 },
    /// The findings this rule decides do not count.
    Allow,
}

/// Conditions, all of which a finding must meet. A condition on something the finding does
/// not carry (basic scanning has no `exploitAvailable`, no score; ECR's findings carry no
/// EPSS) is met for a block or warn rule and unmet for an allow rule: missing data never lets
/// a finding through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct When {
    /// This severity or worse (unrated severities rank as CRITICAL, as they are judged).
    pub severity_at_least: Option<Severity>,
    pub exploit_available: Option<bool>,
    pub fix_available: Option<bool>,
    /// Inspector's score, tenths (7.5 → 75).
    pub score_at_least: Option<u16>,
    /// CVSS base score, tenths.
    pub cvss_at_least: Option<u16>,
    /// EPSS probability, ten-thousandths (0.1 → 1000).
    pub epss_at_least: Option<u16>,
    pub package: Option<Glob>,
    pub id: Option<Glob>,
    pub repository: Option<Glob>,
}

impl When {
    pub fn matches(&self, f: &Finding, repository: &str, unknown_meets: bool) -> bool {
        let known = |value: Option<bool>| value.unwrap_or(unknown_meets);
        let at_least = |have: Option<u16>, want: Option<u16>| match want {
            None => true,
            Some(want) => known(have.map(|h| h >= want)),
        };
        let equal = |have: Option<bool>, want: Option<bool>| match want {
            None => true,
            Some(want) => known(have.map(|h| h == want)),
        };
        self.severity_at_least
            .as_ref()
            .is_none_or(|s| f.severity.judged_as() <= *s)
            && equal(f.exploit_available, self.exploit_available)
            && equal(f.fix_available, self.fix_available)
            && at_least(f.score, self.score_at_least)
            && at_least(f.cvss, self.cvss_at_least)
            && at_least(f.epss, self.epss_at_least)
            && self.package.as_ref().is_none_or(|g| {
                let names: Vec<&str> = if f.packages.is_empty() {
                    f.package.as_deref().into_iter().collect()
                } else {
                    f.packages.iter().map(String::as_str).collect()
                };
                if names.is_empty() {
                    return unknown_meets;
                }
                // A finding in several packages is allowed only when all of them are the
                // allowed kind, and blocked (or warned of) when any is.
                if unknown_meets {
                    names.iter().any(|p| g.matches(p))
                } else {
                    names.iter().all(|p| g.matches(p))
                }
            })
            // Ids compare without case, as waivers do (CVE-2021-44228 is cve-2021-44228).
            && self
                .id
                .as_ref()
                .is_none_or(|g| g.matches(&f.id.to_ascii_uppercase()))
            && self
                .repository
                .as_ref()
                .is_none_or(|g| g.matches(repository))
    }
}

impl Rule {
    pub fn decides(&self, f: &Finding, repository: &str) -> bool {
        self.when
            .matches(f, repository, !matches!(self.action, Action::Allow))
    }
}

/// What `MAX_*` and `IGNORE_UNFIXED` have always meant, as rules: findings without a fix
/// allowed first (when set), then each severity against its own threshold, worst first, so
/// each rule decides exactly its severity; an `unlimited` severity still decides its own
/// findings (they count, and never fail).
pub fn threshold_rules(
    max: &std::collections::BTreeMap<Severity, u32>,
    ignore_unfixed: bool,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    if ignore_unfixed {
        rules.push(Rule {
            name: "IGNORE_UNFIXED".into(),
            action: Action::Allow,
            when: When {
                fix_available: Some(false),
                ..When::default()
            },
            threshold: None,
        });
    }
    for severity in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ] {
        rules.push(Rule {
            name: format!("MAX_{}", severity.name()),
            action: Action::Block {
                max: max.get(&severity).copied().unwrap_or(u32::MAX),
            },
            when: When {
                severity_at_least: Some(severity.clone()),
                ..When::default()
            },
            threshold: Some(severity),
        });
    }
    rules
}

pub const POLICY_EXPECTED: &str = r#"{"rules":[{"name":"…","action":"block|warn|allow","max":0,"when":{"severity_at_least":"HIGH","exploit_available":true,"fix_available":true,…}}]}, or ssm:/parameter/name"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    rules: Vec<RuleText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    name: String,
    action: String,
    #[serde(default)]
    max: Option<u32>,
    #[serde(default)]
    when: WhenText,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WhenText {
    severity_at_least: Option<String>,
    exploit_available: Option<bool>,
    fix_available: Option<bool>,
    score_at_least: Option<f64>,
    cvss_at_least: Option<f64>,
    epss_at_least: Option<f64>,
    package: Option<Glob>,
    id: Option<String>,
    repository: Option<Glob>,
}

/// `value` (at most `top`) in units of `1/scale`, for comparisons without floating point.
fn fixed(
    name: &str,
    field: &str,
    value: Option<f64>,
    top: f64,
    scale: f64,
) -> Result<Option<u16>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && (0.0..=top).contains(&v) => {
            Ok(Some((v * scale).round() as u16))
        }
        Some(v) => Err(format!(
            "rule {name:?}: {field} {v} is not between 0 and {top}"
        )),
    }
}

/// [`parse_policy`], once per text: a stored policy is read for each judgement (the secret
/// reader keeps its text for CONFIG_TTL) and parsed again only when that text changed.
pub fn parse_policy_once(text: &str) -> Result<Vec<Rule>, String> {
    type Parsed = Option<(String, Result<Vec<Rule>, String>)>;
    static LAST: std::sync::Mutex<Parsed> = std::sync::Mutex::new(None);
    let Ok(mut last) = LAST.lock() else {
        return parse_policy(text);
    };
    if let Some((seen, parsed)) = last.as_ref()
        && seen == text
    {
        return parsed.clone();
    }
    let parsed = parse_policy(text);
    *last = Some((text.to_owned(), parsed.clone()));
    parsed
}

/// Parses and checks a policy document, wherever it came from. The reason names the rule and
/// the field, never the document's text.
pub fn parse_policy(text: &str) -> Result<Vec<Rule>, String> {
    let document: Document = serde_json::from_str(text).map_err(|e| {
        // serde's words for an unknown or missing field name the field only; for a wrong
        // type they quote the value, which is the document's text: not repeated.
        let words = e.to_string();
        let why = match e.classify() {
            serde_json::error::Category::Data
                if words.starts_with("unknown field") || words.starts_with("missing field") =>
            {
                words
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            }
            serde_json::error::Category::Data => "a field has a value of the wrong type".into(),
            serde_json::error::Category::Eof => "the document ends too soon".into(),
            _ => "not valid JSON".into(),
        };
        format!(
            "invalid policy JSON at line {} column {}: {why}",
            e.line(),
            e.column()
        )
    })?;
    if document.rules.is_empty() {
        return Err("the policy has no rules (leave POLICY unset for the MAX_* thresholds)".into());
    }
    if document.rules.len() > MAX_RULES {
        return Err(format!(
            "the policy has {} rules; at most {MAX_RULES}",
            document.rules.len()
        ));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(document.rules.len());
    for r in document.rules {
        let name = r.name.trim().to_owned();
        // Names become a metric dimension and a code span in Slack: plain ones only.
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(
                "a rule's name must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'"
                    .into(),
            );
        }
        if rules.iter().any(|other| other.name == name) {
            return Err(format!("two rules are named {name:?}"));
        }
        let action = match (r.action.to_ascii_lowercase().as_str(), r.max) {
            ("block", max) => Action::Block {
                max: max.unwrap_or(0),
            },
            ("warn", max) => Action::Warn {
                max: max.unwrap_or(0),
            },
            ("allow", None) => Action::Allow,
            ("allow", Some(_)) => return Err(format!("rule {name:?}: an allow rule has no max")),
            (other, _) => {
                return Err(format!(
                    "rule {name:?}: action {other:?} is not block, warn or allow"
                ));
            }
        };
        let w = r.when;
        if w.epss_at_least.is_some() {
            // ECR's findings carry no EPSS (Inspector's own ListFindings does): a condition
            // on it would be "unknown" for every finding, met by every block rule.
            return Err(format!(
                "rule {name:?}: epss_at_least cannot be judged: ECR's findings carry no EPSS"
            ));
        }
        let severity_at_least = match w.severity_at_least.as_deref().map(Severity::parse) {
            None => None,
            Some(
                s @ (Severity::Critical
                | Severity::High
                | Severity::Medium
                | Severity::Low
                | Severity::Informational),
            ) => Some(s),
            Some(s) => {
                return Err(format!(
                    "rule {name:?}: severity_at_least {:?} is not CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL",
                    s.name()
                ));
            }
        };
        let when = When {
            severity_at_least,
            exploit_available: w.exploit_available,
            fix_available: w.fix_available,
            score_at_least: fixed(&name, "score_at_least", w.score_at_least, 10.0, 10.0)?,
            cvss_at_least: fixed(&name, "cvss_at_least", w.cvss_at_least, 10.0, 10.0)?,
            epss_at_least: fixed(&name, "epss_at_least", w.epss_at_least, 1.0, 10_000.0)?,
            package: w.package,
            id: w.id.map(|id| Glob::new(id.to_ascii_uppercase())),
            repository: w.repository,
        };
        rules.push(Rule {
            name,
            action,
            when,
            threshold: None,
        });
    }
    Ok(rules)
}
