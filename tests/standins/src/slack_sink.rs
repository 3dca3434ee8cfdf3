//! A recording Slack on loopback: incoming webhooks, and the Web API's `chat.postMessage` and
//! `chat.update` with a bot token, channels and threads. It checks payloads against Slack's
//! limits as Slack does, keeps the messages so tests can read a channel's final state, and can
//! be told to misbehave: 429 with Retry-After, 5xx, 4xx error words, `{"ok": false}` error
//! words, or a request that never gets an answer.
//!
//! The Web API's rules, from Slack's method pages (api.slack.com/methods/chat.postMessage,
//! /chat.update): refusals are HTTP 200 with `{"ok": false, "error": …}`; a missing token is
//! `not_authed`, a wrong one `invalid_auth`, a revoked one `token_revoked`; a channel the bot
//! is not in is `not_in_channel`, an unknown one `channel_not_found`, an archived one
//! `is_archived`; `text` over 40,000 characters is `msg_too_long`; updating a message that is
//! gone is `message_not_found`; rate limiting is HTTP 429 `ratelimited` with `Retry-After`.
//! A reply to a `thread_ts` that is no message in the channel is refused as
//! `thread_not_found` here, stricter than Slack may be, so a test cannot pass on a reply
//! that lands nowhere.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The token in the sink's webhook path: tests check that it never reaches a log line.
pub const WEBHOOK_TOKEN: &str = "XXsinkSECRETtokenXX";

/// The bot token the sink's Web API accepts: tests check that it never reaches a log line.
pub const BOT_TOKEN: &str = "xoxb-000-XXsinkBOTsecretXX";

/// A channel the bot is in.
pub const CHANNEL: &str = "C0DEPLOYS01";
/// Another channel the bot is in (for routes).
pub const OTHER_CHANNEL: &str = "C0PRODOPS01";
/// A channel that exists but the bot was never invited to.
pub const CHANNEL_WITHOUT_BOT: &str = "C0NOBOT0001";
/// An archived channel.
pub const ARCHIVED_CHANNEL: &str = "C0ARCHIVED1";

