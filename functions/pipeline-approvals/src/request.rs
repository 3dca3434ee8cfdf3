//! What reaches the Function URL, read as untrusted bytes: the payload format 2.0 event
//! (Lambda developer guide, "Invoking Lambda function URLs": lower-case header names, a body
//! that may be base64-encoded), and once its signature verifies, Slack's interactivity
//! payload (a form whose `payload` field is JSON; Slack's "block_actions payloads").

use std::collections::HashMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use shared::approval::{self, ApprovalRef};
use shared::secrets::Secret;
use shared::slack::Posted;

/// Slack's interactivity payloads carry the message they came from, form-encoded (a non-ASCII
/// character is 9 bytes), so a full message can come to some hundreds of kilobytes; anything
/// larger is not Slack's, and is not read.
pub const LARGEST_BODY: usize = 1024 * 1024;

/// Why a request cannot be read, before or after its signature: a 400, said in one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub &'static str);

/// The HTTP request, as the Function URL delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub headers: HashMap<String, String>,
    /// The exact bytes received, which is what Slack signed.
    pub body: Vec<u8>,
    /// When the Function URL received it (`requestContext.timeEpoch`, epoch ms).
    pub received_ms: Option<i64>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Deserialize)]
struct Event {
    version: Option<String>,
    #[serde(default)]
    headers: HashMap<String, String>,
    body: Option<String>,
    #[serde(rename = "isBase64Encoded", default)]
    is_base64: bool,
    #[serde(rename = "requestContext")]
    context: Option<Context>,
}

#[derive(Deserialize)]
struct Context {
    http: Option<Http>,
    #[serde(rename = "timeEpoch")]
    time_epoch: Option<i64>,
}

#[derive(Deserialize)]
struct Http {
    method: Option<String>,
}

pub fn http_request(event: &Value) -> Result<HttpRequest, Unreadable> {
    let event: Event = serde_json::from_value(event.clone())
        .map_err(|_| Unreadable("not a Function URL event"))?;
    if event.version.as_deref() != Some("2.0") {
        return Err(Unreadable("not a payload format 2.0 event"));
    }
    let received_ms = event.context.as_ref().and_then(|c| c.time_epoch);
    let method = event
        .context
        .and_then(|c| c.http)
        .and_then(|h| h.method)
        .unwrap_or_default()
        .to_ascii_uppercase();
    let text = event.body.unwrap_or_default();
    // Base64 is 4/3 of the bytes: refuse before decoding what would be too large anyway.
    if text.len() > LARGEST_BODY * 4 / 3 + 4 {
        return Err(Unreadable("the body is larger than any Slack interaction"));
    }
    let body = if event.is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| Unreadable("the body is marked base64 and is not"))?
    } else {
        text.into_bytes()
    };
    if body.len() > LARGEST_BODY {
        return Err(Unreadable("the body is larger than any Slack interaction"));
    }
    let headers = event
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    Ok(HttpRequest {
        method,
        headers,
        body,
        received_ms,
    })
}

/// A person's click on an approval button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// The Slack user id of whoever clicked.
    pub user: String,
    pub approve: bool,
    pub approval: ApprovalRef,
    /// Where the answer goes (Slack's `hooks.slack.com/actions/…`): for 30 minutes anyone
    /// holding it may post into the channel, so it is held as a secret.
    pub response_url: Option<Secret>,
    /// The message the button was on, for a reply in its thread.
    pub message: Option<Posted>,
}

/// What a signed interaction asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    Click(Click),
    /// Another kind of interaction, or a button of another app's: acknowledged, nothing done.
    NotOurs(&'static str),
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: Option<String>,
    user: Option<User>,
    #[serde(default)]
    actions: Vec<Action>,
    response_url: Option<String>,
    container: Option<Container>,
}

