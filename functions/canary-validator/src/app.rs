//! The composition root: the only place that reads the environment and builds clients, into
//! one [`Ports`] struct; and the dispatch of each input to the file that answers it.
//! `main.rs`, the tests and the demo all build the validator here.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use shared::clients::Clients;
use shared::config::{Environment, Loaded, Vars};
use shared::hooks::{HookReporter, ReportHook};
use shared::invocation::{Function, Invocation, ecs_hook, hook};
use shared::notifier::{Notifier, Notify};
use shared::report::Answerer;
use shared::secrets::Secrets;
use shared::{Deadline, Error};

use crate::alarms::{Alarms, CloudWatchAlarms};
use crate::config::{CodeDeployHook, Config};
use crate::deployment::{CodeDeployDeployments, Deployments};
use crate::event::{Input, parse};
use crate::probe::{HttpProbe, Probe};

/// The function's name, as deployed: what its claims, documents and metrics are kept under.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// What the validator talks to.
pub struct Ports<D, A, P, R, N> {
    pub deployments: D,
    pub alarms: A,
    pub probe: P,
    pub hooks: R,
    /// Reports once, then notifies; one per container.
    pub answerer: Answerer<N>,
    /// Reads `CHECKS` and header values given as references.
    pub secrets: Option<Arc<Secrets>>,
}

pub struct Validator<D, A, P, R, N> {
    pub config: Loaded<Config>,
    /// The CodeDeploy hook served, known even when the rest of the configuration is not.
    pub hook: Option<CodeDeployHook>,
    pub ports: Ports<D, A, P, R, N>,
    pub region: String,
}

pub type App =
    Validator<CodeDeployDeployments, CloudWatchAlarms, HttpProbe, HookReporter, Notifier>;

/// A configuration error does not stop the function: CodeDeploy would wait an hour for a
/// hook that never reports. Each invocation reports Failed with the reason instead, and the
/// notifier is built from its own variables so that failure reaches a person.
pub fn build<E: Environment + ?Sized>(env: &E, clients: &Clients) -> Result<App, Error> {
    let config = Config::from_env(env).map_err(|e| e.to_string());
    let lists = [crate::config::VARIABLES];
    let hook = Vars::declared(env, &lists)
        .optional("HOOK")
        .ok()
        .flatten()
        .as_deref()
        .and_then(CodeDeployHook::parse);
    let probe = HttpProbe::new().map_err(Error::bad_input)?;
    Ok(Validator::new(
        config,
        hook,
        Ports {
            deployments: CodeDeployDeployments::new(&clients.sdk),
            alarms: CloudWatchAlarms::new(&clients.sdk),
            probe,
            hooks: HookReporter::new(&clients.sdk),
            answerer: Answerer::new(clients.notifier(env), clients.idempotency(FUNCTION, env)),
            secrets: Some(clients.secrets.clone()),
        },
        clients.region(),
    ))
}

impl<D, A, P, R, N> Validator<D, A, P, R, N> {
    /// `hook` is known even when the rest of the configuration is not, so a broken
    /// configuration's report still says which hook failed.
    pub fn new(
        config: Loaded<Config>,
        hook: Option<CodeDeployHook>,
        ports: Ports<D, A, P, R, N>,
        region: String,
    ) -> Self {
        if let Err(why) = &config {
            tracing::error!(reason = %why, "configuration error: every invocation will report Failed until it is fixed");
        }
        Self {
            hook: config.as_ref().ok().and_then(|c| c.hook).or(hook),
            config,
            ports,
            region,
        }
    }
}

/// The reply to input that is neither hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum NotAHook {
    Ignored { reason: String },
}

impl<D, A, P, R, N> Function for Validator<D, A, P, R, N>
where
    D: Deployments + Sync,
    A: Alarms + Sync,
    P: Probe + Sync,
    R: ReportHook + Sync,
    N: Notify + Sync,
{
    async fn answer(&self, event: &Value, invocation: Invocation) -> Result<Value, Error> {
        let answerer = &self.ports.answerer;
        // Boxed: each flow's future holds the checks, the report and the posts, too large
        // for the caller's stack (a test thread's overflows).
        let reply = match parse(event) {
            Ok(Input::Ecs(request)) => serde_json::to_value(
                Box::pin(ecs_hook::answer(self, answerer, request, invocation)).await,
            ),
            Ok(Input::CodeDeploy(ids)) => {
                let hooks = &self.ports.hooks;
                let flow = hook::answer(self, hooks, answerer, ids, invocation);
                serde_json::to_value(Box::pin(flow).await?)
            }
            Err(why) => {
                tracing::warn!(reason = %why, "input ignored: not a CodeDeploy lifecycle hook invocation");
                serde_json::to_value(NotAHook::Ignored { reason: why.0 })
            }
        };
        reply.map_err(|e| Error::bad_input(format!("the reply could not be written: {e}")))
    }
}

impl<D, A, P, R, N> Validator<D, A, P, R, N>
where
    D: Deployments + Sync,
    A: Alarms + Sync,
    P: Probe + Sync,
    R: ReportHook + Sync,
    N: Notify + Sync,
{
    /// For tests: one event, started now.
    pub async fn handle(&self, event: &Value, deadline: Deadline) -> Result<Value, Error> {
        let invocation = Invocation {
            request_id: String::new(),
            deadline,
            now: shared::budget::now_secs(),
        };
        self.answer(event, invocation).await
    }
}
