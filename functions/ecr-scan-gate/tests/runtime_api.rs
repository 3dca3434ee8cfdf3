//! End to end: the gate's binary run as Lambda runs it, through the Runtime API, against
//! moto (ECR) and the recording stub (CodePipeline job results). `ECR_SCAN_GATE_BIN`
//! points it at another build (the release bootstrap).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{basic_finding, create_repository, push_image, sample, scan_result};
use serde_json::json;
use standins::ecr::{ScanOf, event_time, now_secs};
use standins::{FunctionProcess, Outcome, RecordingStub, Rig, RuntimeApi, SlackSink};

fn binary() -> PathBuf {
    standins::runtime_api::binary_under_test(
        "ECR_SCAN_GATE_BIN",
        env!("CARGO_BIN_EXE_ecr-scan-gate"),
    )
}

#[tokio::test]
async fn the_binary_gates_a_pipeline_job_and_judges_scan_events() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    create_repository(&moto, "prod-api", false).await;
    let digest = push_image(&moto, "prod-api", "1.42.0", "e2e").await;
    let findings = vec![basic_finding("CVE-2024-0001", "CRITICAL")];
    for id in [
        json!({"imageTag": "1.42.0"}),
        json!({"imageDigest": digest}),
    ] {
        scan_result(&moto, "prod-api", id, "COMPLETE", findings.clone(), false).await;
    }

    let api = RuntimeApi::start().await;
    // Every AWS call through the recording stub (forwarding to moto), so the IAM check sees
    // what the release build calls too.
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("security")),
        (
            "METRICS_NAMESPACE".to_owned(),
            "ContainerDeliveryOps/e2e".to_owned(),
        ),
        ("METRICS_DIMENSIONS".to_owned(), "Repository".to_owned()),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let job = api
        .invoke(
            &mut function,
            &sample("codepipeline-job.json"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(&job.outcome, Outcome::Response(v) if v["verdict"] == "FAIL" && v["result"] == "failed"),
        "{job:?}"
    );
    let failure = &stub.accepted("PutJobFailureResult")[0];
    assert_eq!(failure["jobId"], "11111111-2222-3333-4444-555555555555");
    assert!(
        failure["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("CVE-2024-0001")
    );

    let bad = api
        .invoke(
            &mut function,
            &sample("codepipeline-job-bad-parameters.json"),
            Duration::from_secs(30),
        )
        .await;
    assert!(matches!(&bad.outcome, Outcome::Response(_)), "{bad:?}");
    assert_eq!(
        stub.accepted("PutJobFailureResult")[1]["failureDetails"]["type"],
        "ConfigurationError"
    );

    let mut event = sample("ecr-image-scan.json");
    event["detail"]["image-digest"] = json!(digest);
    event["detail"]["finding-severity-counts"] = json!({"CRITICAL": 1});
    let scanned = api
        .invoke(&mut function, &event, Duration::from_secs(30))
        .await;
    assert!(
        matches!(&scanned.outcome, Outcome::Response(v) if v["verdict"] == "FAIL"),
        "{scanned:?}"
    );
    let posts = sink.delivered();
    assert_eq!(
        posts.len(),
        3,
        "the job's FAIL, the job failed for its bad parameters, and the event's FAIL: each blocks someone, each is notified"
    );
    assert!(
        posts[1].to_string().contains("UserParameters"),
        "the bad-parameters post says why: {}",
        posts[1]
    );

    let ignored = api
        .invoke(
            &mut function,
            &json!({"hello": "world"}),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(&ignored.outcome, Outcome::Response(v) if v["outcome"] == "ignored"),
        "{ignored:?}"
    );

    let lines = function.stop().await;
    let emf = standins::emf::parse(&lines);
    assert_eq!(
        emf.sum("Verdicts", &[("Verdict", "FAIL")]),
        3.0,
        "the job, the job with bad parameters, the scan event"
    );
    assert_eq!(
        emf.sum(
            "Findings",
            &[("Severity", "CRITICAL"), ("Repository", "prod-api")]
        ),
        2.0,
        "the job's and the event's judgement of the same image"
    );
    assert_eq!(emf.sum("ConfigErrors", &[]), 1.0, "the bad UserParameters");
    assert_eq!(
        emf.dimension_sets("Findings"),
        [
            vec!["Function", "Severity"],
            vec!["Function", "Severity", "Repository"]
        ],
        "Repository opted in by METRICS_DIMENSIONS: a second set; the alarms' set stays"
    );
    assert!(
        emf.lines
            .iter()
            .all(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ContainerDeliveryOps/e2e")
    );
    let logs = lines.join("\n");
    standins::runtime_api::assert_no_secrets(&logs, &[]);
    assert!(logs.contains("failing the job"), "{logs}");
}

/// An event's time as EventBridge writes it (RFC 3339).
/// As a real account runs it: Inspector's findings reach the findings API after the
/// `Inspector2 Scan` event (ECR user guide, enhanced scanning; aws/aws-for-fluent-bit#1105),
/// and `docker buildx` pushes an image index with an attestation manifest. Through the
/// binary: an event counting a CRITICAL the API does not show yet is neither passed nor
/// promoted, and the same event delivered again once the finding is readable fails naming
/// it; an index with two platforms is judged on both and promoted as the index.
#[tokio::test]
async fn the_binary_never_passes_an_early_look_and_judges_an_index_whole() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    create_repository(&moto, "prod-api", false).await;
    let digest = push_image(&moto, "prod-api", "1.42.0", "late-findings").await;
    let enhanced_scan = |findings| ScanOf {
        repository: "prod-api",
        digest: &digest,
        status: "ACTIVE",
        findings,
        enhanced: true,
        completed_at: now_secs() - 120,
    };
    enhanced_scan(vec![]).answer(&stub);

    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("security")),
        ("PASS_TAG".to_owned(), "scan-passed".to_owned()),
        ("NOTIFY_ON".to_owned(), "ALL".to_owned()),
        ("FINDINGS_SETTLE".to_owned(), "0s".to_owned()),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let mut event = sample("inspector2-scan.json");
    event["time"] = json!(event_time(now_secs()));
    event["detail"]["image-digest"] = json!(digest);
    event["detail"]["image-tags"] = json!(["1.42.0"]);
    event["detail"]["finding-severity-counts"] = json!({"CRITICAL": 1, "TOTAL": 1});
    // Less than REPORT_MARGIN past one look: the invocation ends waiting.
    let early = api
        .invoke(&mut function, &event, Duration::from_secs(12))
        .await;
    assert!(matches!(&early.outcome, Outcome::Error(_)), "{early:?}");
    assert!(sink.delivered().is_empty(), "no post on an early look");
    assert!(
        stub.accepted("PutImage").is_empty(),
        "no promotion on an early look"
    );

    enhanced_scan(vec![common::enhanced_finding(
        "CVE-2024-3333",
        "CRITICAL",
        "YES",
    )])
    .answer(&stub);
    let retried = api
        .invoke(&mut function, &event, Duration::from_secs(30))
        .await;
    assert!(
        matches!(&retried.outcome, Outcome::Response(v) if v["verdict"] == "FAIL"),
        "{retried:?}"
    );
    assert!(stub.accepted("PutImage").is_empty());
    let posts = sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].to_string().contains("CVE-2024-3333"),
        "{}",
        posts[0]
    );

    let (index, platforms) = standins::ecr::push_index(
        &moto,
        "prod-api",
        "2.0.0",
        &[("linux/amd64", "amd64"), ("linux/arm64", "arm64")],
    )
    .await;
    for p in &platforms[..2] {
        ScanOf {
            repository: "prod-api",
            digest: p,
            status: "COMPLETE",
            findings: vec![basic_finding("CVE-2024-0003", "LOW")],
            enhanced: false,
            completed_at: now_secs() - 120,
        }
        .answer(&stub);
    }
    let mut job = sample("codepipeline-job.json");
    job["CodePipeline.job"]["id"] = json!("index-job");
    job["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!(json!({"repository": "prod-api", "tag": "2.0.0"}).to_string());
    let judged = api
        .invoke(&mut function, &job, Duration::from_secs(30))
        .await;
    assert!(
        matches!(&judged.outcome, Outcome::Response(v) if v["verdict"] == "PASS"),
        "{judged:?}"
    );
    let success = &stub.accepted("PutJobSuccessResult")[0];
    assert_eq!(success["outputVariables"]["IMAGE_DIGEST"], index);
    assert_eq!(
        success["outputVariables"]["PLATFORMS"],
        "linux/amd64,linux/arm64"
    );
    let puts = stub.accepted("PutImage");
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0]["imageDigest"], index,
        "the index is promoted, not a platform"
    );
    let post = sink.delivered()[1].to_string();
    assert!(
        post.contains("linux/arm64") && post.contains("build attestation"),
        "{post}"
    );
    function.stop().await;
}

