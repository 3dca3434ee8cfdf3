//! End to end: the function binary run as Lambda runs it, through the Runtime API, with
//! its configuration from the environment, the webhook from SSM in moto, Slack through
//! the sink. `PIPELINE_NOTIFIER_BIN` points it at another build (the release bootstrap).

mod common;
#[path = "common/ecs_answers.rs"]
mod ecs_answers;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use standins::codepipeline::{Ending, execution_events};
use standins::rig::{TABLE, webhook_in_ssm};
use standins::slack_sink::WEBHOOK_TOKEN;
use standins::{FunctionProcess, Outcome, Reply, Rig, RuntimeApi, SlackSink};

fn binary() -> PathBuf {
    standins::runtime_api::binary_under_test(
        "PIPELINE_NOTIFIER_BIN",
        env!("CARGO_BIN_EXE_pipeline-notifier"),
    )
}

#[tokio::test]
async fn the_binary_posts_sample_events_and_acknowledges_what_it_cannot_use() {
    // Through the recording stub, which forwards to moto: the IAM check sees the SSM read.
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let webhook = webhook_in_ssm(&moto, &sink, "ops").await;
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    env.push(("FAILURE_MENTION".into(), "<!here>".into()));
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let failed = api
        .invoke(
            &mut function,
            &common::sample("action-failed-codebuild.json"),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        failed.outcome,
        Outcome::Response(
            json!({"outcome": "notified", "eventId": "6d2f4c0b-1a7e-4f3b-8c51-0e9a7d3b0014"})
        )
    );
    let posted = sink.delivered();
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("<!here> ❌ prod-api: BuildImage failed"),
        "{}",
        posted[0]
    );

    let ignored = api
        .invoke(
            &mut function,
            &common::sample("not-codepipeline.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&ignored.outcome, Outcome::Response(v) if v["outcome"] == "ignored"),
        "{ignored:?}"
    );

    sink.script([Reply::Status(404, "no_service")]);
    let gone = api
        .invoke(
            &mut function,
            &common::sample("approval-started.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&gone.outcome, Outcome::Response(_)),
        "a removed webhook is permanent: acknowledged, not an error: {gone:?}"
    );
    assert_eq!(sink.requests().len(), 2, "no retry after no_service");

    sink.script(std::iter::repeat_n(Reply::Status(500, "rollup_error"), 20));
    let down = api
        .invoke(
            &mut function,
            &common::sample("approval-rejected.json"),
            Duration::from_secs(3),
        )
        .await;
    assert!(
        matches!(&down.outcome, Outcome::Error(_)),
        "Slack down with nothing delivered: an error, so Lambda retries: {down:?}"
    );
    assert!(
        down.took < Duration::from_secs(3),
        "answered within the invocation deadline: {:?}",
        down.took
    );

    let logs = function.stop().await;
    let joined = logs.join("\n");
    assert!(
        !joined.contains(WEBHOOK_TOKEN),
        "webhook leaked into logs:\n{joined}"
    );
    let request_line = logs
        .iter()
        .find(|l| l.contains("notified") && l.contains(&failed.request_id))
        .unwrap_or_else(|| {
            panic!(
                "no JSON log line with the request id {}:\n{joined}",
                failed.request_id
            )
        });
    assert!(
        serde_json::from_str::<serde_json::Value>(request_line).is_ok(),
        "not a JSON line: {request_line}"
    );

    // What CloudWatch extracts from this log (standins::emf holds each line to the format).
    let emf = standins::emf::parse(&logs);
    assert_eq!(
        emf.sum("ColdStart", &[]),
        1.0,
        "once, on the first invocation"
    );
    assert_eq!(emf.sum("Events", &[("Outcome", "notified")]), 1.0);
    assert_eq!(emf.sum("Events", &[("Outcome", "ignored")]), 1.0);
    assert_eq!(
        emf.sum("Events", &[("Outcome", "failed")]),
        2.0,
        "the removed webhook and Slack down"
    );
    let slack = |outcome| {
        emf.sum(
            "Notifications",
            &[("Channel", "slack"), ("Outcome", outcome)],
        )
    };
    assert_eq!(slack("delivered"), 1.0);
    assert_eq!(slack("failed"), 2.0);
    assert_eq!(
        emf.sum(
            "Notifications",
            &[("Channel", "sns"), ("Outcome", "skipped")]
        ),
        3.0,
        "no topic configured"
    );
    assert!(
        emf.sum("SlackRetries", &[]) >= 1.0,
        "Slack's 500s were retried"
    );
    assert_eq!(
        emf.dimension_sets("Notifications"),
        [vec!["Function", "Channel", "Outcome"], vec!["Outcome"]],
        "per function, and by outcome alone for the one alarm on failed deliveries"
    );
    for line in &emf.lines {
        assert_eq!(line["Function"], "pipeline-notifier");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "ContainerDeliveryOps"
        );
        assert_eq!(line["level"], "INFO", "kept by Lambda's log-level filter");
    }
    let notified = emf
        .lines
        .iter()
        .find(|l| l["Outcome"] == "notified")
        .unwrap();
    assert_eq!(
        notified["Pipeline"], "prod-api",
        "written beside the metrics for Logs Insights"
    );
    assert!(
        !notified["_aws"].to_string().contains("Pipeline"),
        "but not a dimension unless METRICS_DIMENSIONS names it"
    );
}

