//! The pipeline-notifier section of the demo: the built binary, run through the Lambda
//! Runtime API, fed sample events; what Slack received is shown as a person would see it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, RuntimeApi, SlackSink};

use crate::render::{metrics_summary, slack_payload};
use crate::{Fallible, function_env};

const EVENTS: &[(&str, &str)] = &[
    (
        "pipeline-started.json",
        "an execution starts (commit details come from GetPipelineExecution)",
    ),
    (
        "stage-started.json",
        "a stage starts: not in the default NOTIFY_ON, so no message",
    ),
    ("approval-started.json", "a manual approval is waiting"),
    (
        "approval-rejected.json",
        "the reviewer rejects: news, not an incident (no mention)",
    ),
    (
        "action-failed-codebuild.json",
        "the build action fails: error, summary, logs link, and the on-call mention",
    ),
    (
        "action-failed-codebuild.json",
        "EventBridge delivers the same event again, to another container (a second process): its claim in the idempotency table says it was posted",
    ),
    (
        "pipeline-failed.json",
        "the pipeline fails: kept short, the action message above has the details",
    ),
    (
        "pipeline-succeeded.json",
        "the next execution succeeds: its message, then one \"green again\" message, which goes wherever failures go even when successes are muted (NOTIFY_ON=pipeline:FAILED)",
    ),
    (
        "not-codepipeline.json",
        "an event from another source reaches the function",
    ),
];

pub async fn run(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    println!("\n== pipeline-notifier ({})", binary.display());
    let execution = standins::sample_event("pipeline-notifier", "api/get-pipeline-execution.json");
    stub.fixture(
        "GetPipelineExecution",
        json!({"pipelineName": "prod-api"}),
        execution,
    );
    let api = RuntimeApi::start().await;
    let env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CODEPIPELINE", &stub.endpoint()),
            ("FAILURE_MENTION", "<!subteam^S0PLATFORM>"),
        ],
    );
    println!(
        "Configuration: webhook from SSM, FAILURE_MENTION=<!subteam^S0PLATFORM>, default NOTIFY_ON."
    );
    let mut function = FunctionProcess::spawn(binary, &api, &env);
    let other_api = RuntimeApi::start().await;
    let mut other_container = FunctionProcess::spawn(binary, &other_api, &env);

    for (i, (file, what)) in EVENTS.iter().enumerate() {
        let mut event = standins::sample_event("pipeline-notifier", file);
        if what.contains("next execution") {
            // The sample is the failed execution's own; the fix is a later one.
            event["id"] = json!("6d2f4c0b-1a7e-4f3b-8c51-0e9a7d3b0042");
            event["time"] = json!("2026-11-20T10:41:27Z");
            event["detail"]["execution-id"] = json!("7d41c2e9-0b6a-4f1e-8d2c-5a9b3e7f1c20");
        }
        let before = sink.delivered().len();
        let redelivered = what.contains("another container");
        let invocation = if redelivered {
            other_api
                .invoke(&mut other_container, &event, Duration::from_secs(30))
                .await
        } else {
            api.invoke(&mut function, &event, Duration::from_secs(30))
                .await
        };
        println!(
            "\n{}. {what}\n   event: events/pipeline-notifier/{file}",
            i + 1
        );
        match &invocation.outcome {
            Outcome::Response(v) => {
                let reason = v
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                println!(
                    "   result: {}{reason}",
                    v.get("outcome").and_then(Value::as_str).unwrap_or("?")
                );
            }
            other => println!("   result: {other:?}"),
        }
        print_posted_since(sink, before);
    }
    other_container.stop().await;
    print!("{}", metrics_summary(&function.stop().await));
    Ok(())
}

