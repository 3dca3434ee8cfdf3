//! The ecr-scan-gate section of the demo: two images in moto's ECR, one clean and one
//! with a critical finding; the gate's binary, run through the Lambda Runtime API as a
//! CodePipeline job for each; then the failures that must reach a person (a job result the
//! role may not send, a broken configuration); what CodePipeline and Slack received.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use standins::ecr::{
    ScanOf, basic_finding, create_repository, enhanced_finding, event_time, now_secs, push_image,
    push_index, scan_result,
};
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, RuntimeApi, SlackSink};

use crate::render::{metrics_summary, slack_payload};
use crate::{Fallible, function_env};

pub async fn run(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    println!("\n== ecr-scan-gate ({})", binary.display());
    create_repository(moto, "prod-api", false).await;
    push_image(moto, "prod-api", "1.42.0", "clean-build").await;
    push_image(moto, "prod-api", "1.43.0", "vulnerable-build").await;
    scan_result(
        moto,
        "prod-api",
        json!({"imageTag": "1.42.0"}),
        "COMPLETE",
        vec![basic_finding("CVE-2024-0003", "LOW")],
        false,
    )
    .await;
    let findings = vec![
        basic_finding("CVE-2024-0001", "CRITICAL"),
        basic_finding("CVE-2024-0002", "HIGH"),
        basic_finding("CVE-2024-0003", "LOW"),
    ];
    scan_result(
        moto,
        "prod-api",
        json!({"imageTag": "1.43.0"}),
        "COMPLETE",
        findings,
        false,
    )
    .await;
    println!(
        "moto's ECR holds prod-api:1.42.0 (one LOW finding) and prod-api:1.43.0 (CRITICAL + HIGH + LOW)."
    );
    println!(
        "Policy: MAX_CRITICAL=0, MAX_HIGH=0 (the defaults), PASS_TAG=scan-passed, NOTIFY_ON=ALL."
    );

    let api = RuntimeApi::start().await;
    let env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CODEPIPELINE", &stub.endpoint()),
            ("PASS_TAG", "scan-passed"),
            ("NOTIFY_ON", "ALL"),
        ],
    );
    let mut function = FunctionProcess::spawn(binary, &api, &env);
    let template = standins::sample_event("ecr-scan-gate", "codepipeline-job.json");

    for (n, tag) in [(1, "1.42.0"), (2, "1.43.0")] {
        println!(
            "\n{n}. A pipeline stage asks about prod-api:{tag} (events/ecr-scan-gate/codepipeline-job.json)"
        );
        ask(&api, &mut function, &template, n, tag, stub, sink).await;
    }

    println!(
        "\n3. The same job, but the function's role may not answer CodePipeline (AccessDenied on\n   PutJobSuccessResult): the stage would wait for its timeout, so Slack hears it even for a PASS."
    );
    stub.fixture_error(
        "PutJobSuccessResult",
        json!({"jobId": "demo-gate-job-3"}),
        "AccessDeniedException",
        "User is not authorized to perform: codepipeline:PutJobSuccessResult",
    );
    ask(&api, &mut function, &template, 3, "1.42.0", stub, sink).await;

    println!(
        "\n4. A gate deployed with a typo in its configuration (MAX_CRITICAL=none) still starts: it\n   fails the job at once with the reason, and says so, instead of leaving the stage to time out."
    );
    let broken_api = RuntimeApi::start().await;
    let broken_env = function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CODEPIPELINE", &stub.endpoint()),
            ("MAX_CRITICAL", "none"),
        ],
    );
    let mut broken = FunctionProcess::spawn(binary, &broken_api, &broken_env);
    ask(&broken_api, &mut broken, &template, 4, "1.42.0", stub, sink).await;
    print!("{}", metrics_summary(&function.stop().await));
    late_findings(binary, moto, stub, sink).await;
    image_index(binary, moto, stub, sink).await;
    Ok(())
}

/// ECR calls through the recording stub, which shows what a real account shows later.
fn gate_env(moto: &Moto, stub: &RecordingStub) -> Vec<(String, String)> {
    function_env(
        moto,
        &[
            ("AWS_ENDPOINT_URL_CODEPIPELINE", &stub.endpoint()),
            ("AWS_ENDPOINT_URL_ECR", &stub.endpoint()),
            ("PASS_TAG", "scan-passed"),
            ("NOTIFY_ON", "ALL"),
            ("FINDINGS_SETTLE", "0s"),
        ],
    )
}

