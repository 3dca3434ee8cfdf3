//! Hand-written fakes for the validator's ports, and a validator built on them: quiet alarms,
//! a probe with one answer, a recording hook reporter and notifier. The deployment look-up is
//! each test file's own (CodeDeploy hooks look deployments up; ECS-native hooks never do).

use std::sync::Mutex;
use std::time::Duration;

use canary_validator::alarms::{AlarmState, Alarms};
use canary_validator::deployment::Deployments;
use canary_validator::probe::{Probe, ProbeRequest, ProbeResponse};
use canary_validator::{Config, Ports, Validator};
use serde_json::{Value, json};
use shared::hooks::{HookStatus, ReportHook};
use shared::jobs::Reported;
use shared::notifier::{ChannelOutcome, DeliveryReport, Notification, Notify};
use shared::report::Answerer;
use shared::{Deadline, Error};

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

/// A validator on fakes, deployments looked up through `D`.
pub type Test<D> = Validator<D, QuietAlarms, FixedProbe, Hooks, Notes>;

/// A validator whose checks are `checks`, whose probe answers `status`, whose hook reporter
/// answers "already reported" when `already`, with `extra` variables.
pub fn handler_with<D: Deployments>(
    checks: Value,
    deployments: D,
    status: u16,
    already: bool,
    extra: &[(&str, &str)],
) -> Test<D> {
    let env = standins::rig::env(
        [
            ("CHECKS", checks.to_string()),
            ("REPORT_MARGIN", "1s".into()),
        ],
        extra,
    );
    let config = Config::from_env(&env).map_err(|e| e.to_string());
    Validator::new(
        config,
        None,
        Ports {
            deployments,
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

/// The statuses reported, by hook execution id.
pub fn reports<D>(h: &Test<D>) -> Vec<(String, HookStatus)> {
    h.ports.hooks.reports.lock().unwrap().clone()
}