/// A message as the channel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub channel: String,
    pub ts: String,
    pub text: String,
    pub blocks: Value,
    /// Set on a thread reply: the top message's `ts`.
    pub thread_ts: Option<String>,
    pub reply_broadcast: bool,
    /// How many times `chat.update` replaced it.
    pub updates: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    RateLimited {
        retry_after_secs: u64,
    },
    /// Any status with Slack's error word, e.g. `(404, "no_service")` or `(500, "rollup_error")`.
    Status(u16, &'static str),
    /// Accepts the request and never answers.
    Hang,
    /// Accepts the request and answers `ok` after this long: a post still in flight.
    Slow(Duration),
    /// For the Web API: HTTP 200 `{"ok": false, "error": word}`, e.g. `not_in_channel`.
    Api(&'static str),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: Value,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    received: Vec<Received>,
    messages: Vec<SlackMessage>,
    next_ts: u64,
    token_revoked: bool,
    /// User groups and their members, for `usergroups.users.list`.
    groups: std::collections::HashMap<String, Vec<String>>,
}

#[derive(Clone)]
pub struct SlackSink {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl SlackSink {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let addr = crate::serve(app).await;
        Self { addr, inner }
    }

    /// A webhook URL for this sink; `name` lets tests tell routes apart.
    pub fn webhook_url(&self, name: &str) -> String {
        format!("http://{}/services/T000/{name}/{WEBHOOK_TOKEN}", self.addr)
    }

    /// Replies for the next requests, in order; after them every request gets 200 `ok`.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().script.extend(replies);
    }

    /// Every request, whatever it was answered.
    pub fn requests(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Payloads Slack would have posted through a webhook (answered 200).
    pub fn delivered(&self) -> Vec<Value> {
        self.lock()
            .received
            .iter()
            .filter(|r| r.status == 200 && !r.path.starts_with("/api/"))
            .map(|r| r.body.clone())
            .collect()
    }

    /// An interaction's `response_url` into this sink (Slack's are
    /// `https://hooks.slack.com/actions/…`); what is posted to it shows in
    /// [`SlackSink::delivered`].
    pub fn response_url(&self, name: &str) -> String {
        format!("http://{}/actions/T000/{name}/{WEBHOOK_TOKEN}", self.addr)
    }

    /// The user group `id` (`S…`) has these members, for `usergroups.users.list`.
    pub fn user_group(&self, id: &str, members: &[&str]) {
        self.lock().groups.insert(
            id.to_owned(),
            members.iter().map(|m| (*m).to_owned()).collect(),
        );
    }

    /// The Web API's base, as `SLACK_API_URL` takes it.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// A channel's messages as Slack shows them, top-level ones and replies, oldest first.
    pub fn channel(&self, channel: &str) -> Vec<SlackMessage> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    /// A channel's top-level messages (what scrolls by), oldest first.
    pub fn top_messages(&self, channel: &str) -> Vec<SlackMessage> {
        self.channel(channel)
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    }

    /// The replies in the thread under `ts`.
    pub fn replies(&self, channel: &str, ts: &str) -> Vec<SlackMessage> {
        self.channel(channel)
            .into_iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts))
            .collect()
    }

    /// A person deletes a message.
    pub fn delete(&self, channel: &str, ts: &str) {
        self.lock()
            .messages
            .retain(|m| !(m.channel == channel && m.ts == ts));
    }

    /// Someone revokes the bot token: every Web API call is `token_revoked` from now on.
    pub fn revoke_token(&self) {
        self.lock().token_revoked = true;
    }

    /// Web API calls of `method` (`chat.postMessage`, `chat.update`) Slack accepted.
    pub fn accepted(&self, method: &str) -> usize {
        self.lock()
            .received
            .iter()
            .filter(|r| r.path == format!("/api/{method}") && r.status == 200)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(method) = uri.path().strip_prefix("/api/") {
        let method = method.to_owned();
        return web_api(&inner, &method, &headers, &body).await;
    }
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let reply = inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .script
        .pop_front()
        .unwrap_or(Reply::Ok);
    let reply = match (&reply, &parsed) {
        (Reply::Ok | Reply::Slow(_), Err(_)) => Reply::Status(400, "invalid_payload"),
        (Reply::Ok, Ok(v)) => match check_limits(v) {
            Some(word) => Reply::Status(400, word),
            None => Reply::Ok,
        },
        _ => reply,
    };
    let status = match &reply {
        Reply::Ok | Reply::Slow(_) => 200,
        Reply::RateLimited { .. } => 429,
        Reply::Status(s, _) => *s,
        Reply::Hang => 0,
        Reply::Api(_) => 400,
    };
    inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .received
        .push(Received {
            path: uri.path().to_owned(),
            body: parsed.unwrap_or(Value::Null),
            status,
        });
    match reply {
        Reply::Ok => (StatusCode::OK, "ok").into_response(),
        Reply::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_secs.to_string())],
            "rate_limited",
        )
            .into_response(),
        Reply::Status(s, word) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST),
            word,
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            (StatusCode::OK, "ok").into_response()
        }
        // A webhook has no JSON answers: an API word scripted for it is a 400 with the word.
        Reply::Api(word) => (StatusCode::BAD_REQUEST, word).into_response(),
    }
}

fn refusal(word: &str) -> Value {
    json!({"ok": false, "error": word})
}

/// `chat.postMessage` and `chat.update`, by Slack's rules (the module's header says which).
async fn web_api(
    inner: &Arc<Mutex<Inner>>,
    method: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let lock = || inner.lock().unwrap_or_else(|p| p.into_inner());
    // Read methods take a form (`usergroups.users.list`), the others JSON.
    let parsed: Option<Value> = serde_json::from_slice(body).ok().or_else(|| {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .filter(|pairs| !pairs.is_empty())
            .map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            })
    });
    let scripted = lock().script.pop_front();
    let (status, answer, wait) = match scripted {
        Some(Reply::Hang) => (0, Value::Null, Some(Duration::from_secs(3600))),
        Some(Reply::RateLimited { retry_after_secs }) => {
            lock().received.push(Received {
                path: format!("/api/{method}"),
                body: parsed.unwrap_or(Value::Null),
                status: 429,
            });
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                axum::Json(refusal("ratelimited")),
            )
                .into_response();
        }
        Some(Reply::Status(s, word)) => (s, refusal(word), None),
        Some(Reply::Api(word)) => (200, refusal(word), None),
        Some(Reply::Slow(wait)) => (200, Value::Null, Some(wait)),
        Some(Reply::Ok) | None => (200, Value::Null, None),
    };
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
    }
    let answer = if status == 200 && answer.is_null() {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let mut inner = lock();
        apply(&mut inner, method, bearer, parsed.as_ref())
    } else {
        answer
    };
    lock().received.push(Received {
        path: format!("/api/{method}"),
        body: parsed.unwrap_or(Value::Null),
        status: if answer["ok"] == json!(true) {
            200
        } else {
            status.max(1)
        },
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(answer),
    )
        .into_response()
}

