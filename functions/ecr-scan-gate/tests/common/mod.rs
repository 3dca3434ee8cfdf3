//! Helpers for this function's tests: sample events, and images with scan results in moto.

use serde_json::Value;

pub use standins::ecr::*;

pub fn sample(name: &str) -> Value {
    standins::sample_event("ecr-scan-gate", name)
}
