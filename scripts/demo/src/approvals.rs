//! The pipeline-approvals section of the demo: the built binary behind a Function URL as Lambda
//! runs it, handed clicks signed as Slack signs them, with CodePipeline's approval rules played
//! by the recording stub. What each person is told is shown as Slack would show it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use shared::approval::{self, ApprovalRef};
use standins::rig::now_secs;
use standins::slack_signer::{Delivery, block_actions, form_body, function_url_event};
use standins::slack_sink::CHANNEL;
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, RuntimeApi, SlackSink};

use crate::render::slack_payload;
use crate::{Fallible, function_env};

const SECRET: &str = "demo-signing-secret-0123456789ab";

pub async fn run(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    println!(
        "\n== pipeline-approvals ({}): approve from Slack",
        binary.display()
    );
    moto.aws_json(
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/demo/slack/signing-secret", "Value": SECRET, "Type": "SecureString"}),
    )
    .await;
    // The order matters: the first glob that matches decides.
    let approvers = r#"{"prod-*": ["U012AB3CD"], "*": ["U09ZYX8WV"]}"#;
    let env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CODEPIPELINE", &stub.endpoint()),
            ("SLACK_SIGNING_SECRET", "ssm:/demo/slack/signing-secret"),
            ("APPROVERS", approvers),
            // The sink plays Slack's Web API; its origin is where response_url may point.
            ("SLACK_API_URL", &sink.api_url()),
        ],
    );
    println!(
        "Configuration: SLACK_SIGNING_SECRET=ssm:/demo/slack/signing-secret, APPROVERS={approvers}."
    );
    let approval = ApprovalRef {
        pipeline: "prod-api".into(),
        stage: "Approve".into(),
        action: "ProductionGate".into(),
        execution: "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01".into(),
    };
    let token = stub.approval_waits(
        &approval.pipeline,
        &approval.stage,
        &approval.action,
        &approval.execution,
    );
    println!(
        "CodePipeline (the stub): {} waits at {}/{}, token {token}.",
        approval.pipeline, approval.stage, approval.action
    );
    // The notifier, with the template's SLACK_APPROVALS=on, posts the approval's message.
    let notifier = binary.with_file_name("pipeline-notifier");
    if notifier.exists() {
        let notifier_env = function_env(moto, &[("SLACK_APPROVALS", "on")]);
        let notifier_api = RuntimeApi::start().await;
        let mut posting = FunctionProcess::spawn(&notifier, &notifier_api, &notifier_env);
        let before = sink.delivered().len();
        let mut waiting = standins::sample_event("pipeline-notifier", "approval-started.json");
        waiting["id"] = json!("demo-approval-waiting");
        notifier_api
            .invoke(&mut posting, &waiting, Duration::from_secs(30))
            .await;
        posting.stop().await;
        if let Some(message) = sink.delivered().get(before) {
            println!("\nThe notifier's message (SLACK_APPROVALS=on), as the channel shows it:");
            print!("{}", slack_payload(message));
        }
    }
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(binary, &api, &env);
    let now = now_secs();
    let steps: [(&str, &str, Delivery<'_>); 4] = [
        (
            "someone forges a click (signed with another secret)",
            "U012AB3CD",
            Delivery {
                secret: Some("a guess"),
                at: now,
                base64: false,
            },
        ),
        (
            "an old click is replayed (signed 10 minutes ago)",
            "U012AB3CD",
            Delivery {
                secret: Some(SECRET),
                at: now - 600,
                base64: false,
            },
        ),
        (
            "U09ZYX8WV clicks Approve: an approver of other pipelines, not of prod-*",
            "U09ZYX8WV",
            Delivery {
                secret: Some(SECRET),
                at: now,
                base64: false,
            },
        ),
        (
            "U012AB3CD, a prod approver, clicks Approve (Slack signs it; the URL hands the body base64)",
            "U012AB3CD",
            Delivery {
                secret: Some(SECRET),
                at: now,
                base64: true,
            },
        ),
    ];
    for (i, (what, user, delivery)) in steps.into_iter().enumerate() {
        let name = format!("demo-approval-{i}");
        let payload = block_actions(
            user,
            approval::APPROVE,
            &approval.to_value(),
            &sink.response_url(&name),
            CHANNEL,
            "1795000000.000100",
        );
        let event = function_url_event(&form_body(&payload), delivery);
        let answer = api
            .invoke(&mut function, &event, Duration::from_secs(30))
            .await;
        let status = match &answer.outcome {
            Outcome::Response(v) => v["statusCode"].to_string(),
            other => format!("{other:?}"),
        };
        println!("\n{}. {what}\n   HTTP {status}", i + 1);
        let told: Vec<Value> = sink
            .requests()
            .into_iter()
            .filter(|r| r.path.contains(&format!("/{name}/")))
            .map(|r| r.body)
            .collect();
        match told.first() {
            Some(message) => {
                let who = if message["response_type"] == "ephemeral" {
                    "only the clicker sees"
                } else {
                    "the message becomes"
                };
                println!("   {who}:");
                print!("{}", slack_payload(message));
            }
            None => {
                println!("   (refused: nothing sent to CodePipeline, no message)")
            }
        }
    }
    let answers: Vec<Value> = stub
        .calls()
        .into_iter()
        .filter(|c| c.operation == "PutApprovalResult")
        .map(|c| c.body)
        .collect();
    println!(
        "\nCodePipeline received {} PutApprovalResult: {}",
        answers.len(),
        answers
            .iter()
            .map(|a| format!(
                "{} with the token GetPipelineState gave ({})",
                a["result"]["status"],
                a["token"] == token.as_str()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    function.stop().await;
    Ok(())
}