fn apply(inner: &mut Inner, method: &str, bearer: Option<&str>, body: Option<&Value>) -> Value {
    match bearer {
        None => return refusal("not_authed"),
        Some(t) if t != BOT_TOKEN => return refusal("invalid_auth"),
        Some(_) if inner.token_revoked => return refusal("token_revoked"),
        Some(_) => {}
    }
    let Some(body) = body else {
        return refusal("invalid_json");
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    // usergroups.users.list: `no_such_subteam` for a group it does not know.
    if method == "usergroups.users.list" {
        return match field("usergroup").and_then(|g| inner.groups.get(&g)) {
            Some(users) => json!({"ok": true, "users": users}),
            None => refusal("no_such_subteam"),
        };
    }
    let Some(channel) = field("channel") else {
        return refusal("channel_not_found");
    };
    match channel.as_str() {
        CHANNEL | OTHER_CHANNEL => {}
        CHANNEL_WITHOUT_BOT => return refusal("not_in_channel"),
        ARCHIVED_CHANNEL => return refusal("is_archived"),
        _ => return refusal("channel_not_found"),
    }
    let text = field("text").unwrap_or_default();
    if text.chars().count() > 40_000 {
        return refusal("msg_too_long");
    }
    if let Some(word) = check_limits(body) {
        return refusal(word);
    }
    let blocks = body.get("blocks").cloned().unwrap_or(Value::Null);
    match method {
        "chat.postMessage" => {
            let thread_ts = field("thread_ts");
            if let Some(parent) = &thread_ts
                && !inner
                    .messages
                    .iter()
                    .any(|m| m.channel == channel && &m.ts == parent && m.thread_ts.is_none())
            {
                return refusal("thread_not_found");
            }
            inner.next_ts += 1;
            let ts = format!("1795000000.{:06}", inner.next_ts);
            inner.messages.push(SlackMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                text: text.clone(),
                blocks: blocks.clone(),
                reply_broadcast: thread_ts.is_some()
                    && body.get("reply_broadcast") == Some(&json!(true)),
                thread_ts,
                updates: 0,
            });
            json!({"ok": true, "channel": channel, "ts": ts,
                   "message": {"type": "message", "text": text, "blocks": blocks, "ts": ts}})
        }
        "chat.update" => {
            let Some(ts) = field("ts") else {
                return refusal("message_not_found");
            };
            let Some(found) = inner
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return refusal("message_not_found");
            };
            found.text = text.clone();
            found.blocks = blocks;
            found.updates += 1;
            json!({"ok": true, "channel": channel, "ts": ts, "text": text})
        }
        _ => refusal("unknown_method"),
    }
}

fn chars(v: &Value) -> usize {
    v.as_str()
        .map(|s| s.chars().map(char::len_utf16).sum())
        .unwrap_or(0)
}

/// Slack's own checks, as far as the suite relies on them: the error word Slack would
/// answer, or `None` when the payload is acceptable.
fn check_limits(payload: &Value) -> Option<&'static str> {
    let blocks = payload.get("blocks").and_then(Value::as_array);
    let text = payload.get("text");
    if text.is_none_or(|t| chars(t) == 0) && blocks.is_none_or(|b| b.is_empty()) {
        return Some("no_text");
    }
    let blocks = blocks?;
    if blocks.len() > 50 {
        return Some("invalid_blocks");
    }
    let mut total = 0;
    for b in blocks {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        let own = chars(&b["text"]["text"]);
        let limit = match kind {
            "header" => 150,
            "section" => 3000,
            _ => usize::MAX,
        };
        if own > limit {
            return Some("invalid_blocks");
        }
        if kind == "section" && own == 0 && b.get("fields").is_none() {
            return Some("invalid_blocks");
        }
        total += own;
        for f in b
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if chars(&f["text"]) > 2000 {
                return Some("invalid_blocks");
            }
            total += chars(&f["text"]);
        }
        for e in b
            .get("elements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            total += chars(&e["text"]) + chars(&e["text"]["text"]);
        }
    }
    if total > 13_000 {
        Some("msg_blocks_too_long")
    } else {
        None
    }
}
