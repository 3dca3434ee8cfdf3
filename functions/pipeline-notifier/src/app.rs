//! The composition root: the only place that reads the environment and builds clients, into
//! one [`Ports`] struct. `main.rs`, the tests and the demo all build the notifier here; a test
//! that swaps one port changes one field.

use serde_json::Value;
use shared::clients::Clients;
use shared::config::{Environment, Loaded};
use shared::invocation::once::{self, Handled, Key};
use shared::invocation::{Function, Invocation};
use shared::metrics;
use shared::notifier::{Notification, Notifier, Notify};
use shared::report::Answerer;
use shared::versioned::Documents;
use shared::{Deadline, Error};

use crate::config::Config;
use crate::ecs_event::{self, is_ecs};
use crate::ecs_lookup::DeploymentLookup;
use crate::event::parse;
use crate::live::{self, Live};
use crate::lookup::{AwsLookup, ExecutionLookup};
use crate::on_pipeline_event::{EventReply, count_event, slack_delivered};
use crate::recovery::{self, Subject};
use crate::render::render_configuration_error;

/// The function's name, as deployed: what its claims, documents and metrics are kept under.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// What the notifier talks to.
pub struct Ports<L, N> {
    /// `GetPipelineExecution` (the source revisions a pipeline message shows) and the ECS
    /// service deployment calls (the revisions and rollback an ECS message shows).
    pub lookup: L,
    /// Slack and SNS, the claims that post each event once across containers, and the
    /// configuration error told once per container.
    pub answerer: Answerer<N>,
    /// Web API mode's live messages; `None` in webhook mode.
    pub live: Option<Live>,
    /// Each pipeline's and service's recent outcomes, for the recovery message; `None`
    /// without `IDEMPOTENCY_TABLE`.
    pub outcomes: Option<Documents>,
}

pub struct PipelineNotifier<L, N> {
    pub config: Loaded<Config>,
    pub ports: Ports<L, N>,
}

pub type App = PipelineNotifier<AwsLookup, Notifier>;

/// The key under which a broken configuration is posted, once per container.
const CONFIG_ERROR_KEY: &str = "configuration-error";

/// A configuration error does not stop the function (it posts the error instead), and the
/// notifier is built from its own variables so that post can go out.
pub fn build<E: Environment + ?Sized>(env: &E, clients: &Clients) -> App {
    let config = Config::from_env(env).map_err(|e| e.to_string());
    let live = config.as_ref().ok().and_then(|c| live(c, env, clients));
    let outcomes = Documents::from_env(FUNCTION, env, &clients.sdk, recovery::KEPT_FOR);
    if outcomes.is_none()
        && config
            .as_ref()
            .is_ok_and(|c| c.notify_on.tells_recoveries())
    {
        tracing::warn!(
            "IDEMPOTENCY_TABLE is not set: recoveries (green again after a failure) cannot be told"
        );
    }
    let ports = Ports {
        lookup: AwsLookup::new(&clients.sdk),
        answerer: Answerer::new(clients.notifier(env), clients.idempotency(FUNCTION, env)),
        live,
        outcomes,
    };
    PipelineNotifier::new(config, ports)
}

/// Web API mode needs the bot token and the table the execution states live in; without
/// either, webhook mode, and the log says why.
fn live<E: Environment + ?Sized>(config: &Config, env: &E, clients: &Clients) -> Option<Live> {
    let web = config.web.as_ref()?;
    let Some(documents) = Documents::from_env(FUNCTION, env, &clients.sdk, live::KEPT_FOR) else {
        tracing::warn!(
            "SLACK_BOT_TOKEN is set but IDEMPOTENCY_TABLE is not: the live message needs the table, so webhook mode"
        );
        return None;
    };
    tracing::info!(token = %web.token.describe(), "Web API mode: one live message per execution");
    let delivered = &config.delivered_states;
    if !delivered.is_empty() && !delivered.iter().any(|s| s == "RESUMED") {
        tracing::warn!(
            "the EventBridge rule does not deliver RESUMED (PipelineEventStates): a retried stage shows as running only once its actions start again"
        );
    }
    Some(Live::new(
        clients.slack.clone(),
        web.api.clone(),
        web.token.clone(),
        clients.secrets.clone(),
        documents,
    ))
}

