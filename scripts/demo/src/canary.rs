//! The canary-validator section of the demo: a local server stands in for the new version,
//! moto holds the alarm, the recording stub plays CodeDeploy. Two AfterAllowTraffic hooks run
//! through the Lambda Runtime API: one passes its checks and bake, and in the other the alarm
//! goes off mid-bake. Then an ECS-native hook passes a bake over two invocations.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, RuntimeApi, SlackSink, Target};

use crate::render::{metrics_summary, slack_payload};
use crate::{Fallible, function_env};

pub async fn run(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    println!("\n== canary-validator ({})", binary.display());
    let target = Target::start().await;
    moto.put_alarm("prod-api-5xx").await;
    let answer = standins::sample_event("canary-validator", "api/get-deployment.json");
    for id in ["d-DEMO00001", "d-DEMO00002"] {
        let mut a = answer.clone();
        a["deploymentInfo"]["deploymentId"] = json!(id);
        stub.fixture("GetDeployment", json!({"deploymentId": id}), a);
    }
    let checks = json!({"deployment_groups": {"DgpECS-prod-api": [
        {"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 5, "interval": "200ms",
         "json_pointer": "/status", "json_equals": "UP", "max_latency": "500ms"},
        {"type": "alarms", "name": "no alarms", "alarms": ["prod-api-5xx"], "bake": "3s", "poll": "500ms"}
    ]}});
    println!(
        "The new version answers on {} (a local server).",
        target.url("/healthy")
    );
    println!(
        "CHECKS for deployment group DgpECS-prod-api: 5 GETs of /health expecting {{\"status\":\"UP\"}} within 500 ms,"
    );
    println!(
        "and alarm prod-api-5xx (in moto) quiet for a 3 s bake. HOOK=AfterAllowTraffic, NOTIFY_ON=ALL."
    );

    let api = RuntimeApi::start().await;
    let env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", &stub.endpoint()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", &stub.endpoint()),
            ("HOOK", "AfterAllowTraffic"),
            ("CHECKS", &checks.to_string()),
            ("NOTIFY_ON", "ALL"),
            ("REPORT_MARGIN", "3s"),
        ],
    );
    let mut function = FunctionProcess::spawn(binary, &api, &env);

    for (n, deployment) in [(1, "d-DEMO00001"), (2, "d-DEMO00002")] {
        let hook_id = format!("demo-hook-{n}");
        let event = json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": hook_id});
        println!("\n{n}. CodeDeploy calls the AfterAllowTraffic hook for {deployment}");
        if n == 2 {
            println!("   (1 s into the bake, prod-api-5xx goes to ALARM)");
        }
        let before = sink.delivered().len();
        let flip = async {
            if n == 2 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                moto.set_alarm_state(
                    "prod-api-5xx",
                    "ALARM",
                    "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0)",
                )
                .await;
            }
        };
        let (invocation, ()) = tokio::join!(
            api.invoke(&mut function, &event, Duration::from_secs(60)),
            flip
        );
        if let Outcome::Response(v) = &invocation.outcome {
            println!(
                "   answered in {:.1} s: {}",
                invocation.took.as_secs_f64(),
                v["status"].as_str().unwrap_or("?")
            );
        }
        let recorded: Vec<String> = stub
            .accepted("PutLifecycleEventHookExecutionStatus")
            .iter()
            .filter(|c| c["lifecycleEventHookExecutionId"] == hook_id.as_str())
            .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
            .collect();
        println!("   CodeDeploy recorded: {}", recorded.join(", "));
        if let Some(payload) = sink.delivered().get(before) {
            print!("{}", slack_payload(payload));
        }
    }
    print!("{}", metrics_summary(&function.stop().await));
    ecs_native(binary, moto, stub, sink, &target).await
}

/// An ECS-native hook: ECS reads the answer from the return value and, on `IN_PROGRESS`, calls
/// again after `callBackDelay` with the `hookDetails` returned. A bake longer than the
/// invocation's time passes over two invocations.
async fn ecs_native(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
    target: &Target,
) -> Fallible<()> {
    moto.set_alarm_state("prod-api-5xx", "OK", "back to normal")
        .await;
    let checks = json!({"ecs_services": {"prod/prod-api": {"POST_PRODUCTION_TRAFFIC_SHIFT": [
        {"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 3, "interval": "200ms"},
        {"type": "alarms", "name": "bake", "alarms": ["prod-api-5xx"], "bake": "3s", "poll": "2s"}
    ]}}});
    println!(
        "\n-- ECS-native lifecycle hook (ECS runs the blue/green deployment itself; no CodeDeploy)"
    );
    println!(
        "CHECKS ecs_services[\"prod/prod-api\"] at POST_PRODUCTION_TRAFFIC_SHIFT: 3 GETs of /health, then a 3 s bake"
    );
    println!(
        "of prod-api-5xx. Each invocation has 5 s (2 s kept back), so the bake does not fit in one and the"
    );
    println!(
        "hook answers IN_PROGRESS with its state sealed in hookDetails. NOTIFY_ON=ALL, no HOOK set."
    );
    let api = RuntimeApi::start().await;
    let env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CLOUDWATCH", &stub.endpoint()),
            ("CHECKS", &checks.to_string()),
            ("NOTIFY_ON", "ALL"),
            ("REPORT_MARGIN", "2s"),
            ("HOOK_STATE_KEY", "demo-only-state-key"),
        ],
    );
    let mut function = FunctionProcess::spawn(binary, &api, &env);
    let mut event = standins::sample_event("canary-validator", "ecs-production-traffic-shift.json");
    event.as_object_mut().map(|e| e.remove("hookDetails"));
    for n in 1..=4 {
        let before = sink.delivered().len();
        println!(
            "\n{n}. ECS invokes the hook (POST_PRODUCTION_TRAFFIC_SHIFT, execution {})",
            event["executionId"].as_str().unwrap_or("?")
        );
        let invocation = api
            .invoke(&mut function, &event, Duration::from_secs(5))
            .await;
        let Outcome::Response(answer) = &invocation.outcome else {
            println!(
                "   no answer: {:?} (ECS would roll back)",
                invocation.outcome
            );
            break;
        };
        let status = answer["hookStatus"].as_str().unwrap_or("?");
        println!(
            "   answered in {:.1} s: {{\"hookStatus\": \"{status}\"{}}}",
            invocation.took.as_secs_f64(),
            if status == "IN_PROGRESS" {
                format!(
                    ", \"callBackDelay\": {}, \"hookDetails\": {{…}}",
                    answer["callBackDelay"]
                )
            } else {
                String::new()
            }
        );
        for payload in sink.delivered().iter().skip(before) {
            print!("{}", slack_payload(payload));
        }
        if status != "IN_PROGRESS" {
            break;
        }
        let state = &answer["hookDetails"]["canaryValidatorBake"];
        println!(
            "   hookDetails.canaryValidatorBake: started_ms {}, passed checks {}, tag {}…",
            state["started_ms"],
            state["passed"],
            state["tag"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(16)
                .collect::<String>()
        );
        let delay = answer["callBackDelay"].as_u64().unwrap_or(30);
        println!(
            "   (ECS waits callBackDelay = {delay} s, then calls again with those hookDetails; the guide\n    promises hookDetails across callbacks, not the executionId, so this demo gives each a new one)"
        );
        tokio::time::sleep(Duration::from_secs(delay)).await;
        event["hookDetails"] = answer["hookDetails"].clone();
        event["executionId"] = json!(format!("demo-callback-{n}-{}", std::process::id()));
    }
    print!("{}", metrics_summary(&function.stop().await));
    Ok(())
}
