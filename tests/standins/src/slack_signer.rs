//! What Slack sends an app's interactivity Request URL when a person clicks a button, as a
//! Lambda Function URL hands it to the function: a form-encoded `payload=` body, signed as
//! "Verifying requests from Slack" describes (`v0=` + hex HMAC-SHA256 of
//! `v0:{timestamp}:{body}`), inside a payload format 2.0 event (Lambda developer guide,
//! "Invoking Lambda function URLs": lower-case header names, `isBase64Encoded`,
//! `requestContext.http`).
//!
//! The HMAC here is built by hand from SHA-256 (RFC 2104), not with the code under test, and
//! checked against Slack's own worked example: a signer that shared the verifier's code would
//! agree with it whatever both got wrong.

use base64_encode::encode as base64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 (RFC 2104): H((K ^ opad) || H((K ^ ipad) || message)), 64-byte blocks.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `X-Slack-Signature` for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body.as_bytes());
    let mac = hmac_sha256(secret.as_bytes(), &base);
    format!(
        "v0={}",
        mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A `block_actions` interaction: `user` clicked the button `action_id` carrying `value`
/// on the message at `channel`/`ts`, as Slack's interactivity payload reference shapes it.
pub fn block_actions(
    user: &str,
    action_id: &str,
    value: &str,
    response_url: &str,
    channel: &str,
    ts: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": "ada", "name": "ada", "team_id": "T0TEAM0001"},
        "api_app_id": "A0APPROVALS",
        "token": "a-verification-token-no-one-should-check",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": "12345.98765.abcd2358fdea",
        "team": {"id": "T0TEAM0001", "domain": "example"},
        "channel": {"id": channel, "name": "deploys"},
        "message": {"type": "message", "ts": ts, "text": "prod-api: waiting for approval"},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "approval", "type": "button",
                     "value": value, "action_ts": "1700000000.000100",
                     "text": {"type": "plain_text", "text": action_id}}]
    })
}

/// The form body Slack posts for `payload`: `payload=<JSON>`.
pub fn form_body(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap_or_default()
}

/// How a request reaches the function.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The signing secret Slack signs with; `None` sends no signature headers.
    pub secret: Option<&'a str>,
    /// The timestamp it is signed at.
    pub at: i64,
    /// The Function URL hands the body base64-encoded (it does for some content types).
    pub base64: bool,
}

/// A payload format 2.0 Function URL event for a POST of `body`, signed per `delivery`.
pub fn function_url_event(body: &str, delivery: Delivery<'_>) -> Value {
    let mut headers = json!({
        "content-type": "application/x-www-form-urlencoded",
        "host": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
        "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "x-amzn-trace-id": "Root=1-65d0c1e2-1a2b3c4d5e6f708192a3b4c5",
        "x-forwarded-proto": "https",
        "accept": "application/json,*/*",
    });
    if let Some(secret) = delivery.secret {
        headers["x-slack-request-timestamp"] = json!(delivery.at.to_string());
        headers["x-slack-signature"] = json!(signature(secret, delivery.at, body));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)"},
            "requestId": "7d5b0f41-4d2c-4b2e-9a59-3f1f0e7c2a11",
            "routeKey": "$default",
            "stage": "$default",
            "time": "06/Dec/2026:10:00:00 +0000",
            // When the URL received it: now, whatever time the request was signed at.
            "timeEpoch": shared::budget::now_millis()
        },
        "body": if delivery.base64 { base64(body.as_bytes()) } else { body.to_owned() },
        "isBase64Encoded": delivery.base64
    })
}

mod base64_encode {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Standard base64 with padding (RFC 4648), as Lambda encodes a binary body.
    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_slacks_worked_example_as_slack_does() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            signature("8f742231b10e8888abcd99yyyzzz85a5", 1_531_420_618, body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    #[test]
    fn the_verifier_under_test_accepts_what_this_signer_signs() {
        let body = form_body(&block_actions(
            "U012AB3CD",
            "approve",
            "{}",
            "https://hooks.slack.com/actions/T/1/x",
            "C0DEPLOYS01",
            "1.2",
        ));
        let header = signature("a secret", 1_700_000_000, &body);
        let verified = shared::slack::signature::verify(
            b"a secret",
            Some("1700000000"),
            Some(&header),
            body.as_bytes(),
            1_700_000_010,
        );
        assert_eq!(verified, Ok(1_700_000_000));
    }

    #[test]
    fn base64_is_rfc_4648() {
        assert_eq!(base64_encode::encode(b""), "");
        assert_eq!(base64_encode::encode(b"f"), "Zg==");
        assert_eq!(base64_encode::encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode::encode(b"foobar"), "Zm9vYmFy");
    }
}
