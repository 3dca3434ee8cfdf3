//! The ECS and CloudWatch Logs calls the runner makes, behind narrow ports, and their AWS
//! implementations. Every call is bounded by the caller's deadline; the SDK retries
//! throttling inside it.

mod cluster;
mod log_tail;

pub use cluster::Ecs;
pub use log_tail::CloudWatchLogs;

use std::collections::BTreeMap;
use std::future::Future;

use shared::{Deadline, Error};

use crate::task::{Task, TaskDefinition};

/// What one RunTask asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub cluster: String,
    pub task_definition: String,
    pub container: String,
    pub command: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub launch_type: Option<String>,
    pub capacity_provider: Option<String>,
    pub started_by: String,
    pub client_token: String,
    pub tags: BTreeMap<String, String>,
}

/// A RunTask `failures[]` entry: ECS answered 200 but placed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchFailure {
    pub reason: String,
    pub detail: Option<String>,
}

impl LaunchFailure {
    /// Capacity that may exist a moment later: `RESOURCE:*` (CPU, MEMORY, PORTS, ENI, GPU),
    /// `AGENT` (the agent disconnected), and Fargate's "Capacity is unavailable at this
    /// time" (ECS API reference, "API failure reasons"). `ATTRIBUTE`, `MISSING` and
    /// anything unknown are permanent.
    pub fn is_capacity(&self) -> bool {
        let says_no_capacity = |s: &str| s.contains("Capacity is unavailable at this time");
        self.reason.starts_with("RESOURCE:")
            || self.reason == "AGENT"
            || says_no_capacity(&self.reason)
            || self.detail.as_deref().is_some_and(says_no_capacity)
    }

    pub fn describe(&self) -> String {
        match &self.detail {
            Some(d) if !d.is_empty() => format!("{} ({d})", self.reason),
            _ => self.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Started(Box<Task>),
    NotPlaced(Vec<LaunchFailure>),
}

/// The ECS port.
pub trait Cluster: Send + Sync {
    /// A family name resolves to its latest ACTIVE revision.
    fn task_definition(
        &self,
        reference: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<TaskDefinition, Error>> + Send;

    /// A new revision of `base` whose `container` runs `image`; `base` itself when the
    /// family's latest revision already does (a redelivered push registers nothing).
    fn pin_image(
        &self,
        base: &TaskDefinition,
        container: &str,
        image: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<TaskDefinition, Error>> + Send;

    /// Tasks started with `started_by` that are not stopped, with their tags.
    fn active_tasks(
        &self,
        cluster: &str,
        started_by: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Vec<Task>, Error>> + Send;

    fn run(
        &self,
        launch: &Launch,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<RunOutcome, Error>> + Send;

    /// `None` when ECS does not know the task (it stopped over an hour ago, or never was).
    fn describe(
        &self,
        cluster: &str,
        task_arn: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<Task>, Error>> + Send;

    fn stop(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The CloudWatch Logs port.
pub trait LogTail: Send + Sync {
    /// The last `lines` events of a stream, oldest first; `None` when it does not exist.
    fn tail(
        &self,
        group: &str,
        stream: &str,
        lines: u32,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<Vec<String>>, Error>> + Send;
}

async fn bounded<T>(
    deadline: &Deadline,
    what: &'static str,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    deadline
        .run(work)
        .await
        .map_err(|_| Error::OutOfTime(what))?
}
