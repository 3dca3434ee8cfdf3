//! pipeline-notifier: CodePipeline EventBridge state changes to Slack and SNS.

pub mod app;
pub mod config;
pub mod event;
pub mod live;
pub mod lookup;
pub mod on_pipeline_event;
pub mod render;

pub use app::{PipelineNotifier, Ports};
pub use config::Config;
pub use on_pipeline_event::EventReply;
