//! pipeline-notifier: CodePipeline EventBridge state changes to Slack and SNS.

pub mod app;
pub mod config;
pub mod event;
pub mod handler;
pub mod live;
pub mod lookup;
pub mod render;

pub use config::Config;
pub use handler::{Handler, Outcome};
