//! The state of an alarm bake that outlasts one invocation, carried by ECS between
//! ECS-native hook invocations in `hookDetails` (returned with `IN_PROGRESS`, handed back on
//! the next invocation of the same hook).
//!
//! The state passes a deployment once the bake has run long enough, so it must not be
//! forgeable or reusable: it is sealed with HMAC-SHA256 over the state *and* what it was made
//! for. The ECS developer guide ("Lambda hooks for Amazon ECS service deployments") promises
//! only that `hookDetails` persists between invocations of the same hook within a deployment,
//! and calls `executionId` the identifier of "this hook execution": nothing promises it stays
//! the same across `IN_PROGRESS` callbacks. So the seal binds what the guide does promise is
//! stable — the service deployment (`resourceArn`), the lifecycle stage, the target service
//! revision and the step (the green revision's production weight; linear and canary
//! deployments run the production-shift hooks at every step) — and never `executionId`.
//!
//! The sealed state also carries a digest of its binding (`bound`, under the tag), so a state
//! that does not resume is one of two things, and neither is trusted or shortens a bake:
//! - [`Restored::Elsewhere`]: sealed by this function for another deployment, stage, revision
//!   or step (the last step's state at a new step, or a state copied from elsewhere). The bake
//!   starts from zero, and so does `MAX_BAKE`: the other bake's times say nothing about this one.
//! - [`Restored::Unverified`]: the seal does not verify — edited, sealed with another key, an
//!   older format, or not ours at all. The bake also starts from zero (a rollback for what may
//!   be a rotated key or an upgrade mid-bake would punish a healthy release), but `MAX_BAKE`
//!   counts from the start the state claims *if* that is no later than now: a crafted claim can
//!   only end the hold sooner, never later than a fresh start would. Nothing else in an
//!   unverified state is read: its `started_ms` and `passed` cannot shorten the bake.
//!
//! Neither can hold a deployment forever: the state returned after a restart is sealed for
//! this binding and ECS hands it back on the next callback, so `MAX_BAKE` bounds the hold from
//! the first invocation that restarted (or from an earlier claimed start). The one place an
//! unverified state goes back to ECS unchanged is a passing fault before it can be checked
//! ([`unverified_held_since`]): there its claimed start must be readable and not in the future,
//! or the hook fails rather than wait on a clock it cannot bound.
//!
//! The key is `HOOK_STATE_KEY` (a secret reference); without one the seal still binds the
//! state and detects edits, but anyone who reads this source can forge one — the README says
//! so.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shared::budget::now_millis;
use shared::text::{hex, unhex};

use crate::checks::Check;

/// Where the state lives inside `hookDetails`, beside whatever the service configured there.
pub const DETAILS_KEY: &str = "canaryValidatorBake";
/// 2: bound to the service deployment, stage, revision and step, with the binding's digest
/// beside the state (1 was bound to `executionId`; such a state restarts the bake).
const VERSION: u8 = 2;
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
    /// The linear/canary step the bake is for, as in its [`Binding`]; kept in the clear so a
    /// log can say which step a state from another step was for.
    pub step: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    v: u8,
    /// The digest of the binding the state was sealed for, itself under the tag.
    bound: String,
    #[serde(flatten)]
    state: BakeState,
    tag: String,
}

/// What the state is bound to: what the ECS guide promises stays the same across the
/// callbacks of one hook in one deployment. Never `executionId`, which names one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The service deployment, `resourceArn`.
    pub deployment: &'a str,
    pub stage: &'a str,
    /// The target service revision, `targetServiceRevisionArn`.
    pub revision: &'a str,
    /// The green revision's production weight ("" where none is sent): each step of a linear
    /// or canary deployment bakes on its own.
    pub step: &'a str,
}