/// Web API mode: the same binary with a bot token. One execution's events go in; the one
/// live message is shown as it changes, with its thread; then a second execution's events,
/// shuffled, go to two processes at once and still end in one message.
pub async fn run_live(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    use standins::codepipeline::{Ending, execution_events};
    use standins::slack_sink::{BOT_TOKEN, CHANNEL};

    println!("\n== pipeline-notifier, Web API mode: one live message per execution");
    moto.aws_json(
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/demo/slack/bot-token", "Value": BOT_TOKEN, "Type": "SecureString"}),
    )
    .await;
    // The stub's GetPipelineExecution fixture (set above) gives every execution of prod-api
    // its commit: it is looked up once, before the message is first posted.
    let api = RuntimeApi::start().await;
    let api_url = sink.api_url();
    let env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CODEPIPELINE", &stub.endpoint()),
            ("FAILURE_MENTION", "<!subteam^S0PLATFORM>"),
            ("SLACK_BOT_TOKEN", "ssm:/demo/slack/bot-token"),
            ("SLACK_CHANNEL", CHANNEL),
            ("SLACK_API_URL", &api_url),
        ],
    );
    println!(
        "Configuration: SLACK_BOT_TOKEN=ssm:/demo/slack/bot-token, SLACK_CHANNEL={CHANNEL}, the same table, default NOTIFY_ON."
    );
    let mut function = FunctionProcess::spawn(binary, &api, &env);
    let events = execution_events("4b1e9d7c-live-demo", Ending::BuildFails);
    let shown_after = [
        "pipeline-----STARTED",
        "Build-BuildImage-STARTED",
        "Build-BuildImage-FAILED",
        "pipeline-----FAILED",
    ];
    for event in &events {
        let id = event["id"].as_str().unwrap_or_default();
        let what = describe(event);
        let invocation = api
            .invoke(&mut function, event, Duration::from_secs(30))
            .await;
        let outcome = match &invocation.outcome {
            Outcome::Response(v) => v["outcome"].as_str().unwrap_or("?").to_owned(),
            other => format!("{other:?}"),
        };
        let top = sink.top_messages(CHANNEL).into_iter().last();
        let edits = top.as_ref().map(|m| m.updates).unwrap_or(0);
        println!("   {what:<45} → {outcome}; the message has been edited {edits} time(s)");
        if let Some(m) = top.filter(|_| shown_after.iter().any(|s| id.ends_with(s))) {
            print!("{}", shown(&m));
            for reply in sink.replies(CHANNEL, &m.ts) {
                let seen = if reply.reply_broadcast {
                    "in the thread and the channel"
                } else {
                    "in the thread"
                };
                println!("   ↳ reply ({seen}):");
                print!("{}", shown(&reply));
            }
        }
    }
    function.stop().await;

    println!("\nAnother execution's events, shuffled, delivered to two processes at once:");
    let other_api = RuntimeApi::start().await;
    let (mut a, mut b) = (
        FunctionProcess::spawn(binary, &api, &env),
        FunctionProcess::spawn(binary, &other_api, &env),
    );
    let mut shuffled = execution_events("9c3d2a10-live-race", Ending::Succeeded);
    shuffled.reverse();
    let (left, right): (Vec<_>, Vec<_>) =
        shuffled.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let api_ref = &api;
    let other_ref = &other_api;
    tokio::join!(
        async {
            for (_, e) in left {
                api_ref.invoke(&mut a, e, Duration::from_secs(30)).await;
            }
        },
        async {
            for (_, e) in right {
                other_ref.invoke(&mut b, e, Duration::from_secs(30)).await;
            }
        }
    );
    a.stop().await;
    b.stop().await;
    let tops = sink.top_messages(CHANNEL);
    let is_recovery = |m: &&standins::SlackMessage| m.text.starts_with("💚");
    let race: Vec<_> = tops
        .iter()
        .filter(|m| m.blocks.to_string().contains("9c3d2a10") && !is_recovery(m))
        .collect();
    println!(
        "   {} event(s), newest first, split between the two: {} message(s) in the channel for it, ending:",
        shuffled.len(),
        race.len()
    );
    if let Some(m) = race.last() {
        print!("{}", shown(m));
    }
    if let Some(m) = tops.iter().rfind(is_recovery) {
        println!(
            "   The execution before it failed, so the pipeline is green again: told once, as a message of its own:"
        );
        print!("{}", shown(m));
    }
    Ok(())
}

