//! The Slack client against the recording webhook sink: retries, permanent errors,
//! deadlines, limits, and the webhook URL kept out of every log line and error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::Deadline;
use shared::retry::Backoff;
use shared::secrets::Secret;
use shared::slack::{Block, Message, Mrkdwn, SlackClient, SlackError};
use standins::slack_sink::WEBHOOK_TOKEN;
use standins::{CapturedLog, Reply, SlackSink};

fn quick_client() -> SlackClient {
    let backoff = Backoff {
        first: Duration::from_millis(20),
        max: Duration::from_millis(100),
        max_attempts: 4,
    };
    SlackClient::with_policy(backoff, Duration::from_secs(2)).unwrap()
}

fn message() -> Message {
    Message::new(Mrkdwn::from_untrusted("prod-api FAILED"))
        .block(Block::Header("prod-api: FAILED".into()))
        .block(Block::section(
            Mrkdwn::new()
                .bold("Build")
                .plain(" failed: <!channel> & friends"),
        ))
}

async fn sink_and_webhook() -> (SlackSink, Secret) {
    let sink = SlackSink::start().await;
    let url = Secret::new(sink.webhook_url("B001"));
    (sink, url)
}

#[tokio::test]
async fn posts_the_block_kit_payload_once() {
    let (sink, webhook) = sink_and_webhook().await;
    quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let delivered = sink.delivered();
    let expected = message().to_payload();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["text"], expected["text"]);
    assert_eq!(delivered[0]["blocks"], expected["blocks"]);
    assert_eq!(
        delivered[0]["blocks"][1]["text"]["text"],
        "*Build* failed: &lt;!channel&gt; &amp; friends"
    );
}

/// A console link, or a URL in untrusted text, must never make Slack fetch the page and
/// show a preview of it: the webhook payload turns link and media unfurling off, as the Web
/// API's does (Slack's incoming webhooks take the same two fields as chat.postMessage).
#[tokio::test]
async fn webhook_posts_ask_slack_not_to_unfurl_links_or_media() {
    let (sink, webhook) = sink_and_webhook().await;
    let linked = Message::new(Mrkdwn::from_untrusted(
        "commit says: see https://attacker.example/preview.png",
    ))
    .block(Block::section(Mrkdwn::from_untrusted(
        "https://console.aws.amazon.com/codesuite/codepipeline/pipelines/prod-api/view",
    )));
    quick_client()
        .post(&webhook, &linked, &Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap();
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["unfurl_links"], serde_json::Value::Bool(false));
    assert_eq!(delivered[0]["unfurl_media"], serde_json::Value::Bool(false));
}

#[tokio::test]
async fn rate_limit_is_honoured_by_waiting_for_retry_after() {
    let (sink, webhook) = sink_and_webhook().await;
    sink.script([Reply::RateLimited {
        retry_after_secs: 1,
    }]);
    let started = Instant::now();
    quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After: {:?}",
        started.elapsed()
    );
    let statuses: Vec<u16> = sink.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let (sink, webhook) = sink_and_webhook().await;
    sink.script([
        Reply::Status(500, "rollup_error"),
        Reply::Status(503, "unavailable"),
    ]);
    quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let statuses: Vec<u16> = sink.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 503, 200]);
}

#[tokio::test]
async fn persistent_server_errors_end_as_a_retryable_failure() {
    let (sink, webhook) = sink_and_webhook().await;
    sink.script(std::iter::repeat_n(Reply::Status(500, "rollup_error"), 10));
    let err = quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(
        err,
        SlackError::Unavailable {
            attempts: 4,
            last: "HTTP 500 rollup_error".into()
        }
    );
    assert_eq!(sink.requests().len(), 4);
}

#[tokio::test]
async fn no_service_is_permanent_and_not_retried() {
    let (sink, webhook) = sink_and_webhook().await;
    sink.script([Reply::Status(404, "no_service")]);
    let err = quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SlackError::Rejected {
            status: 404,
            error: "no_service".into()
        }
    );
    assert!(!err.is_retryable());
    assert_eq!(sink.requests().len(), 1);
}

#[tokio::test]
async fn invalid_payload_is_permanent() {
    let (sink, webhook) = sink_and_webhook().await;
    sink.script([Reply::Status(400, "invalid_payload")]);
    let err = quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SlackError::Rejected {
            status: 400,
            error: "invalid_payload".into()
        }
    );
}

