//! The composition root: the only place that reads the environment and builds clients, into
//! one [`Ports`] struct, and the runner that answers each input through them. `main.rs`, the
//! tests and the demo all build the runner here; a test that swaps one port changes one field.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use shared::clients::Clients;
use shared::config::{Environment, Loaded};
use shared::invocation::job::JobReply;
use shared::invocation::once::Handled;
use shared::invocation::{Function, Invocation};
use shared::jobs::{JobReporter, ReportJob};
use shared::notifier::{Notifier, Notify};
use shared::report::Answerer;
use shared::{Deadline, Error, metrics};

use crate::config::Config;
use crate::ecs::{CloudWatchLogs, Cluster, Ecs, LogTail};
use crate::event::{Input, parse};
use crate::on_direct::DirectReply;
use crate::on_job::NoDetail;
use crate::on_push::PushReply;
use crate::on_task_stopped::StoppedReply;
use crate::render::{ClusterLocation, render_problem};

/// The function's name, as deployed: what its claims, documents and metrics are kept under.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// The key under which a broken configuration is notified, once per container, for events.
const CONFIG_ERROR_KEY: &str = "configuration-error";

/// What the runner talks to.
pub struct Ports<C, L, J, N> {
    /// ECS: task definitions, launches, the tasks' states.
    pub cluster: C,
    /// CloudWatch Logs: a stopped task's log tail.
    pub logs: L,
    pub jobs: J,
    /// Reports a job once, then notifies; also posts event outcomes, and claims both.
    pub answerer: Answerer<N>,
}

impl<C, L, J, N> Ports<C, L, J, N> {
    /// The same ports with another cluster (tests: one that panics, hangs, or looks too soon).
    pub fn with_cluster<C2>(self, cluster: C2) -> Ports<C2, L, J, N> {
        Ports {
            cluster,
            logs: self.logs,
            jobs: self.jobs,
            answerer: self.answerer,
        }
    }
}

pub struct Runner<C, L, J, N> {
    pub config: Loaded<Config>,
    pub ports: Ports<C, L, J, N>,
    pub region: String,
}

pub type App = Runner<Ecs, CloudWatchLogs, JobReporter, Notifier>;

/// The runner's ports from the environment.
pub fn ports<E: Environment + ?Sized>(
    env: &E,
    clients: &Clients,
) -> Ports<Ecs, CloudWatchLogs, JobReporter, Notifier> {
    Ports {
        cluster: Ecs::new(&clients.sdk),
        logs: CloudWatchLogs::new(&clients.sdk),
        jobs: JobReporter::new(&clients.sdk),
        answerer: Answerer::new(clients.notifier(env), clients.idempotency(FUNCTION, env)),
    }
}

/// A configuration error does not stop the function (each pipeline job is failed with the
/// reason), and the notifier is built from its own variables so that failure reaches a
/// person.
pub fn build<E: Environment + ?Sized>(env: &E, clients: &Clients) -> App {
    Runner::new(
        Config::from_env(env).map_err(|e| e.to_string()),
        ports(env, clients),
        clients.region(),
    )
}

/// An input the runner does not answer, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename = "ignored")]
pub struct Ignored {
    pub reason: String,
}

/// How an invocation ended, by input: written as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Job(JobReply<NoDetail>),
    Push(Handled<PushReply>),
    Direct(DirectReply),
    TaskStopped(Handled<StoppedReply>),
    Ignored(Ignored),
}

impl<C, L, J, N> Runner<C, L, J, N> {
    /// A bad configuration does not stop the function: a pipeline job that got no answer
    /// would wait for CodePipeline's timeout. Each job is failed with the reason instead.
    pub fn new(config: Loaded<Config>, ports: Ports<C, L, J, N>, region: String) -> Self {
        if let Err(why) = &config {
            tracing::error!(reason = %why, "configuration error: every pipeline job will be failed with it until it is fixed");
        }
        Self {
            config,
            ports,
            region,
        }
    }

