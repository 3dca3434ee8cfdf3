//! Local stand-ins for AWS and Slack, for tests and `make demo`: real servers, not mocks
//! of the SDK. moto plays ECS, ECR, SNS, SSM, Secrets Manager, CloudWatch and Logs; the
//! recording stub plays the CodeDeploy and CodePipeline calls moto lacks and enforces ECS rules
//! moto does not (RunTask's client token, ListTasks' startedBy filter); the Slack sink
//! plays an incoming webhook; the target plays the new version of a service under test.
//! [`rig`] starts the set the functions' tests share.

pub mod approvals;
pub mod call_log;
pub mod captured_log;
pub mod cbor;
pub mod codepipeline;
pub mod ecr;
pub mod ecs;
pub mod emf;
pub mod lambda_logs;
pub mod moto;
pub mod picture;
pub mod planted;
pub mod props;
pub mod rig;
pub mod runtime_api;
pub mod slack_signer;
pub mod slack_sink;
pub mod stub;
pub mod target;

pub use captured_log::CapturedLog;
pub use moto::Moto;
pub use rig::Rig;
pub use runtime_api::{FunctionProcess, Outcome, RuntimeApi};
pub use slack_sink::{Reply, SlackMessage, SlackSink};
pub use stub::RecordingStub;
pub use target::{SelfSignedTls, Target};

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).map(PathBuf::from).unwrap_or(here)
}

/// The names of `function`'s sample events (`events/<function>/*.json`, not the recorded API
/// answers under `api/`), sorted.
pub fn sample_names(function: &str) -> Vec<String> {
    let mut names: Vec<String> = sample_paths(function)
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(crate) fn sample_paths(function: &str) -> Vec<PathBuf> {
    let dir = workspace_root().join("events").join(function);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .collect()
}

/// A sample from `events/<function>/<name>` (events and recorded API answers), for tests and
/// the demo. A missing or broken sample is a bug in the repository, so it panics naming it.
pub fn sample_event(function: &str, name: &str) -> serde_json::Value {
    let path = workspace_root().join("events").join(function).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Serves `app` on a free loopback port on the current tokio runtime.
pub(crate) async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}
