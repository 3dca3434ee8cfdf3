//! The composition root: the only place that reads the environment and builds clients, into
//! one [`Ports`] struct. `main.rs`, the tests and the demo all build the gate here; a test
//! that swaps one port changes one field.

use std::sync::Arc;

use serde_json::Value;
use shared::clients::Clients;
use shared::config::{Environment, Loaded};
use shared::invocation::{Function, Invocation};
use shared::jobs::{JobReporter, ReportJob};
use shared::notifier::{Notifier, Notify};
use shared::report::Answerer;
use shared::secrets::Secrets;
use shared::versioned::Documents;
use shared::{Deadline, Error};

use crate::config::{Config, NotifyOn, parse_waivers};
use crate::event::{Input, parse};
use crate::floor::{self, Floors};
use crate::policy::Policy;
use crate::policy::parse_policy_once;
use crate::registry::{Ecr, Promotion, Registry};
use crate::verdict::Verdict;

/// The function's name, as deployed: what its claims, documents and metrics are kept under.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// What the gate talks to.
pub struct Ports<R, J, N> {
    pub registry: R,
    pub jobs: J,
    /// Reports a job once, then notifies; also posts scan-event verdicts, and claims both.
    pub answerer: Answerer<N>,
    /// Reads `WAIVERS` when it is a reference.
    pub secrets: Option<Arc<Secrets>>,
    /// What scan events said, for every later look at the same images.
    pub floors: Floors,
}

impl<R, J, N> Ports<R, J, N> {
    /// The same ports with another registry (tests: one that panics or hangs).
    pub fn with_registry<R2>(self, registry: R2) -> Ports<R2, J, N> {
        Ports {
            registry,
            jobs: self.jobs,
            answerer: self.answerer,
            secrets: self.secrets,
            floors: self.floors,
        }
    }
}

pub struct Gate<R, J, N> {
    pub config: Loaded<Config>,
    pub ports: Ports<R, J, N>,
    pub region: String,
}

pub type App = Gate<Ecr, JobReporter, Notifier>;

/// The gate's ports from the environment.
pub fn ports<E: Environment + ?Sized>(
    env: &E,
    clients: &Clients,
) -> Ports<Ecr, JobReporter, Notifier> {
    Ports {
        registry: Ecr::new(&clients.sdk),
        jobs: JobReporter::new(&clients.sdk),
        answerer: Answerer::new(clients.notifier(env), clients.idempotency(FUNCTION, env)),
        secrets: Some(clients.secrets.clone()),
        floors: Floors::new(Documents::from_env(
            FUNCTION,
            env,
            &clients.sdk,
            floor::REMEMBERED_FOR,
        )),
    }
}

/// A configuration error does not stop the function (each pipeline job is failed with the
/// reason), and the notifier is built from its own variables so that failure reaches a
/// person.
pub fn build<E: Environment + ?Sized>(env: &E, clients: &Clients) -> App {
    Gate::new(
        Config::from_env(env).map_err(|e| e.to_string()),
        ports(env, clients),
        clients.region(),
    )
}

impl<R, J, N> Gate<R, J, N> {
    /// A bad configuration does not stop the function: a pipeline job that got no answer
    /// would wait for CodePipeline's timeout. Each job is failed with the reason instead.
    pub fn new(config: Loaded<Config>, ports: Ports<R, J, N>, region: String) -> Self {
        if let Err(why) = &config {
            tracing::error!(reason = %why, "configuration error: every pipeline job will be failed with it until it is fixed");
        }
        Self {
            config,
            ports,
            region,
        }
    }
}

impl<R, J, N> Function for Gate<R, J, N>
where
    R: Registry + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    async fn answer(&self, event: &Value, invocation: Invocation) -> Result<Value, Error> {
        let reply = match parse(event) {
            // Boxed: the futures are deep, and unboxed they overflow the compiler's layout
            // query depth once the runtime wraps them.
            Ok(Input::Job(job)) => {
                let reply = Box::pin(shared::invocation::job::answer(
                    self,
                    &self.ports.jobs,
                    &self.ports.answerer,
                    job,
                    invocation,
                ))
                .await;
                serde_json::to_value(reply)
            }
            Ok(Input::Scan(scan)) => {
                serde_json::to_value(Box::pin(self.on_scan(scan, invocation)).await?)
            }
            Err(why) => {
                tracing::warn!(reason = %why.0, "input ignored");
                serde_json::to_value(crate::on_scan::ScanReply::Ignored { reason: why.0 })
            }
        };
        reply.map_err(|e| Error::bad_input(format!("the reply could not be written: {e}")))
    }
}

impl<R, J, N> Gate<R, J, N>
where
    R: Registry + Sync,
    J: ReportJob + Sync,
    N: Notify + Sync,
{
    /// For tests and the demo: one event at `now` (seconds since the epoch).
    pub async fn handle(
        &self,
        event: &Value,
        deadline: Deadline,
        now: i64,
    ) -> Result<Value, Error> {
        self.answer(
            event,
            Invocation {
                request_id: String::new(),
                deadline,
                now,
            },
        )
        .await
    }

    pub(crate) async fn policy(
        &self,
        config: &Config,
        deadline: &Deadline,
    ) -> Result<Policy, Error> {
        let waivers = config
            .waivers
            .load(self.ports.secrets.as_deref(), deadline, parse_waivers)
            .await
            .map_err(|e| e.into_error("waivers"))?
            .into_owned();
        // Read for each judgement: a stored policy's text is kept for CONFIG_TTL and parsed
        // when it changes; one that cannot be read fails the judgement closed with the
        // reason, as waivers do.
        let rules = match &config.policy {
            None => None,
            Some(policy) => Some(
                policy
                    .load(self.ports.secrets.as_deref(), deadline, parse_policy_once)
                    .await
                    .map_err(|e| e.into_error("the policy (POLICY)"))?
                    .into_owned(),
            ),
        };
        Ok(Policy {
            max: config.max.clone(),
            ignore_unfixed: config.ignore_unfixed,
            waivers,
            rules,
        })
    }

    /// `PASS_TAG` on what passed; a failure to tag is told as what it is, and the verdict
    /// stands.
    pub(crate) async fn promote(
        &self,
        config: &Config,
        verdict: &Verdict,
        deadline: &Deadline,
    ) -> Option<(String, Promotion)> {
        let (Verdict::Pass { image, .. }, Some(tag)) = (verdict, &config.pass_tag) else {
            return None;
        };
        match self
            .ports
            .registry
            .promote(&image.repository, &image.digest, tag, deadline)
            .await
        {
            Ok(p) => {
                if let Promotion::TagTaken(why) = &p {
                    tracing::warn!(tag, reason = %why, "could not add the pass tag");
                }
                Some((tag.clone(), p))
            }
            Err(e) => {
                tracing::error!(tag, error = %e, "tagging the passed image failed");
                Some((tag.clone(), Promotion::from_error(&e)))
            }
        }
    }
}

/// Whether a verdict is posted (`NOTIFY_ON`): a FAIL always, a PASS with `ALL`, and a PASS
/// with warnings always (a rule in warn mode is being rolled out: its reports are the point).
pub(crate) fn wants(config: &Config, verdict: &Verdict) -> bool {
    match verdict {
        Verdict::Fail { .. } => true,
        Verdict::Pass { evaluation, .. } if !evaluation.warnings.is_empty() => true,
        Verdict::Pass { .. } => config.notify_on == NotifyOn::All,
        Verdict::Pending { .. } => false,
    }
}
