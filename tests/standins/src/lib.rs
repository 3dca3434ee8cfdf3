//! Local stand-ins for AWS and Slack, for tests and `make demo`: real servers, not mocks
//! of the SDK. moto plays ECS, ECR, SNS, SSM, Secrets Manager, CloudWatch and Logs; the
//! recording stub plays the CodeDeploy and CodePipeline calls moto lacks; the Slack sink
//! plays an incoming webhook.

pub mod cbor;
pub mod ecr;
pub mod moto;
pub mod runtime_api;
pub mod slack_sink;
pub mod stub;

pub use moto::Moto;
pub use runtime_api::{FunctionProcess, Outcome, RuntimeApi};
pub use slack_sink::{Reply, SlackSink};
pub use stub::RecordingStub;

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).map(PathBuf::from).unwrap_or(here)
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
