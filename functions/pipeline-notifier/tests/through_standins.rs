//! The notifier with its real adapters: GetPipelineExecution against moto (or the stub's
//! fixtures, since moto records no source revisions), Slack through the recording sink,
//! SNS through moto.

mod common;

use std::time::{Duration, Instant};

use pipeline_notifier::EventReply;
use serde_json::{Value, json};
use shared::Deadline;
use standins::Reply;
use standins::rig::{budget, quick_slack};

/// The shared rig, with the alerts topic and an inbox subscribed to it.
struct Rig {
    base: standins::Rig,
    topic: String,
    queue: String,
}

impl Rig {
    async fn start() -> Self {
        let base = standins::Rig::start().await;
        let topic = base.moto.create_topic("ops-alerts").await;
        let queue = standins::moto::inbox_for(&base.moto.sdk_config().await, &topic).await;
        Self { base, topic, queue }
    }
}

impl std::ops::Deref for Rig {
    type Target = standins::Rig;

    fn deref(&self) -> &standins::Rig {
        &self.base
    }
}

/// What SNS delivered to the topic.
async fn sns_messages(rig: &Rig) -> Vec<Value> {
    standins::moto::received(&rig.moto.sdk_config().await, &rig.queue).await
}

/// The notifier exactly as `main.rs` builds it, every AWS call through the rig's stub.
fn handler(rig: &Rig, extra: &[(&str, &str)]) -> pipeline_notifier::app::App {
    let mut base = rig.variables("default");
    base.extend([
        ("SNS_TOPIC_ARN".into(), rig.topic.clone()),
        ("FAILURE_MENTION".into(), "<!subteam^S0PLATFORM>".into()),
    ]);
    pipeline_notifier::app::build(
        &standins::rig::env(base, extra),
        &rig.clients_with(quick_slack()),
    )
}

fn event_for(file: &str, execution_id: &str) -> Value {
    let mut e = common::sample(file);
    e["detail"]["execution-id"] = json!(execution_id);
    e
}

#[tokio::test]
async fn action_failure_posts_once_to_slack_and_sns_using_the_execution_in_moto() {
    let rig = Rig::start().await;
    let execution = rig.moto.pipeline_with_execution("prod-api").await;
    let h = handler(&rig, &[]);

    let (outcome, emf) = standins::emf::captured(
        "pipeline-notifier",
        h.handle(
            &event_for("action-failed-codebuild.json", &execution),
            budget(20),
        ),
    )
    .await;
    let outcome = outcome.unwrap();
    assert!(
        matches!(outcome, EventReply::Notified { .. }),
        "{outcome:?}"
    );
    for channel in ["slack", "sns"] {
        assert_eq!(
            emf.sum(
                "Notifications",
                &[("Channel", channel), ("Outcome", "delivered")]
            ),
            1.0,
            "{channel}"
        );
    }

    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    let text = posts[0].to_string();
    assert!(
        text.contains("BuildImage failed")
            && text.contains("JobFailed")
            && text.contains("Open build logs"),
        "{text}"
    );
    assert!(text.contains(&execution[..8]));
    assert!(
        !text.contains("*Source*"),
        "moto records no revisions, so none may be invented"
    );
    let sns = sns_messages(&rig).await;
    assert_eq!(sns.len(), 1);
    assert_eq!(sns[0]["Subject"], "[FAILED] prod-api: BuildImage failed");
    assert!(sns[0]["Message"].as_str().unwrap().contains(&execution));
}

#[tokio::test]
async fn source_revision_from_get_pipeline_execution_is_shown() {
    let rig = Rig::start().await;
    let stub = &rig.stub;
    // The fixture's commit message carries a mention that must arrive escaped.
    let mut execution = common::sample("api/get-pipeline-execution.json");
    execution["pipelineExecution"]["artifactRevisions"][0]["revisionSummary"] = json!(
        r#"{"ProviderType":"GitHub","CommitMessage":"Retry ECR pushes on 5xx <!channel>\n\nbody","AuthorName":"Ada"}"#
    );
    stub.fixture(
        "GetPipelineExecution",
        json!({"pipelineName": "prod-api"}),
        execution,
    );
    let h = handler(&rig, &[]);
    h.handle(&common::sample("pipeline-started.json"), budget(20))
        .await
        .unwrap();

    assert_eq!(
        stub.accepted("GetPipelineExecution").len(),
        1,
        "one look-up per message"
    );
    let text = rig.sink.delivered()[0].to_string();
    assert!(
        text.contains("8e0c6fb")
            && text.contains("Retry ECR pushes on 5xx &lt;!channel&gt;")
            && text.contains("Ada"),
        "{text}"
    );
    assert!(!text.contains("<!channel>"));
}

#[tokio::test]
async fn a_failed_lookup_still_posts_without_the_revision() {
    let rig = Rig::start().await;
    let h = handler(&rig, &[]);
    // No such pipeline in moto: GetPipelineExecution answers PipelineNotFoundException.
    let outcome = h
        .handle(&common::sample("pipeline-succeeded.json"), budget(20))
        .await
        .unwrap();
    assert!(matches!(outcome, EventReply::Notified { .. }));
    assert_eq!(rig.sink.delivered().len(), 1);
}

