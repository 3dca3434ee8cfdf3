//! The ecr-scan-gate section of the demo: two images in moto's ECR, one clean and one
//! with a critical finding; the gate's binary, run through the Lambda Runtime API as a
//! CodePipeline job for each; then the failures that must reach a person (a job result the
//! role may not send, a broken configuration); what CodePipeline and Slack received.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use standins::ecr::{basic_finding, create_repository, push_image, scan_result};
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
    Ok(())
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