/// EventBridge delivers at least once, and a redelivery lands on whichever container is free:
/// two processes handed the same event at once post it once, through the claim in the
/// idempotency table (DynamoDB in moto). The first post is held in flight so the second
/// process arrives while the claim is taken, waits for it, and finds it done.
#[tokio::test]
async fn one_event_delivered_to_two_processes_at_once_is_posted_and_published_once() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let webhook = webhook_in_ssm(&moto, &sink, "ops").await;
    let topic = moto.create_topic("ops-alerts").await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    env.push(("SNS_TOPIC_ARN".into(), topic));
    env.push(("IDEMPOTENCY_TABLE".into(), TABLE.into()));
    let (api_a, api_b) = (RuntimeApi::start().await, RuntimeApi::start().await);
    let mut a = FunctionProcess::spawn(&binary(), &api_a, &env);
    let mut b = FunctionProcess::spawn(&binary(), &api_b, &env);
    sink.script([Reply::Slow(Duration::from_millis(1500))]);

    let event = common::sample("action-failed-codebuild.json");
    let first = api_a.invoke(&mut a, &event, Duration::from_secs(20));
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api_b.invoke(&mut b, &event, Duration::from_secs(20)).await
    };
    let (first, second) = tokio::join!(first, second);
    let outcomes = [&first.outcome, &second.outcome].map(|o| match o {
        Outcome::Response(v) => v["outcome"].as_str().unwrap_or_default().to_owned(),
        other => format!("{other:?}"),
    });
    assert_eq!(outcomes, ["notified", "skipped"], "{first:?}\n{second:?}");
    assert_eq!(sink.delivered().len(), 1, "one Slack post");
    let publishes = stub
        .calls()
        .iter()
        .filter(|c| c.operation == "Publish")
        .count();
    assert_eq!(publishes, 1, "one SNS publish");
    a.stop().await;
    b.stop().await;
}

/// An on-call e-mail subscribed with a filter policy for failures: through the binary, a
/// pipeline that fails reaches it, one that starts or succeeds does not (moto applies the
/// filter policy to the message attributes each publish carries, as SNS does); a subscriber
/// without a filter gets all three.
#[tokio::test]
async fn an_sns_subscription_filtered_to_failures_receives_only_failures() {
    let Rig { moto, stub, .. } = Rig::start().await;
    let topic = moto.create_topic("ops-alerts").await;
    let sdk = moto.sdk_config().await;
    let everything = standins::moto::inbox_for(&sdk, &topic).await;
    let failures = standins::moto::filtered_inbox_for(
        &sdk,
        &topic,
        "oncall",
        &json!({"severity": ["failure"], "function": ["pipeline-notifier"]}),
    )
    .await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SNS_TOPIC_ARN".into(), topic));
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    for sample in [
        "pipeline-started.json",
        "pipeline-succeeded.json",
        "pipeline-failed.json",
    ] {
        let answer = api
            .invoke(
                &mut function,
                &common::sample(sample),
                Duration::from_secs(20),
            )
            .await;
        assert!(
            matches!(&answer.outcome, Outcome::Response(v) if v["outcome"] == "notified"),
            "{sample}: {answer:?}"
        );
    }
    function.stop().await;

    let oncall = standins::moto::received(&sdk, &failures).await;
    assert_eq!(oncall.len(), 1, "{oncall:?}");
    assert!(
        oncall[0]["Subject"]
            .as_str()
            .unwrap_or_default()
            .starts_with("[FAILED]")
    );
    assert_eq!(
        oncall[0]["MessageAttributes"]["pipeline"]["Value"],
        "prod-api"
    );
    assert_eq!(standins::moto::received(&sdk, &everything).await.len(), 3);
}

