//! The picture on this function's page (`pictures/failed.svg`) is its own message as rendered
//! now: the sample `AfterAllowTraffic` hook run through the validator, its health check
//! failing (a 503, then an answer over `max_latency`), the orders check passing and the alarm
//! bake stopped. `UPDATE_PICTURES=1` redraws it after a change.

use std::collections::HashMap;
use std::path::Path;
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
use standins::picture;

fn sample(name: &str) -> Value {
    standins::sample_event("canary-validator", name)
}

/// The deployment of the sample `GetDeployment` answer.
struct SampleDeployment;

impl Deployments for SampleDeployment {
    async fn lookup(&self, _: &str, _: &Deadline) -> Result<Lookup, Error> {
        let info = &sample("api/get-deployment.json")["deploymentInfo"];
        let s = |k: &str| info[k].as_str().unwrap_or_default().to_owned();
        Ok(Lookup::Found(Deployment {
            application: s("applicationName"),
            group: s("deploymentGroupName"),
            status: s("status"),
            creator: s("creator"),
            compute_platform: s("computePlatform"),
        }))
    }
}

struct QuietAlarms;

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

/// The new version's answers, in order, per URL: `(status, latency in ms, body)`.
struct Answers {
    script: HashMap<&'static str, Vec<(u16, u64, &'static str)>>,
    asked: Mutex<HashMap<String, usize>>,
}

impl Probe for Answers {
    async fn send(&self, request: ProbeRequest<'_>) -> ProbeResponse {
        let url = request.url.as_str().to_owned();
        let n = {
            let mut asked = self.asked.lock().unwrap();
            let n = asked.entry(url.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let (status, ms, body) = self.script[url.as_str()][n];
        ProbeResponse::Answered {
            status,
            latency: Duration::from_millis(ms),
            body: body.as_bytes().to_vec(),
            truncated: false,
            location: None,
        }
    }
}

struct Hooks;

impl ReportHook for Hooks {
    async fn report(
        &self,
        _: &str,
        _: &str,
        _: HookStatus,
        _: &Deadline,
    ) -> Result<Reported, Error> {
        Ok(Reported::Recorded)
    }
}

#[derive(Default)]
struct Posted(Mutex<Vec<Notification>>);

impl Notify for Posted {
    async fn notify(&self, n: &Notification, _: &Deadline) -> DeliveryReport {
        self.0.lock().unwrap().push(n.clone());
        DeliveryReport {
            slack: ChannelOutcome::Delivered,
            sns: ChannelOutcome::NotConfigured,
        }
    }
}

const HEALTH: &str = "https://test-listener.internal.example.com:8443/health";
const ORDERS: &str = "https://test-listener.internal.example.com:8443/api/orders?limit=1";

/// The sample's checks for the group, with intervals short enough for a test.
fn checks() -> Value {
    json!([
        {"type": "http", "name": "health", "url": HEALTH,
         "json_pointer": "/status", "json_equals": "UP", "max_latency": "800ms",
         "attempts": 5, "interval": "20ms", "min_success_ratio": 0.8},
        {"type": "http", "name": "orders API", "url": ORDERS,
         "expect_status": [200, 204], "body_contains": "\"orders\"", "attempts": 1},
        {"type": "alarms", "name": "no alarms", "alarms": ["prod-api-5xx", "prod-api-p99-latency"],
         "bake": "5m", "poll": "15s"}
    ])
}

#[tokio::test]
async fn the_pictures_are_the_messages_as_rendered_now() {
    let env = standins::rig::env(
        [
            ("CHECKS", checks().to_string()),
            ("HOOK", "AfterAllowTraffic".into()),
        ],
        &[],
    );
    let probe = Answers {
        script: HashMap::from([
            (
                HEALTH,
                vec![
                    (200, 38, r#"{"status":"UP"}"#),
                    (503, 12, r#"{"status":"DOWN"}"#),
                    (200, 41, r#"{"status":"UP"}"#),
                    (200, 1240, r#"{"status":"UP"}"#),
                ],
            ),
            (ORDERS, vec![(200, 64, r#"{"orders":[{"id":"o-1042"}]}"#)]),
        ]),
        asked: Mutex::default(),
    };
    let validator = Validator::new(
        Config::from_env(&env).map_err(|e| e.to_string()),
        None,
        Ports {
            deployments: SampleDeployment,
            alarms: QuietAlarms,
            probe,
            hooks: Hooks,
            answerer: Answerer::new(
                Posted::default(),
                shared::idempotency::Idempotency::in_memory("canary-validator"),
            ),
            secrets: None,
        },
        "us-east-1".into(),
    );
    let reply = validator
        .handle(
            &sample("after-allow-traffic.json"),
            standins::rig::budget(900),
        )
        .await
        .unwrap();
    assert_eq!(reply["status"], "Failed", "{reply}");
    let posted = validator
        .ports
        .answerer
        .notifier()
        .0
        .lock()
        .unwrap()
        .clone();
    assert_eq!(posted.len(), 1);
    let failed = posted[0].slack.to_payload();
    picture::assert_current(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pictures"),
        &[("failed.svg", picture::draw("canary-validator", &[failed]))],
        "cargo test -p canary-validator --test pictures",
    );
}
