//! migration-runner: one-shot ECS tasks (database migrations), launched at most once per
//! request, watched to the end, judged on every essential container and reported with the
//! log tail — from a CodePipeline stage, an ECR push, or a direct invocation.

pub mod app;
pub mod config;
pub mod continuation;
pub mod ecs;
pub mod event;
pub mod judge;
pub mod launch;
pub mod on_direct;
pub mod on_job;
pub mod on_push;
pub mod on_task_stopped;
pub mod render;
pub mod task;

pub use app::Runner;
pub use config::Config;
pub use shared::invocation::Invocation;