/// Planted at DEBUG (every crate's debug output on): the function's AWS secret key and
/// session token, and the webhook kept in SSM. Through a post, a publish, a webhook that
/// has gone (404, so the secret is read again) and an event it does not understand, none of
/// them reaches a log line, an answer, a post or a request to AWS.
#[tokio::test]
async fn at_debug_no_planted_secret_reaches_a_log_an_answer_a_post_or_a_publish() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    // The webhook where the stack as tested keeps it (SlackWebhookParameterName): SSM.
    let webhook = webhook_in_ssm(&moto, &sink, "ops").await;
    let topic = moto.create_topic("ops-alerts").await;
    let mut env = standins::planted::debug_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    env.push(("SNS_TOPIC_ARN".into(), topic));
    env.push(("IDEMPOTENCY_TABLE".into(), TABLE.into()));
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let mut answers = Vec::new();
    for (file, reply) in [
        ("action-failed-codebuild.json", Reply::Ok),
        ("pipeline-failed.json", Reply::Status(404, "no_service")),
        ("not-codepipeline.json", Reply::Ok),
    ] {
        sink.script([reply]);
        let out = api
            .invoke(
                &mut function,
                &common::sample(file),
                Duration::from_secs(20),
            )
            .await;
        answers.push(format!("{:?}", out.outcome));
    }
    let logs = function.stop().await;
    assert!(!sink.delivered().is_empty(), "the scenario posted");
    standins::planted::assert_none_leaked(
        &standins::planted::always(),
        &logs,
        &answers,
        &sink,
        &stub,
    );
}

/// A bad variable does not stop the function: stopped at init, every event would go to the
/// dead-letter queue and nobody would learn why the channel went quiet. It posts the error,
/// once per container, and returns an error for each event so it is kept for a redrive.
#[tokio::test]
async fn a_bad_variable_is_posted_once_naming_it_and_events_are_kept_for_a_redrive() {
    let sink = SlackSink::start().await;
    let api = RuntimeApi::start().await;
    let env = vec![
        ("NOTIFY_ON".to_owned(), "pipeline:EXPLODED".to_owned()),
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("ops")),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
    ];
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    for _ in 0..2 {
        let out = api
            .invoke(
                &mut function,
                &common::sample("pipeline-failed.json"),
                Duration::from_secs(20),
            )
            .await;
        assert!(
            matches!(&out.outcome, Outcome::Error(v) if v.to_string().contains("not configured")),
            "{out:?}"
        );
    }
    let posts = sink.delivered();
    assert_eq!(posts.len(), 1, "once per container");
    let text = posts[0].to_string();
    assert!(
        text.contains("NOTIFY_ON") && text.contains("misconfigured"),
        "{text}"
    );
    let lines = function.stop().await;
    let emf = standins::emf::parse(&lines);
    assert_eq!(
        emf.sum("ConfigErrors", &[]),
        2.0,
        "one per event it could not handle"
    );
    let logs = lines.join("\n");
    assert!(
        logs.contains("NOTIFY_ON") && logs.contains("unknown state"),
        "{logs}"
    );
}