impl Binding<'_> {
    /// Length-prefixed, so no choice of parts can make two bindings read the same.
    fn digest(&self) -> String {
        let mut sha = Sha256::new();
        for part in [self.deployment, self.stage, self.revision, self.step] {
            sha.update((part.len() as u64).to_be_bytes());
            sha.update(part.as_bytes());
        }
        hex(&sha.finalize()[..16])
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Restored {
    /// No state: the first invocation of this hook.
    Fresh,
    /// Sealed by this function for this deployment, stage, revision and step.
    Resumed(BakeState),
    /// Sealed by this function, for another deployment, stage, revision or step: not this
    /// bake's, so it starts from zero.
    Elsewhere(BakeState),
    /// Present, but its seal does not verify (edited, another key, another format): never
    /// trusted. `held_since_ms` is the start it claims, only when that is no later than now,
    /// so it can end a hold sooner and never later than a fresh start.
    Unverified {
        why: String,
        held_since_ms: Option<u64>,
    },
}

/// The MAC over the state and the digest of what it is bound to, ready to finalize or verify.
fn mac(state: &BakeState, bound: &str, key: Option<&[u8]>) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.unwrap_or(UNKEYED)).ok()?;
    mac.update(&[VERSION]);
    mac.update(&(bound.len() as u64).to_be_bytes());
    mac.update(bound.as_bytes());
    mac.update(serde_json::to_string(state).ok()?.as_bytes());
    Some(mac)
}

/// Reads this function's state from `hookDetails`, if any.
pub fn restore(details: &Map<String, Value>, binding: Binding<'_>, key: Option<&[u8]>) -> Restored {
    let Some(raw) = details.get(DETAILS_KEY) else {
        return Restored::Fresh;
    };
    let unverified = |why: String| Restored::Unverified {
        why: format!("the bake state in hookDetails cannot be trusted: {why}"),
        held_since_ms: unverified_held_since(details, now_millis()),
    };
    let Ok(sealed) = serde_json::from_value::<Sealed>(raw.clone()) else {
        return unverified("it is not in this function's format".to_owned());
    };
    if sealed.v != VERSION {
        return unverified(format!("it is in another version ({})", sealed.v));
    }
    let Some(expected) = mac(&sealed.state, &sealed.bound, key) else {
        return unverified("it cannot be checked".to_owned());
    };
    // verify_slice compares in constant time: the tag is the secret-derived part.
    let verified = unhex(&sealed.tag).is_some_and(|tag| expected.verify_slice(&tag).is_ok());
    if !verified {
        return unverified(
            "its seal does not verify (altered, or sealed with another key)".to_owned(),
        );
    }
    if sealed.bound == binding.digest() {
        Restored::Resumed(sealed.state)
    } else {
        Restored::Elsewhere(sealed.state)
    }
}

/// When the hook began holding the deployment, as the state claims it *without* checking the
/// seal, and only if that is no later than `now_ms`: a later claim could only push `MAX_BAKE`
/// out, so it bounds nothing and is not returned. Only ever used to end a hold sooner.
pub fn unverified_held_since(details: &Map<String, Value>, now_ms: u64) -> Option<u64> {
    details
        .get(DETAILS_KEY)?
        .get("held_since_ms")?
        .as_u64()
        .filter(|&claimed| claimed <= now_ms)
}

