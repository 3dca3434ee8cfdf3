//! The composition root: the only place that reads the environment and builds clients.
//! `main.rs`, the tests and the demo all build the notifier here.

use shared::config::{ConfigError, Environment};
use shared::notifier::Notifier;
use shared::wiring::Wiring;

use crate::config::Config;
use crate::handler::Handler;
use crate::lookup::CodePipelineLookup;

pub type App = Handler<CodePipelineLookup, Notifier>;

pub fn build<E: Environment + ?Sized>(env: &E, wiring: &Wiring) -> Result<App, ConfigError> {
    let config = Config::from_env(env)?;
    let notifier = Notifier::new(
        config.notifier.clone(),
        &wiring.sdk,
        wiring.slack.clone(),
        wiring.secrets.clone(),
    );
    Ok(Handler::new(
        config,
        CodePipelineLookup::new(&wiring.sdk),
        notifier,
    ))
}
