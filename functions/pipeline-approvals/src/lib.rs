//! pipeline-approvals: approve or reject a CodePipeline manual approval from Slack. The
//! suite's one public endpoint (a Lambda Function URL): it acts only on requests Slack signed,
//! and only for the people `APPROVERS` names.

pub mod app;
pub mod approvers;
pub mod config;
pub mod on_click;
pub mod pipelines;
pub mod reply;
pub mod request;

pub use app::{PipelineApprovals, Ports};
pub use config::Config;
