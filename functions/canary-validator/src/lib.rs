//! canary-validator: a CodeDeploy lifecycle hook that runs the configured HTTP and alarm
//! checks against the new version and always reports Succeeded or Failed in time.

pub mod alarms;
pub mod app;
pub mod bake;
pub mod checks;
pub mod config;
pub mod deployment;
pub mod ecs;
pub mod handler;
pub mod http;
pub mod render;
pub mod report;

pub use config::{Config, Hook};
pub use handler::{Handler, Ports, Setup};
