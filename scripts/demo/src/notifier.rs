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
        let event = standins::sample_event("pipeline-notifier", file);
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
        match sink.delivered().get(before) {
            Some(payload) => print!("{}", slack_payload(payload)),
            None => println!("   (nothing posted to Slack)"),
        }
    }
    other_container.stop().await;
    print!("{}", metrics_summary(&function.stop().await));
    Ok(())
}
