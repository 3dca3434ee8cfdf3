//! The decoder of what comes in (`event::parse`) under arbitrary input (proptest): pipeline
//! jobs, ECR pushes, ECS task events and direct invocations are decoded or refused, never a
//! panic.

use migration_runner::event::parse;
use proptest::prelude::*;
use serde_json::Value;
use standins::props::{arb_bytes, arb_json, mutated_samples};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_json_is_decoded_or_refused_never_a_panic(event in arb_json()) {
        let _ = parse(&event);
    }

    #[test]
    fn arbitrary_bytes_are_decoded_or_refused_never_a_panic(bytes in arb_bytes()) {
        if let Ok(event) = serde_json::from_slice::<Value>(&bytes) {
            let _ = parse(&event);
        }
    }

    #[test]
    fn sample_events_with_parts_replaced_are_decoded_or_refused(event in mutated_samples("migration-runner")) {
        let _ = parse(&event);
    }
}
