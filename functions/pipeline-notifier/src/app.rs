//! The composition root: the only place that reads the environment and builds clients.
//! `main.rs`, the tests and the demo all build the notifier here.

use shared::config::Environment;
use shared::notifier::Notifier;
use shared::versioned::Documents;
use shared::wiring::Wiring;

use crate::config::Config;
use crate::handler::Handler;
use crate::live::{self, Live};
use crate::lookup::CodePipelineLookup;

pub type App = Handler<CodePipelineLookup, Notifier>;

/// A configuration error does not stop the function (it posts the error instead), and the
/// notifier is built from its own variables so that post can go out.
pub fn build<E: Environment + ?Sized>(env: &E, wiring: &Wiring) -> App {
    let setup = Config::from_env(env).map_err(|e| e.to_string());
    let live = setup.as_ref().ok().and_then(|c| live(c, env, wiring));
    Handler::new(
        setup,
        CodePipelineLookup::new(&wiring.sdk),
        wiring.notifier(env),
        wiring.idempotency(FUNCTION, env),
        live,
    )
}

const FUNCTION: &str = "pipeline-notifier";

/// Web API mode needs the bot token and the table the execution states live in; without
/// either, webhook mode, and the log says why.
fn live<E: Environment + ?Sized>(config: &Config, env: &E, wiring: &Wiring) -> Option<Live> {
    let web = config.web.as_ref()?;
    let Some(documents) = Documents::from_env(FUNCTION, env, &wiring.sdk, live::KEPT_FOR) else {
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
        wiring.slack.clone(),
        web.api.clone(),
        web.token.clone(),
        wiring.secrets.clone(),
        documents,
    ))
}