#[tokio::test]
async fn rate_limit_is_waited_out_and_the_message_posted_once() {
    let rig = Rig::start().await;
    rig.sink.script([Reply::RateLimited {
        retry_after_secs: 1,
    }]);
    let h = handler(&rig, &[]);
    let started = Instant::now();
    h.handle(&common::sample("approval-started.json"), budget(20))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    let statuses: Vec<u16> = rig.sink.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
}

#[tokio::test]
async fn a_server_error_is_retried_then_delivered() {
    let rig = Rig::start().await;
    rig.sink.script([Reply::Status(500, "rollup_error")]);
    let h = handler(&rig, &[]);
    h.handle(&common::sample("pipeline-superseded.json"), budget(20))
        .await
        .unwrap();
    let statuses: Vec<u16> = rig.sink.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 200]);
}

#[tokio::test]
async fn no_service_is_not_retried_and_is_acknowledged() {
    let rig = Rig::start().await;
    rig.sink.script([Reply::Status(404, "no_service")]);
    let h = handler(&rig, &[("SNS_TOPIC_ARN", "")]);
    let err = h
        .handle(&common::sample("pipeline-failed.json"), budget(20))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("no_service"));
    assert!(
        shared::settle::<()>(Err(err)).is_ok(),
        "permanent errors are acknowledged to Lambda"
    );
    assert_eq!(rig.sink.requests().len(), 1);
}

#[tokio::test]
async fn a_duplicate_delivery_is_posted_once() {
    let rig = Rig::start().await;
    let h = handler(&rig, &[]);
    let event = common::sample("action-failed-deploy.json");
    h.handle(&event, budget(20)).await.unwrap();
    let (again, emf) =
        standins::emf::captured("pipeline-notifier", h.handle(&event, budget(20))).await;
    let again = again.unwrap();
    assert!(matches!(again, EventReply::Skipped { .. }), "{again:?}");
    assert_eq!(emf.sum("Events", &[("Outcome", "duplicate")]), 1.0);
    assert_eq!(rig.sink.delivered().len(), 1);
    assert_eq!(sns_messages(&rig).await.len(), 1);
}

#[tokio::test]
async fn routes_filters_and_notify_on_decide_where_and_whether_to_post() {
    let rig = Rig::start().await;
    let routes = format!(
        r#"[{{"pipeline":"prod-*","webhook":"{}"}}]"#,
        rig.sink.webhook_url("prod")
    );
    let h = handler(
        &rig,
        &[("SLACK_ROUTES", &routes), ("PIPELINE_FILTER", "prod-*")],
    );
    h.handle(&common::sample("pipeline-succeeded.json"), budget(20))
        .await
        .unwrap();
    assert!(
        rig.sink.requests()[0].path.contains("/prod/"),
        "routed to the prod webhook"
    );

    let (skipped, emf) = standins::emf::captured(
        "pipeline-notifier",
        h.handle(&common::sample("stage-started.json"), budget(20)),
    )
    .await;
    let skipped = skipped.unwrap();
    assert_eq!(emf.sum("Events", &[("Outcome", "skipped")]), 1.0);
    assert_eq!(
        skipped,
        EventReply::Skipped {
            event_id: "6d2f4c0b-1a7e-4f3b-8c51-0e9a7d3b0007".into(),
            reason: "not selected by NOTIFY_ON".into()
        }
    );
    let mut other = common::sample("pipeline-failed.json");
    other["detail"]["pipeline"] = json!("sandbox");
    let filtered = h.handle(&other, budget(20)).await.unwrap();
    assert!(
        matches!(filtered, EventReply::Skipped { ref reason, .. } if reason.contains("PIPELINE_FILTER"))
    );
    assert_eq!(rig.sink.requests().len(), 1);
}

#[tokio::test]
async fn events_that_are_not_for_us_are_acknowledged_without_posting() {
    let rig = Rig::start().await;
    let h = handler(&rig, &[]);
    for input in [
        common::sample("not-codepipeline.json"),
        common::sample("unknown-state.json"),
        json!("not even an object"),
        json!({}),
    ] {
        let outcome = h.handle(&input, budget(20)).await.unwrap();
        assert!(matches!(outcome, EventReply::Ignored { .. }), "{outcome:?}");
    }
    assert!(rig.sink.requests().is_empty());
}

#[tokio::test]
async fn slack_hanging_past_the_deadline_returns_a_retryable_error_in_time() {
    let rig = Rig::start().await;
    rig.sink.script(std::iter::repeat_n(Reply::Hang, 10));
    let h = handler(&rig, &[("SNS_TOPIC_ARN", "")]);
    let started = Instant::now();
    let err = h
        .handle(
            &common::sample("pipeline-failed.json"),
            Deadline::after(Duration::from_secs(3)),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_retryable(), "{err}");
}
