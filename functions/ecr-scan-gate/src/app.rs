//! The composition root: the only place that reads the environment and builds clients.
//! `main.rs`, the tests and the demo all build the gate here.

use shared::config::Environment;
use shared::jobs::JobReporter;
use shared::notifier::Notifier;
use shared::wiring::Wiring;

use shared::versioned::Documents;

use crate::config::Config;
use crate::floor::{self, Floors};
use crate::handler::Handler;
use crate::registry::Ecr;

pub type App = Handler<Ecr, JobReporter, Notifier>;

/// A configuration error does not stop the function (each pipeline job is failed with the
/// reason), and the notifier is built from its own variables so that failure reaches a
/// person.
pub fn build<E: Environment + ?Sized>(env: &E, wiring: &Wiring) -> App {
    Handler::new(
        Config::from_env(env).map_err(|e| e.to_string()),
        Ecr::new(&wiring.sdk),
        JobReporter::new(&wiring.sdk),
        wiring.notifier(env),
        Some(wiring.secrets.clone()),
        wiring.region(),
        wiring.idempotency("ecr-scan-gate", env),
    )
    .with_floors(Floors::new(Documents::from_env(
        "ecr-scan-gate",
        env,
        &wiring.sdk,
        floor::REMEMBERED_FOR,
    )))
}
