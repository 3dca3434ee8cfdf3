//! Typed configuration from environment variables. A missing or malformed variable fails
//! init with an error that names the variable and what was expected. Values are never
//! echoed back: any of them may be a secret.

mod document;
mod variables;

pub use document::{Document, LoadError};
pub use variables::{SHARED_VARIABLES, Var};

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::secrets::SecretRef;

/// A function's configuration as read at start-up, or what is wrong with it. A container
/// with a bad configuration still starts, so the first invocation can tell a person (and
/// fail its job or hook) instead of crashing where only the logs would see it.
pub type Loaded<C> = Result<C, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {variable} {problem}; expected {expected}")]
pub struct ConfigError {
    pub variable: String,
    pub expected: String,
    pub problem: String,
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

impl ConfigError {
    pub fn missing(variable: &str, expected: &str) -> Self {
        Self {
            variable: variable.to_owned(),
            expected: expected.to_owned(),
            problem: "is not set".to_owned(),
        }
    }

    pub fn malformed(variable: &str, expected: &str, why: impl std::fmt::Display) -> Self {
        Self {
            variable: variable.to_owned(),
            expected: expected.to_owned(),
            problem: format!("is malformed ({why})"),
        }
    }
}

/// A variable that is set but is not valid Unicode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUnicode;

/// Where variables come from: the process environment in production, a map in tests.
pub trait Environment {
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode>;
}

pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
        match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(NotUnicode),
        }
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
        Ok(self.get(name).cloned())
    }
}

impl<const N: usize> Environment for [(&str, &str); N] {
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
        Ok(self
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned()))
    }
}

/// Typed readers over an [`Environment`].
pub struct Vars<'a, E: Environment + ?Sized> {
    env: &'a E,
    /// With lists, only their variables may be read, and their defaults apply.
    declared: Option<&'a [&'static [Var]]>,
}

impl<'a, E: Environment + ?Sized> Vars<'a, E> {
    pub fn new(env: &'a E) -> Self {
        Self {
            env,
            declared: None,
        }
    }

    /// Readers for a function that declares its variables in `lists`.
    pub fn declared(env: &'a E, lists: &'a [&'static [Var]]) -> Self {
        Self {
            env,
            declared: Some(lists),
        }
    }

    fn declaration(&self, name: &str) -> Result<Option<&'static Var>, ConfigError> {
        let Some(lists) = self.declared else {
            return Ok(None);
        };
        lists
            .iter()
            .flat_map(|list| list.iter())
            .find(|v| v.name == name)
            .map(Some)
            .ok_or_else(|| ConfigError {
                variable: name.to_owned(),
                expected: "a variable the function declares".to_owned(),
                problem: "is read but not declared (a bug: add it to the function's variable list)"
                    .to_owned(),
            })
    }

    /// The trimmed value, or the declared default, or `None`, when unset or blank. SAM turns
    /// an empty template parameter into an empty variable, which means "not configured".
    pub fn optional(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let default = self
            .declaration(name)?
            .and_then(|v| v.default)
            .map(str::to_owned);
        match self.env.var(name) {
            Ok(Some(v)) if v.trim().is_empty() => Ok(default),
            Ok(Some(v)) => Ok(Some(v.trim().to_owned())),
            Ok(None) => Ok(default),
            Err(NotUnicode) => Err(ConfigError::malformed(
                name,
                "UTF-8 text",
                "not valid UTF-8",
            )),
        }
    }

    /// A value read from a variable with a declared default, which therefore always has one.
    /// `None` means the list declares no default: a bug each function's tests catch.
    pub fn with_default<T>(&self, name: &str, value: Option<T>) -> Result<T, ConfigError> {
        value.ok_or_else(|| {
            ConfigError::missing(
                name,
                "a value (its variable list declares no default: a bug)",
            )
        })
    }

    pub fn required(&self, name: &str, expected: &str) -> Result<String, ConfigError> {
        self.optional(name)?
            .ok_or_else(|| ConfigError::missing(name, expected))
    }

