//! The validator's configuration, read once at init. A bad configuration does not stop the
//! function: every invocation then reports Failed with the reason, because a hook that
//! never answers holds the deployment for an hour.

use std::time::Duration;

use shared::config::{ConfigError, Document, Environment, SHARED_VARIABLES, Var, Vars};
pub use shared::notifier::NotifyOn;

use crate::checks::{CHECKS_EXPECTED, CheckBook, parse_book};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    BeforeInstall,
    AfterInstall,
    AfterAllowTestTraffic,
    BeforeAllowTraffic,
    AfterAllowTraffic,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::BeforeInstall,
        Hook::AfterInstall,
        Hook::AfterAllowTestTraffic,
        Hook::BeforeAllowTraffic,
        Hook::AfterAllowTraffic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::BeforeInstall => "BeforeInstall",
            Self::AfterInstall => "AfterInstall",
            Self::AfterAllowTestTraffic => "AfterAllowTestTraffic",
            Self::BeforeAllowTraffic => "BeforeAllowTraffic",
            Self::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(text.trim()))
    }

    /// What a Failed report from this hook makes CodeDeploy do, for the notification.
    pub fn consequence_of_failure(self) -> &'static str {
        match self {
            Self::AfterAllowTraffic => {
                "CodeDeploy stops the deployment and, if rollback is enabled, shifts traffic back"
            }
            _ => {
                "CodeDeploy stops the deployment before production traffic reaches the new version"
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub hook: Hook,
    pub checks: Document<CheckBook>,
    pub notify_on: NotifyOn,
    /// Kept back from the Lambda deadline so the status can always be reported.
    pub report_margin: Duration,
}

/// The validator's variables: what the loader reads (with these defaults) and the README shows.
pub const VARIABLES: &[Var] = &[
    Var::required(
        "HOOK",
        "`AfterAllowTraffic`",
        "`BeforeInstall`, `AfterInstall`, `AfterAllowTestTraffic`, `BeforeAllowTraffic` or `AfterAllowTraffic`. Named in reports and messages.",
    ),
    Var::required(
        "CHECKS",
        "see below, or `ssm:/canary/prod-api`",
        "The check book: inline JSON, or an SSM parameter / Secrets Manager secret holding it (read on first use, then kept for `CONFIG_TTL`). Never taken from the event.",
    ),
    Var::defaulted("NOTIFY_ON", "FAIL", "`ALL`", "Which verdicts are notified."),
    shared::report::REPORT_MARGIN,
];

impl Config {
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let lists = [SHARED_VARIABLES, VARIABLES];
        let vars = Vars::declared(env, &lists);
        let hook_expected = "one of BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic";
        let hook = Hook::parse(&vars.required("HOOK", hook_expected)?)
            .ok_or_else(|| ConfigError::malformed("HOOK", hook_expected, "not a lifecycle hook"))?;
        let checks = vars
            .document("CHECKS", CHECKS_EXPECTED, parse_book)?
            .ok_or_else(|| ConfigError::missing("CHECKS", CHECKS_EXPECTED))?;
        let notify_on = NotifyOn::from_vars(&vars)?;
        let report_margin = shared::report::report_margin(&vars)?;
        Ok(Self {
            hook,
            checks,
            notify_on,
            report_margin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::secrets::SecretRef;

    const ONE_CHECK: &str = r#"[{"type":"http","url":"https://test.internal/health"}]"#;

    #[test]
    fn hook_and_checks_are_required_and_named() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(Config::from_env(&none).unwrap_err().variable, "HOOK");
        let no_checks = [("HOOK", "AfterAllowTraffic")];
        assert_eq!(Config::from_env(&no_checks).unwrap_err().variable, "CHECKS");
        let bad_hook = [("HOOK", "AfterTraffic"), ("CHECKS", ONE_CHECK)];
        assert_eq!(Config::from_env(&bad_hook).unwrap_err().variable, "HOOK");
    }

    #[test]
    fn inline_checks_are_parsed_and_references_kept() {
        let c = Config::from_env(&[("HOOK", "beforeallowtraffic"), ("CHECKS", ONE_CHECK)]).unwrap();
        assert_eq!(c.hook, Hook::BeforeAllowTraffic);
        assert!(matches!(c.checks, Document::Inline(b) if b.default.len() == 1));
        assert_eq!(c.notify_on, NotifyOn::Fail);
        let stored = Config::from_env(&[
            ("HOOK", "AfterAllowTraffic"),
            ("CHECKS", "ssm:/canary/checks"),
        ])
        .unwrap();
        assert_eq!(
            stored.checks,
            Document::Stored(SecretRef::Ssm("/canary/checks".into()))
        );
    }

    #[test]
    fn a_malformed_check_book_names_checks_without_echoing_it() {
        let err = Config::from_env(&[
            ("HOOK", "AfterAllowTraffic"),
            (
                "CHECKS",
                r#"[{"type":"http","url":"https://x/?token=hunter2","attempts":0}]"#,
            ),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "CHECKS");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let plain =
            Config::from_env(&[("HOOK", "AfterAllowTraffic"), ("CHECKS", "health")]).unwrap_err();
        assert_eq!(plain.variable, "CHECKS");
    }

    #[test]
    fn notify_on_is_validated() {
        let all = [
            ("HOOK", "AfterInstall"),
            ("CHECKS", ONE_CHECK),
            ("NOTIFY_ON", "all"),
        ];
        assert_eq!(Config::from_env(&all).unwrap().notify_on, NotifyOn::All);
        let bad = [
            ("HOOK", "AfterInstall"),
            ("CHECKS", ONE_CHECK),
            ("NOTIFY_ON", "never"),
        ];
        assert_eq!(Config::from_env(&bad).unwrap_err().variable, "NOTIFY_ON");
    }
}
