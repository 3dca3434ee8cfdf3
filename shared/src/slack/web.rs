//! The Slack Web API with a bot token: `chat.postMessage` and `chat.update`, for messages
//! that are edited in place and replied to in threads.
//!
//! The Web API answers most refusals as HTTP 200 with `{"ok": false, "error": "…"}`, so the
//! body decides, not the status. `ratelimited` (HTTP 429 with `Retry-After`) and 5xx go
//! through the suite's one retry loop; every other error word is permanent.

use serde_json::{Value, json};

use super::{Body, Message, SlackClient, SlackError, SlackResponse, check_url, without_previews};
use crate::deadline::Deadline;
use crate::retry::Attempt;
use crate::secrets::Secret;

/// Where the Web API is: `https://slack.com/api`, or GovSlack's `https://slack-gov.com/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackApi {
    base: String,
}

impl SlackApi {
    pub const PUBLIC: &'static str = "https://slack.com/api";

    /// `scheme://host[:port]` of the Web API, as a URL's origin is written.
    pub fn origin(&self) -> Option<String> {
        reqwest::Url::parse(&self.base)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }

    pub fn new(base: &str) -> Result<Self, SlackError> {
        check_url(base)?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    fn method(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }
}

impl Default for SlackApi {
    fn default() -> Self {
        Self {
            base: Self::PUBLIC.to_owned(),
        }
    }
}

/// One `chat.postMessage`: a new message, or a reply in the thread of `thread_ts`.
#[derive(Debug, Clone, Copy)]
pub struct WebPost<'a> {
    /// A channel id (`C0123ABC`): names can be renamed, ids cannot.
    pub channel: &'a str,
    pub message: &'a Message,
    pub thread_ts: Option<&'a str>,
    /// With `thread_ts`: the reply shows in the channel too.
    pub reply_broadcast: bool,
}

/// Where a posted message lives: what `chat.update` and thread replies need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// Slack's error words a caller acts on.
pub struct ApiError;

impl ApiError {
    pub const MESSAGE_NOT_FOUND: &'static str = "message_not_found";

    /// The token no longer works: it may have been rotated in the store it is read from.
    pub fn token_gone(e: &SlackError) -> bool {
        matches!(
            e.api_error(),
            Some("invalid_auth" | "token_revoked" | "token_expired" | "account_inactive")
        )
    }
}

/// What a person can do about an error word, for the log line that repeats it.
pub(super) fn hint(error: &str) -> &'static str {
    match error {
        "not_in_channel" => " (invite the bot to the channel: /invite @your-app)",
        "channel_not_found" => {
            " (check SLACK_CHANNEL or the route's channel id, and that the bot can see it)"
        }
        "is_archived" => " (the channel is archived: unarchive it or choose another)",
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            " (the bot token no longer works: reinstall the Slack app and store its new xoxb- token)"
        }
        "missing_scope" => " (the Slack app needs the chat:write scope)",
        "msg_too_long" | "invalid_blocks" | "msg_blocks_too_long" => {
            " (the message broke one of Slack's limits)"
        }
        _ => "",
    }
}

impl SlackClient {
    /// Posts a message (or a thread reply) and says where it is.
    pub async fn post_message(
        &self,
        api: &SlackApi,
        token: &Secret,
        post: &WebPost<'_>,
        deadline: &Deadline,
    ) -> Result<Posted, SlackError> {
        let mut body = post.message.to_payload();
        body["channel"] = json!(post.channel);
        without_previews(&mut body);
        if let Some(ts) = post.thread_ts {
            body["thread_ts"] = json!(ts);
            body["reply_broadcast"] = json!(post.reply_broadcast);
        }
        let answer = self
            .call(api, token, "chat.postMessage", body, deadline)
            .await?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
        match (field("channel"), field("ts")) {
            (Some(channel), Some(ts)) => Ok(Posted { channel, ts }),
            _ => Err(SlackError::Api {
                method: "chat.postMessage",
                error: "answer without channel and ts".into(),
            }),
        }
    }