#[derive(Deserialize)]
struct Container {
    message_ts: Option<String>,
    channel_id: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Action {
    action_id: Option<String>,
    value: Option<String>,
}

fn is_user_id(text: &str) -> bool {
    (3..=21).contains(&text.len())
        && matches!(text.as_bytes()[0], b'U' | b'W')
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Reads a verified body: the form's `payload` as a `block_actions` click on one of the
/// approval buttons.
pub fn interaction(body: &[u8]) -> Result<Interaction, Unreadable> {
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| Unreadable("the body is not a form"))?;
    let payload = form
        .into_iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v)
        .ok_or(Unreadable("the form has no payload"))?;
    let payload: Payload = serde_json::from_str(&payload)
        .map_err(|_| Unreadable("the payload is not Slack's JSON"))?;
    if payload.kind.as_deref() != Some("block_actions") {
        return Ok(Interaction::NotOurs("not a button click"));
    }
    let Some(action) = payload.actions.first() else {
        return Err(Unreadable("a click without an action"));
    };
    let approve = match action.action_id.as_deref() {
        Some(approval::APPROVE) => true,
        Some(approval::REJECT) => false,
        _ => return Ok(Interaction::NotOurs("another button")),
    };
    let user = payload
        .user
        .and_then(|u| u.id)
        .filter(|id| is_user_id(id))
        .ok_or(Unreadable("a click without a user id"))?;
    let approval = action
        .value
        .as_deref()
        .and_then(ApprovalRef::from_value)
        .ok_or(Unreadable("the button does not name an approval"))?;
    let message = payload.container.and_then(|c| {
        let channel = c.channel_id.filter(|id| {
            (9..=24).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })?;
        let ts = c.message_ts.filter(|ts| {
            (1..=32).contains(&ts.len()) && ts.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        })?;
        Some(Posted { channel, ts })
    });
    Ok(Interaction::Click(Click {
        user,
        approve,
        approval,
        response_url: payload
            .response_url
            .filter(|u| u.len() <= 1000)
            .map(Secret::new),
        message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(body: &str, base64: bool) -> Value {
        json!({"version": "2.0", "headers": {"X-Slack-Signature": "v0=1"},
               "requestContext": {"http": {"method": "POST"}},
               "body": body, "isBase64Encoded": base64})
    }

    #[test]
    fn a_base64_body_is_read_as_its_bytes_and_header_names_lower_cased() {
        let r = http_request(&event("cGF5bG9hZD0lN0IlN0Q=", true)).unwrap();
        assert_eq!(r.body, b"payload=%7B%7D");
        assert_eq!(r.header("x-slack-signature"), Some("v0=1"));
        assert_eq!(r.method, "POST");
        assert_eq!(
            http_request(&event("not base64!", true)).unwrap_err().0,
            "the body is marked base64 and is not"
        );
        let huge = "a".repeat(LARGEST_BODY + 1);
        assert!(http_request(&event(&huge, false)).is_err());
        assert!(http_request(&json!({"Records": []})).is_err());
    }

    fn click(action_id: &str, user: &str, value: &str) -> Vec<u8> {
        let payload = json!({"type": "block_actions", "user": {"id": user},
            "actions": [{"action_id": action_id, "value": value}],
            "response_url": "https://hooks.slack.com/actions/T0/1/abc"});
        serde_urlencoded::to_string([("payload", payload.to_string())])
            .unwrap()
            .into_bytes()
    }

    const VALUE: &str = r#"{"pipeline":"prod-api","stage":"Approve","action":"ProdApproval","execution":"3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01"}"#;

    #[test]
    fn a_click_on_an_approval_button_names_the_user_the_choice_and_the_approval() {
        let Interaction::Click(c) =
            interaction(&click(approval::REJECT, "U012AB3CD", VALUE)).unwrap()
        else {
            panic!("a click");
        };
        assert_eq!(
            (c.user.as_str(), c.approve, c.approval.pipeline.as_str()),
            ("U012AB3CD", false, "prod-api")
        );
        assert_eq!(
            interaction(&click("other.app", "U012AB3CD", VALUE)).unwrap(),
            Interaction::NotOurs("another button")
        );
        assert!(interaction(&click(approval::APPROVE, "<!channel>", VALUE)).is_err());
        assert!(interaction(&click(approval::APPROVE, "U012AB3CD", "{}")).is_err());
        assert!(interaction(b"payload=%7Bnot json").is_err());
    }
}
