//! Helpers shared by this function's tests.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use serde_json::Value;

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/pipeline-notifier")
}

pub fn sample(name: &str) -> Value {
    standins::sample_event("pipeline-notifier", name)
}

pub fn sample_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// A recorded API answer, for the recording stub to give back.
pub fn api_fixture(name: &str) -> Value {
    sample(&format!("api/{name}"))
}

pub use standins::codepipeline::{Ending, execution_events};

/// A Slack client with the production policy's shape and test-sized waits.
pub fn quick_slack() -> shared::slack::SlackClient {
    shared::slack::SlackClient::with_policy(
        shared::retry::Backoff {
            first: std::time::Duration::from_millis(50),
            max: std::time::Duration::from_millis(200),
            max_attempts: 4,
        },
        std::time::Duration::from_secs(2),
    )
    .unwrap()
}

/// The notifier exactly as `main.rs` builds it: `base` with `extra` on top (an empty value
/// removes a variable), every AWS call through `sdk`, Slack through [`quick_slack`].
pub fn notifier(
    sdk: &aws_config::SdkConfig,
    base: &[(&str, String)],
    extra: &[(&str, &str)],
) -> pipeline_notifier::app::App {
    let mut env: std::collections::HashMap<String, String> = base
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    env.retain(|_, v| !v.is_empty());
    pipeline_notifier::app::build(
        &env,
        &shared::clients::Clients::new(sdk.clone(), quick_slack()),
    )
}
