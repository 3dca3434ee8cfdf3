//! The hook decoders under arbitrary input (proptest): CodeDeploy and ECS-native payloads,
//! and the bake state ECS hands back in `hookDetails` (which anyone who can edit the hook
//! could craft), are decoded or refused, never a panic; crafted state is never accepted.

use canary_validator::bake::{Binding, Restored, restore};
use canary_validator::event::parse;
use proptest::prelude::*;
use serde_json::Value;
use standins::props::{arb_bytes, arb_json, arb_object, mutated_samples};

const DEPLOYMENT: &str =
    "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/prod-api/EZe5RNVLH6PPzHXINuP28";

fn decode(event: &Value) {
    let _ = parse(event);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_json_is_decoded_or_refused_never_a_panic(event in arb_json()) {
        decode(&event);
    }

    #[test]
    fn arbitrary_bytes_are_decoded_or_refused_never_a_panic(bytes in arb_bytes()) {
        if let Ok(event) = serde_json::from_slice::<Value>(&bytes) {
            decode(&event);
        }
    }

    #[test]
    fn sample_hooks_with_parts_replaced_are_decoded_or_refused(event in mutated_samples("canary-validator")) {
        decode(&event);
    }

    /// A state in the sealed format with any values and any tag (hex or not): the seal
    /// check itself refuses it, not only the format check.
    #[test]
    fn a_well_formed_state_with_a_forged_tag_is_refused(
        held in any::<u64>(), started in any::<u64>(), passed in prop::collection::vec(0usize..20, 0..5),
        invocations in any::<u32>(), set in "[a-f0-9]{0,16}", step in "[0-9]{1,3}",
        tag in prop_oneof!["[0-9a-f]{64}", "[0-9a-f]{0,70}", ".{0,20}"], bound in "[0-9a-f]{0,40}",
    ) {
        let binding = Binding { deployment: DEPLOYMENT, stage: "POST_TEST_TRAFFIC_SHIFT", revision: "rev-1", step: "" };
        let mut details = serde_json::Map::new();
        details.insert("canaryValidatorBake".into(), serde_json::json!({
            "v": 2, "bound": bound, "held_since_ms": held, "started_ms": started, "passed": passed,
            "invocations": invocations, "set": set, "step": step, "tag": tag,
        }));
        let restored = restore(&details, binding, Some(b"a key the forger does not have"));
        prop_assert!(matches!(&restored, Restored::Unverified { why, .. } if why.contains("seal")), "{restored:?}");
    }

    /// Without the key nobody can seal a state, so whatever is handed back is either "no
    /// state" or unverified — never taken as a bake in progress, nor as one of ours elsewhere.
    #[test]
    fn crafted_bake_state_is_never_accepted(details in arb_object(), state in arb_json()) {
        let binding = Binding { deployment: DEPLOYMENT, stage: "POST_TEST_TRAFFIC_SHIFT", revision: "rev-1", step: "" };
        let key: &[u8] = b"a key the crafter does not have";
        let mut details = details;
        details.insert("canaryValidatorBake".into(), state);
        let restored = restore(&details, binding, Some(key));
        prop_assert!(matches!(restored, Restored::Fresh | Restored::Unverified { .. }), "{restored:?}");
    }
}