#[tokio::test]
async fn a_hanging_webhook_is_abandoned_by_the_deadline() {
    let (sink, webhook) = sink_and_webhook().await;
    sink.script(std::iter::repeat_n(Reply::Hang, 10));
    let client = SlackClient::with_policy(
        Backoff {
            first: Duration::from_millis(20),
            max: Duration::from_millis(50),
            max_attempts: 10,
        },
        Duration::from_secs(30),
    )
    .unwrap();
    let started = Instant::now();
    let err = client
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_millis(1500)),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, SlackError::OutOfTime { .. }), "{err}");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_gives_up_at_once() {
    let (sink, webhook) = sink_and_webhook().await;
    sink.script([Reply::RateLimited {
        retry_after_secs: 30,
    }]);
    let started = Instant::now();
    let err = quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(3)),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(err, SlackError::OutOfTime { attempts: 1, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn huge_untrusted_text_is_cut_to_what_slack_accepts() {
    let (sink, webhook) = sink_and_webhook().await;
    let huge = "<!channel> ünïcödé 😀 & ".repeat(5000);
    let mut m = Message::new(Mrkdwn::from_untrusted(&huge)).block(Block::Header(huge.clone()));
    for _ in 0..60 {
        m = m.block(Block::section(Mrkdwn::from_untrusted(&huge)));
    }
    quick_client()
        .post(&webhook, &m, &Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap();
    let delivered = sink.delivered();
    assert_eq!(
        delivered.len(),
        1,
        "the sink, checking Slack's limits, refused: {:?}",
        sink.requests().last().map(|r| r.status)
    );
    assert!(!delivered[0].to_string().contains("<!channel>"));
}

#[tokio::test]
async fn the_webhook_url_never_reaches_a_log_line_or_an_error() {
    let logs = CapturedLog::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (sink, webhook) = sink_and_webhook().await;
    sink.script([
        Reply::Status(500, "rollup_error"),
        Reply::Hang,
        Reply::Status(404, "no_service"),
    ]);
    let client = quick_client();
    let err = client
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
    // A transport error from a closed port carries the URL inside reqwest unless stripped.
    let dead = Secret::new(format!(
        "http://127.0.0.1:{}/services/T/B/{WEBHOOK_TOKEN}",
        standins::moto::free_port()
    ));
    let dead_err = client
        .post(
            &dead,
            &message(),
            &Deadline::after(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();

    let text = logs.text();
    assert!(
        text.contains("Slack"),
        "expected log lines about the retries: {text}"
    );
    for shown in [
        text,
        err.to_string(),
        format!("{err:?}"),
        dead_err.to_string(),
        format!("{webhook:?}"),
    ] {
        assert!(
            !shown.contains(WEBHOOK_TOKEN),
            "webhook token leaked: {shown}"
        );
    }
}

/// Slack's answers for a webhook that no longer leads anywhere (Slack's incoming-webhook
/// error reference): each is permanent, sent once, and named by Slack's own word.
#[tokio::test]
async fn a_disabled_removed_or_archived_webhook_is_permanent_and_sent_once() {
    for (status, word) in [
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ] {
        let (sink, webhook) = sink_and_webhook().await;
        sink.script([Reply::Status(status, word)]);
        let err = quick_client()
            .post(
                &webhook,
                &message(),
                &Deadline::after(Duration::from_secs(10)),
            )
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{status} {word}");
        assert!(err.to_string().contains(word), "{err}");
        assert_eq!(sink.requests().len(), 1, "{status} {word}: not retried");
    }
}

/// A connection reset mid-request (a proxy, a load balancer) is a transport fault: retried,
/// and the post lands once. Played by a bare TCP server that resets its first connection
/// (SO_LINGER 0) and answers the second as Slack does.
#[tokio::test]
async fn a_connection_reset_is_retried_and_the_post_lands_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(Mutex::new(0u32));
    let count = served.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            let _ = stream.read(&mut buf).await;
            if std::mem::take(&mut first) {
                let _ = stream.set_zero_linger();
                drop(stream);
                continue;
            }
            *count.lock().unwrap() += 1;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    let webhook = Secret::new(format!("http://{addr}/services/T000/B001/{WEBHOOK_TOKEN}"));
    quick_client()
        .post(
            &webhook,
            &message(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(
        *served.lock().unwrap(),
        1,
        "delivered once, after the reset"
    );
}
