//! Helpers for this function's tests: sample events and the ECS world in moto.

use serde_json::Value;

pub use standins::ecs::*;

pub fn sample(name: &str) -> Value {
    standins::sample_event("migration-runner", name)
}
