//! pipeline-notifier: CodePipeline and Amazon ECS deployment events to Slack and SNS, and
//! a "green again" message when a pipeline or service recovers.

pub mod app;
pub mod config;
pub mod ecs_event;
pub mod ecs_lookup;
pub mod ecs_render;
pub mod event;
pub mod live;
pub mod lookup;
pub mod on_ecs_event;
pub mod on_pipeline_event;
pub mod recovery;
pub mod render;

pub use app::{PipelineNotifier, Ports};
pub use config::Config;
pub use on_pipeline_event::EventReply;
