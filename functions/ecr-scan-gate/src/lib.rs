//! ecr-scan-gate: a PASS / FAIL / PENDING verdict on an image's scan findings under a
//! policy, reached the same way from scan events and from a CodePipeline stage.

pub mod app;
pub mod config;
pub mod entry;
pub mod floor;
pub mod handler;
pub mod index;
pub mod policy;
pub mod registry;
pub mod render;
pub mod verdict;

pub use config::Config;
pub use handler::Handler;
