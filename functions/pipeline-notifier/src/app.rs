//! The composition root: the only place that reads the environment and builds clients.
//! `main.rs`, the tests and the demo all build the notifier here.

use shared::config::Environment;
use shared::notifier::Notifier;
use shared::wiring::Wiring;

use crate::config::Config;
use crate::handler::Handler;
use crate::lookup::CodePipelineLookup;

pub type App = Handler<CodePipelineLookup, Notifier>;

/// A configuration error does not stop the function (it posts the error instead), and the
/// notifier is built from its own variables so that post can go out.
pub fn build<E: Environment + ?Sized>(env: &E, wiring: &Wiring) -> App {
    let setup = Config::from_env(env).map_err(|e| e.to_string());
    Handler::new(
        setup,
        CodePipelineLookup::new(&wiring.sdk),
        wiring.notifier(env),
        wiring.idempotency("pipeline-notifier", env),
    )
}