/// What the stub answers ECS's three service-deployment calls with, at one moment.
type EcsAnswers = [(&'static str, Value); 3];

/// ECS deployments: the events ECS publishes for a service, with the stub answering the
/// service-deployment calls as ECS would at each moment.
pub async fn run_ecs(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    println!(
        "
== pipeline-notifier, ECS deployments: a circuit-breaker rollback, then the fix"
    );
    let api = RuntimeApi::start().await;
    let env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_ECS", &stub.endpoint()),
            ("FAILURE_MENTION", "<!subteam^S0PLATFORM>"),
        ],
    );
    println!(
        "Configuration: as above; the template's rule delivers the ECS events of EcsServices (here default/servicetest)."
    );
    let mut function = FunctionProcess::spawn(binary, &api, &env);
    let sample = |name: &str| standins::sample_event("pipeline-notifier", name);
    let answers = |status: &str, to: &str, rolled_back: bool| -> EcsAnswers {
        let mut list = sample("api/list-service-deployments.json");
        let mut described = sample("api/describe-service-deployments.json");
        let mut revisions = sample("api/describe-service-revisions.json");
        list["serviceDeployments"][0]["status"] = json!(status);
        let d = &mut described["serviceDeployments"][0];
        d["status"] = json!(status);
        if !rolled_back {
            for field in ["rollback", "statusReason", "deploymentCircuitBreaker"] {
                d.as_object_mut().map(|o| o.remove(field));
            }
        }
        if to != "42" {
            let image =
                format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/servicetest:1.{to}.0");
            let r = &mut revisions["serviceRevisions"][1];
            r["taskDefinition"] = json!(format!(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/servicetest:{to}"
            ));
            r["containerImages"][0]["image"] = json!(image);
        }
        [
            ("ListServiceDeployments", list),
            ("DescribeServiceDeployments", described),
            ("DescribeServiceRevisions", revisions),
        ]
    };
    let later = |name: &str, id: &str, deployment: &str, time: &str| {
        let mut event = sample(name);
        event["id"] = json!(id);
        event["time"] = json!(time);
        event["detail"]["deploymentId"] = json!(deployment);
        event
    };
    let steps: Vec<(&str, Value, Option<EcsAnswers>)> = vec![
        (
            "a new release starts rolling out (task definition :41 → :42)",
            later(
                "ecs-deployment-in-progress.json",
                "demo-ecs-1",
                "ecs-svc/123",
                "2020-05-23T12:29:02Z",
            ),
            Some(answers("IN_PROGRESS", "42", false)),
        ),
        (
            "its tasks fail to start: the circuit breaker fails the deployment and rolls it back (the event as the ECS guide publishes it)",
            sample("ecs-deployment-failed.json"),
            Some(answers("ROLLBACK_IN_PROGRESS", "42", true)),
        ),
        (
            "the rollback starts: not in the default NOTIFY_ON, the failure above already says it",
            later(
                "ecs-deployment-rollback.json",
                "demo-ecs-3",
                "ecs-svc/124",
                "2020-05-23T12:31:20Z",
            ),
            None,
        ),
        (
            "the rollback completes: the service is healthy on its previous revision, the release is not running",
            later(
                "ecs-deployment-completed.json",
                "demo-ecs-4",
                "ecs-svc/124",
                "2020-05-23T12:34:51Z",
            ),
            Some(answers("ROLLBACK_SUCCESSFUL", "42", true)),
        ),
        (
            "the fix is deployed (:43) and reaches steady state: its message, then the service is green again",
            later(
                "ecs-deployment-completed.json",
                "demo-ecs-5",
                "ecs-svc/125",
                "2020-05-23T13:12:40Z",
            ),
            Some(answers("SUCCESSFUL", "43", false)),
        ),
        (
            "later, the service cannot keep its tasks running (told once an hour however often ECS repeats it)",
            sample("ecs-service-task-start-impaired.json"),
            None,
        ),
    ];
    for (i, (what, event, fixtures)) in steps.into_iter().enumerate() {
        for (operation, answer) in fixtures.into_iter().flatten() {
            stub.fixture(operation, json!({}), answer);
        }
        let before = sink.delivered().len();
        let invocation = api
            .invoke(&mut function, &event, Duration::from_secs(30))
            .await;
        println!("\n{}. {what}", i + 1);
        match &invocation.outcome {
            Outcome::Response(v) => println!(
                "   result: {}",
                v.get("outcome").and_then(Value::as_str).unwrap_or("?")
            ),
            other => println!("   result: {other:?}"),
        }
        print_posted_since(sink, before);
    }
    print!("{}", metrics_summary(&function.stop().await));
    Ok(())
}

/// What the sink received since the `before`th post, as a person would see it.
fn print_posted_since(sink: &SlackSink, before: usize) {
    let posted = sink.delivered();
    if posted.len() == before {
        println!("   (nothing posted to Slack)");
    }
    for payload in posted.iter().skip(before) {
        print!("{}", slack_payload(payload));
    }
}

/// A message in the channel as a person reads it.
fn shown(m: &standins::SlackMessage) -> String {
    slack_payload(&json!({"text": m.text, "blocks": m.blocks}))
}

fn describe(event: &Value) -> String {
    let d = &event["detail"];
    let level = match event["detail-type"].as_str().unwrap_or_default() {
        t if t.contains("Pipeline Execution") => "pipeline".to_owned(),
        t if t.contains("Stage Execution") => {
            format!("stage {}", d["stage"].as_str().unwrap_or("?"))
        }
        _ => format!("action {}", d["action"].as_str().unwrap_or("?")),
    };
    format!("{level} {}", d["state"].as_str().unwrap_or("?"))
}