/// Every input is untrusted (fault matrix, "bad input"): each unusable body ends in an
/// acknowledgement or a clean invocation error, never a panic, a crash or a hang, and the
/// process goes on to post the next real event.
#[tokio::test]
async fn bad_payloads_end_cleanly_and_the_process_lives_on() {
    let sink = SlackSink::start().await;
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env("http://127.0.0.1:9");
    env.push(("SLACK_WEBHOOK_URL".into(), sink.webhook_url("ops")));
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    standins::runtime_api::assert_bad_payloads_end_cleanly(&api, &mut function, &[]).await;
    assert!(sink.delivered().is_empty(), "nothing posted for bad input");
    let real = api
        .invoke(
            &mut function,
            &common::sample("pipeline-failed.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&real.outcome, Outcome::Response(v) if v["outcome"] == "notified"),
        "{real:?}"
    );
    let logs = function.stop().await.join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
}

/// Web API mode in the binary, at DEBUG: the bot token read from SSM (where the stack as
/// tested keeps it, SlackBotTokenParameterName), a failing execution's events, one live
/// message that ends red with the failure broadcast from its thread, and the token in no log
/// line, answer, post or AWS request.
#[tokio::test]
async fn in_web_api_mode_the_binary_keeps_one_live_message_and_never_shows_the_token() {
    use standins::slack_sink::{BOT_TOKEN, CHANNEL};
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    moto.put_parameter("/ops/slack/bot-token", BOT_TOKEN, "SecureString")
        .await;
    let mut env = standins::planted::debug_env(&stub.endpoint());
    for (k, v) in [
        ("SLACK_BOT_TOKEN", "ssm:/ops/slack/bot-token".to_owned()),
        ("SLACK_CHANNEL", CHANNEL.to_owned()),
        ("SLACK_API_URL", sink.api_url()),
        ("SLACK_WEBHOOK_URL", sink.webhook_url("ops")),
        ("FAILURE_MENTION", "<!here>".to_owned()),
        ("IDEMPOTENCY_TABLE", TABLE.to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let mut answers = Vec::new();
    for event in execution_events("exec-binary", Ending::BuildFails) {
        let out = api
            .invoke(&mut function, &event, Duration::from_secs(20))
            .await;
        assert!(matches!(out.outcome, Outcome::Response(_)), "{out:?}");
        answers.push(format!("{:?}", out.outcome));
    }
    let logs = function.stop().await;
    let tops = sink.top_messages(CHANNEL);
    assert_eq!(tops.len(), 1, "{tops:#?}");
    assert_eq!(tops[0].blocks[0]["text"]["text"], "❌ prod-api failed");
    let replies = sink.replies(CHANNEL, &tops[0].ts);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].reply_broadcast && replies[0].text.starts_with("<!here>"));
    assert!(
        sink.delivered().is_empty(),
        "no webhook post in Web API mode"
    );
    standins::planted::assert_none_leaked(
        &standins::planted::always(),
        &logs,
        &answers,
        &sink,
        &stub,
    );
}

/// The stack's log settings (template.yaml: JSON, ApplicationLogLevel WARN): Lambda keeps a
/// line above INFO only if it is a JSON object with a known `level` and an RFC 3339
/// `timestamp` (standins::lambda_logs applies that rule). An event it cannot use (WARN) and
/// Slack down (ERROR) must reach CloudWatch, each line saying what happened, when, in which
/// invocation and function; so must every metric line, which the alarms read.
#[tokio::test]
async fn at_log_level_warn_lambda_keeps_the_warnings_errors_and_metrics() {
    use standins::lambda_logs::{Level, kept, level_of};
    const FUNCTION: &str = "ops-pipeline-notifier";
    let sink = SlackSink::start().await;
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env("http://127.0.0.1:9");
    for (k, v) in [
        ("SLACK_WEBHOOK_URL", sink.webhook_url("ops")),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN".to_owned()),
        // The release bootstrap is named `bootstrap`; Lambda gives the function's own name.
        ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION.to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let notified = api
        .invoke(
            &mut function,
            &common::sample("pipeline-failed.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&notified.outcome, Outcome::Response(v) if v["outcome"] == "notified"),
        "{notified:?}"
    );
    let ignored = api
        .invoke(
            &mut function,
            &common::sample("not-codepipeline.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&ignored.outcome, Outcome::Response(v) if v["outcome"] == "ignored"),
        "{ignored:?}"
    );
    sink.script(std::iter::repeat_n(Reply::Status(500, "rollup_error"), 20));
    let down = api
        .invoke(
            &mut function,
            &common::sample("approval-rejected.json"),
            Duration::from_secs(5),
        )
        .await;
    assert!(matches!(&down.outcome, Outcome::Error(_)), "{down:?}");

    let written = function.stop().await;
    let all = written.join("\n");
    let cloudwatch = kept(&written, Level::Warn);
    for line in &written {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
            && matches!(v["level"].as_str(), Some("WARN" | "ERROR"))
        {
            assert!(
                level_of(line) >= Level::Warn,
                "written at {} but filed by Lambda as {:?}: {line}",
                v["level"],
                level_of(line)
            );
        }
    }
    // The log lines kept (metric lines apart), as written and parsed.
    let logged: Vec<(&String, serde_json::Value)> = cloudwatch
        .iter()
        .filter_map(|l| Some((l, serde_json::from_str::<serde_json::Value>(l).ok()?)))
        .filter(|(_, v)| v.get("_aws").is_none())
        .collect();
    let line_of = |request_id: &str, level: &str, message: &str| {
        logged
            .iter()
            .find(|(_, v)| {
                v["requestId"] == request_id
                    && v["level"] == level
                    && v["message"].as_str().is_some_and(|m| m.contains(message))
            })
            .unwrap_or_else(|| {
                panic!("no {level} line \"{message}\" for {request_id} kept at WARN:\n{all}")
            })
    };
    let scenario = [
        line_of(&ignored.request_id, "WARN", "event ignored"),
        line_of(&down.request_id, "ERROR", "Slack post failed"),
        line_of(&down.request_id, "ERROR", "invocation failed"),
    ];
    for (text, line) in scenario {
        assert_eq!(line["functionName"], FUNCTION, "{text}");
        let id = line["requestId"].as_str().unwrap_or_default();
        assert_eq!(text.matches(id).count(), 1, "the request id once: {text}");
        assert!(
            ["span", "spans", "fields"]
                .iter()
                .all(|k| line.get(k).is_none()),
            "no nested copies: {text}"
        );
    }
    assert!(
        scenario[1].1["error"]
            .as_str()
            .is_some_and(|e| e.contains("Slack")),
        "the event's own fields at the top level: {}",
        scenario[1].0
    );
    assert!(
        !logged
            .iter()
            .any(|(_, v)| v["message"] == "posted to Slack"),
        "INFO lines are not kept at WARN:\n{all}"
    );

    let emf = standins::emf::parse(&cloudwatch);
    assert_eq!(emf.sum("ColdStart", &[]), 1.0, "{all}");
    for outcome in ["notified", "ignored", "failed"] {
        assert_eq!(
            emf.sum("Events", &[("Outcome", outcome)]),
            1.0,
            "{outcome}: every metric line kept:\n{all}"
        );
    }
    assert_eq!(
        emf.sum(
            "Notifications",
            &[("Channel", "slack"), ("Outcome", "failed")]
        ),
        1.0,
        "the line the failed-delivery alarm reads"
    );
}

/// The done-when of ECS deployments: the `ECS Deployment State Change` FAILED event exactly
/// as the ECS developer guide publishes it (circuit breaker reason), through the binary, is
/// posted once, with the on-call mention, the service and cluster, the revisions before and
/// after with their images, and the rollback ECS made; its redelivery posts nothing.
#[tokio::test]
async fn the_published_circuit_breaker_failure_is_posted_once_with_the_service_the_revisions_and_the_rollback()
 {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let webhook = webhook_in_ssm(&moto, &sink, "ops").await;
    ecs_answers::describe_the_rolled_back_deployment(&stub);
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    env.push(("FAILURE_MENTION".into(), "<!here>".into()));
    env.push(("IDEMPOTENCY_TABLE".into(), TABLE.into()));
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let event = common::sample("ecs-deployment-failed.json");
    let first = api
        .invoke(&mut function, &event, Duration::from_secs(20))
        .await;
    assert!(
        matches!(&first.outcome, Outcome::Response(v) if v["outcome"] == "notified"),
        "{first:?}"
    );
    let again = api
        .invoke(&mut function, &event, Duration::from_secs(20))
        .await;
    assert!(
        matches!(&again.outcome, Outcome::Response(v) if v["outcome"] == "skipped"),
        "a redelivery: {again:?}"
    );
    function.stop().await;

    let posted = sink.delivered();
    assert_eq!(posted.len(), 1, "posted once: {posted:?}");
    let text = posted[0].to_string();
    assert!(
        posted[0]["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("<!here> ❌ servicetest: deployment failed and was rolled back"),
        "{}",
        posted[0]["text"]
    );
    for shown in [
        "*Cluster*\\ndefault",
        "ECS deployment circuit breaker: task failed to start.",
        "`servicetest:41`",
        "`servicetest:42`",
        "servicetest:1.42.0@sha256:9f8e7d6c5b4a",
        "*Rolled back to* `servicetest:41`",
        "Circuit breaker: 3 failed tasks (threshold 3)",
        "ecs/v2/clusters/default/services/servicetest/deployments",
    ] {
        assert!(text.contains(shown), "{shown} missing from {text}");
    }
    let asked: Vec<String> = stub
        .calls()
        .iter()
        .filter(|c| c.service.starts_with("AmazonEC2ContainerService"))
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(
        asked,
        [
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "DescribeServiceRevisions"
        ],
        "described once, for the first delivery only"
    );
}

/// The other published ECS events, each through the binary: a deployment starting (when ECS
/// cannot describe it, the message goes without its revisions), a rollback under way, a
/// release that reached steady state, a service whose tasks keep failing to start (told
/// once an hour however often ECS repeats it), a placement failure, and a steady state,
/// which is not news. `ecs:*`: the default leaves out the rollback under way, which the
/// failure and the rollback's completion tell.
#[tokio::test]
async fn published_ecs_events_tell_a_start_a_rollback_a_release_and_a_service_in_trouble() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let webhook = webhook_in_ssm(&moto, &sink, "ops").await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    env.push(("NOTIFY_ON".into(), "ecs:*".into()));
    env.push(("IDEMPOTENCY_TABLE".into(), TABLE.into()));
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    // The guide's deployment examples share one event id; EventBridge gives each event its
    // own, which is what the claims go by.
    let published = |name: &str, id: &str| {
        let mut event = common::sample(name);
        event["id"] = json!(id);
        event
    };
    let mut invoke = async |event: serde_json::Value| match api
        .invoke(&mut function, &event, Duration::from_secs(20))
        .await
        .outcome
    {
        Outcome::Response(v) => v["outcome"].as_str().unwrap_or_default().to_owned(),
        other => format!("{other:?}"),
    };
    // Nothing describes the deployment yet: ECS's calls fail, the start is told without.
    assert_eq!(
        invoke(published("ecs-deployment-in-progress.json", "e-start")).await,
        "notified"
    );
    ecs_answers::describe_the_rolled_back_deployment(&stub);
    assert_eq!(
        invoke(published("ecs-deployment-rollback.json", "e-rollback")).await,
        "notified"
    );
    assert_eq!(
        invoke(published("ecs-deployment-completed.json", "e-completed")).await,
        "notified"
    );
    let impaired = common::sample("ecs-service-task-start-impaired.json");
    assert_eq!(invoke(impaired.clone()).await, "notified");
    let mut repeated = impaired;
    repeated["id"] = json!("57c9506e-9d21-294c-d2fe-e8738da7e680");
    assert_eq!(invoke(repeated).await, "skipped", "told once an hour");
    assert_eq!(
        invoke(common::sample("ecs-service-task-placement-failure.json")).await,
        "notified"
    );
    assert_eq!(
        invoke(common::sample("ecs-service-steady-state.json")).await,
        "ignored"
    );
    function.stop().await;

    let titles: Vec<String> = sink
        .delivered()
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        titles,
        [
            "🚀 servicetest: deployment started",
            "↩️ servicetest: deployment failed, rolling back",
            "↩️ servicetest: rolled back to the previous revision",
            "⚠️ servicetest: tasks keep failing to start",
            "⚠️ servicetest: tasks cannot be placed",
        ]
    );
    let placement = sink.delivered()[4].to_string();
    assert!(placement.contains("RESOURCE:FARGATE"), "{placement}");
}

/// The done-when of "back to green": with successes muted (`NOTIFY_ON=pipeline:FAILED`), a
/// pipeline whose build failed and whose next execution succeeded gets exactly one
/// "green again" message, saying what broke and which execution fixed it, although its
/// events land on two containers and the success reaches both at once; a redelivery tells
/// nothing more. The outcomes live in DynamoDB (moto), merged under a version check.
#[tokio::test]
async fn a_pipeline_green_again_is_told_once_across_two_containers_with_successes_muted() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let webhook = webhook_in_ssm(&moto, &sink, "ops").await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    env.push(("IDEMPOTENCY_TABLE".into(), TABLE.into()));
    env.push(("NOTIFY_ON".into(), "pipeline:FAILED".into()));
    let (api_a, api_b) = (RuntimeApi::start().await, RuntimeApi::start().await);
    let mut a = FunctionProcess::spawn(&binary(), &api_a, &env);
    let mut b = FunctionProcess::spawn(&binary(), &api_b, &env);

    let red = execution_events("exec-red", Ending::BuildFails);
    let green = execution_events("exec-green", Ending::Succeeded);
    for (i, event) in red.iter().enumerate() {
        let (api, f) = if i % 2 == 0 {
            (&api_a, &mut a)
        } else {
            (&api_b, &mut b)
        };
        let answer = api.invoke(f, event, Duration::from_secs(20)).await;
        assert!(matches!(answer.outcome, Outcome::Response(_)), "{answer:?}");
    }
    let (last, earlier) = green.split_last().expect("events");
    for event in earlier {
        let answer = api_a.invoke(&mut a, event, Duration::from_secs(20)).await;
        assert!(matches!(answer.outcome, Outcome::Response(_)), "{answer:?}");
    }
    // The success delivered to both containers at once (EventBridge delivers at least once).
    let (first, second) = tokio::join!(
        api_a.invoke(&mut a, last, Duration::from_secs(20)),
        api_b.invoke(&mut b, last, Duration::from_secs(20))
    );
    for answer in [&first, &second] {
        assert!(matches!(answer.outcome, Outcome::Response(_)), "{answer:?}");
    }
    let again = api_b.invoke(&mut b, last, Duration::from_secs(20)).await;
    assert!(matches!(again.outcome, Outcome::Response(_)), "{again:?}");
    a.stop().await;
    b.stop().await;

    let titles: Vec<String> = sink
        .delivered()
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        titles,
        ["❌ prod-api failed", "💚 prod-api is green again"],
        "the failure, then one recovery; no success message"
    );
    let recovered = sink.delivered()[1].to_string();
    for shown in [
        "BuildImage in stage Build (CodeBuild): Build terminated with state: FAILED",
        "exec-green",
        "exec-red",
    ] {
        assert!(
            recovered.contains(shown),
            "{shown} missing from {recovered}"
        );
    }
}

/// With `SLACK_APPROVALS=on` (the template sets it when pipeline-approvals is deployed), the
/// binary's "waiting for approval" message carries Approve and Reject buttons whose value
/// names the approval (pipeline, stage, action, execution) and nothing else; the console link
/// stays. Without it, no buttons.
#[tokio::test]
async fn with_slack_approvals_on_a_waiting_approval_carries_approve_and_reject_buttons() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let webhook = webhook_in_ssm(&moto, &sink, "ops").await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    env.push(("SLACK_APPROVALS".into(), "on".into()));
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let answer = api
        .invoke(
            &mut function,
            &common::sample("approval-started.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&answer.outcome, Outcome::Response(v) if v["outcome"] == "notified"),
        "{answer:?}"
    );
    function.stop().await;
    let posted = sink.delivered();
    let choices = posted[0]["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["block_id"] == shared::approval::BLOCK_ID)
        .cloned()
        .expect("the approval buttons");
    let ids: Vec<&str> = choices["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action_id"].as_str())
        .collect();
    assert_eq!(ids, [shared::approval::APPROVE, shared::approval::REJECT]);
    let value = choices["elements"][0]["value"].as_str().unwrap_or_default();
    let named = shared::approval::ApprovalRef::from_value(value).expect("names the approval");
    assert_eq!(
        (
            named.pipeline.as_str(),
            named.stage.as_str(),
            named.action.as_str()
        ),
        ("prod-api", "Approve", "ProductionGate")
    );
    assert!(
        posted[0].to_string().contains("Review in the console"),
        "the console link stays"
    );
}
