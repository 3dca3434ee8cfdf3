//! Slack's request signatures, as "Verifying requests from Slack" documents them: the
//! `X-Slack-Signature` header is `v0=` and the hex HMAC-SHA256, keyed with the app's signing
//! secret, of `v0:{X-Slack-Request-Timestamp}:{body}`, over the body's exact bytes. A
//! timestamp more than five minutes from now is refused, so a captured request can be
//! replayed only within that window (and the caller's own claims catch that).
//!
//! The signing secret is the only key a public endpoint has: nothing about a request is
//! believed until it verifies, and a refusal says which check failed, never the secret.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::text::{hex, unhex};

/// How far a request's timestamp may be from now, either way (Slack: five minutes).
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request is not Slack's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No signature or timestamp header.
    Unsigned,
    /// A header that is not in Slack's format.
    Malformed,
    /// Signed, but too far from now: a replay, or a clock far off.
    Stale,
    /// The signature does not match the body with this secret.
    Forged,
}

impl Refused {
    /// The metric dimension and log word.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::Malformed => "malformed",
            Self::Stale => "stale",
            Self::Forged => "forged",
        }
    }
}

/// The signature Slack would send for `body` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    mac(secret, timestamp, body)
        .map(|m| format!("v0={}", hex(&m.finalize().into_bytes())))
        .unwrap_or_default()
}

/// `None` only if HMAC refused the key, which it does for none.
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    Some(mac)
}

/// Checks a request's `X-Slack-Request-Timestamp` and `X-Slack-Signature` against `body` at
/// `now` (epoch seconds). The timestamp it was signed at when it is Slack's.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<i64, Refused> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(Refused::Unsigned);
    };
    let timestamp = timestamp.trim();
    // Digits only, no leading zero: one timestamp has one spelling.
    if timestamp.is_empty()
        || timestamp.len() > 12
        || timestamp.starts_with('0')
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Refused::Malformed);
    }
    let at: i64 = timestamp.parse().map_err(|_| Refused::Malformed)?;
    let tag = signature
        .trim()
        .strip_prefix("v0=")
        .and_then(unhex)
        .filter(|t| t.len() == 32)
        .ok_or(Refused::Malformed)?;
    if (now - at).abs() > MAX_SKEW_SECS {
        return Err(Refused::Stale);
    }
    // verify_slice compares in constant time.
    mac(secret, at, body)
        .ok_or(Refused::Forged)?
        .verify_slice(&tag)
        .map_err(|_| Refused::Forged)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example in Slack's "Verifying requests from Slack".
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const AT: i64 = 1_531_420_618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(sign(SECRET, AT, BODY), SIGNATURE);
        let ts = AT.to_string();
        assert_eq!(
            verify(SECRET, Some(&ts), Some(SIGNATURE), BODY, AT + 60),
            Ok(AT)
        );
    }

    #[test]
    fn a_forged_stale_unsigned_or_malformed_request_is_refused_for_its_own_reason() {
        let ts = AT.to_string();
        let at = |now| verify(SECRET, Some(&ts), Some(SIGNATURE), BODY, now);
        assert_eq!(at(AT + MAX_SKEW_SECS + 1), Err(Refused::Stale));
        assert_eq!(
            at(AT - MAX_SKEW_SECS - 1),
            Err(Refused::Stale),
            "from the future too"
        );
        let mut tampered = BODY.to_vec();
        tampered[0] = b'T';
        assert_eq!(
            verify(SECRET, Some(&ts), Some(SIGNATURE), &tampered, AT),
            Err(Refused::Forged)
        );
        assert_eq!(
            verify(b"another secret", Some(&ts), Some(SIGNATURE), BODY, AT),
            Err(Refused::Forged)
        );
        let later = (AT + 1).to_string();
        assert_eq!(
            verify(SECRET, Some(&later), Some(SIGNATURE), BODY, AT),
            Err(Refused::Forged),
            "the timestamp is signed"
        );
        assert_eq!(
            verify(SECRET, None, Some(SIGNATURE), BODY, AT),
            Err(Refused::Unsigned)
        );
        assert_eq!(
            verify(SECRET, Some(&ts), None, BODY, AT),
            Err(Refused::Unsigned)
        );
        for (ts, sig) in [
            ("-1", SIGNATURE),
            ("01531420618", SIGNATURE),
            ("1e9", SIGNATURE),
            ("99999999999999999999", SIGNATURE),
            (
                ts.as_str(),
                "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
            (ts.as_str(), "v0=a2114d57"),
            (
                ts.as_str(),
                "v0=zz114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
            (
                ts.as_str(),
                "v0=ä114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b50",
            ),
        ] {
            assert_eq!(
                verify(SECRET, Some(ts), Some(sig), BODY, AT),
                Err(Refused::Malformed),
                "{ts} {sig}"
            );
        }
    }
}
