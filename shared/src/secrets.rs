//! Secret-bearing configuration values: a literal, an SSM parameter or a Secrets Manager
//! secret, resolved on first use and cached for a time to live (`CONFIG_TTL`).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::deadline::Deadline;
use crate::error::Error;

/// A secret value. Debug and Display never show it; only [`Secret::expose`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret lives. The Debug form names references but hides literals.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Literal(Secret),
    /// `ssm:/param/name`: read with decryption, so SecureString parameters work.
    Ssm(String),
    /// `secretsmanager:<secret-id>` or `secretsmanager:<secret-id>#<json-key>` for a
    /// secret stored as a JSON object. Neither secret names nor ARNs may contain `#`.
    SecretsManager {
        id: String,
        json_key: Option<String>,
    },
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal(_) => f.write_str("literal([redacted])"),
            other => write!(f, "{}", other.describe()),
        }
    }
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix("ssm:") {
            if name.is_empty() {
                return Err("the SSM parameter name after ssm: is empty");
            }
            return Ok(Self::Ssm(name.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("secretsmanager:") {
            let (id, json_key) = match rest.split_once('#') {
                Some((id, key)) if !key.is_empty() => (id, Some(key.to_owned())),
                Some(_) => return Err("the JSON key after # is empty"),
                None => (rest, None),
            };
            if id.is_empty() {
                return Err("the secret id after secretsmanager: is empty");
            }
            return Ok(Self::SecretsManager {
                id: id.to_owned(),
                json_key,
            });
        }
        if text.is_empty() {
            return Err("the value is empty");
        }
        Ok(Self::Literal(Secret::new(text)))
    }

    /// A loggable description: where the secret lives, never what it is.
    pub fn describe(&self) -> String {
        match self {
            Self::Literal(_) => "an inline value".to_owned(),
            Self::Ssm(name) => format!("ssm:{name}"),
            Self::SecretsManager { id, json_key: None } => format!("secretsmanager:{id}"),
            Self::SecretsManager {
                id,
                json_key: Some(k),
            } => format!("secretsmanager:{id}#{k}"),
        }
    }
}

/// How long a value read from SSM or Secrets Manager is used before it is read again, unless
/// `CONFIG_TTL` says otherwise: a waiver added to unblock a release, or a rotated webhook,
/// reaches warm containers within this time.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// Resolves [`SecretRef`]s through SSM and Secrets Manager, caching each for a time to live.
/// Failures are not cached, so a transient fault is retried next time.
pub struct Secrets {
    // Each client is built at its first use: the first client of an SDK crate parses that
    // crate's endpoint rules (about a tenth of init each, docs/performance.md), and most
    // containers read only one of the two services, some neither.
    sdk: aws_config::SdkConfig,
    ssm: OnceLock<aws_sdk_ssm::Client>,
    secrets_manager: OnceLock<aws_sdk_secretsmanager::Client>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Secret, Instant)>>,
}

