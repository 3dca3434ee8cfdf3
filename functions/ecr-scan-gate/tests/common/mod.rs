//! Helpers for this function's tests: sample events, and images with scan results in moto.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub use standins::ecr::*;

pub fn sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/ecr-scan-gate")
        .join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}