/// Inspector's findings reach the findings API after its scan event: an early look must
/// never pass the image.
async fn late_findings(binary: &Path, moto: &Moto, stub: &RecordingStub, sink: &SlackSink) {
    println!(
        "\n5. Enhanced scanning, as a real account runs it: the Inspector2 Scan event for prod-api:1.44.0\n   counts one CRITICAL, but Inspector's findings reach the findings API later, and the first\n   look shows none. (FINDINGS_SETTLE=0s here, so only the event's counts hold the verdict.)"
    );
    let digest = push_image(moto, "prod-api", "1.44.0", "late-findings-build").await;
    let enhanced_scan = |findings| ScanOf {
        repository: "prod-api",
        digest: &digest,
        status: "ACTIVE",
        findings,
        enhanced: true,
        completed_at: now_secs() - 120,
    };
    enhanced_scan(vec![]).answer(stub);
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(binary, &api, &gate_env(moto, stub));
    let mut event = standins::sample_event("ecr-scan-gate", "inspector2-scan.json");
    event["time"] = json!(event_time(now_secs()));
    event["detail"]["image-digest"] = json!(digest);
    event["detail"]["image-tags"] = json!(["1.44.0"]);
    event["detail"]["finding-severity-counts"] = json!({"CRITICAL": 1, "TOTAL": 1});
    let posts_before = sink.delivered().len();
    let tags_before = stub.accepted("PutImage").len();
    let early = api
        .invoke(&mut function, &event, Duration::from_secs(12))
        .await;
    let outcome = match &early.outcome {
        Outcome::Error(_) => {
            "an invocation error (retryable): Lambda delivers the event again".to_owned()
        }
        other => format!("{other:?}"),
    };
    println!("   first delivery: {outcome}");
    println!(
        "   posted: {}, tagged scan-passed: {}",
        sink.delivered().len() - posts_before,
        stub.accepted("PutImage").len() - tags_before
    );
    println!(
        "   ... the CRITICAL finding becomes readable; Lambda's retry delivers the same event:"
    );
    enhanced_scan(vec![enhanced_finding("CVE-2024-3333", "CRITICAL", "YES")]).answer(stub);
    let retried = api
        .invoke(&mut function, &event, Duration::from_secs(30))
        .await;
    if let Outcome::Response(v) = &retried.outcome {
        println!("   verdict: {}", v["verdict"].as_str().unwrap_or("none"));
    }
    if let Some(payload) = sink.delivered().get(posts_before) {
        print!("{}", slack_payload(payload));
    }
    function.stop().await;
}

/// `docker buildx` pushes an image index with an attestation: every platform is judged and
/// the index is promoted.
async fn image_index(binary: &Path, moto: &Moto, stub: &RecordingStub, sink: &SlackSink) {
    println!(
        "\n6. A multi-platform image as docker buildx pushes it: prod-api:2.0.0 is an image index listing\n   linux/amd64, linux/arm64 and a provenance attestation. ECR scans the two platform images."
    );
    let (index, platforms) = push_index(
        moto,
        "prod-api",
        "2.0.0",
        &[("linux/amd64", "demo-amd64"), ("linux/arm64", "demo-arm64")],
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
        .answer(stub);
    }
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(binary, &api, &gate_env(moto, stub));
    let template = standins::sample_event("ecr-scan-gate", "codepipeline-job.json");
    ask(&api, &mut function, &template, 6, "2.0.0", stub, sink).await;
    let promoted = stub
        .accepted("PutImage")
        .iter()
        .any(|p| p["imageDigest"] == index.as_str() && p["imageTag"] == "scan-passed");
    println!(
        "   scan-passed tagged on the index {}: {promoted} (never on one platform's image)",
        &index[..19]
    );
    function.stop().await;
}

/// One pipeline job for prod-api:`tag`, and what CodePipeline and Slack received.
async fn ask(
    api: &RuntimeApi,
    function: &mut FunctionProcess,
    template: &serde_json::Value,
    n: u32,
    tag: &str,
    stub: &RecordingStub,
    sink: &SlackSink,
) {
    let mut job = template.clone();
    let job_id = format!("demo-gate-job-{n}");
    job["CodePipeline.job"]["id"] = json!(job_id);
    job["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!(json!({"repository": "prod-api", "tag": tag}).to_string());
    let before = sink.delivered().len();
    let invocation = api.invoke(function, &job, Duration::from_secs(30)).await;
    if let Outcome::Response(v) = &invocation.outcome {
        println!(
            "   verdict: {} · reported to CodePipeline: {}",
            v["verdict"].as_str().unwrap_or("none"),
            v["reported"].as_str().unwrap_or("?")
        );
    }
    let reported = stub
        .job_results()
        .into_iter()
        .find(|c| c.body["jobId"] == job_id.as_str());
    match reported {
        Some(c) if c.operation == "PutJobSuccessResult" => {
            println!(
                "   CodePipeline got PutJobSuccessResult, output variables {}",
                c.body["outputVariables"]
            );
        }
        Some(c) => println!(
            "   CodePipeline got PutJobFailureResult ({}): {}",
            c.body["failureDetails"]["type"]
                .as_str()
                .unwrap_or_default(),
            c.body["failureDetails"]["message"]
                .as_str()
                .unwrap_or_default()
        ),
        None => println!("   CodePipeline got no job result"),
    }
    if let Some(payload) = sink.delivered().get(before) {
        print!("{}", slack_payload(payload));
    }
}
