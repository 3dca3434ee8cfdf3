//! This function's sample events, for its tests.

use serde_json::Value;

pub fn sample(name: &str) -> Value {
    standins::sample_event("pipeline-notifier", name)
}
