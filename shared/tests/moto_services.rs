//! Secrets, SNS and the notifier against a real moto server (and the Slack sink).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use serde_json::json;
use shared::Deadline;
use shared::notifier::{
    Attributes, ChannelOutcome, Notification, Notifier, NotifierConfig, Notify, Tone,
};
use shared::secrets::{SecretRef, Secrets};
use shared::slack::{Block, Message, Mrkdwn, SlackClient};
use shared::sns::SnsPublisher;
use standins::moto::received;
use standins::rig::budget;
use standins::{Moto, SlackSink};

#[tokio::test]
async fn ssm_secure_string_is_decrypted_once_and_then_served_from_cache() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    ssm.put_parameter()
        .name("/ops/slack/webhook")
        .value("https://hooks.slack.com/services/T/B/first")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();

    let secrets = Secrets::new(&sdk);
    let reference = SecretRef::parse("ssm:/ops/slack/webhook").unwrap();
    let first = secrets.resolve(&reference, &budget(20)).await.unwrap();
    assert_eq!(first.expose(), "https://hooks.slack.com/services/T/B/first");

    ssm.delete_parameter()
        .name("/ops/slack/webhook")
        .send()
        .await
        .unwrap();
    let again = secrets.resolve(&reference, &budget(20)).await.unwrap();
    assert_eq!(
        again, first,
        "the second read must come from the per-container cache"
    );
}

#[tokio::test]
async fn secrets_manager_secret_is_read_whole_or_by_json_key() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    sm.create_secret()
        .name("ops/slack-plain")
        .secret_string("https://hooks.slack.com/services/T/B/plain")
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("ops/slack-json")
        .secret_string(r#"{"webhook_url":"https://hooks.slack.com/services/T/B/json","other":"x"}"#)
        .send()
        .await
        .unwrap();

    let secrets = Secrets::new(&sdk);
    let plain = secrets
        .resolve(
            &SecretRef::parse("secretsmanager:ops/slack-plain").unwrap(),
            &budget(20),
        )
        .await
        .unwrap();
    assert_eq!(plain.expose(), "https://hooks.slack.com/services/T/B/plain");
    let keyed = secrets
        .resolve(
            &SecretRef::parse("secretsmanager:ops/slack-json#webhook_url").unwrap(),
            &budget(20),
        )
        .await
        .unwrap();
    assert_eq!(keyed.expose(), "https://hooks.slack.com/services/T/B/json");
    let wrong_key = secrets
        .resolve(
            &SecretRef::parse("secretsmanager:ops/slack-json#nope").unwrap(),
            &budget(20),
        )
        .await
        .unwrap_err();
    assert!(!wrong_key.is_retryable());
    assert!(
        !wrong_key.to_string().contains("hooks.slack.com"),
        "{wrong_key}"
    );
}

#[tokio::test]
async fn a_missing_parameter_is_a_permanent_error_naming_it() {
    let moto = Moto::start();
    let secrets = Secrets::new(&moto.sdk_config().await);
    let err = secrets
        .resolve(
            &SecretRef::parse("ssm:/does/not/exist").unwrap(),
            &budget(20),
        )
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(err.aws_code(), Some("ParameterNotFound"));
}

