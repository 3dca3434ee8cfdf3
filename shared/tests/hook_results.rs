//! CodeDeploy lifecycle-hook results against the recording stub.

use std::time::Duration;

use shared::Deadline;
use shared::hooks::{HookReporter, HookStatus, ReportHook};
use shared::jobs::Reported;
use standins::RecordingStub;

async fn reporter(stub: &RecordingStub) -> HookReporter {
    let sdk = standins::moto::sdk_config_for(&stub.endpoint()).await;
    let sdk = sdk
        .into_builder()
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(50)),
        )
        .build();
    HookReporter::new(&sdk)
}

fn budget() -> Deadline {
    Deadline::after(Duration::from_secs(20))
}

#[tokio::test]
async fn status_is_recorded_once_and_a_repeat_counts_as_done() {
    let stub = RecordingStub::start().await;
    let r = reporter(&stub).await;
    assert_eq!(
        r.report("d-ABC123", "hook-1", HookStatus::Failed, &budget())
            .await
            .unwrap(),
        Reported::Recorded
    );
    assert_eq!(
        r.report("d-ABC123", "hook-1", HookStatus::Succeeded, &budget())
            .await
            .unwrap(),
        Reported::AlreadyReported
    );
    let calls = stub.accepted("PutLifecycleEventHookExecutionStatus");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["deploymentId"], "d-ABC123");
    assert_eq!(calls[0]["lifecycleEventHookExecutionId"], "hook-1");
    assert_eq!(calls[0]["status"], "Failed");
}

#[tokio::test]
async fn throttling_is_retried_until_the_status_lands() {
    let stub = RecordingStub::start().await;
    stub.throttle("PutLifecycleEventHookExecutionStatus", 2);
    reporter(&stub)
        .await
        .report("d-1", "hook-2", HookStatus::Succeeded, &budget())
        .await
        .unwrap();
    let statuses: Vec<u16> = stub.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![400, 400, 200]);
}

#[tokio::test]
async fn endless_throttling_is_a_retryable_error() {
    let stub = RecordingStub::start().await;
    stub.throttle("PutLifecycleEventHookExecutionStatus", 100);
    let err = reporter(&stub)
        .await
        .report("d-1", "hook-3", HookStatus::Failed, &budget())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
