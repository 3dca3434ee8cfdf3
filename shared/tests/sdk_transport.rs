//! The SDK sends through the process's reqwest stack (shared::http), so that adapter decides
//! what the SDK's standard retry mode sees: a dropped connection and a silent server must
//! come back as the transient faults they are and be retried; a fault classed as anything
//! else would fail the call on the first try. The calls themselves, bodies and signatures
//! included, go through the adapter in every test that talks to moto or the recording stub.
//! These use the production configuration (shared::aws::load_sdk_config), with quicker
//! retries, against a loopback server that misbehaves on purpose.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use aws_sdk_ssm::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use standins::CapturedLog;
use tokio::net::{TcpListener, TcpStream};

/// One SSM call, which the misbehaving server makes fail.
async fn failed_call(sdk: &SdkConfig) -> SdkError<GetParameterError, HttpResponse> {
    aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name("/any")
        .send()
        .await
        .unwrap_err()
}

/// Accepts and never answers: the connections are kept open until the test ends.
fn silent() -> impl Fn(TcpStream) + Send + 'static {
    let held = Arc::new(Mutex::new(Vec::new()));
    move |socket| held.lock().unwrap().push(socket)
}

/// The production SDK configuration pointed at a loopback server that counts the
/// connections it accepts and does to each what `serve` says.
async fn production_sdk_against<F>(
    serve: F,
    timeouts: TimeoutConfig,
) -> (SdkConfig, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            serve(socket);
        }
    });
    let production = shared::aws::load_sdk_config().await.unwrap();
    let retries = production
        .retry_config()
        .cloned()
        .unwrap()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1));
    let sdk = production
        .to_builder()
        .endpoint_url(endpoint)
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .retry_config(retries)
        .timeout_config(timeouts)
        .build();
    (sdk, accepted)
}

#[tokio::test]
async fn a_dropped_connection_is_an_io_fault_the_sdk_retries() {
    let (sdk, accepted) = production_sdk_against(drop, TimeoutConfig::disabled()).await;

    let error = failed_call(&sdk).await;

    match &error {
        SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{error:?}"),
        other => panic!("expected a dispatch failure, got {other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "every attempt made");
}

/// Production bounds each attempt with `operation_attempt_timeout` (shared::aws).
#[tokio::test]
async fn a_silent_server_is_cut_off_by_the_attempt_timeout_and_tried_again() {
    let production = shared::aws::load_sdk_config().await.unwrap();
    let attempt_timeout = production
        .timeout_config()
        .unwrap()
        .operation_attempt_timeout();
    assert!(attempt_timeout.is_some(), "production bounds each attempt");
    let (sdk, accepted) = production_sdk_against(
        silent(),
        TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_millis(200))
            .build(),
    )
    .await;

    let error = failed_call(&sdk).await;

    assert!(matches!(error, SdkError::TimeoutError(_)), "{error:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "every attempt made");
}

/// A read timeout is not set in production, but the SDK's HttpClient contract says the
/// client applies one when given (aws-config's metadata clients do).
#[tokio::test]
async fn a_read_timeout_given_to_the_sdk_is_applied_and_retried_as_a_timeout() {
    let (sdk, accepted) = production_sdk_against(
        silent(),
        TimeoutConfig::builder()
            .read_timeout(Duration::from_millis(200))
            .build(),
    )
    .await;

    let error = failed_call(&sdk).await;

    match &error {
        SdkError::DispatchFailure(failure) => assert!(failure.is_timeout(), "{error:?}"),
        other => panic!("expected a dispatch failure, got {other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "every attempt made");
}

/// Answers every request on the connection with a 503, keeping the connection open as a
/// load balancer does: the SDK retries a 5xx as a transient fault.
fn unavailable(mut socket: TcpStream) {
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut pending = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => pending.extend_from_slice(&buffer[..n]),
                }
                continue;
            };
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let body_length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while pending.len() < end + 4 + body_length {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => pending.extend_from_slice(&buffer[..n]),
                }
            }
            pending.drain(..end + 4 + body_length);
            let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
            if socket.write_all(answer).await.is_err() {
                return;
            }
        }
    });
}

/// The SDK's own client closes the connection after a transient fault, so a retry can reach
/// another host behind the endpoint; reqwest cannot close one chosen connection, so the
/// adapter sends every retry on a new one. The server here keeps its connections open.
#[tokio::test]
async fn each_retry_after_a_server_error_goes_out_on_a_new_connection() {
    let (sdk, accepted) = production_sdk_against(unavailable, TimeoutConfig::disabled()).await;

    let error = failed_call(&sdk).await;

    let status = error.raw_response().map(|answer| answer.status().as_u16());
    assert_eq!(status, Some(503), "{error:?}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "one connection per attempt"
    );
}

/// The SDK's default is to close the connection after a transient fault (a 5xx, a
/// throttle), and with a client that cannot close one chosen connection it logs an ERROR
/// line at every such retry instead: a false alarm in CloudWatch Logs.
#[tokio::test]
async fn a_retried_server_error_logs_no_error() {
    let logs = CapturedLog::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _scoped = tracing::subscriber::set_default(subscriber);
    let (sdk, accepted) = production_sdk_against(unavailable, TimeoutConfig::disabled()).await;

    let _ = failed_call(&sdk).await;

    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    let logged = logs.text();
    assert!(!logged.contains("ERROR"), "{logged}");
}