/// `hookDetails` to return with `IN_PROGRESS`: what came in (the service's own settings,
/// which ECS may or may not merge back) with this function's state replaced.
pub fn seal(
    details: &Map<String, Value>,
    state: &BakeState,
    binding: Binding<'_>,
    key: Option<&[u8]>,
) -> Option<Value> {
    let bound = binding.digest();
    let tag = hex(&mac(state, &bound, key)?.finalize().into_bytes());
    let sealed = Sealed {
        v: VERSION,
        bound,
        state: state.clone(),
        tag,
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

/// How long the bake has run, by the wall clock (the invocations run on different
/// containers); a start in the future (clock skew) counts as zero.
pub fn elapsed_since(started_ms: u64, now_ms: u64) -> Duration {
    Duration::from_millis(now_ms.saturating_sub(started_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYMENT: &str =
        "arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/EZe5RNVLH6PPzHXINuP28";

    fn binding() -> Binding<'static> {
        Binding {
            deployment: DEPLOYMENT,
            stage: "POST_PRODUCTION_TRAFFIC_SHIFT",
            revision: "arn:aws:ecs:us-west-2:123456789012:service-revision/c/s/2",
            step: "100",
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

    fn is_unverified(r: &Restored) -> bool {
        matches!(r, Restored::Unverified { .. })
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

    /// The ECS guide calls `executionId` the id of "this hook execution" and promises only
    /// that `hookDetails` persists between invocations of the same hook within a deployment:
    /// the binding has no `executionId` in it, so a callback with a new one resumes the bake.
    #[test]
    fn a_state_sealed_under_one_execution_id_resumes_under_another_in_the_same_deployment() {
        let first_callback = details_with(&state(), binding(), Some(b"k"));
        let sealed = first_callback[DETAILS_KEY].to_string();
        assert!(
            !sealed.contains("exec") && !sealed.contains(DEPLOYMENT),
            "nothing of the invocation's id is in the state, and the binding only as a digest: {sealed}"
        );
        // Whatever executionId the next callback carries, the same deployment, stage,
        // revision and step is all restore is given, and all it needs.
        assert_eq!(
            restore(&first_callback, binding(), Some(b"k")),
            Restored::Resumed(state())
        );
    }

    /// `hookDetails` is promised within one hook of one deployment; a state sealed for
    /// another deployment, stage, revision or step (ECS runs the production-shift hooks at
    /// every linear/canary step) is recognised as ours and still not this bake's.
    #[test]
    fn a_state_from_another_deployment_stage_revision_or_step_is_not_trusted() {
        let d = details_with(&state(), binding(), Some(b"k"));
        for other in [
            Binding {
                deployment: "arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/OTHER",
                ..binding()
            },
            Binding {
                stage: "POST_TEST_TRAFFIC_SHIFT",
                ..binding()
            },
            Binding {
                revision: "arn:aws:ecs:us-west-2:123456789012:service-revision/c/s/3",
                ..binding()
            },
            Binding {
                step: "20",
                ..binding()
            },
        ] {
            assert_eq!(
                restore(&d, other, Some(b"k")),
                Restored::Elsewhere(state()),
                "{other:?}"
            );
        }
        // Parts are length-prefixed: moving text from one part to the next is another binding.
        let shifted = Binding {
            stage: "POST_PRODUCTION_TRAFFIC_SHIFT1",
            revision: "00",
            step: "",
            ..binding()
        };
        let a = Binding {
            stage: "POST_PRODUCTION_TRAFFIC_SHIFT",
            revision: "100",
            step: "",
            ..binding()
        };
        assert_ne!(shifted.digest(), a.digest());
    }

    /// Whoever can edit the service's hook configuration can put anything in `hookDetails`:
    /// an altered state, one sealed with another key, or one in an older format never
    /// resumes, and the only thing read from it is a start no later than now.
    #[test]
    fn an_altered_state_never_resumes() {
        let now = now_millis();
        let recent = BakeState {
            held_since_ms: now - 60_000,
            started_ms: now - 60_000,
            ..state()
        };
        let sealed = details_with(&recent, binding(), Some(b"k"));
        let edits = [
            ("started_ms", json!(0)),
            ("held_since_ms", json!(now - 120_000)),
            ("passed", json!([0, 1, 2])),
            ("invocations", json!(99)),
            ("set", json!("other")),
            ("step", json!("20")),
            ("bound", json!("00")),
            ("tag", json!("00")),
            ("v", json!(1)),
        ];
        for (field, value) in edits {
            let mut d = sealed.clone();
            d[DETAILS_KEY][field] = value;
            let restored = restore(&d, binding(), Some(b"k"));
            assert!(is_unverified(&restored), "{field}: {restored:?}");
        }
        let moved_back = {
            let mut d = sealed.clone();
            d[DETAILS_KEY]["held_since_ms"] = json!(now - 120_000);
            restore(&d, binding(), Some(b"k"))
        };
        assert!(
            matches!(moved_back, Restored::Unverified { held_since_ms: Some(h), .. } if h == now - 120_000),
            "an earlier claimed start can only end the hold sooner: {moved_back:?}"
        );
        let moved_on = {
            let mut d = sealed.clone();
            d[DETAILS_KEY]["held_since_ms"] = json!(now + 3_600_000);
            restore(&d, binding(), Some(b"k"))
        };
        assert!(
            matches!(
                moved_on,
                Restored::Unverified {
                    held_since_ms: None,
                    ..
                }
            ),
            "a start in the future would hold the deployment past MAX_BAKE: {moved_on:?}"
        );
        assert!(is_unverified(&restore(&sealed, binding(), Some(b"other"))));
        assert!(is_unverified(&restore(&sealed, binding(), None)));
        let mut garbage = Map::new();
        garbage.insert(DETAILS_KEY.into(), json!("let me through"));
        assert!(
            matches!(restore(&garbage, binding(), None), Restored::Unverified { why, held_since_ms: None } if why.contains("format"))
        );
    }
}
