//! The composition root: the only place that reads the environment and builds clients, into
//! one [`Ports`] struct. `main.rs`, the tests, the demo and the bench build it here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::Error;
use shared::clients::Clients;
use shared::config::{Environment, Loaded};
use shared::idempotency::Idempotency;
use shared::invocation::{Function, Invocation};
use shared::secrets::Secrets;
use shared::slack::SlackClient;

use crate::config::Config;
use crate::pipelines::{CodePipeline, Pipelines};

/// The function's name, as deployed: what its claims and metrics are kept under.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// How long a user group's members are used before Slack is asked again: a person removed
/// from the group stops approving within this time.
pub const GROUP_MEMBERS_TTL: Duration = Duration::from_secs(300);

/// A user group's members as last read, and when.
#[derive(Default)]
pub struct GroupMembers {
    known: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

impl GroupMembers {
    pub fn get(&self, group: &str) -> Option<Vec<String>> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(group)
            .filter(|(at, _)| at.elapsed() < GROUP_MEMBERS_TTL)
            .map(|(_, members)| members.clone())
    }

    pub fn keep(&self, group: &str, members: Vec<String>) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        // A bound on what one container keeps, whatever APPROVERS names.
        if known.len() > 100 {
            known.clear();
        }
        known.insert(group.to_owned(), (Instant::now(), members));
    }
}

/// What the approvals function talks to.
pub struct Ports<P> {
    /// CodePipeline: the approval's token, and the answer.
    pub pipelines: P,
    /// Slack: `response_url` answers and user-group members.
    pub slack: SlackClient,
    /// The signing secret, the approvers document and the bot token, each kept for `CONFIG_TTL`.
    pub secrets: Arc<Secrets>,
    /// One answer per approval however many clicks and replays: claimed in the idempotency table.
    pub claims: Idempotency,
    pub groups: GroupMembers,
}

pub struct PipelineApprovals<P> {
    pub config: Loaded<Config>,
    pub ports: Ports<P>,
}

pub type App = PipelineApprovals<CodePipeline>;

pub fn build<E: Environment + ?Sized>(env: &E, clients: &Clients) -> App {
    let config = Config::from_env(env).map_err(|e| e.to_string());
    if let Err(why) = &config {
        tracing::error!(reason = %why, "configuration error: every click is refused until it is fixed");
    }
    PipelineApprovals {
        config,
        ports: Ports {
            pipelines: CodePipeline::new(&clients.sdk),
            slack: clients.slack.clone(),
            secrets: clients.secrets.clone(),
            claims: clients.idempotency(FUNCTION, env),
            groups: GroupMembers::default(),
        },
    }
}

impl<P: Pipelines + Sync> Function for PipelineApprovals<P> {
    async fn answer(&self, event: &Value, invocation: Invocation) -> Result<Value, Error> {
        // Always an HTTP response: an error would reach Slack as a 502 and say nothing.
        Ok(self
            .handle(event, &invocation.deadline, invocation.now)
            .await
            .to_value())
    }
}