impl Secrets {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::with_ttl(sdk, DEFAULT_TTL)
    }

    pub fn with_ttl(sdk: &aws_config::SdkConfig, ttl: Duration) -> Self {
        Self {
            sdk: sdk.clone(),
            ssm: OnceLock::new(),
            secrets_manager: OnceLock::new(),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn resolve(
        &self,
        reference: &SecretRef,
        deadline: &Deadline,
    ) -> Result<Secret, Error> {
        if let SecretRef::Literal(s) = reference {
            return Ok(s.clone());
        }
        let key = reference.describe();
        let cached = self.cache.lock().await.get(&key).cloned();
        if let Some((hit, at)) = &cached
            && at.elapsed() < self.ttl
        {
            return Ok(hit.clone());
        }
        let fetched = deadline
            .run(self.fetch(reference))
            .await
            .map_err(|_| Error::OutOfTime("reading a secret"))
            .and_then(|r| r);
        match (fetched, cached) {
            (Ok(value), _) => {
                self.cache
                    .lock()
                    .await
                    .insert(key, (value.clone(), Instant::now()));
                Ok(value)
            }
            // A refresh that failed for a passing reason (throttling, an SSM brownout) keeps
            // the value it was refreshing: failing a deployment over a slow read of a
            // setting that was fine five minutes ago would be worse than a late change.
            (Err(e), Some((stale, _))) if e.is_retryable() => {
                tracing::warn!(reference = %key, error = %e, "could not refresh; using the value read before");
                Ok(stale)
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Drops a cached value at once, for when its user has learned it is stale (Slack says a
    /// webhook is gone): the next [`resolve`](Self::resolve) reads it again.
    pub async fn forget(&self, reference: &SecretRef) {
        self.cache.lock().await.remove(&reference.describe());
    }

    async fn fetch(&self, reference: &SecretRef) -> Result<Secret, Error> {
        match reference {
            SecretRef::Literal(s) => Ok(s.clone()),
            SecretRef::Ssm(name) => {
                let out = self
                    .ssm
                    .get_or_init(|| aws_sdk_ssm::Client::new(&self.sdk))
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("SSM", "GetParameter", e))?;
                out.parameter
                    .and_then(|p| p.value)
                    .map(Secret::new)
                    .ok_or_else(|| Error::bad_input(format!("SSM parameter {name} has no value")))
            }
            SecretRef::SecretsManager { id, json_key } => {
                let out = self
                    .secrets_manager
                    .get_or_init(|| aws_sdk_secretsmanager::Client::new(&self.sdk))
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("Secrets Manager", "GetSecretValue", e))?;
                let text = out.secret_string.ok_or_else(|| {
                    Error::bad_input(format!(
                        "secret {id} has no string value (binary secrets are not supported)"
                    ))
                })?;
                match json_key {
                    None => Ok(Secret::new(text)),
                    Some(key) => pick_json_key(&text, key).map(Secret::new).ok_or_else(|| {
                        Error::bad_input(format!(
                            "secret {id} is not a JSON object with a string field {key:?}"
                        ))
                    }),
                }
            }
        }
    }
}

fn pick_json_key(text: &str, key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get(key)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_by_prefix() {
        assert_eq!(
            SecretRef::parse("ssm:/ops/slack").unwrap(),
            SecretRef::Ssm("/ops/slack".into())
        );
        assert_eq!(
            SecretRef::parse("secretsmanager:ops/slack#url").unwrap(),
            SecretRef::SecretsManager {
                id: "ops/slack".into(),
                json_key: Some("url".into())
            }
        );
        assert_eq!(
            SecretRef::parse("secretsmanager:arn:aws:secretsmanager:eu-west-1:1:secret:x").unwrap(),
            SecretRef::SecretsManager {
                id: "arn:aws:secretsmanager:eu-west-1:1:secret:x".into(),
                json_key: None
            }
        );
        assert!(matches!(
            SecretRef::parse("https://hooks.slack.com/services/T/B/x").unwrap(),
            SecretRef::Literal(_)
        ));
        assert!(SecretRef::parse("secretsmanager:").is_err());
        assert!(SecretRef::parse("secretsmanager:x#").is_err());
    }

    #[test]
    fn debug_and_describe_never_show_a_literal() {
        let r = SecretRef::parse("https://hooks.slack.com/services/T/B/topsecret").unwrap();
        assert!(!format!("{r:?}").contains("topsecret"));
        assert!(!r.describe().contains("topsecret"));
        let SecretRef::Literal(s) = r else { panic!() };
        assert!(!format!("{s:?} {s}").contains("topsecret"));
    }

    #[test]
    fn json_key_is_picked_from_an_object_secret() {
        assert_eq!(
            pick_json_key(r#"{"url":"https://x"}"#, "url").as_deref(),
            Some("https://x")
        );
        assert_eq!(pick_json_key(r#"{"url":1}"#, "url"), None);
        assert_eq!(pick_json_key("plain", "url"), None);
    }
}