impl<L, N> PipelineNotifier<L, N> {
    /// A bad configuration does not stop the function: stopped at init, it would fail
    /// every event into the dead-letter queue and tell nobody why the channel went quiet.
    /// It starts, posts the error (once per container) through Slack/SNS, which are
    /// configured apart from everything else, and keeps each event for a redrive.
    pub fn new(config: Loaded<Config>, ports: Ports<L, N>) -> Self {
        if let Err(why) = &config {
            tracing::error!(reason = %why, "configuration error: no pipeline event will be posted until it is fixed");
        }
        Self { config, ports }
    }
}

impl<L, N> Function for PipelineNotifier<L, N>
where
    L: ExecutionLookup + DeploymentLookup + Sync,
    N: Notify + Sync,
{
    async fn answer(&self, event: &Value, invocation: Invocation) -> Result<Value, Error> {
        let outcome = self.handle(event, invocation.deadline).await?;
        serde_json::to_value(outcome)
            .map_err(|e| Error::bad_input(format!("the reply could not be written: {e}")))
    }
}

impl<L, N> PipelineNotifier<L, N>
where
    L: ExecutionLookup + DeploymentLookup + Sync,
    N: Notify + Sync,
{
    /// One event, as its typed outcome (tests and [`Function::answer`]). `deadline` is the
    /// invocation's: the time to return the outcome is kept back here.
    pub async fn handle(&self, event: &Value, deadline: Deadline) -> Result<EventReply, Error> {
        let deadline = deadline.less(shared::budget::ANSWER_RESERVE);
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                count_event("failed");
                return Err(self.misconfigured(why, &deadline).await);
            }
        };
        if is_ecs(event) {
            return match ecs_event::parse(event) {
                Ok(e) => Box::pin(self.on_ecs_event(config, &e, &deadline)).await,
                Err(why) => {
                    tracing::warn!(reason = %why.0, "event ignored");
                    count_event("ignored");
                    Ok(EventReply::Ignored { reason: why.0 })
                }
            };
        }
        match parse(event) {
            Ok(e) => Box::pin(self.on_pipeline_event(config, &e, &deadline)).await,
            Err(why) => {
                tracing::warn!(reason = %why.0, "event ignored");
                count_event("ignored");
                Ok(EventReply::Ignored { reason: why.0 })
            }
        }
    }

    /// Posts the configuration error unless this container already has, and returns the
    /// error the event fails with.
    async fn misconfigured(&self, why: &str, deadline: &Deadline) -> Error {
        let n = render_configuration_error(why);
        // A retry would post every event's copy of the same error: logged, not retried.
        if let Err(e) = self
            .ports
            .answerer
            .notify_once(CONFIG_ERROR_KEY, &n, deadline)
            .await
        {
            tracing::error!(error = %e, "could not post the configuration error");
        }
        // An error, not an acknowledgement: the event is kept (Lambda's retries, then the
        // dead-letter queue) for a redrive once the configuration is fixed, and the
        // function's Errors alarm fires too.
        Error::AwaitingConfiguration(why.to_owned())
    }
}

impl<L, N> PipelineNotifier<L, N>
where
    L: Sync,
    N: Notify + Sync,
{
    /// A message of its own about `subject` (an ECS service's trouble, a recovery), told once
    /// under `key`: in Web API mode into the subject's channel and to SNS, each claimed apart
    /// so a retry for one does not repeat the other; else to its webhook and SNS as one
    /// notification. `Ok(false)`: told before.
    pub(crate) async fn tell_once(
        &self,
        config: &Config,
        subject: Subject<'_>,
        key: Key<'_>,
        n: Notification,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        if let (Some(live), Some(channel)) = (&self.ports.live, config.channel_for(subject)) {
            let message = &n.slack;
            let (slack, sns) = self
                .live_and_sns(
                    key,
                    Some(&n),
                    |by| async move {
                        slack_delivered(live.post_standalone(channel, message, &by).await)
                    },
                    deadline,
                )
                .await?;
            return Ok(slack.is_some() || sns.is_some());
        }
        let handled = once::handle(
            self.ports.answerer.idempotency(),
            Some(key),
            deadline,
            |by| async move { self.notify_routed(config, subject, n, &by).await },
        )
        .await?;
        Ok(matches!(handled, Handled::Done(())))
    }

    /// Webhook mode: `n` to `subject`'s webhook (its route's, or `SLACK_WEBHOOK_URL`) and SNS.
    pub(crate) async fn notify_routed(
        &self,
        config: &Config,
        subject: Subject<'_>,
        n: Notification,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let routed = n.routed_to(config.webhook_for(subject).cloned());
        self.ports
            .answerer
            .notifier()
            .notify(&routed, deadline)
            .await
            .into_result()
    }
}
