//! Hand-written fakes for the validator's ports, and a validator built on them: the deployment
//! look-up, quiet alarms, a probe with one answer, a recording hook reporter and notifier.

use std::sync::Mutex;
use std::time::Duration;

use canary_validator::alarms::{AlarmState, Alarms};
use canary_validator::deployment::{Deployment, Deployments, Lookup};
use canary_validator::probe::{Probe, ProbeRequest, ProbeResponse};
use canary_validator::{Config, Ports, Validator};
use serde_json::{Value, json};
use shared::hooks::{HookStatus, ReportHook};
use shared::jobs::Reported;
use shared::notifier::{ChannelOutcome, DeliveryReport, Notification, Notify};
use shared::report::Answerer;
use shared::{Deadline, Error};

pub enum Found {
    Group(&'static str),
    Unknown,
    Unreachable,
}

pub struct FakeDeployments(pub Found);

impl Deployments for FakeDeployments {
    async fn lookup(&self, _: &str, _: &Deadline) -> Result<Lookup, Error> {
        match self.0 {
            Found::Group(g) => Ok(Lookup::Found(Deployment {
                application: "prod-api".into(),
                group: g.into(),
                ..Deployment::default()
            })),
            Found::Unknown => Ok(Lookup::Unknown("DeploymentDoesNotExistException".into())),
            Found::Unreachable => Err(Error::OutOfTime("looking up the deployment")),
        }
    }
}

pub struct QuietAlarms;

impl Alarms for QuietAlarms {
    async fn states(&self, names: &[String], _: &Deadline) -> Result<Vec<AlarmState>, Error> {
        Ok(names
            .iter()
            .map(|n| AlarmState {
                name: n.clone(),
                state: "OK".into(),
                reason: String::new(),
            })
            .collect())
    }
}

/// Answers every request with `status`, or panics when it is 0.
pub struct FixedProbe(pub u16);

impl Probe for FixedProbe {
    async fn send(&self, _: ProbeRequest<'_>) -> ProbeResponse {
        assert!(self.0 != 0, "probe exploded");
        ProbeResponse::Answered {
            status: self.0,
            latency: Duration::from_millis(5),
            body: Vec::new(),
            truncated: false,
            location: None,
        }
    }
}

#[derive(Default)]
pub struct Hooks {
    pub reports: Mutex<Vec<(String, HookStatus)>>,
    pub already: bool,
}

impl ReportHook for Hooks {
    async fn report(
        &self,
        _: &str,
        hook_execution_id: &str,
        status: HookStatus,
        _: &Deadline,
    ) -> Result<Reported, Error> {
        self.reports
            .lock()
            .unwrap()
            .push((hook_execution_id.into(), status));
        Ok(if self.already {
            Reported::AlreadyReported
        } else {
            Reported::Recorded
        })
    }
}

#[derive(Default)]
pub struct Notes(pub Mutex<Vec<Notification>>);

impl Notify for Notes {
    async fn notify(&self, n: &Notification, _: &Deadline) -> DeliveryReport {
        self.0.lock().unwrap().push(n.clone());
        DeliveryReport {
            slack: ChannelOutcome::Delivered,
            sns: ChannelOutcome::NotConfigured,
        }
    }
}

pub type Test = Validator<FakeDeployments, QuietAlarms, FixedProbe, Hooks, Notes>;

/// A validator for the `AfterAllowTraffic` hook.
pub fn handler(checks: Value, found: Found, status: u16, already: bool) -> Test {
    handler_with(
        checks,
        found,
        status,
        already,
        &[("HOOK", "AfterAllowTraffic")],
    )
}

pub fn handler_with(
    checks: Value,
    found: Found,
    status: u16,
    already: bool,
    extra: &[(&str, &str)],
) -> Test {
    let checks = checks.to_string();
    let mut env: std::collections::HashMap<String, String> = [
        ("CHECKS".to_owned(), checks),
        ("REPORT_MARGIN".to_owned(), "1s".to_owned()),
    ]
    .into();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::from_env(&env).map_err(|e| e.to_string());
    Validator::new(
        config,
        None,
        Ports {
            deployments: FakeDeployments(found),
            alarms: QuietAlarms,
            probe: FixedProbe(status),
            hooks: Hooks {
                already,
                ..Hooks::default()
            },
            answerer: Answerer::new(
                Notes::default(),
                shared::idempotency::Idempotency::in_memory("canary-validator"),
            ),
            secrets: None,
        },
        "us-east-1".into(),
    )
}

pub fn http() -> Value {
    json!({"type": "http", "url": "https://test.internal/health", "attempts": 1})
}

pub fn budget() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

/// The statuses reported, by hook execution id.
pub fn reports(h: &Test) -> Vec<(String, HookStatus)> {
    h.ports.hooks.reports.lock().unwrap().clone()
}

/// What was posted.
pub fn notes(h: &Test) -> Vec<Notification> {
    h.ports.answerer.notifier().0.lock().unwrap().clone()
}
