//! The SDK sends through the process's one reqwest client (shared::http), so that adapter
//! decides what the SDK's standard retry mode sees: a dropped connection and a silent
//! server must come back as the transient faults they are (I/O, timeout) and be retried;
//! a fault classed as anything else would fail the call on the first try.
//! The calls themselves, bodies and signatures included, go through the adapter in every
//! test that talks to moto or the recording stub.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ssm::error::SdkError;
use tokio::net::TcpListener;

/// A loopback server that counts the connections it accepts and does to each what `serve`
/// says; the SDK is pointed at it, with quick retries.
async fn sdk_against<F>(
    serve: F,
    timeouts: TimeoutConfig,
) -> (aws_sdk_ssm::Client, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream) + Send + 'static,
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
    let sdk = standins::moto::sdk_config_for(&endpoint)
        .await
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .timeout_config(timeouts)
        .build();
    (aws_sdk_ssm::Client::new(&sdk), accepted)
}

#[tokio::test]
async fn a_dropped_connection_is_an_io_fault_the_sdk_retries() {
    let (ssm, accepted) = sdk_against(drop, TimeoutConfig::disabled()).await;

    let error = ssm.get_parameter().name("/any").send().await.unwrap_err();

    match &error {
        SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{error:?}"),
        other => panic!("expected a dispatch failure, got {other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "every attempt made");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout_the_sdk_retries() {
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    let (ssm, accepted) = sdk_against(
        move |socket| keep.lock().unwrap().push(socket),
        TimeoutConfig::builder()
            .read_timeout(Duration::from_millis(200))
            .build(),
    )
    .await;

    let error = ssm.get_parameter().name("/any").send().await.unwrap_err();

    match &error {
        SdkError::DispatchFailure(failure) => assert!(failure.is_timeout(), "{error:?}"),
        other => panic!("expected a dispatch failure, got {other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "every attempt made");
}