    pub(crate) fn cluster_at<'a>(&'a self, config: Option<&'a Config>) -> ClusterLocation<'a> {
        ClusterLocation {
            region: &self.region,
            cluster: config.map(|c| c.cluster.as_str()).unwrap_or(""),
        }
    }

    /// Kept back from the work for reporting and notifying (`REPORT_MARGIN`).
    pub(crate) fn margin(&self) -> Duration {
        self.config
            .as_ref()
            .map(|c| c.report_margin)
            .unwrap_or(shared::budget::REPORT_MARGIN)
    }
}

impl<C, L, J, N> Function for Runner<C, L, J, N>
where
    C: Cluster + Sync,
    L: LogTail + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    async fn answer(&self, event: &Value, invocation: Invocation) -> Result<Value, Error> {
        let reply = self.reply(event, invocation).await?;
        serde_json::to_value(reply)
            .map_err(|e| Error::bad_input(format!("the reply could not be written: {e}")))
    }
}

impl<C, L, J, N> Runner<C, L, J, N>
where
    C: Cluster + Sync,
    L: LogTail + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    /// For tests: [`Function::answer`].
    pub async fn handle(&self, event: &Value, invocation: Invocation) -> Result<Value, Error> {
        self.answer(event, invocation).await
    }

    /// One input, answered by the file named for it.
    async fn reply(&self, event: &Value, invocation: Invocation) -> Result<Reply, Error> {
        if let Ok(config) = &self.config {
            metrics::context("Cluster", &config.cluster);
        }
        Ok(match parse(event) {
            // Boxed: each input's future is deep (an AWS SDK call alone is about a hundred
            // layout levels). Unboxed, `answer` takes about 112 of the compiler's 128 layout
            // query levels and the tests that wrap it about 118, so a little more depth would
            // overflow a clean (non-incremental) build; boxed, about 104.
            Ok(Input::Job(job)) => Reply::Job(
                Box::pin(shared::invocation::job::answer(
                    self,
                    &self.ports.jobs,
                    &self.ports.answerer,
                    job,
                    invocation,
                ))
                .await,
            ),
            Ok(Input::Push(push)) => Reply::Push(Box::pin(self.on_push(push, invocation)).await?),
            Ok(Input::Direct(direct)) => {
                Reply::Direct(Box::pin(self.on_direct(direct, invocation)).await?)
            }
            Ok(Input::TaskChange { task, .. }) => {
                Reply::TaskStopped(Box::pin(self.on_task_stopped(*task, invocation)).await?)
            }
            Err(why) => {
                tracing::warn!(reason = %why.0, "input ignored; nothing launched");
                Reply::Ignored(Ignored { reason: why.0 })
            }
        })
    }
}

impl<C, L, J, N: Notify + Sync> Runner<C, L, J, N> {
    /// An event reaching a runner that cannot act: said once per container. The reason, for
    /// the reply.
    pub(crate) async fn unconfigured(
        &self,
        why: &str,
        deadline: &Deadline,
    ) -> Result<String, Error> {
        metrics::count(&metrics::CONFIG_ERRORS, &[]);
        tracing::error!(reason = %why, "event not handled: configuration error");
        let n = render_problem(
            "Migration runner is not configured",
            &format!("Events are not being acted on until this is fixed: {why}"),
            None,
            &self.cluster_at(None),
        );
        self.ports
            .answerer
            .notify_once(CONFIG_ERROR_KEY, &n, deadline)
            .await?;
        Ok(format!("configuration error: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_input_not_answered_is_ignored_with_the_reason() {
        let reply = Reply::Ignored(Ignored {
            reason: "not a request".into(),
        });
        assert_eq!(
            serde_json::to_value(reply).unwrap(),
            json!({"outcome": "ignored", "reason": "not a request"})
        );
    }
}