#[tokio::test]
async fn an_unreachable_service_is_retryable() {
    let sdk = standins::moto::sdk_config_for(&format!(
        "http://127.0.0.1:{}",
        standins::moto::free_port()
    ))
    .await;
    let secrets = Secrets::new(&sdk);
    let err = secrets
        .resolve(
            &SecretRef::parse("ssm:/x").unwrap(),
            &Deadline::after(Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

/// A topic with an inbox subscribed, so what SNS delivered can be read back ([`received`]).
async fn topic_with_queue(sdk: &aws_config::SdkConfig) -> (String, String) {
    let topic = aws_sdk_sns::Client::new(sdk)
        .create_topic()
        .name("delivery-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_url = standins::moto::inbox_for(sdk, &topic).await;
    (topic, queue_url)
}

#[tokio::test]
async fn sns_publish_lands_with_a_clean_subject() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let (topic, queue) = topic_with_queue(&sdk).await;
    let sns = SnsPublisher::new(&sdk, &topic);
    sns.publish(
        "prod-api: FAILED\nat stage Deploy — ünïcode",
        "The Deploy stage failed.",
        &[],
        &budget(20),
    )
    .await
    .unwrap();

    let got = received(&sdk, &queue).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["Subject"],
        "prod-api: FAILED at stage Deploy ? ?n?code"
    );
    assert_eq!(got[0]["Message"], "The Deploy stage failed.");
}

#[tokio::test]
async fn publishing_to_a_missing_topic_is_permanent() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let sns = SnsPublisher::new(&sdk, "arn:aws:sns:us-east-1:123456789012:nope");
    let err = sns.publish("s", "m", &[], &budget(20)).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

/// A subscription whose filter policy asks for failures only gets failures, and a notice
/// nobody classified (which counts as a failure), not successes or news: moto applies the
/// filter policy as SNS does. Every publish carries `severity`, and the tags it was given.
#[tokio::test]
async fn a_subscription_filtered_to_failures_receives_only_failures() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let (topic, everything) = topic_with_queue(&sdk).await;
    let failures = standins::moto::filtered_inbox_for(
        &sdk,
        &topic,
        "failures",
        &json!({"severity": ["failure"]}),
    )
    .await;
    let notifier = Notifier::new(
        NotifierConfig {
            slack_webhook: None,
            sns_topic_arn: Some(topic.clone()),
        },
        &sdk,
        SlackClient::new().unwrap(),
        Arc::new(Secrets::new(&sdk)),
    );
    let tagged = |subject: &str, tone: Tone, outcome: &str| {
        Notification::new(subject, Message::new(Mrkdwn::from_untrusted(subject))).tagged(
            Attributes::new("pipeline-notifier", tone)
                .outcome(outcome)
                .about("pipeline", "prod-api"),
        )
    };
    for n in [
        tagged("prod-api FAILED", Tone::Failure, "FAILED"),
        tagged("prod-api SUCCEEDED", Tone::Success, "SUCCEEDED"),
        tagged("prod-api STARTED", Tone::Info, "STARTED"),
        Notification::new("unclassified", Message::new(Mrkdwn::from_untrusted("?"))),
    ] {
        notifier
            .notify(&n, &budget(20))
            .await
            .into_result()
            .unwrap();
    }

    let got = received(&sdk, &failures).await;
    let subjects: Vec<&str> = got.iter().filter_map(|m| m["Subject"].as_str()).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects.contains(&"prod-api FAILED") && subjects.contains(&"unclassified"));
    let failed = got
        .iter()
        .find(|m| m["Subject"] == "prod-api FAILED")
        .unwrap();
    let attribute = |name: &str| failed["MessageAttributes"][name]["Value"].clone();
    assert_eq!(attribute("severity"), "failure");
    assert_eq!(attribute("function"), "pipeline-notifier");
    assert_eq!(attribute("outcome"), "FAILED");
    assert_eq!(attribute("pipeline"), "prod-api");
    assert_eq!(received(&sdk, &everything).await.len(), 4);
}

fn notification() -> Notification {
    Notification::new(
        "prod-api: SUCCEEDED",
        Message::new(Mrkdwn::from_untrusted("prod-api SUCCEEDED")).block(Block::section(
            Mrkdwn::new().bold("prod-api").plain(" succeeded"),
        )),
    )
}

#[tokio::test]
async fn notifier_fans_out_to_slack_from_ssm_and_to_sns() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let sink = SlackSink::start().await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name("/ops/slack/default")
        .value(sink.webhook_url("default"))
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let (topic, queue) = topic_with_queue(&sdk).await;
    let config = NotifierConfig {
        slack_webhook: Some(SecretRef::parse("ssm:/ops/slack/default").unwrap()),
        sns_topic_arn: Some(topic),
    };
    let notifier = Notifier::new(
        config,
        &sdk,
        SlackClient::new().unwrap(),
        Arc::new(Secrets::new(&sdk)),
    );

    let report = notifier.notify(&notification(), &budget(20)).await;
    assert!(
        matches!(report.slack, ChannelOutcome::Delivered),
        "{report:?}"
    );
    assert!(
        matches!(report.sns, ChannelOutcome::Delivered),
        "{report:?}"
    );
    assert_eq!(sink.delivered().len(), 1);
    assert!(sink.requests()[0].path.contains("/default/"));
    assert_eq!(
        received(&sdk, &queue).await[0]["Message"],
        "prod-api succeeded",
        "SNS gets the Slack message's text form"
    );

    // A routed message goes to its own webhook instead of the default.
    let routed =
        notification().routed_to(Some(SecretRef::parse(&sink.webhook_url("prod")).unwrap()));
    notifier
        .notify(&routed, &budget(20))
        .await
        .into_result()
        .unwrap();
    assert!(sink.requests()[1].path.contains("/prod/"));
}

