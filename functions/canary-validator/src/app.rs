//! The composition root: the only place that reads the environment and builds clients.
//! `main.rs`, the tests and the demo all build the validator here.

use shared::config::{Environment, Vars};
use shared::hooks::HookReporter;
use shared::notifier::Notifier;
use shared::report::Answerer;
use shared::wiring::Wiring;

use crate::alarms::CloudWatchAlarms;
use crate::config::{Config, Hook};
use crate::deployment::CodeDeployDeployments;
use crate::handler::{Handler, Ports};
use crate::http::HttpProbe;

pub type App = Handler<CodeDeployDeployments, CloudWatchAlarms, HttpProbe, HookReporter, Notifier>;

/// A configuration error does not stop the function: CodeDeploy would wait an hour for a
/// hook that never reports. Each invocation reports Failed with the reason instead, and the
/// notifier is built from its own variables so that failure reaches a person.
pub fn build<E: Environment + ?Sized>(env: &E, wiring: &Wiring) -> Result<App, shared::Error> {
    let setup = Config::from_env(env).map_err(|e| e.to_string());
    let lists = [crate::config::VARIABLES];
    let hook = Vars::declared(env, &lists)
        .optional("HOOK")
        .ok()
        .flatten()
        .as_deref()
        .and_then(Hook::parse);
    let probe = HttpProbe::new().map_err(shared::Error::bad_input)?;
    Ok(Handler::new(
        setup,
        hook,
        Ports {
            deployments: CodeDeployDeployments::new(&wiring.sdk),
            alarms: CloudWatchAlarms::new(&wiring.sdk),
            probe,
            hooks: HookReporter::new(&wiring.sdk),
            answerer: Answerer::new(
                wiring.notifier(env),
                wiring.idempotency("canary-validator", env),
            ),
            secrets: Some(wiring.secrets.clone()),
        },
        wiring.region(),
    ))
}
