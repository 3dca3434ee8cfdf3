//! `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` are how a function in a VPC reaches the
//! internet through a proxy (README, Deploy). The SDK's own HTTP client honours them at the
//! behaviour version used here (2025-08-07 and later: aws-smithy-runtime reads
//! `ProxyConfig::from_env`), so the reqwest stack it now sends through must too, and `NO_PROXY`
//! must keep a host (such as `.amazonaws.com` behind VPC endpoints) off the proxy. Slack posts
//! honour them as before.
//! One test in its own binary, because it sets process-wide variables.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::Region;
use aws_sdk_ssm::config::{Credentials, SharedCredentialsProvider};
use shared::Deadline;
use shared::secrets::Secret;
use shared::slack::{Message, Mrkdwn, SlackClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that counts connections and answers each request with `answer`.
async fn answering(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = socket.write_all(answer).await;
            });
        }
    });
    (address, seen)
}

async fn ssm_against(endpoint: String) -> aws_sdk_ssm::Client {
    let sdk = shared::aws::load_sdk_config()
        .await
        .unwrap()
        .to_builder()
        .endpoint_url(endpoint)
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .build();
    aws_sdk_ssm::Client::new(&sdk)
}

#[tokio::test]
async fn aws_calls_and_slack_posts_go_through_the_proxy_variables_except_for_no_proxy_hosts() {
    let (proxy, through_proxy) =
        answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
    let (aws, at_aws) = answering(
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    )
    .await;
    let aws_port = aws.rsplit(':').next().unwrap().to_owned();
    // SAFETY: the only test in this binary, so no other thread reads the environment.
    unsafe {
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
            std::env::set_var(name, format!("http://{proxy}"));
        }
        std::env::set_var("NO_PROXY", "localhost");
        std::env::remove_var("no_proxy");
    }

    // By address: through the proxy, which answers for the endpoint.
    let _ = ssm_against(format!("http://{aws}"))
        .await
        .get_parameter()
        .name("/any")
        .send()
        .await;
    assert!(
        through_proxy.load(Ordering::SeqCst) > 0,
        "the call went through the proxy"
    );
    assert_eq!(
        at_aws.load(Ordering::SeqCst),
        0,
        "and not straight to the endpoint"
    );

    // By a NO_PROXY name: straight to the endpoint.
    let before = through_proxy.load(Ordering::SeqCst);
    let _ = ssm_against(format!("http://localhost:{aws_port}"))
        .await
        .get_parameter()
        .name("/any")
        .send()
        .await;
    assert_eq!(
        at_aws.load(Ordering::SeqCst),
        1,
        "NO_PROXY kept the call off the proxy"
    );
    assert_eq!(through_proxy.load(Ordering::SeqCst), before);

    // The webhook's host is never connected to: the proxy answers for it.
    let webhook = Secret::new("http://127.0.0.1:9/services/T0/B0/x".to_owned());
    SlackClient::new()
        .unwrap()
        .post(
            &webhook,
            &Message::new(Mrkdwn::from_untrusted("through the proxy")),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(
        through_proxy.load(Ordering::SeqCst),
        before + 1,
        "Slack went through the proxy"
    );
}