    pub fn parsed<T>(&self, name: &str, expected: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.optional(name)?
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| ConfigError::malformed(name, expected, e))
            })
            .transpose()
    }

    pub fn flag(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.optional(name)?.map(|v| v.to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(Some(true)),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(Some(false)),
            Some(_) => Err(ConfigError::malformed(
                name,
                "true or false",
                "not a boolean",
            )),
        }
    }

    /// A duration written as `90s`, `30m`, `1h`, `500ms`, or a bare number of seconds.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ConfigError> {
        self.optional(name)?
            .map(|v| {
                parse_duration(&v).ok_or_else(|| {
                    ConfigError::malformed(
                        name,
                        "a duration such as 90s, 30m, 1h or 500ms",
                        "not a duration",
                    )
                })
            })
            .transpose()
    }

    /// Comma-separated items, blanks dropped.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .optional(name)?
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Inline JSON. serde's message says where the JSON is wrong, never what it holds.
    pub fn json<T: DeserializeOwned>(
        &self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.optional(name)?
            .map(|v| {
                serde_json::from_str(&v).map_err(|e| {
                    ConfigError::malformed(
                        name,
                        expected,
                        format_args!(
                            "{} at line {} column {}",
                            e.classify_name(),
                            e.line(),
                            e.column()
                        ),
                    )
                })
            })
            .transpose()
    }

    /// A secret-bearing value: a literal, `ssm:/param/name` or `secretsmanager:<secret-id>`.
    pub fn secret(&self, name: &str) -> Result<Option<SecretRef>, ConfigError> {
        self.optional(name)?
            .map(|v| {
                SecretRef::parse(&v).map_err(|why| {
                    ConfigError::malformed(
                        name,
                        "a literal, ssm:/parameter/name or secretsmanager:<secret-id>",
                        why,
                    )
                })
            })
            .transpose()
    }

    /// An ARN of the given service, e.g. `arn:aws:sns:eu-west-1:123456789012:alerts`.
    pub fn arn(&self, name: &str, service: &str) -> Result<Option<String>, ConfigError> {
        let expected =
            format!("an {service} ARN (arn:<partition>:{service}:<region>:<account>:<resource>)");
        self.optional(name)?
            .map(|v| {
                let parts: Vec<&str> = v.splitn(6, ':').collect();
                let ok = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[1].starts_with("aws")
                    && parts[2] == service
                    && !parts[5].is_empty();
                if ok {
                    Ok(v)
                } else {
                    Err(ConfigError::malformed(name, &expected, "not such an ARN"))
                }
            })
            .transpose()
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "invalid JSON"
            }
            serde_json::error::Category::Data => "JSON of the wrong shape",
            serde_json::error::Category::Io => "unreadable JSON",
        }
    }
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_variable_names_it_and_what_was_expected() {
        let env: [(&str, &str); 0] = [];
        let err = Vars::new(&env)
            .required("SNS_TOPIC_ARN", "an SNS topic ARN")
            .unwrap_err();
        assert_eq!(err.variable, "SNS_TOPIC_ARN");
        let text = err.to_string();
        assert!(
            text.contains("SNS_TOPIC_ARN")
                && text.contains("is not set")
                && text.contains("an SNS topic ARN"),
            "{text}"
        );
    }

    #[test]
    fn declared_variables_take_their_default_and_undeclared_ones_are_refused() {
        const LIST: &[Var] = &[Var::defaulted("MAX_WAIT", "30m", "`45m`", "How long.")];
        let env = [("MAX_WAIT", " ")];
        let vars = Vars::declared(&env, &[LIST]);
        assert_eq!(
            vars.duration("MAX_WAIT").unwrap(),
            Some(Duration::from_secs(1800))
        );
        assert!(
            vars.optional("MAX_WAITT")
                .unwrap_err()
                .problem
                .contains("not declared")
        );
    }

    #[test]
    fn blank_variable_counts_as_unset() {
        let env = [("SLACK_WEBHOOK_URL", "  ")];
        assert_eq!(Vars::new(&env).optional("SLACK_WEBHOOK_URL").unwrap(), None);
    }

    #[test]
    fn malformed_value_is_named_but_never_echoed() {
        let env = [("MAX_WAIT", "hunter2-secret")];
        let err = Vars::new(&env).duration("MAX_WAIT").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("MAX_WAIT") && text.contains("30m"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn durations_in_common_units() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("-5s"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn numbers_parse_with_the_expected_type() {
        let env = [("MAX_HIGH", "3"), ("MAX_LOW", "lots")];
        let vars = Vars::new(&env);
        assert_eq!(vars.parsed::<u32>("MAX_HIGH", "a count").unwrap(), Some(3));
        let err = vars.parsed::<u32>("MAX_LOW", "a count").unwrap_err();
        assert_eq!(err.variable, "MAX_LOW");
    }

    #[test]
    fn flags_accept_the_usual_spellings() {
        let env = [("A", "TRUE"), ("B", "0"), ("C", "maybe")];
        let vars = Vars::new(&env);
        assert_eq!(vars.flag("A").unwrap(), Some(true));
        assert_eq!(vars.flag("B").unwrap(), Some(false));
        assert_eq!(vars.flag("UNSET").unwrap(), None);
        assert!(vars.flag("C").is_err());
    }

    #[test]
    fn lists_drop_blanks() {
        let env = [("NOTIFY_ON", " pipeline:FAILED, ,action:FAILED ")];
        assert_eq!(
            Vars::new(&env).list("NOTIFY_ON").unwrap(),
            vec!["pipeline:FAILED", "action:FAILED"]
        );
    }

    #[test]
    fn json_errors_say_where_without_quoting_the_value() {
        let env = [(
            "SLACK_ROUTES",
            r#"[{"pipeline": "prod-*", "webhook": "https://hooks.slack.com/services/SECRET"#,
        )];
        let err = Vars::new(&env)
            .json::<serde_json::Value>("SLACK_ROUTES", "a JSON list of routes")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("SLACK_ROUTES") && text.contains("invalid JSON"),
            "{text}"
        );
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn arns_are_checked_for_their_service() {
        let env = [
            ("GOOD", "arn:aws:sns:eu-west-1:123456789012:alerts"),
            ("WRONG_SERVICE", "arn:aws:sqs:eu-west-1:123456789012:alerts"),
            ("NOT_ARN", "alerts"),
        ];
        let vars = Vars::new(&env);
        assert!(vars.arn("GOOD", "sns").unwrap().is_some());
        assert!(vars.arn("WRONG_SERVICE", "sns").is_err());
        assert!(vars.arn("NOT_ARN", "sns").is_err());
    }

    #[test]
    fn secret_reference_with_empty_name_is_rejected() {
        let env = [("SLACK_WEBHOOK_URL", "ssm:")];
        let err = Vars::new(&env).secret("SLACK_WEBHOOK_URL").unwrap_err();
        assert!(err.to_string().contains("SLACK_WEBHOOK_URL"));
    }
}
