//! The state of an alarm bake that outlasts one invocation, carried by ECS between
//! ECS-native hook invocations in `hookDetails` (returned with `IN_PROGRESS`, handed back on
//! the next invocation of the same hook).
//!
//! The state passes a deployment once the bake has run long enough, so it must not be
//! forgeable or reusable: it is sealed with HMAC-SHA256 over the state *and* the execution id,
//! target revision and stage it was made for, so a state edited in flight, copied into a
//! service's configured `hookDetails`, or carried over from another execution or revision is
//! refused. The key is `HOOK_STATE_KEY` (a secret reference); without one the seal still binds
//! the state to its execution and detects edits, but anyone who reads this source can forge
//! one — the README says so.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::checks::Check;

/// Where the state lives inside `hookDetails`, beside whatever the service configured there.
pub const DETAILS_KEY: &str = "canaryValidatorBake";
const VERSION: u8 = 1;
/// Used when `HOOK_STATE_KEY` is not set: binds and detects edits, does not authenticate.
const UNKEYED: &[u8] = b"canary-validator bake state (no HOOK_STATE_KEY)";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BakeState {
    /// When the hook first answered `IN_PROGRESS`, in Unix milliseconds: `MAX_BAKE` counts
    /// from here, whatever restarts the bake window.
    pub held_since_ms: u64,
    /// When the current bake window began (a changed check set starts a new one).
    pub started_ms: u64,
    /// Positions, in the check set, of the checks that have passed and are not run again.
    pub passed: Vec<usize>,
    /// Invocations so far, this one included.
    pub invocations: u32,
    /// Which check set the state belongs to: a changed set starts the bake again.
    pub set: String,
    /// The linear/canary step (the green revision's production weight) the bake is for: ECS
    /// runs the production-shift hooks at every step, and each step bakes afresh.
    pub step: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    v: u8,
    #[serde(flatten)]
    state: BakeState,
    tag: String,
}

/// What the state is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub execution_id: &'a str,
    pub revision: &'a str,
    pub stage: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Restored {
    /// No state: the first invocation of this hook.
    Fresh,
    Resumed(BakeState),
    /// Present but not this execution's, or altered: the hook fails.
    Rejected(String),
}