/// A team's risk policy, through the binary: "block a HIGH only when an exploit exists and a
/// fix is available" passes an image whose HIGH has no exploit and fails one whose HIGH has
/// both, naming the rule; a CRITICAL suppressed in Inspector does not block; a rule in warn
/// mode reports what it would block, as a metric too, and passes. The findings are in the
/// shape the ECR API reference publishes for enhanced scanning.
#[tokio::test]
async fn the_binary_judges_risk_under_a_policy_document() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    create_repository(&moto, "prod-api", false).await;
    let finding = standins::ecr::published_enhanced_finding;
    let mut images = Vec::new();
    for (tag, findings) in [
        (
            "3.0.0",
            vec![
                finding("CVE-2025-1000", "HIGH", "ACTIVE", "NO", "YES", 7.5),
                finding("CVE-2025-1001", "CRITICAL", "SUPPRESSED", "YES", "YES", 9.8),
                finding("CVE-2025-1002", "MEDIUM", "ACTIVE", "YES", "NO", 5.3),
            ],
        ),
        (
            "3.1.0",
            vec![finding(
                "CVE-2025-2000",
                "HIGH",
                "ACTIVE",
                "YES",
                "YES",
                8.1,
            )],
        ),
    ] {
        let digest = push_image(&moto, "prod-api", tag, tag).await;
        ScanOf {
            repository: "prod-api",
            digest: &digest,
            status: "ACTIVE",
            findings,
            enhanced: true,
            completed_at: now_secs() - 120,
        }
        .answer(&stub);
        images.push(digest);
    }
    let policy = json!({"rules": [
        {"name": "no-critical", "action": "block", "when": {"severity_at_least": "CRITICAL"}},
        {"name": "exploitable-high", "action": "block",
         "when": {"severity_at_least": "HIGH", "exploit_available": true, "fix_available": true}},
        {"name": "exploitable-medium", "action": "warn",
         "when": {"severity_at_least": "MEDIUM", "exploit_available": true}},
        {"name": "the-rest", "action": "allow"}
    ]});

    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("security")),
        ("NOTIFY_ON".to_owned(), "ALL".to_owned()),
        ("FINDINGS_SETTLE".to_owned(), "0s".to_owned()),
        ("POLICY".to_owned(), policy.to_string()),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let mut verdicts = Vec::new();
    for tag in ["3.0.0", "3.1.0"] {
        let mut job = sample("codepipeline-job.json");
        job["CodePipeline.job"]["id"] = json!(format!("risk-{tag}"));
        job["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
            json!(json!({"repository": "prod-api", "tag": tag}).to_string());
        let answer = api
            .invoke(&mut function, &job, Duration::from_secs(30))
            .await;
        verdicts.push(answer);
    }
    assert!(
        matches!(&verdicts[0].outcome, Outcome::Response(v) if v["verdict"] == "PASS"),
        "the HIGH without an exploit passes; the suppressed CRITICAL does not block: {:?}",
        verdicts[0]
    );
    assert!(
        matches!(&verdicts[1].outcome, Outcome::Response(v) if v["verdict"] == "FAIL"),
        "{:?}",
        verdicts[1]
    );
    let failure = &stub.accepted("PutJobFailureResult")[0];
    assert_eq!(failure["jobId"], "risk-3.1.0");
    let message = failure["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("exploitable-high") && message.contains("CVE-2025-2000"),
        "the failure names the rule and what it blocked: {message}"
    );
    assert_eq!(
        stub.accepted("PutJobSuccessResult")[0]["jobId"],
        "risk-3.0.0"
    );

    let posts = sink.delivered();
    let pass = posts[0].to_string();
    assert!(
        pass.contains("suppressed in Inspector") && pass.contains("CVE-2025-1001"),
        "{pass}"
    );
    assert!(
        pass.contains("warn mode") && pass.contains("exploitable-medium"),
        "the warn rule reports what it would block: {pass}"
    );
    let fail = posts[1].to_string();
    assert!(fail.contains("blocked by rule"), "{fail}");

    let lines = function.stop().await;
    let emf = standins::emf::parse(&lines);
    assert_eq!(
        emf.sum("PolicyWarnings", &[("Rule", "exploitable-medium")]),
        1.0
    );
    assert_eq!(emf.sum("Verdicts", &[("Verdict", "PASS")]), 1.0);
}

