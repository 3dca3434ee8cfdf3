//! The composition root: the only place that reads the environment and builds clients.
//! `main.rs`, the tests and the demo all build the runner here.

use shared::config::Environment;
use shared::jobs::JobReporter;
use shared::notifier::Notifier;
use shared::wiring::Wiring;

use crate::config::Config;
use crate::ecs::{CloudWatchLogs, Ecs};
use crate::handler::Handler;

pub type App = Handler<Ecs, CloudWatchLogs, JobReporter, Notifier>;

/// A configuration error does not stop the function (each pipeline job is failed with the
/// reason), and the notifier is built from its own variables so that failure reaches a
/// person.
pub fn build<E: Environment + ?Sized>(env: &E, wiring: &Wiring) -> App {
    Handler::new(
        Config::from_env(env).map_err(|e| e.to_string()),
        Ecs::new(&wiring.sdk),
        CloudWatchLogs::new(&wiring.sdk),
        JobReporter::new(&wiring.sdk),
        wiring.notifier(env),
        wiring.region(),
        wiring.idempotency("migration-runner", env),
    )
}
