//! migration-runner: one-shot ECS tasks (database migrations), launched at most once per
//! request, watched to the end, judged on every essential container and reported with the
//! log tail — from a CodePipeline stage, an ECR push, or a direct invocation.

pub mod app;
pub mod config;
pub mod ecs;
pub mod entry;
pub mod handler;
pub mod judge;
pub mod on_job;
pub mod render;
pub mod task;

pub use config::Config;
pub use handler::{Handler, Invocation};
