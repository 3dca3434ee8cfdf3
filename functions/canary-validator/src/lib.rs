//! canary-validator: CodeDeploy and ECS-native lifecycle hooks that run the configured HTTP
//! and alarm checks against the new version and always answer Succeeded or Failed in time.

pub mod alarms;
pub mod app;
pub mod bake;
pub mod bake_window;
pub mod checks;
pub mod config;
pub mod deployment;
pub mod ecs_news;
pub mod event;
pub mod on_codedeploy_hook;
pub mod on_ecs_hook;
pub mod outcome;
pub mod probe;
pub mod render;
pub mod run_checks;

pub use app::{Ports, Validator};
pub use config::{CodeDeployHook, Config};
