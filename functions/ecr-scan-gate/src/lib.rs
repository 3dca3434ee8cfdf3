//! ecr-scan-gate: a PASS / FAIL / PENDING verdict on an image's scan findings under a
//! policy, reached the same way from scan events and from a CodePipeline stage.

pub mod app;
pub mod config;
pub mod event;
pub mod floor;
pub mod index;
pub mod look;
pub mod on_job;
pub mod on_scan;
pub mod policy;
pub mod registry;
pub mod render;
pub mod verdict;

pub use app::Gate;
pub use config::Config;
