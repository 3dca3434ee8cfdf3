//! CodeDeploy lifecycle hooks answered through fakes of every port: one status reported, in
//! time, whatever the checks, the configuration or the deployment look-up come to.

mod fakes;

use std::time::{Duration, Instant};

use canary_validator::deployment::{Deployment, Deployments, Lookup};
use fakes::{Test, handler_with, http, reports};
use serde_json::{Value, json};
use shared::hooks::HookStatus;
use shared::{Deadline, Error};
use standins::rig::budget;

/// What CodeDeploy says of the hook's deployment.
enum Found {
    Group(&'static str),
    Unknown,
    Unreachable,
}

impl Deployments for Found {
    async fn lookup(&self, _: &str, _: &Deadline) -> Result<Lookup, Error> {
        match self {
            Found::Group(g) => Ok(Lookup::Found(Deployment {
                application: "prod-api".into(),
                group: (*g).into(),
                ..Deployment::default()
            })),
            Found::Unknown => Ok(Lookup::Unknown("DeploymentDoesNotExistException".into())),
            Found::Unreachable => Err(Error::OutOfTime("looking up the deployment")),
        }
    }
}

/// A validator for the `AfterAllowTraffic` hook.
fn handler(checks: Value, found: Found, status: u16, already: bool) -> Test<Found> {
    handler_with(
        checks,
        found,
        status,
        already,
        &[("HOOK", "AfterAllowTraffic")],
    )
}

fn event() -> Value {
    json!({"DeploymentId": "d-TEST12345", "LifecycleEventHookExecutionId": "hook-1"})
}

#[tokio::test]
async fn passing_checks_report_succeeded_once_and_stay_quiet() {
    let h = handler(json!([http()]), Found::Group("prod-api-dg"), 200, false);
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["status"], "Succeeded");
    assert_eq!(reports(&h), vec![("hook-1".into(), HookStatus::Succeeded)]);
    assert!(
        h.ports.answerer.notifier().0.lock().unwrap().is_empty(),
        "NOTIFY_ON defaults to FAIL"
    );
}

#[tokio::test]
async fn a_panicking_check_still_reports_failed() {
    let h = handler(json!([http()]), Found::Group("g"), 0, false);
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["status"], "Failed");
    assert_eq!(
        out["checks"][0]["reasons"][0],
        "the check panicked; see the function's log"
    );
    assert_eq!(reports(&h).len(), 1);
}

#[tokio::test]
async fn a_broken_configuration_reports_failed_with_the_reason() {
    let h = handler(json!([]), Found::Group("g"), 200, false);
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["status"], "Failed");
    assert!(out["problem"].as_str().unwrap().contains("CHECKS"), "{out}");
    let notes = h.ports.answerer.notifier().0.lock().unwrap();
    assert!(notes[0].body().contains("configuration error"));
}

#[tokio::test]
async fn an_unknown_deployment_is_failed_with_the_reason() {
    let h = handler(json!([http()]), Found::Unknown, 200, false);
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["status"], "Failed");
    assert!(
        out["problem"]
            .as_str()
            .unwrap()
            .starts_with("unknown deployment d-TEST12345")
    );
}

#[tokio::test]
async fn without_the_deployment_group_only_a_default_only_book_is_used() {
    let default_only = handler(json!([http()]), Found::Unreachable, 200, false);
    let out = default_only.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["status"], "Succeeded");
    let grouped = handler(
        json!({"deployment_groups": {"prod-api-dg": [http()]}, "default": [http()]}),
        Found::Unreachable,
        200,
        false,
    );
    let out = grouped.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["status"], "Failed");
    assert!(
        out["problem"]
            .as_str()
            .unwrap()
            .contains("cannot be chosen")
    );
}

#[tokio::test]
async fn the_first_failure_stops_a_running_bake() {
    let h = handler(
        json!([{"type": "alarms", "alarms": ["api-5xx"], "bake": "6s", "poll": "1s"}, http()]),
        Found::Group("g"),
        500,
        false,
    );
    let started = Instant::now();
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(out["status"], "Failed");
    assert_eq!(out["checks"][0]["result"], "cancelled");
    assert_eq!(out["checks"][1]["result"], "failed");
}

/// CodeDeploy's "already completed" also answers a retry whose own first report landed
/// but whose response was lost: nobody may have been told, so the failure is posted —
/// once: a redelivery of the same hook execution finds it claimed and done.
#[tokio::test]
async fn an_already_completed_failed_hook_is_notified_once_and_a_redelivery_does_nothing() {
    let h = handler(json!([http()]), Found::Group("g"), 500, true);
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["reported"], "AlreadyReported");
    assert_eq!(out["notified"], true);
    let again = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(h.ports.answerer.notifier().0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_timeout_shorter_than_the_report_margin_fails_with_advice() {
    let h = handler(json!([http()]), Found::Group("g"), 200, false);
    let out = h
        .handle(&event(), Deadline::after(Duration::from_millis(1500)))
        .await
        .unwrap();
    assert_eq!(out["status"], "Failed");
    assert!(
        out["problem"]
            .as_str()
            .unwrap()
            .contains("raise the timeout"),
        "{out}"
    );
    assert_eq!(reports(&h).len(), 1);
}

#[tokio::test]
async fn input_without_both_ids_is_ignored_without_a_report() {
    let h = handler(json!([http()]), Found::Group("g"), 200, false);
    let out = h
        .handle(&json!({"DeploymentId": "d-1"}), budget(10))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "ignored");
    assert!(reports(&h).is_empty());
}

#[tokio::test]
async fn a_codedeploy_hook_without_hook_set_reports_failed() {
    let h = handler_with(json!([http()]), Found::Group("g"), 200, false, &[]);
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(out["status"], "Failed");
    assert!(out["problem"].as_str().unwrap().contains("HOOK is not set"));
    assert_eq!(reports(&h).len(), 1);
}

/// The reply's fields, typed now, are the ones a CodeDeploy hook invocation has always
/// returned: nothing added, nothing lost.
#[tokio::test]
async fn the_reply_names_the_hook_the_verdict_and_each_check() {
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let h = handler(json!([http()]), Found::Group("g"), 200, false);
    let out = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(
        keys(&out),
        [
            "checks",
            "deploymentId",
            "hook",
            "notified",
            "outcome",
            "problem",
            "reported",
            "status"
        ]
    );
    assert_eq!(out["outcome"], "reported");
    assert_eq!(out["hook"], "AfterAllowTraffic");
    assert_eq!(out["problem"], Value::Null);
    assert_eq!(
        keys(&out["checks"][0]),
        ["evidence", "name", "reasons", "result", "type"]
    );
    assert_eq!(out["checks"][0]["result"], "passed");
    let again = h.handle(&event(), budget(10)).await.unwrap();
    assert_eq!(
        again,
        json!({"outcome": "duplicate", "deploymentId": "d-TEST12345"})
    );
    let ignored = h.handle(&json!({}), budget(10)).await.unwrap();
    assert_eq!(
        ignored,
        json!({"outcome": "ignored", "reason": "DeploymentId is missing"})
    );
}
