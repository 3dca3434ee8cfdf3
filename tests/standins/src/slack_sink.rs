//! A recording Slack incoming-webhook on loopback. It checks payloads against Slack's
//! limits as Slack does, and can be told to misbehave: 429 with Retry-After, 5xx, 4xx
//! error words, or a request that never gets an answer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The token in the sink's webhook path: tests check that it never reaches a log line.
pub const WEBHOOK_TOKEN: &str = "XXsinkSECRETtokenXX";

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

    /// Payloads Slack would have posted (answered 200).
    pub fn delivered(&self) -> Vec<Value> {
        self.lock()
            .received
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.body.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, body: Bytes) -> Response {
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