/// Planted at TRACE, served as DEBUG (every crate's debug output on): the function's AWS
/// secret key and session token, the job's `artifactCredentials`, and the webhook kept in SSM. Through a
/// failed job, a scan event and a job with bad parameters, none of them reaches a log line,
/// an answer, a post or a request to AWS (the job failure messages among them).
#[tokio::test]
async fn at_debug_no_planted_secret_reaches_a_log_an_answer_a_post_or_a_job_result() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    // The webhook where the stack as tested keeps it (SlackWebhookParameterName): SSM.
    let webhook = standins::rig::webhook_in_ssm(&moto, &sink, "security").await;
    create_repository(&moto, "prod-api", false).await;
    let digest = push_image(&moto, "prod-api", "1.42.0", "planted").await;
    for id in [
        json!({"imageTag": "1.42.0"}),
        json!({"imageDigest": digest}),
    ] {
        let findings = vec![basic_finding("CVE-2024-0001", "CRITICAL")];
        scan_result(&moto, "prod-api", id, "COMPLETE", findings, false).await;
    }
    let mut env = standins::planted::debug_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    // Asked for TRACE, where lambda_runtime would log each event whole, artifactCredentials
    // and all: the function serves it as DEBUG (shared::telemetry).
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let mut scan = sample("ecr-image-scan.json");
    scan["detail"]["image-digest"] = json!(digest);
    let mut answers = Vec::new();
    for event in [
        sample("codepipeline-job.json"),
        scan,
        sample("codepipeline-job-bad-parameters.json"),
    ] {
        let out = api
            .invoke(&mut function, &event, Duration::from_secs(30))
            .await;
        answers.push(format!("{:?}", out.outcome));
    }
    let logs = function.stop().await;
    assert_eq!(
        stub.accepted("PutJobFailureResult").len(),
        2,
        "the scenario answered"
    );
    let mut secrets = standins::planted::always();
    secrets.extend(standins::planted::ARTIFACT_SECRETS);
    standins::planted::assert_none_leaked(&secrets, &logs, &answers, &sink, &stub);
}

/// Every input is untrusted (fault matrix, "bad input"): each unusable body ends in an
/// acknowledgement or a clean invocation error, never a panic, a crash or a hang, and no
/// pipeline job is answered for input that is not one.
#[tokio::test]
async fn bad_payloads_end_cleanly_and_the_process_lives_on() {
    let stub = RecordingStub::start().await;
    let sink = SlackSink::start().await;
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.push(("SLACK_WEBHOOK_URL".into(), sink.webhook_url("security")));
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    standins::runtime_api::assert_bad_payloads_end_cleanly(&api, &mut function, &[]).await;
    assert!(
        stub.calls().is_empty(),
        "no AWS call for bad input: {:?}",
        stub.calls()
    );
    assert!(sink.delivered().is_empty());
    let logs = function.stop().await.join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
}
