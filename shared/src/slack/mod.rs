//! Slack: the message model and the one client that posts it, to incoming webhooks and to
//! the Web API (`web`: a bot token, messages that are updated and threaded).
//!
//! The webhook URL and the bot token are bearer secrets. Each is held as a [`Secret`], never
//! logged, and stripped from every transport error before that error can be shown.

pub use crate::message::*;

pub mod signature;
mod web;
pub use web::{ApiError, Posted, SlackApi, WebPost};

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

    #[error("the Slack webhook or API address is not an https URL")]
    InvalidWebhook,

    /// The Web API answered HTTP 200 with `{"ok": false, "error": …}`: Slack's word for
    /// why, which the log repeats as it is, with what a person can do about it.
    #[error("Slack's {method} answered {error}{}", web::hint(.error))]
    Api { method: &'static str, error: String },
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

    /// Slack's word when the Web API refused, such as `not_in_channel`.
    pub fn api_error(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => Some(error),
            _ => None,
        }
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

/// Cap on what is read of a webhook's answer: Slack's are one word.
const MAX_ERROR_BODY: usize = 512;
/// Cap on a Web API answer: it echoes the message, which Slack limits to about 40,000
/// characters of text plus the blocks.
const MAX_API_BODY: usize = 256 * 1024;

impl SlackClient {
    pub fn new() -> Result<Self, crate::Error> {
        Self::with_policy(DEFAULT_BACKOFF, Duration::from_secs(10))
    }

    pub fn with_policy(backoff: Backoff, attempt_timeout: Duration) -> Result<Self, crate::Error> {
        Ok(Self {
            http: crate::http::for_slack()?,
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
        check_url(webhook.expose())?;
        let mut payload = message.to_payload();
        without_previews(&mut payload);
        self.post_payload(webhook, payload, deadline).await
    }

    /// Answers an interaction through its `response_url` (Slack: "Handling user
    /// interaction"): `Replace` edits the message the button was on, `OnlyYou` shows the
    /// clicker a message no one else sees. The URL is a bearer secret for 30 minutes, so it
    /// is held as one. Only Slack's own `https://hooks.slack.com/actions/…` (or GovSlack's)
    /// is posted to, whatever a payload says, or `also`: the origin of the Web API the
    /// operator configured (`SLACK_API_URL`, a local sink in the tests).
    pub async fn respond(
        &self,
        response_url: &Secret,
        message: &Message,
        how: Respond,
        also: Option<&str>,
        deadline: &Deadline,
    ) -> Result<(), SlackError> {
        check_response_url(response_url.expose(), also)?;
        let mut payload = message.to_payload();
        without_previews(&mut payload);
        match how {
            Respond::Replace => payload["replace_original"] = serde_json::json!(true),
            Respond::OnlyYou => {
                payload["replace_original"] = serde_json::json!(false);
                payload["response_type"] = serde_json::json!("ephemeral");
            }
        }
        self.post_payload(response_url, payload, deadline).await
    }

    async fn post_payload(
        &self,
        to: &Secret,
        payload: serde_json::Value,
        deadline: &Deadline,
    ) -> Result<(), SlackError> {
        let body = payload.to_string();
        self.with_retries(deadline, |attempt| {
            let body = body.clone();
            async move {
                match self
                    .exchange(to.expose(), None, Body::Json(body), deadline, attempt)
                    .await
                {
                    Ok(answer) => answer.judge_webhook(attempt, &self.backoff),
                    Err(retry) => retry,
                }
            }
        })
        .await
    }

    /// The one retry loop, with its outcome in Slack's terms.
    async fn with_retries<T, F, Fut>(
        &self,
        deadline: &Deadline,
        attempt: F,
    ) -> Result<T, SlackError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Attempt<T, SlackError>>,
    {
        match retry(deadline, &self.backoff, attempt).await {
            Ok(v) => Ok(v),
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

    /// One request and its answer. A transport fault or no time left comes back as the
    /// retry it calls for; judging the answer is the caller's.
    async fn exchange<T>(
        &self,
        url: &str,
        bearer: Option<&Secret>,
        body: Body,
        deadline: &Deadline,
        attempt: u32,
    ) -> Result<SlackResponse, Attempt<T, SlackError>> {
        if attempt > 1 {
            crate::metrics::count(&crate::metrics::SLACK_RETRIES, &[]);
        }
        let budget = deadline.remaining().min(self.attempt_timeout);
        if budget.is_zero() {
            return Err(Attempt::Retry {
                error: SlackError::OutOfTime {
                    attempts: attempt,
                    last: "no time left".into(),
                },
                after: None,
            });
        }
        let (content_type, body) = match body {
            Body::Json(b) => ("application/json; charset=utf-8", b),
            Body::Form(b) => ("application/x-www-form-urlencoded", b),
        };
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .timeout(budget);
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    e.without_url().to_string()
                };
                tracing::warn!(attempt, error = %why, "Slack request failed; will retry if time allows");
                return Err(Attempt::Retry {
                    error: transient(why),
                    after: None,
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let cap = if bearer.is_some() {
            MAX_API_BODY
        } else {
            MAX_ERROR_BODY
        };
        let body = read_capped(response, cap).await;
        Ok(SlackResponse {
            status,
            retry_after,
            body,
        })
    }
}

/// What Slack answered to one request.
struct SlackResponse {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

impl SlackResponse {
    /// 429 and 5xx are worth another attempt (429 after Slack's `Retry-After`).
    fn retry<T>(&self, attempt: u32, backoff: &Backoff) -> Option<Attempt<T, SlackError>> {
        match self.status {
            429 => {
                tracing::warn!(
                    attempt,
                    retry_after_s = self.retry_after.map(|d| d.as_secs()),
                    "Slack rate-limited the request"
                );
                Some(Attempt::Retry {
                    error: transient(format!("HTTP 429 {}", self.body)),
                    after: self.retry_after.or(Some(backoff.wait_after(attempt))),
                })
            }
            500..=599 => {
                // A Web API answer may be long: its start says enough.
                let said: String = self.body.chars().take(200).collect();
                tracing::warn!(attempt, status = self.status, error = %said, "Slack answered with a server error");
                Some(Attempt::Retry {
                    error: transient(format!("HTTP {} {said}", self.status)),
                    after: None,
                })
            }
            _ => None,
        }
    }

    fn judge_webhook(self, attempt: u32, backoff: &Backoff) -> Attempt<(), SlackError> {
        if let Some(retry) = self.retry(attempt, backoff) {
            return retry;
        }
        match self.status {
            200..=299 => Attempt::Done(()),
            status => Attempt::Permanent(SlackError::Rejected {
                status,
                error: self.body,
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

/// Turns Slack's link and media previews off for a posted message (webhook or Web API): a
/// message's links point at consoles and commits, where a preview is noise, and some come from
/// untrusted text, which must not make Slack fetch a page and show what it found.
pub(crate) fn without_previews(payload: &mut serde_json::Value) {
    payload["unfurl_links"] = serde_json::Value::Bool(false);
    payload["unfurl_media"] = serde_json::Value::Bool(false);
}

/// How an interaction is answered through its `response_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Respond {
    /// The message the button was on is replaced (its buttons gone).
    Replace,
    /// A message only the person who clicked sees.
    OnlyYou,
}

/// A request body: JSON for posts, a form for the Web API's read methods (which Slack does
/// not promise to read as JSON).
pub(crate) enum Body {
    Json(String),
    Form(String),
}

/// A `response_url` is Slack's: `https://hooks.slack.com/actions/…` (or GovSlack's), on the
/// default port; or on `also`, an origin the operator configured.
fn check_response_url(url: &str, also: Option<&str>) -> Result<(), SlackError> {
    check_url(url)?;
    let parsed = reqwest::Url::parse(url).map_err(|_| SlackError::InvalidWebhook)?;
    let slacks = parsed.scheme() == "https"
        && matches!(
            parsed.host_str(),
            Some("hooks.slack.com" | "hooks.slack-gov.com")
        )
        && parsed.port().is_none()
        && parsed.path().starts_with("/actions/");
    let configured = also.is_some_and(|origin| parsed.origin().ascii_serialization() == origin);
    if slacks || configured {
        Ok(())
    } else {
        Err(SlackError::InvalidWebhook)
    }
}

pub(crate) fn check_url(url: &str) -> Result<(), SlackError> {
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

/// An answer body read up to a cap, control characters made spaces: Slack's error word
/// from a webhook, or a Web API answer's JSON (whose strings escape their own controls).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= cap {
            body.truncate(cap);
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
        assert!(check_url("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(check_url("http://127.0.0.1:9000/services/T/B/x").is_ok());
        assert_eq!(
            check_url("http://hooks.slack.com/services/T/B/x"),
            Err(SlackError::InvalidWebhook)
        );
        assert_eq!(check_url("not a url"), Err(SlackError::InvalidWebhook));
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
