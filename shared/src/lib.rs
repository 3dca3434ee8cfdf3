//! What the container-delivery functions share: typed configuration, secrets, Slack and
//! SNS delivery, retries bounded by the Lambda deadline, CodePipeline job results,
//! console links and logging. Each mechanism lives here once.

pub mod aws;
pub mod budget;
pub mod clients;
pub mod config;
pub mod console;
pub mod deadline;
pub mod dedupe;
pub mod error;
pub mod glob;
pub mod guard;
pub mod hooks;
pub mod http;
pub mod idempotency;
pub mod invocation;
pub mod jobs;
pub mod message;
pub mod metrics;
pub mod notifier;
pub mod report;
pub mod retry;
pub mod secrets;
pub mod slack;
pub mod sns;
pub mod telemetry;
pub mod text;
pub mod versioned;

pub use deadline::Deadline;
pub use error::{Error, settle};
