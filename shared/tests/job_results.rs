//! CodePipeline job results against the recording stub.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::Deadline;
use shared::jobs::{FailureKind, JobOutcome, JobReporter, ReportJob, Reported};
use standins::RecordingStub;

async fn reporter(stub: &RecordingStub) -> JobReporter {
    let sdk = standins::moto::sdk_config_for(&stub.endpoint()).await;
    JobReporter::new(&shared_sdk(sdk))
}

/// The stub's SDK config with the suite's own retry policy, as production builds it.
fn shared_sdk(sdk: aws_config::SdkConfig) -> aws_config::SdkConfig {
    sdk.into_builder()
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(50)),
        )
        .build()
}

fn budget() -> Deadline {
    Deadline::after(Duration::from_secs(20))
}

#[tokio::test]
async fn final_success_carries_output_variables() {
    let stub = RecordingStub::start().await;
    let outcome = JobOutcome::Succeeded {
        summary: "PASS: 0 critical, 0 high".into(),
        output_variables: BTreeMap::from([
            ("VERDICT".into(), "PASS".into()),
            ("HIGH".into(), "0".into()),
        ]),
    };
    let r = reporter(&stub)
        .await
        .report("job-1", outcome, &budget())
        .await
        .unwrap();
    assert_eq!(r, Reported::Recorded);
    let calls = stub.accepted("PutJobSuccessResult");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["jobId"], "job-1");
    assert_eq!(calls[0]["outputVariables"]["VERDICT"], "PASS");
    assert_eq!(
        calls[0]["executionDetails"]["summary"],
        "PASS: 0 critical, 0 high"
    );
    assert!(calls[0].get("continuationToken").is_none());
}

#[tokio::test]
async fn in_progress_sends_a_continuation_token_without_output_variables() {
    let stub = RecordingStub::start().await;
    let r = reporter(&stub).await;
    let pending = JobOutcome::InProgress {
        continuation_token: r#"{"started":1700000000}"#.into(),
        summary: "scan in progress".into(),
    };
    r.report("job-2", pending, &budget()).await.unwrap();
    let done = JobOutcome::Succeeded {
        summary: "PASS".into(),
        output_variables: BTreeMap::new(),
    };
    assert_eq!(
        r.report("job-2", done, &budget()).await.unwrap(),
        Reported::Recorded
    );
    let calls = stub.accepted("PutJobSuccessResult");
    assert_eq!(calls[0]["continuationToken"], r#"{"started":1700000000}"#);
    assert!(calls[0].get("outputVariables").is_none());
    assert!(calls[1].get("continuationToken").is_none());
}

#[tokio::test]
async fn failure_carries_its_type_and_a_bounded_message() {
    let stub = RecordingStub::start().await;
    let message = format!(
        "2 critical findings exceed MAX_CRITICAL=0: {}",
        "CVE-2024-0001 ".repeat(1000)
    );
    let outcome = JobOutcome::Failed {
        kind: FailureKind::JobFailed,
        message,
    };
    reporter(&stub)
        .await
        .report("job-3", outcome, &budget())
        .await
        .unwrap();
    let calls = stub.accepted("PutJobFailureResult");
    assert_eq!(calls[0]["failureDetails"]["type"], "JobFailed");
    let sent = calls[0]["failureDetails"]["message"].as_str().unwrap();
    assert!(sent.starts_with("2 critical findings") && sent.chars().count() <= 5000);
}

#[tokio::test]
async fn a_second_report_for_the_same_job_counts_as_already_done() {
    let stub = RecordingStub::start().await;
    let r = reporter(&stub).await;
    let fail = || JobOutcome::Failed {
        kind: FailureKind::JobFailed,
        message: "no".into(),
    };
    assert_eq!(
        r.report("job-4", fail(), &budget()).await.unwrap(),
        Reported::Recorded
    );
    assert_eq!(
        r.report("job-4", fail(), &budget()).await.unwrap(),
        Reported::AlreadyReported
    );
    assert_eq!(stub.job_results().len(), 1);
}

#[tokio::test]
async fn throttling_is_retried_until_the_result_lands() {
    let stub = RecordingStub::start().await;
    stub.throttle("PutJobSuccessResult", 2);
    let outcome = JobOutcome::Succeeded {
        summary: "ok".into(),
        output_variables: BTreeMap::new(),
    };
    reporter(&stub)
        .await
        .report("job-5", outcome, &budget())
        .await
        .unwrap();
    let statuses: Vec<u16> = stub.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![400, 400, 200]);
}

/// A 5xx from CodePipeline (its side failed; nothing recorded) is retried like throttling.
#[tokio::test]
async fn a_server_error_is_retried_until_the_result_lands() {
    let stub = RecordingStub::start().await;
    stub.server_error("PutJobFailureResult", 2);
    reporter(&stub)
        .await
        .report(
            "job-5xx",
            JobOutcome::Failed {
                kind: FailureKind::JobFailed,
                message: "no".into(),
            },
            &budget(),
        )
        .await
        .unwrap();
    let statuses: Vec<u16> = stub.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![500, 500, 200]);
    assert_eq!(stub.job_results().len(), 1);
}

#[tokio::test]
async fn throttling_that_never_ends_is_a_retryable_error() {
    let stub = RecordingStub::start().await;
    stub.throttle("PutJobFailureResult", 100);
    let outcome = JobOutcome::Failed {
        kind: FailureKind::JobFailed,
        message: "x".into(),
    };
    let err = reporter(&stub)
        .await
        .report("job-6", outcome, &budget())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(stub.job_results().is_empty());
}

#[tokio::test]
async fn bad_output_variable_names_are_refused_before_sending() {
    let stub = RecordingStub::start().await;
    let outcome = JobOutcome::Succeeded {
        summary: "x".into(),
        output_variables: BTreeMap::from([("bad name".into(), "1".into())]),
    };
    let err = reporter(&stub)
        .await
        .report("job-7", outcome, &budget())
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(stub.calls().is_empty());
}
