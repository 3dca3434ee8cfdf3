//! End to end: the validator's binary run as Lambda runs it, through the Runtime API, with
//! CodeDeploy on the recording stub, alarms and SSM in moto, a local target and the Slack
//! sink. `CANARY_VALIDATOR_BIN` points it at another build (the release bootstrap).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{deployment, hook_event, known_deployments, sample};
use serde_json::json;
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, RuntimeApi, SlackSink, Target};

fn binary() -> PathBuf {
    std::env::var_os("CANARY_VALIDATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_canary-validator")))
}

const TOKEN: &str = "Bearer e2e-t0ken-NOT-FOR-LOGS";

#[tokio::test]
async fn the_binary_reports_every_hook_once_and_in_time() {
    let moto = Moto::start();
    let stub = RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    known_deployments(&stub);
    stub.fixture(
        "GetDeployment",
        json!({"deploymentId": "d-HANG"}),
        deployment("d-HANG", "hang-dg"),
    );
    let sink = SlackSink::start().await;
    let target = Target::start().await;
    moto.put_alarm("prod-api-5xx").await;
    moto.aws_json(
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/canary/e2e-token", "Value": TOKEN, "Type": "SecureString"}),
    )
    .await;
    let checks = json!({
        "default": [{"type": "http", "name": "health", "url": target.url("/error"), "attempts": 1}],
        "deployment_groups": {
            "prod-api-dg": [
                {"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 2, "interval": "100ms",
                 "headers": {"Authorization": "ssm:/canary/e2e-token"},
                 "json_pointer": "/status", "json_equals": "UP"},
                {"type": "alarms", "alarms": ["prod-api-5xx"], "bake": "1s", "poll": "300ms"}
            ],
            "hang-dg": [{"type": "http", "name": "stuck", "url": target.url("/hang"), "timeout": "60s"}]
        }
    });

    let api = RuntimeApi::start().await;
    // Every AWS call through the recording stub (forwarding to moto), so the IAM check sees
    // what the release wiring calls too.
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("deploys")),
        ("HOOK".to_owned(), "AfterAllowTraffic".to_owned()),
        ("CHECKS".to_owned(), checks.to_string()),
        ("REPORT_MARGIN".to_owned(), "2s".to_owned()),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let good = api
        .invoke(
            &mut function,
            &hook_event("d-GOOD", "hook-good"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(&good.outcome, Outcome::Response(v) if v["status"] == "Succeeded"),
        "{good:?}"
    );
    let other = api
        .invoke(
            &mut function,
            &hook_event("d-OTHER", "hook-other"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(&other.outcome, Outcome::Response(v) if v["status"] == "Failed"),
        "{other:?}"
    );
    let hanging = api
        .invoke(
            &mut function,
            &hook_event("d-HANG", "hook-hang"),
            Duration::from_secs(6),
        )
        .await;
    assert!(
        matches!(&hanging.outcome, Outcome::Response(v) if v["status"] == "Failed"),
        "a hanging check is reported before the deadline: {hanging:?}"
    );
    let ignored = api
        .invoke(
            &mut function,
            &sample("not-a-hook.json"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(&ignored.outcome, Outcome::Response(v) if v["outcome"] == "ignored"),
        "{ignored:?}"
    );

    let recorded: Vec<(String, String)> = stub
        .accepted("PutLifecycleEventHookExecutionStatus")
        .iter()
        .map(|c| {
            (
                c["lifecycleEventHookExecutionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        vec![
            ("hook-good".to_owned(), "Succeeded".to_owned()),
            ("hook-other".to_owned(), "Failed".to_owned()),
            ("hook-hang".to_owned(), "Failed".to_owned()),
        ]
    );
    assert_eq!(
        target.header_values("/healthy", "authorization"),
        vec![TOKEN, TOKEN]
    );
    assert_eq!(sink.delivered().len(), 2, "the two failures are notified");

    let lines = function.stop().await;
    let emf = standins::emf::parse(&lines);
    let hooks = |status| {
        emf.sum(
            "HookResults",
            &[("Hook", "AfterAllowTraffic"), ("Status", status)],
        )
    };
    assert_eq!(hooks("Succeeded"), 1.0);
    assert_eq!(hooks("Failed"), 2.0);
    let checks = |kind, result| emf.sum("CheckResults", &[("Type", kind), ("Result", result)]);
    assert_eq!(checks("http", "passed"), 1.0);
    assert_eq!(checks("alarms", "passed"), 1.0);
    assert_eq!(
        checks("http", "failed"),
        2.0,
        "the default set's failing health check, and the one that hung to its deadline"
    );
    assert_eq!(emf.sum("ReportFailures", &[]), 0.0);
    let logs = lines.join("\n");
    standins::runtime_api::assert_no_secrets(&logs, &["e2e-t0ken"]);
    assert!(logs.contains("hook fails"), "{logs}");
}

#[tokio::test]
async fn the_binary_with_a_broken_configuration_still_reports_failed() {
    let stub = RecordingStub::start().await;
    // The sample's deployment, so the IAM check knows its deployment group.
    stub.fixture(
        "GetDeployment",
        json!({"deploymentId": "d-7JQ2XK4LB"}),
        deployment("d-7JQ2XK4LB", "prod-api-dg"),
    );
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("HOOK".to_owned(), "BeforeAllowTraffic".to_owned()),
        (
            "CHECKS".to_owned(),
            r#"[{"type":"http","url":"ftp://nowhere/"}]"#.to_owned(),
        ),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let out = api
        .invoke(
            &mut function,
            &sample("before-allow-traffic.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&out.outcome, Outcome::Response(v) if v["status"] == "Failed"
            && v["problem"].as_str().unwrap_or_default().contains("CHECKS")),
        "{out:?}"
    );
    let recorded = stub.accepted("PutLifecycleEventHookExecutionStatus");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["deploymentId"], "d-7JQ2XK4LB");
    assert_eq!(recorded[0]["status"], "Failed");
    let emf = standins::emf::parse(&function.stop().await);
    assert_eq!(emf.sum("ConfigErrors", &[]), 1.0);
    assert_eq!(
        emf.sum(
            "HookResults",
            &[("Hook", "BeforeAllowTraffic"), ("Status", "Failed")]
        ),
        1.0
    );
}