/// The MAC over the state and what it is bound to, ready to finalize or verify.
fn mac(state: &BakeState, binding: Binding<'_>, key: Option<&[u8]>) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.unwrap_or(UNKEYED)).ok()?;
    // Length-prefixed, so no choice of ids can make two bindings read the same.
    for part in [binding.execution_id, binding.revision, binding.stage] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.update(&[VERSION]);
    mac.update(serde_json::to_string(state).ok()?.as_bytes());
    Some(mac)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tag's bytes from its hex; text that is not hex is not a tag.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Reads this function's state from `hookDetails`, if any.
pub fn restore(details: &Map<String, Value>, binding: Binding<'_>, key: Option<&[u8]>) -> Restored {
    let Some(raw) = details.get(DETAILS_KEY) else {
        return Restored::Fresh;
    };
    let refused = "the bake state in hookDetails is not this execution's (another execution, revision or stage) or was altered";
    let Ok(sealed) = serde_json::from_value::<Sealed>(raw.clone()) else {
        return Restored::Rejected(format!("{refused}: it is not in this function's format"));
    };
    if sealed.v != VERSION {
        return Restored::Rejected(format!("{refused}: unknown version {}", sealed.v));
    }
    let Some(expected) = mac(&sealed.state, binding, key) else {
        return Restored::Rejected(format!("{refused}: it cannot be checked"));
    };
    // verify_slice compares in constant time: the tag is the secret-derived part.
    let matches = unhex(&sealed.tag).is_some_and(|tag| expected.verify_slice(&tag).is_ok());
    if matches {
        Restored::Resumed(sealed.state)
    } else {
        Restored::Rejected(refused.to_owned())
    }
}

/// When the hook began holding the deployment, read *without* checking the seal: only ever
/// used to fail sooner (a bake past `MAX_BAKE` whose state cannot be checked right now).
pub fn unverified_held_since(details: &Map<String, Value>) -> Option<u64> {
    details.get(DETAILS_KEY)?.get("held_since_ms")?.as_u64()
}

/// `hookDetails` to return with `IN_PROGRESS`: what came in (the service's own settings,
/// which ECS may or may not merge back) with this function's state replaced.
pub fn seal(
    details: &Map<String, Value>,
    state: &BakeState,
    binding: Binding<'_>,
    key: Option<&[u8]>,
) -> Option<Value> {
    let sealed = Sealed {
        v: VERSION,
        state: state.clone(),
        tag: hex(&mac(state, binding, key)?.finalize().into_bytes()),
    };
    let mut out = details.clone();
    out.insert(DETAILS_KEY.to_owned(), serde_json::to_value(sealed).ok()?);
    Some(Value::Object(out))
}

/// A short digest naming a check set as configured, so a state made for another set (the
/// book changed mid-bake) is recognised.
pub fn set_digest(name: &str, checks: &[Check]) -> String {
    let digest = Sha256::digest(format!("{name}\n{checks:?}").as_bytes());
    hex(&digest[..8])
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How long the bake has run, by the wall clock (the invocations run on different
/// containers); a start in the future (clock skew) counts as zero.
pub fn elapsed_since(started_ms: u64, now_ms: u64) -> Duration {
    Duration::from_millis(now_ms.saturating_sub(started_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding() -> Binding<'static> {
        Binding {
            execution_id: "exec-1",
            revision: "arn:aws:ecs:us-west-2:123456789012:service-revision/c/s/2",
            stage: "POST_PRODUCTION_TRAFFIC_SHIFT",
        }
    }

    fn state() -> BakeState {
        BakeState {
            held_since_ms: 1_700_000_000_000,
            started_ms: 1_700_000_000_000,
            passed: vec![0],
            invocations: 1,
            set: "abcd".into(),
            step: "100".into(),
        }
    }

    fn details_with(state: &BakeState, b: Binding<'_>, key: Option<&[u8]>) -> Map<String, Value> {
        let configured = json!({"checkSet": "prod-api"}).as_object().unwrap().clone();
        let out = seal(&configured, state, b, key).unwrap();
        out.as_object().unwrap().clone()
    }

    #[test]
    fn a_sealed_state_comes_back_beside_the_configured_details() {
        let d = details_with(&state(), binding(), Some(b"k"));
        assert_eq!(d["checkSet"], "prod-api");
        assert_eq!(
            restore(&d, binding(), Some(b"k")),
            Restored::Resumed(state())
        );
        assert_eq!(restore(&Map::new(), binding(), None), Restored::Fresh);
    }

    #[test]
    fn another_execution_revision_stage_or_key_is_refused() {
        let d = details_with(&state(), binding(), Some(b"k"));
        for other in [
            Binding {
                execution_id: "exec-2",
                ..binding()
            },
            Binding {
                revision: "arn:aws:ecs:us-west-2:123456789012:service-revision/c/s/3",
                ..binding()
            },
            Binding {
                stage: "POST_TEST_TRAFFIC_SHIFT",
                ..binding()
            },
        ] {
            assert!(matches!(
                restore(&d, other, Some(b"k")),
                Restored::Rejected(_)
            ));
        }
        assert!(matches!(
            restore(&d, binding(), Some(b"other")),
            Restored::Rejected(_)
        ));
        assert!(matches!(
            restore(&d, binding(), None),
            Restored::Rejected(_)
        ));
    }

    #[test]
    fn an_edited_state_is_refused() {
        let mut d = details_with(&state(), binding(), None);
        d[DETAILS_KEY]["started_ms"] = json!(0);
        assert!(matches!(
            restore(&d, binding(), None),
            Restored::Rejected(_)
        ));
        let mut extra = details_with(&state(), binding(), None);
        extra[DETAILS_KEY]["passed"] = json!([0, 1, 2]);
        assert!(matches!(
            restore(&extra, binding(), None),
            Restored::Rejected(_)
        ));
        let mut garbage = Map::new();
        garbage.insert(DETAILS_KEY.into(), json!("let me through"));
        assert!(
            matches!(restore(&garbage, binding(), None), Restored::Rejected(why) if why.contains("format"))
        );
    }
}
