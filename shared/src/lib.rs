//! What the container-delivery functions share, each mechanism once, in layers read from the
//! bottom up: a module uses only the layers below its own.
//!
//! | layer | modules |
//! |---|---|
//! | 0 plain values | `text` (escape, truncate, durations, hex), `approval` (what an approval button carries), `glob`, `deadline`, `budget` (the reserves of an invocation's time), `console` (links), `dedupe` (a container's memory of keys), `guard` (work that always ends in a report) |
//! | 1 errors | `error`: retryable or permanent, `settle` |
//! | 2 mechanisms | `retry`, `secrets`, `config`, `http` + `aws` (one HTTP stack, one SDK configuration), `telemetry`, `metrics`, `jobs` and `hooks` (CodePipeline job results, CodeDeploy hook statuses) |
//! | 3 delivery | `message` (one description → Slack blocks and SNS text), `slack`, `sns`, `notifier` |
//! | 4 memory | `idempotency` (claims in DynamoDB), `versioned` (documents several containers write), `report` (report once, then notify), `clients` (what every composition root is built from) |
//! | 5 the invocation | `invocation`: start-up, one invocation's request id, deadline and clock, and one flow per kind of input (a CodePipeline job, a CodeDeploy hook, an ECS-native hook, an event handled once) |

// 0: plain values
pub mod approval;
pub mod budget;
pub mod console;
pub mod deadline;
pub mod dedupe;
pub mod glob;
pub mod guard;
pub mod text;

// 1: errors
pub mod error;

// 2: mechanisms
pub mod aws;
pub mod config;
pub mod hooks;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod retry;
pub mod secrets;
pub mod telemetry;

// 3: delivery
pub mod message;
pub mod notifier;
pub mod slack;
pub mod sns;

// 4: memory
pub mod clients;
pub mod idempotency;
pub mod report;
pub mod versioned;

// 5: the invocation
pub mod invocation;

pub use deadline::Deadline;
pub use error::{Error, settle};