    /// Replaces the message at `at` with `message`. `message_not_found` (a person deleted
    /// it) comes back as [`SlackError::Api`] for the caller to post anew.
    pub async fn update_message(
        &self,
        api: &SlackApi,
        token: &Secret,
        at: &Posted,
        message: &Message,
        deadline: &Deadline,
    ) -> Result<(), SlackError> {
        let mut body = message.to_payload();
        body["channel"] = json!(at.channel);
        body["ts"] = json!(at.ts);
        // An update without `blocks` would keep the old ones under the new text.
        if body.get("blocks").is_none() {
            body["blocks"] = json!([]);
        }
        self.call(api, token, "chat.update", body, deadline)
            .await
            .map(|_| ())
    }

    /// The members of the user group `group` (`usergroups.users.list`, scope
    /// `usergroups:read`): user ids.
    pub async fn group_members(
        &self,
        api: &SlackApi,
        token: &Secret,
        group: &str,
        deadline: &Deadline,
    ) -> Result<Vec<String>, SlackError> {
        let form = format!(
            "usergroup={}",
            percent_encoding::utf8_percent_encode(group, percent_encoding::NON_ALPHANUMERIC)
        );
        let answer = self
            .call_with(
                api,
                token,
                "usergroups.users.list",
                Body::Form(form),
                deadline,
            )
            .await?;
        Ok(answer
            .get("users")
            .and_then(Value::as_array)
            .map(|users| {
                users
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn call(
        &self,
        api: &SlackApi,
        token: &Secret,
        method: &'static str,
        body: Value,
        deadline: &Deadline,
    ) -> Result<Value, SlackError> {
        self.call_with(api, token, method, Body::Json(body.to_string()), deadline)
            .await
    }

    async fn call_with(
        &self,
        api: &SlackApi,
        token: &Secret,
        method: &'static str,
        body: Body,
        deadline: &Deadline,
    ) -> Result<Value, SlackError> {
        let url = api.method(method);
        self.with_retries(deadline, |attempt| {
            let body = match &body {
                Body::Json(b) => Body::Json(b.clone()),
                Body::Form(b) => Body::Form(b.clone()),
            };
            let url = url.as_str();
            async move {
                match self
                    .exchange(url, Some(token), body, deadline, attempt)
                    .await
                {
                    Ok(answer) => answer.judge_api(method, attempt, &self.backoff),
                    Err(retry) => retry,
                }
            }
        })
        .await
    }
}

impl SlackResponse {
    fn judge_api(
        self,
        method: &'static str,
        attempt: u32,
        backoff: &crate::retry::Backoff,
    ) -> Attempt<Value, SlackError> {
        if let Some(retry) = self.retry(attempt, backoff) {
            return retry;
        }
        if !(200..=299).contains(&self.status) {
            return Attempt::Permanent(SlackError::Rejected {
                status: self.status,
                error: self.body,
            });
        }
        let Ok(answer) = serde_json::from_str::<Value>(&self.body) else {
            // A proxy's page or a cut-off answer: the call may have landed. An update can be
            // sent again harmlessly; a post sent again could post twice.
            return if method == "chat.postMessage" {
                Attempt::Permanent(SlackError::Api {
                    method,
                    error: "unreadable_answer (not sent again: it may have posted)".into(),
                })
            } else {
                Attempt::Retry {
                    error: super::transient(format!("{method}: an answer that is not JSON")),
                    after: None,
                }
            };
        };
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Attempt::Done(answer);
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .chars()
            .take(80)
            .collect::<String>();
        match error.as_str() {
            "ratelimited" | "rate_limited" => Attempt::Retry {
                error: super::transient(format!("{method}: {error}")),
                after: self.retry_after.or(Some(backoff.wait_after(attempt))),
            },
            // Slack's own transient words.
            "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                Attempt::Retry {
                    error: super::transient(format!("{method}: {error}")),
                    after: None,
                }
            }
            _ => Attempt::Permanent(SlackError::Api { method, error }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_for_not_in_channel_says_to_invite_the_bot() {
        let e = SlackError::Api {
            method: "chat.postMessage",
            error: "not_in_channel".into(),
        };
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("not_in_channel"));
        assert!(e.to_string().contains("invite the bot"), "{e}");
    }

    #[test]
    fn only_https_or_loopback_api_addresses_are_accepted() {
        assert!(SlackApi::new("https://slack-gov.com/api/").is_ok());
        assert!(SlackApi::new("http://127.0.0.1:9/api").is_ok());
        assert!(SlackApi::new("http://slack.com/api").is_err());
        assert_eq!(
            SlackApi::default().method("chat.update"),
            "https://slack.com/api/chat.update"
        );
    }
}
