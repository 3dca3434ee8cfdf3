//! Slack incoming webhooks: the message model and the one client that posts them.
//!
//! The webhook URL is a bearer secret. It is held as a [`Secret`], never logged, and
//! stripped from every transport error before that error can be shown.

pub use crate::message::*;

use std::time::Duration;

use crate::deadline::Deadline;
use crate::retry::{Attempt, Backoff, RetryError, retry};
use crate::secrets::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// Slack refused the message (4xx): sending it again cannot help.
    #[error("Slack rejected the message: HTTP {status} {error}")]
    Rejected { status: u16, error: String },

    #[error("Slack did not accept the message after {attempts} attempt(s); last: {last}")]
    Unavailable { attempts: u32, last: String },

    #[error(
        "Slack did not accept the message before the deadline ({attempts} attempt(s)); last: {last}"
    )]
    OutOfTime { attempts: u32, last: String },

    #[error("the Slack webhook is not an https URL")]
    InvalidWebhook,
}

impl From<SlackError> for crate::Error {
    fn from(e: SlackError) -> Self {
        Self::Slack {
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

impl SlackError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::OutOfTime { .. })
    }

    /// Slack's answers for a webhook that no longer leads anywhere: 403 `action_prohibited`,
    /// 404 `no_service` / `channel_not_found`, 410 `channel_is_archived`. A URL read from a
    /// store may have been rotated since it was cached.
    pub fn means_webhook_gone(&self) -> bool {
        matches!(
            self,
            Self::Rejected {
                status: 403 | 404 | 410,
                ..
            }
        )
    }
}

/// Posts messages to incoming webhooks. Build one per container and reuse it: it holds
/// the connection pool.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    backoff: Backoff,
    attempt_timeout: Duration,
}

pub const DEFAULT_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(8),
    max_attempts: 5,
};

/// Cap on what is read of an error answer: Slack's are one word.
const MAX_ERROR_BODY: usize = 512;

impl SlackClient {
    pub fn new() -> Result<Self, crate::Error> {
        Self::with_policy(DEFAULT_BACKOFF, Duration::from_secs(10))
    }

    pub fn with_policy(backoff: Backoff, attempt_timeout: Duration) -> Result<Self, crate::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A webhook never redirects; following one could carry the message elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "container-delivery-ops/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| {
                crate::Error::bad_input(format!(
                    "cannot build the HTTP client: {}",
                    e.without_url()
                ))
            })?;
        Ok(Self {
            http,
            backoff,
            attempt_timeout,
        })
    }

    /// Posts `message`, retrying 429 (after its `Retry-After`), 5xx and transport faults
    /// with backoff, all within `deadline`. A 4xx is returned at once as permanent.
    pub async fn post(
        &self,
        webhook: &Secret,
        message: &Message,
        deadline: &Deadline,
    ) -> Result<(), SlackError> {
        check_webhook(webhook.expose())?;
        let body = message.to_payload().to_string();
        let outcome = retry(deadline, &self.backoff, |attempt| {
            let body = body.clone();
            async move { self.attempt(webhook, body, deadline, attempt).await }
        })
        .await;
        match outcome {
            Ok(()) => Ok(()),
            Err(RetryError::Permanent(e)) => Err(e),
            Err(RetryError::Exhausted { last, attempts }) => Err(SlackError::Unavailable {
                attempts,
                last: last_answer(last),
            }),
            Err(RetryError::OutOfTime { last, attempts }) => Err(SlackError::OutOfTime {
                attempts,
                last: last_answer(last),
            }),
        }
    }

    async fn attempt(
        &self,
        webhook: &Secret,
        body: String,
        deadline: &Deadline,
        attempt: u32,
    ) -> Attempt<(), SlackError> {
        if attempt > 1 {
            crate::metrics::count(&crate::metrics::SLACK_RETRIES, &[]);
        }
        let budget = deadline.remaining().min(self.attempt_timeout);
        if budget.is_zero() {
            return Attempt::Retry {
                error: SlackError::OutOfTime {
                    attempts: attempt,
                    last: "no time left".into(),
                },
                after: None,
            };
        }
        let sent = self
            .http
            .post(webhook.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body)
            .timeout(budget)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    e.without_url().to_string()
                };
                tracing::warn!(attempt, error = %why, "Slack webhook request failed; will retry if time allows");
                return Attempt::Retry {
                    error: transient(why),
                    after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = read_capped(response).await;
        match status {
            200..=299 => Attempt::Done(()),
            429 => {
                tracing::warn!(
                    attempt,
                    retry_after_s = retry_after.map(|d| d.as_secs()),
                    "Slack rate-limited the webhook"
                );
                Attempt::Retry {
                    error: transient(format!("HTTP 429 {answer}")),
                    after: retry_after.or(Some(self.backoff.wait_after(attempt))),
                }
            }
            500..=599 => {
                tracing::warn!(attempt, status, error = %answer, "Slack answered with a server error");
                Attempt::Retry {
                    error: transient(format!("HTTP {status} {answer}")),
                    after: None,
                }
            }
            _ => Attempt::Permanent(SlackError::Rejected {
                status,
                error: answer,
            }),
        }
    }
}

fn transient(why: String) -> SlackError {
    SlackError::Unavailable {
        attempts: 0,
        last: why,
    }
}

fn last_answer(error: SlackError) -> String {
    match error {
        SlackError::Unavailable { last, .. } | SlackError::OutOfTime { last, .. } => last,
        other => other.to_string(),
    }
}

fn check_webhook(url: &str) -> Result<(), SlackError> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err(SlackError::InvalidWebhook);
    };
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        // Plain http only to a local sink: a real webhook must never travel unencrypted.
        "http" if loopback => Ok(()),
        _ => Err(SlackError::InvalidWebhook),
    }
}

/// Slack's error word from an answer body, read up to a cap and made printable.
async fn read_capped(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    String::from_utf8_lossy(&body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_webhooks_are_accepted() {
        assert!(check_webhook("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(check_webhook("http://127.0.0.1:9000/services/T/B/x").is_ok());
        assert_eq!(
            check_webhook("http://hooks.slack.com/services/T/B/x"),
            Err(SlackError::InvalidWebhook)
        );
        assert_eq!(check_webhook("not a url"), Err(SlackError::InvalidWebhook));
    }

    #[test]
    fn rejection_is_permanent_and_unavailability_is_not() {
        assert!(
            !SlackError::Rejected {
                status: 404,
                error: "no_service".into()
            }
            .is_retryable()
        );
        assert!(
            SlackError::Unavailable {
                attempts: 5,
                last: "HTTP 500".into()
            }
            .is_retryable()
        );
        assert!(
            SlackError::OutOfTime {
                attempts: 2,
                last: "HTTP 429".into()
            }
            .is_retryable()
        );
    }
}
