//! `make demo`: starts the local stand-ins (moto, the recording stub, a Slack sink) and
//! shows, step by step and in plain words, what the suite does with them. No AWS account.

mod approvals;
mod canary;
mod migration;
mod notifier;
mod render;
mod scan_gate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shared::Deadline;
use shared::jobs::{FailureKind, JobOutcome, JobReporter, ReportJob};
use shared::notifier::{Notification, Notifier, NotifierConfig, Notify};
use shared::secrets::{SecretRef, Secrets};
use shared::slack::{Block, Button, Message, Mrkdwn, SlackClient};
use standins::{Moto, RecordingStub, Reply, SlackSink};

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// Where `shared_mechanisms` stores the demo's Slack webhook; every function reads it there.
const WEBHOOK_PARAMETER: &str = "/demo/slack/webhook";

/// What every demo function runs with: moto's endpoint and fake credentials, the webhook
/// from SSM and warnings-only logs (so the demo's own lines stay readable), then its own
/// settings.
fn function_env(moto: &Moto, own: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = moto.env();
    env.push((
        "SLACK_WEBHOOK_URL".to_owned(),
        format!("ssm:{WEBHOOK_PARAMETER}"),
    ));
    env.push(("AWS_LAMBDA_LOG_LEVEL".to_owned(), "WARN".to_owned()));
    env.push((
        "IDEMPOTENCY_TABLE".to_owned(),
        standins::moto::IDEMPOTENCY_TABLE.to_owned(),
    ));
    env.extend(own.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

#[tokio::main]
async fn main() -> Fallible<()> {
    println!(
        "Container-delivery ops suite: local demo (no AWS account; everything runs on 127.0.0.1)\n"
    );
    let moto = Moto::start();
    let stub = RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    let sink = SlackSink::start().await;
    println!("Stand-ins:");
    println!(
        "  moto server      {}  (SSM, Secrets Manager, SNS, SQS, ECR, ECS, EC2, CloudWatch, Logs, DynamoDB)",
        moto.endpoint()
    );
    println!(
        "  recording stub   {}  (CodeDeploy / CodePipeline calls moto lacks; ECS rules moto skips)",
        stub.endpoint()
    );
    println!(
        "  Slack sink       {}  (an incoming webhook that records and can misbehave)\n",
        sink.webhook_url("demo")
            .split("/services")
            .next()
            .unwrap_or_default()
    );

    // As the template creates it: every function claims its side effects there.
    moto.create_idempotency_table().await;
    let sdk = moto.sdk_config().await;
    shared_mechanisms(&sdk, &stub, &sink).await?;

    let notifier_bin = standins::workspace_root().join("target/debug/pipeline-notifier");
    if notifier_bin.exists() {
        notifier::run(&notifier_bin, &moto, &stub, &sink).await?;
        notifier::run_ecs(&notifier_bin, &moto, &stub, &sink).await?;
        notifier::run_live(&notifier_bin, &moto, &stub, &sink).await?;
    } else {
        println!("\n(pipeline-notifier is not built: run `make demo`, which builds it first)");
    }
    let gate_bin = standins::workspace_root().join("target/debug/ecr-scan-gate");
    if gate_bin.exists() {
        scan_gate::run(&gate_bin, &moto, &stub, &sink).await?;
    }
    let canary_bin = standins::workspace_root().join("target/debug/canary-validator");
    if canary_bin.exists() {
        canary::run(&canary_bin, &moto, &stub, &sink).await?;
    }
    let migration_bin = standins::workspace_root().join("target/debug/migration-runner");
    if migration_bin.exists() {
        migration::run(&migration_bin, &moto, &stub, &sink).await?;
    }
    let approvals_bin = standins::workspace_root().join("target/debug/pipeline-approvals");
    if approvals_bin.exists() {
        approvals::run(&approvals_bin, &moto, &stub, &sink).await?;
    }
    adopt_one_at_a_time();
    println!("\nDone. Everything above ran against local servers; nothing left this machine.");
    Ok(())
}

/// What a team that wants only one of the above deploys, read from the template's Rules by
/// scripts/samconfig (the same reading `make deploy` uses), so it cannot drift from them.
fn adopt_one_at_a_time() {
    println!("\n== Adopt one function at a time");
    let root = standins::workspace_root();
    let read = std::process::Command::new("python3")
        .arg(root.join("scripts/samconfig"))
        .arg("requirements")
        .output();
    let listed = match read {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            println!("(scripts/samconfig could not read template.yaml's Rules; see README.md)");
            return;
        }
    };
    println!(
        "Each function deploys on its own (template.yaml has a switch per function; the others'\n\
         settings are never required). Its page says what it decides, how to wire it in, and\n\
         shows the messages it posts, drawn from the renderings above:"
    );
    for line in listed.lines() {
        let mut fields = line.split('\t');
        let (Some(function), Some(switch)) = (fields.next(), fields.next()) else {
            continue;
        };
        let needs = fields.next().unwrap_or_default().trim();
        let needs = if needs.is_empty() {
            "no setting of its own".to_owned()
        } else {
            needs.split(' ').collect::<Vec<_>>().join(", ")
        };
        println!(
            "  {function:<18} make deploy FUNCTIONS={function}   needs: {needs}  ({switch})\n  {:<18} functions/{function}/README.md, pictures in functions/{function}/pictures/",
            ""
        );
    }
}

async fn shared_mechanisms(
    sdk: &aws_config::SdkConfig,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    println!("== Shared crate: secrets, Slack, SNS, CodePipeline job results");
    let budget = || Deadline::after(Duration::from_secs(20));

    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(WEBHOOK_PARAMETER)
        .value(sink.webhook_url("deploys"))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await?;
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name("demo-alerts")
        .send()
        .await?
        .topic_arn
        .unwrap_or_default();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue = sqs
        .create_queue()
        .queue_name("demo-alerts-inbox")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let queue_arn = format!(
        "arn:aws:sqs:{}:{}:demo-alerts-inbox",
        standins::moto::REGION,
        standins::moto::ACCOUNT
    );
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await?;
    println!(
        "1. Stored the Slack webhook as SSM SecureString /demo/slack/webhook and created SNS topic demo-alerts."
    );

    let secrets = Arc::new(Secrets::new(sdk));
    let config = NotifierConfig {
        slack_webhook: Some(SecretRef::parse(&format!("ssm:{WEBHOOK_PARAMETER}"))?),
        sns_topic_arn: Some(topic),
    };
    let notifier = Notifier::new(config, sdk, SlackClient::new()?, secrets);

    let hostile = "fix: retry <!channel> & see <https://evil.example|docs>";
    let message = Message::new(Mrkdwn::new().plain("Demo: a commit message from an event"))
        .block(Block::Header("Demo notification".into()))
        .block(Block::section(
            Mrkdwn::new().bold("Commit").plain(": ").plain(hostile),
        ))
        .block(Block::Buttons(vec![Button {
            label: "Open in console".into(),
            url: shared::console::codepipeline_pipeline("us-east-1", "demo"),
        }]));
    let note = Notification::new("Demo notification", message);

    sink.script([
        Reply::RateLimited {
            retry_after_secs: 1,
        },
        Reply::Status(500, "rollup_error"),
    ]);
    notifier.notify(&note, &budget()).await.into_result()?;
    let requests = sink.requests();
    let statuses: Vec<String> = requests.iter().map(|r| r.status.to_string()).collect();
    println!(
        "2. Notified Slack (webhook read from SSM) and SNS. Slack answered {}: the client waited out",
        statuses.join(", then ")
    );
    println!(
        "   Retry-After, backed off after the 500, and delivered once. What Slack received, as a person sees it:"
    );
    if let Some(last) = sink.delivered().last() {
        print!("{}", render::slack_payload(last));
        let sent = last["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap_or_default();
        println!("   Sent for the commit line, escaped: {sent}");
    }
    println!("   So Slack shows the commit text literally: no @channel ping, no disguised link.");

    let got = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(1)
        .send()
        .await?;
    if let Some(body) = got.messages().first().and_then(|m| m.body()) {
        let envelope: serde_json::Value = serde_json::from_str(body)?;
        println!(
            "3. SNS delivered to its subscriber: subject {:?}, message {:?}",
            envelope["Subject"].as_str().unwrap_or_default(),
            envelope["Message"].as_str().unwrap_or_default()
        );
    }

    sink.script([Reply::Status(404, "no_service")]);
    let before = sink.requests().len();
    let outcome = notifier.notify(&note, &budget()).await.into_result();
    println!(
        "4. A removed webhook (Slack answers 404 no_service) is permanent: {} request, not retried; the SNS copy still went out, so the handler acknowledges ({}).",
        sink.requests().len() - before,
        if outcome.is_ok() { "Ok" } else { "Err" }
    );

    let jobs = JobReporter::new(&standins::moto::sdk_config_for(&stub.endpoint()).await);
    let success = JobOutcome::Succeeded {
        summary: "demo passed".into(),
        output_variables: BTreeMap::from([("VERDICT".into(), "PASS".into())]),
    };
    let first = jobs.report("demo-job-1", success, &budget()).await?;
    let again = jobs
        .report(
            "demo-job-1",
            JobOutcome::Failed {
                kind: FailureKind::JobFailed,
                message: "late".into(),
            },
            &budget(),
        )
        .await?;
    println!(
        "5. CodePipeline job demo-job-1: PutJobSuccessResult with VERDICT=PASS -> {first:?}; a late second report -> {again:?} (counted as done, not an error)."
    );
    Ok(())
}