#[tokio::test]
async fn with_no_channel_configured_the_notifier_is_a_dry_run() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let notifier = Notifier::new(
        NotifierConfig::default(),
        &sdk,
        SlackClient::new().unwrap(),
        Arc::new(Secrets::new(&sdk)),
    );
    assert!(notifier.is_dry_run());
    let report = notifier.notify(&notification(), &budget(20)).await;
    assert!(matches!(report.slack, ChannelOutcome::NotConfigured));
    assert!(report.into_result().is_ok());
}

/// The value `secrets` resolves for `reference` now, as text.
async fn read(secrets: &Secrets, reference: &SecretRef) -> String {
    secrets
        .resolve(reference, &budget(20))
        .await
        .unwrap()
        .expose()
        .to_owned()
}

async fn put_secure(sdk: &aws_config::SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// A waiver added in SSM to unblock a release must reach warm containers: once a cached
/// value's time to live has passed it is read again. No sleeping against a short TTL (a busy
/// machine would make that a race): a zero TTL is "already expired", an hour "still fresh".
#[tokio::test]
async fn a_value_is_read_again_once_its_time_to_live_has_passed_and_not_before() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    put_secure(&sdk, "/ops/ecr/waivers", "[]").await;
    let reference = SecretRef::parse("ssm:/ops/ecr/waivers").unwrap();
    let expired_at_once = Secrets::with_ttl(&sdk, Duration::ZERO);
    let fresh_for_an_hour = Secrets::with_ttl(&sdk, Duration::from_secs(3600));
    for secrets in [&expired_at_once, &fresh_for_an_hour] {
        assert_eq!(read(secrets, &reference).await, "[]");
    }
    put_secure(&sdk, "/ops/ecr/waivers", r#"[{"id":"CVE-1"}]"#).await;
    assert_eq!(
        read(&expired_at_once, &reference).await,
        r#"[{"id":"CVE-1"}]"#,
        "past its time to live the value is read again"
    );
    assert_eq!(
        read(&fresh_for_an_hour, &reference).await,
        "[]",
        "within its time to live the cached value is used"
    );
}

/// A refresh that fails for a passing reason keeps the value read before, rather than
/// failing whatever depends on it (a hook's CHECKS during an SSM brownout).
#[tokio::test]
async fn a_refresh_that_fails_for_a_passing_reason_keeps_the_value_read_before() {
    let moto = Moto::start();
    let stub = standins::RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    let sdk = standins::moto::sdk_config_for(&stub.endpoint()).await;
    put_secure(&moto.sdk_config().await, "/canary/checks", "[1]").await;
    let secrets = Secrets::with_ttl(&sdk, Duration::ZERO);
    let reference = SecretRef::parse("ssm:/canary/checks").unwrap();
    assert_eq!(read(&secrets, &reference).await, "[1]");
    stub.throttle("GetParameter", 100);
    assert_eq!(read(&secrets, &reference).await, "[1]");
}

/// A webhook rotated in SSM: the cached URL now answers 404 `no_service`. The notifier drops
/// it, reads the parameter again and posts to the new one in the same invocation.
#[tokio::test]
async fn a_webhook_slack_calls_gone_is_read_again_at_once_and_the_post_lands() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let sink = SlackSink::start().await;
    put_secure(&sdk, "/ops/slack/webhook", &sink.webhook_url("old")).await;
    let notifier = Notifier::new(
        NotifierConfig {
            slack_webhook: Some(SecretRef::parse("ssm:/ops/slack/webhook").unwrap()),
            sns_topic_arn: None,
        },
        &sdk,
        SlackClient::new().unwrap(),
        Arc::new(Secrets::new(&sdk)),
    );
    notifier
        .notify(&notification(), &budget(20))
        .await
        .into_result()
        .unwrap();

    put_secure(&sdk, "/ops/slack/webhook", &sink.webhook_url("new")).await;
    sink.script([standins::Reply::Status(404, "no_service")]);
    let report = notifier.notify(&notification(), &budget(20)).await;
    assert!(
        matches!(report.slack, ChannelOutcome::Delivered),
        "{report:?}"
    );
    let paths: Vec<String> = sink.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(
        paths[1].contains("/old/") && paths[2].contains("/new/"),
        "{paths:?}"
    );
}
