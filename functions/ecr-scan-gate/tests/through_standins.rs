//! The gate with its real adapters: ECR and SSM in moto (scan results configured through
//! moto's API), CodePipeline job results through the recording stub, Slack through the sink.

mod common;

use std::time::{Duration, Instant};

use common::{
    basic_finding, call as ecr, create_repository, enhanced_finding, push_image, sample,
    scan_result,
};
use ecr_scan_gate::event::ImageRef;
use ecr_scan_gate::registry::{Ecr, Listed, Promotion, Registry, Scan, Subject};
use ecr_scan_gate::{Config, Gate};
use serde_json::{Value, json};
use shared::jobs::JobReporter;
use shared::notifier::Notifier;
use shared::{Deadline, Error};
use standins::Reply;
use standins::rig::{Rig, budget, now_secs};

/// The gate with a registry that misbehaves on purpose, otherwise wired as in production.
fn handler_with<R: Registry + Sync>(
    rig: &Rig,
    registry: R,
    extra: &[(&str, &str)],
) -> Gate<R, JobReporter, Notifier> {
    let env = rig.env("security", extra);
    let clients = rig.clients();
    Gate::new(
        Config::from_env(&env).map_err(|e| e.to_string()),
        ecr_scan_gate::app::ports(&env, &clients).with_registry(registry),
        "us-east-1".into(),
    )
}

/// The gate exactly as `main.rs` builds it.
fn handler(rig: &Rig, extra: &[(&str, &str)]) -> ecr_scan_gate::app::App {
    ecr_scan_gate::app::build(&rig.env("security", extra), &rig.clients())
}

fn job(file: &str, params: Value) -> Value {
    let mut e = sample(file);
    e["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!(params.to_string());
    e
}

/// A sample scan event for `digest`. Its severity counts are emptied: a test that is not
/// about what the event counted must not be held by the sample's own counts (the gate never
/// decides on a look showing fewer findings than the event counted); [`counting`] sets them.
fn scan_event(file: &str, digest: &str) -> Value {
    let mut e = sample(file);
    e["detail"]["image-digest"] = json!(digest);
    e["detail"]["finding-severity-counts"] = json!({});
    e
}

fn counting(mut event: Value, counts: Value) -> Value {
    event["detail"]["finding-severity-counts"] = counts;
    event
}

/// An image with one critical and one high finding, answerable by tag and by digest.
async fn vulnerable_image(rig: &Rig, repository: &str, tag: &str) -> String {
    create_repository(&rig.moto, repository, false).await;
    let digest = push_image(&rig.moto, repository, tag, "vulnerable").await;
    let findings = vec![
        basic_finding("CVE-2024-0001", "CRITICAL"),
        basic_finding("CVE-2024-0002", "HIGH"),
        basic_finding("CVE-2024-0003", "LOW"),
    ];
    for id in [json!({"imageTag": tag}), json!({"imageDigest": digest})] {
        scan_result(
            &rig.moto,
            repository,
            id,
            "COMPLETE",
            findings.clone(),
            false,
        )
        .await;
    }
    digest
}

#[tokio::test]
async fn all_three_entry_points_reach_the_same_fail_verdict() {
    let rig = Rig::start().await;
    let digest = vulnerable_image(&rig, "prod-api", "1.42.0").await;
    let h = handler(&rig, &[]);

    let basic = h
        .handle(
            &counting(
                scan_event("ecr-image-scan.json", &digest),
                json!({"CRITICAL": 1, "HIGH": 1, "LOW": 1}),
            ),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    let enhanced = h
        .handle(
            &scan_event("inspector2-scan.json", &digest),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    let job = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(basic["verdict"], "FAIL");
    assert_eq!(enhanced["verdict"], "FAIL");
    assert_eq!(job["verdict"], "FAIL");

    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    let message = failure["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("1 CRITICAL finding(s) exceed MAX_CRITICAL=0 (CVE-2024-0001)"),
        "{message}"
    );
    assert!(
        message.contains("1 HIGH finding(s) exceed MAX_HIGH=0 (CVE-2024-0002)"),
        "{message}"
    );

    let posts = rig.sink.delivered();
    assert_eq!(
        posts.len(),
        3,
        "FAIL is notified whichever way it was reached"
    );
    let text = posts[2].to_string();
    assert!(
        text.contains("Image scan FAIL: prod-api:1.42.0@sha256:")
            && text.contains("CVE-2024-0001")
            && text.contains("openssl 3.0.1"),
        "{text}"
    );
    assert!(
        text.contains("1 CRITICAL · 1 HIGH · 0 MEDIUM · 1 LOW"),
        "{text}"
    );
}

#[tokio::test]
async fn a_clean_image_passes_with_output_variables_and_the_pass_tag() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "clean").await;
    scan_result(
        &rig.moto,
        "prod-api",
        json!({"imageTag": "1.42.0"}),
        "COMPLETE",
        vec![basic_finding("CVE-2024-0003", "LOW")],
        false,
    )
    .await;
    let h = handler(&rig, &[("PASS_TAG", "scan-passed"), ("NOTIFY_ON", "ALL")]);

    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["verdict"], "PASS");
    let success = &rig.stub.accepted("PutJobSuccessResult")[0];
    assert_eq!(success["outputVariables"]["VERDICT"], "PASS");
    assert_eq!(success["outputVariables"]["CRITICAL"], "0");
    assert_eq!(success["outputVariables"]["LOW"], "1");
    assert_eq!(success["outputVariables"]["IMAGE_DIGEST"], digest);

    let images = ecr(
        &rig.moto,
        "DescribeImages",
        json!({"repositoryName": "prod-api", "imageIds": [{"imageDigest": digest}]}),
    )
    .await;
    let tags = images["imageDetails"][0]["imageTags"].to_string();
    assert!(
        tags.contains("scan-passed") && tags.contains("1.42.0"),
        "{tags}"
    );
    assert!(
        rig.sink.delivered()[0]
            .to_string()
            .contains("Tagged scan-passed")
    );
}

#[tokio::test]
async fn an_unfinished_scan_continues_and_then_fails_closed_after_max_wait() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    push_image(&rig.moto, "prod-api", "1.42.0", "slow").await;
    scan_result(
        &rig.moto,
        "prod-api",
        json!({"imageTag": "1.42.0"}),
        "IN_PROGRESS",
        vec![],
        false,
    )
    .await;
    let h = handler(&rig, &[("MAX_WAIT", "30m")]);
    let params = json!({"repository": "prod-api", "tag": "1.42.0"});
    let started = now_secs();

    h.handle(
        &job("codepipeline-job.json", params.clone()),
        budget(30),
        started,
    )
    .await
    .unwrap();
    let waiting = &rig.stub.accepted("PutJobSuccessResult")[0];
    let token = waiting["continuationToken"].as_str().unwrap().to_owned();
    assert!(waiting.get("outputVariables").is_none());

    // CodePipeline gives each continuation a job id of its own.
    let mut again = job("codepipeline-job.json", params);
    again["CodePipeline.job"]["data"]["continuationToken"] = json!(token);
    again["CodePipeline.job"]["id"] = json!("continued-1");
    h.handle(&again, budget(30), started + 10 * 60)
        .await
        .unwrap();
    assert_eq!(
        rig.stub.accepted("PutJobSuccessResult").len(),
        2,
        "still waiting after 10 minutes"
    );

    again["CodePipeline.job"]["id"] = json!("continued-2");
    h.handle(&again, budget(30), started + 31 * 60)
        .await
        .unwrap();
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    assert!(
        failure["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_WAIT"),
        "{failure}"
    );
    assert!(
        rig.sink.delivered()[0]
            .to_string()
            .contains("failing closed")
    );
}

#[tokio::test]
async fn findings_on_several_pages_all_count() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "paged").await;
    let page = |findings: Vec<Value>, next: Option<&str>| {
        let mut p = json!({
            "repositoryName": "prod-api", "imageId": {"imageDigest": digest, "imageTag": "1.42.0"},
            "imageScanStatus": {"status": "COMPLETE"},
            "imageScanFindings": {"findings": findings, "imageScanCompletedAt": 1_700_000_000}
        });
        if let Some(n) = next {
            p["nextToken"] = json!(n);
        }
        p
    };
    let op = "DescribeImageScanFindings";
    rig.stub.fixture(
        op,
        json!({"repositoryName": "prod-api"}),
        page(vec![basic_finding("CVE-1", "LOW")], Some("p2")),
    );
    rig.stub.fixture(
        op,
        json!({"nextToken": "p2"}),
        page(vec![basic_finding("CVE-2", "MEDIUM")], Some("p3")),
    );
    rig.stub.fixture(
        op,
        json!({"nextToken": "p3"}),
        page(vec![basic_finding("CVE-3", "CRITICAL")], None),
    );
    let h = handler_with(&rig, Ecr::new(&rig.sdk), &[]);

    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(
        out["verdict"], "FAIL",
        "the critical finding is on the last page"
    );
    assert_eq!(rig.stub.accepted(op).len(), 3);
    assert!(
        rig.sink.delivered()[0]
            .to_string()
            .contains("1 CRITICAL · 0 HIGH · 1 MEDIUM · 1 LOW")
    );
}

#[tokio::test]
async fn waivers_from_ssm_and_ignore_unfixed_let_an_image_pass_and_say_why() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "waived").await;
    let findings = vec![
        enhanced_finding("CVE-2024-1111", "CRITICAL", "NO"),
        enhanced_finding("CVE-2024-2222", "HIGH", "YES"),
    ];
    scan_result(
        &rig.moto,
        "prod-api",
        json!({"imageDigest": digest}),
        "ACTIVE",
        findings,
        true,
    )
    .await;
    let waivers = json!([{"id": "CVE-2024-2222", "repository": "prod-*", "expires": "2099-12-31", "reason": "not reachable from the network"}]);
    rig.moto
        .put_parameter("/ops/ecr/waivers", &waivers.to_string(), "String")
        .await;
    let h = handler(
        &rig,
        &[
            ("WAIVERS", "ssm:/ops/ecr/waivers"),
            ("IGNORE_UNFIXED", "true"),
            ("NOTIFY_ON", "ALL"),
        ],
    );

    let out = h
        .handle(
            &scan_event("inspector2-scan.json", &digest),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(out["verdict"], "PASS");
    let text = rig.sink.delivered()[0].to_string();
    assert!(
        text.contains("Waived *CVE-2024-2222* until 2099-12-31: not reachable from the network"),
        "{text}"
    );
    assert!(
        text.contains("1 finding(s) without a fix ignored"),
        "{text}"
    );
}

/// A policy kept in SSM that cannot be used (a rule with an unknown field) fails the
/// judgement closed, saying why (which field) without the document's text.
#[tokio::test]
async fn a_stored_policy_that_cannot_be_read_fails_closed_and_says_why() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "policy").await;
    scan_result(
        &rig.moto,
        "prod-api",
        json!({"imageDigest": digest}),
        "ACTIVE",
        vec![enhanced_finding("CVE-2024-2222", "HIGH", "YES")],
        true,
    )
    .await;
    rig.moto
        .put_parameter(
            "/ops/ecr/policy",
            r#"{"rules": [{"name": "x", "action": "block", "when": {"sevrity": "LOW"}}]}"#,
            "String",
        )
        .await;
    let h = handler(
        &rig,
        &[("POLICY", "ssm:/ops/ecr/policy"), ("NOTIFY_ON", "ALL")],
    );
    let out = h
        .handle(
            &scan_event("inspector2-scan.json", &digest),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(out["verdict"], "FAIL", "{out}");
    let text = rig.sink.delivered()[0].to_string();
    assert!(
        text.contains("POLICY") && text.contains("unknown field") && !text.contains("LOW"),
        "{text}"
    );
}

/// An expired waiver no longer hides its finding, and the metrics say so: `WaiversExpired`
/// is what tells a team its exceptions need renewing before the gate starts failing.
#[tokio::test]
async fn an_expired_waiver_counts_again_and_is_counted() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "expired").await;
    scan_result(
        &rig.moto,
        "prod-api",
        json!({"imageDigest": digest}),
        "COMPLETE",
        vec![basic_finding("CVE-2024-1111", "CRITICAL")],
        false,
    )
    .await;
    let waivers = json!([{"id": "CVE-2024-1111", "repository": "prod-*", "expires": "2020-01-31", "reason": "patched upstream soon"}]).to_string();
    let h = handler(&rig, &[("WAIVERS", &waivers)]);
    let (out, emf) = standins::emf::captured(
        "ecr-scan-gate",
        h.handle(
            &scan_event("ecr-image-scan.json", &digest),
            budget(30),
            now_secs(),
        ),
    )
    .await;
    assert_eq!(out.unwrap()["verdict"], "FAIL");
    assert_eq!(emf.sum("WaiversExpired", &[]), 1.0);
    assert_eq!(emf.sum("Findings", &[("Severity", "CRITICAL")]), 1.0);
    assert_eq!(emf.sum("Verdicts", &[("Verdict", "FAIL")]), 1.0);
}

#[tokio::test]
async fn an_immutable_tag_conflict_is_reported_not_crashed_on() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", true).await;
    push_image(&rig.moto, "prod-api", "scan-passed", "older").await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "newer").await;
    scan_result(
        &rig.moto,
        "prod-api",
        json!({"imageDigest": digest}),
        "COMPLETE",
        vec![],
        false,
    )
    .await;
    let h = handler(&rig, &[("PASS_TAG", "scan-passed"), ("NOTIFY_ON", "ALL")]);

    let out = h
        .handle(
            &scan_event("ecr-image-scan-no-findings.json", &digest),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(out["verdict"], "PASS");
    let text = rig.sink.delivered()[0].to_string();
    assert!(text.contains("Could not tag scan-passed"), "{text}");
}

#[tokio::test]
async fn an_unusable_scan_fails_closed_with_its_status() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    push_image(&rig.moto, "prod-api", "1.42.0", "weird").await;
    scan_result(
        &rig.moto,
        "prod-api",
        json!({"imageTag": "1.42.0"}),
        "UNSUPPORTED_IMAGE",
        vec![],
        false,
    )
    .await;
    let h = handler(&rig, &[]);
    h.handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    let message = rig.stub.accepted("PutJobFailureResult")[0]["failureDetails"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("scan status UNSUPPORTED_IMAGE: scan UNSUPPORTED_IMAGE"),
        "{message}"
    );
}

#[tokio::test]
async fn a_redelivered_job_is_answered_once_and_a_second_report_is_tolerated_without_the_store() {
    let rig = Rig::start().await;
    vulnerable_image(&rig, "prod-api", "1.42.0").await;
    let event = job(
        "codepipeline-job.json",
        json!({"repository": "prod-api", "tag": "1.42.0"}),
    );
    let h = handler(&rig, &[]);
    h.handle(&event, budget(30), now_secs()).await.unwrap();
    let elsewhere = handler(&rig, &[]);
    let again = elsewhere
        .handle(&event, budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(again["outcome"], "duplicate", "{again}");
    assert_eq!(rig.stub.job_results().len(), 1);
    assert_eq!(rig.sink.delivered().len(), 1, "one FAIL post");

    // A container without the store answers again; CodePipeline's refusal counts as done.
    let unguarded = handler(&rig, &[("IDEMPOTENCY_TABLE", "")]);
    let third = unguarded
        .handle(&event, budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(third["reported"], "AlreadyReported");
    assert_eq!(rig.stub.job_results().len(), 1);
}

/// A scan event whose post failed for now gives its claim back, so Lambda's retry (on any
/// container) posts it; after that, a duplicate delivery is skipped.
#[tokio::test]
async fn a_scan_event_whose_post_failed_for_now_is_posted_once_by_the_retry() {
    let rig = Rig::start().await;
    let digest = vulnerable_image(&rig, "prod-api", "1.42.0").await;
    let event = scan_event("ecr-image-scan.json", &digest);
    rig.sink.script([Reply::Hang]);
    let failed = handler(&rig, &[])
        .handle(&event, Deadline::after(Duration::from_secs(3)), now_secs())
        .await
        .unwrap_err();
    assert!(failed.is_retryable(), "{failed}");
    let retried = handler(&rig, &[])
        .handle(&event, budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(retried["verdict"], "FAIL", "{retried}");
    let duplicate = handler(&rig, &[])
        .handle(&event, budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(duplicate["outcome"], "skipped", "{duplicate}");
    assert_eq!(rig.sink.delivered().len(), 1);
    let released = rig
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == "DeleteItem")
        .count();
    assert_eq!(released, 1);
}

#[tokio::test]
async fn bad_user_parameters_fail_the_job_with_the_reason() {
    let rig = Rig::start().await;
    let h = handler(&rig, &[]);
    h.handle(
        &sample("codepipeline-job-bad-parameters.json"),
        budget(30),
        now_secs(),
    )
    .await
    .unwrap();
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    assert_eq!(failure["failureDetails"]["type"], "ConfigurationError");
    assert!(
        failure["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("UserParameters is not")
    );
}

fn one_image() -> Subject {
    Subject::Image {
        digest: "sha256:abc".into(),
        tags: vec!["1.42.0".into()],
    }
}

/// A registry that panics or never answers, to prove the job is still reported.
struct Broken {
    hang: bool,
}

impl Registry for Broken {
    async fn resolve(&self, _: &ImageRef, _: &Deadline) -> Result<Subject, Error> {
        Ok(one_image())
    }
    async fn index_listing(&self, _: &str, _: &str, _: &Deadline) -> Result<Option<Listed>, Error> {
        Ok(None)
    }
    async fn scan(&self, _: &str, _: &str, _: &Deadline) -> Result<Scan, Error> {
        if self.hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        panic!("simulated bug while reading findings")
    }
    async fn promote(&self, _: &str, _: &str, _: &str, _: &Deadline) -> Result<Promotion, Error> {
        Ok(Promotion::Tagged)
    }
}

#[tokio::test]
async fn a_panic_while_judging_still_fails_the_job() {
    let rig = Rig::start().await;
    let h = handler_with(&rig, Broken { hang: false }, &[]);
    h.handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    assert!(
        failure["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("internal error")
    );
}

#[tokio::test]
async fn a_hanging_scan_read_still_gets_an_answer_before_the_deadline() {
    let rig = Rig::start().await;
    let h = handler_with(&rig, Broken { hang: true }, &[]);
    let started = Instant::now();
    h.handle(
        &job_for_prod_api(),
        Deadline::after(Duration::from_secs(8)),
        now_secs(),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let waiting = &rig.stub.accepted("PutJobSuccessResult")[0];
    assert!(
        waiting["continuationToken"].is_string(),
        "an unfinished evaluation asks to be invoked again: {waiting}"
    );
}

/// An event's time as EventBridge writes it (RFC 3339).
fn rfc3339(secs: i64) -> String {
    standins::ecr::event_time(secs)
}

/// An `Inspector2 Scan` event for `digest`, sent now, counting `counts`.
fn inspector_event(digest: &str, counts: Value) -> Value {
    let mut e = counting(scan_event("inspector2-scan.json", digest), counts);
    e["time"] = json!(rfc3339(now_secs()));
    e
}

/// What the findings API answers for `digest`: an enhanced scan, ACTIVE, done two minutes ago.
fn enhanced_answer(digest: &str, findings: Vec<Value>) -> Value {
    standins::ecr::scan_answer(
        "prod-api",
        json!({"imageDigest": digest}),
        "ACTIVE",
        findings,
        true,
        now_secs() - 120,
    )
}

fn findings_for(digest: &str) -> Value {
    json!({"repositoryName": "prod-api", "imageId": {"imageDigest": digest}})
}

/// prod-api:1.42.0 pushed, with an enhanced scan that shows no finding yet.
async fn image_with_findings_to_come(rig: &Rig) -> String {
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "late").await;
    rig.stub.fixture(
        "DescribeImageScanFindings",
        findings_for(&digest),
        enhanced_answer(&digest, vec![]),
    );
    digest
}

fn critical_finding() -> Value {
    enhanced_finding("CVE-2024-3333", "CRITICAL", "YES")
}

fn tagged(rig: &Rig, tag: &str) -> bool {
    rig.stub
        .accepted("PutImage")
        .iter()
        .any(|p| p["imageTag"] == tag)
}

/// Inspector's findings reach the findings API after its scan event (ECR user guide,
/// enhanced scanning; ecperth/check-aws-inspector and aws/aws-for-fluent-bit#1105 poll for
/// them). The event counted a CRITICAL the API does not show yet: the gate waits within the
/// invocation and fails the image once the finding is readable, never passing it first.
#[tokio::test]
async fn a_finding_the_event_counted_is_waited_for_and_fails_the_image() {
    let rig = Rig::start().await;
    let digest = image_with_findings_to_come(&rig).await;
    rig.stub.fixture_after(
        Duration::from_secs(3),
        "DescribeImageScanFindings",
        findings_for(&digest),
        enhanced_answer(&digest, vec![critical_finding()]),
    );
    let h = handler(
        &rig,
        &[
            ("PASS_TAG", "scan-passed"),
            ("NOTIFY_ON", "ALL"),
            ("FINDINGS_SETTLE", "0s"),
        ],
    );
    let out = h
        .handle(
            &inspector_event(&digest, json!({"CRITICAL": 1, "TOTAL": 1})),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(out["verdict"], "FAIL", "{out}");
    assert!(!tagged(&rig, "scan-passed"), "never promoted");
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1, "one post, the FAIL: {posts:?}");
    assert!(
        posts[0].to_string().contains("CVE-2024-3333"),
        "{}",
        posts[0]
    );
    let looks = rig
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == "DescribeImageScanFindings")
        .count();
    assert!(looks >= 2, "looked again after the early look: {looks}");
}

/// A look that still contradicts the event when the invocation's time is up is not decided
/// on: the invocation fails retryably, so Lambda delivers the event again (its documented
/// retries of an asynchronous event), and that delivery decides on what is readable then.
#[tokio::test]
async fn an_early_look_is_never_passed_and_the_retried_event_fails_naming_the_finding() {
    let rig = Rig::start().await;
    let digest = image_with_findings_to_come(&rig).await;
    let h = handler(
        &rig,
        &[
            ("PASS_TAG", "scan-passed"),
            ("NOTIFY_ON", "ALL"),
            ("FINDINGS_SETTLE", "0s"),
        ],
    );
    let event = inspector_event(&digest, json!({"CRITICAL": 1, "TOTAL": 1}));
    let early = h
        .handle(&event, Deadline::after(Duration::from_secs(12)), now_secs())
        .await
        .unwrap_err();
    assert!(early.is_retryable(), "{early}");
    assert!(
        rig.sink.delivered().is_empty(),
        "nothing posted on an early look"
    );
    assert!(
        !tagged(&rig, "scan-passed"),
        "nothing promoted on an early look"
    );

    rig.stub.fixture(
        "DescribeImageScanFindings",
        findings_for(&digest),
        enhanced_answer(&digest, vec![critical_finding()]),
    );
    let retried = h.handle(&event, budget(30), now_secs()).await.unwrap();
    assert_eq!(retried["verdict"], "FAIL", "{retried}");
    assert!(!tagged(&rig, "scan-passed"));
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].to_string().contains("CVE-2024-3333"),
        "{}",
        posts[0]
    );
}

/// A pipeline job is told nothing itself, but the scan event for its image usually came
/// first: what the event counted is kept (the idempotency table), and a job that looks while
/// the findings API still shows less waits instead of passing.
#[tokio::test]
async fn a_job_never_passes_below_what_the_images_scan_event_counted() {
    let rig = Rig::start().await;
    let digest = image_with_findings_to_come(&rig).await;
    let h = handler(&rig, &[("FINDINGS_SETTLE", "0s")]);
    let event = inspector_event(&digest, json!({"CRITICAL": 1, "TOTAL": 1}));
    let early = h
        .handle(&event, Deadline::after(Duration::from_secs(12)), now_secs())
        .await
        .unwrap_err();
    assert!(early.is_retryable(), "{early}");

    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["result"], "continue", "{out}");
    let waiting = &rig.stub.accepted("PutJobSuccessResult")[0];
    assert!(
        waiting["currentRevision"].is_null() && waiting["continuationToken"].is_string(),
        "{waiting}"
    );
    let summary = waiting["executionDetails"]["summary"]
        .as_str()
        .unwrap_or_default();
    assert!(summary.contains("1 CRITICAL (readable: 0)"), "{waiting}");

    rig.stub.fixture(
        "DescribeImageScanFindings",
        findings_for(&digest),
        enhanced_answer(&digest, vec![critical_finding()]),
    );
    let mut again = job_for_prod_api();
    again["CodePipeline.job"]["id"] = json!("continued-after-the-findings");
    again["CodePipeline.job"]["data"]["continuationToken"] = waiting["continuationToken"].clone();
    let decided = h.handle(&again, budget(30), now_secs()).await.unwrap();
    assert_eq!(decided["verdict"], "FAIL", "{decided}");
}

/// Findings that never show what the event counted, past FINDINGS_SETTLE and the span of
/// Lambda's retries after the event: the image is failed closed, and a person is told why.
#[tokio::test]
async fn findings_that_never_match_the_event_fail_closed_with_the_reason() {
    let rig = Rig::start().await;
    let digest = image_with_findings_to_come(&rig).await;
    let h = handler(
        &rig,
        &[("PASS_TAG", "scan-passed"), ("FINDINGS_SETTLE", "0s")],
    );
    let mut event = inspector_event(&digest, json!({"CRITICAL": 1, "TOTAL": 1}));
    event["time"] = json!(rfc3339(now_secs() - 300));
    let out = h.handle(&event, budget(30), now_secs()).await.unwrap();
    assert_eq!(out["verdict"], "FAIL", "{out}");
    assert!(!tagged(&rig, "scan-passed"));
    let post = rig.sink.delivered()[0].to_string();
    assert!(
        post.contains("failing closed") && post.contains("1 CRITICAL (readable: 0)"),
        "{post}"
    );
}

/// Enhanced findings keep arriving after a scan reports complete: a pipeline job is invoked
/// again until FINDINGS_SETTLE has passed, and a scan event waits within its invocation.
#[tokio::test]
async fn a_fresh_enhanced_scan_waits_to_settle_in_a_pipeline_and_from_its_event() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "fresh").await;
    rig.stub.fixture(
        "DescribeImageScanFindings",
        findings_for(&digest),
        standins::ecr::scan_answer(
            "prod-api",
            json!({"imageDigest": digest}),
            "ACTIVE",
            vec![critical_finding()],
            true,
            now_secs(),
        ),
    );
    let h = handler(&rig, &[("FINDINGS_SETTLE", "3s")]);
    let job_out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(job_out["result"], "continue", "{job_out}");
    let started = Instant::now();
    let event_out = h
        .handle(
            &inspector_event(&digest, json!({"CRITICAL": 1, "TOTAL": 1})),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(event_out["verdict"], "FAIL", "{event_out}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "decided only after the settle time: {:?}",
        started.elapsed()
    );
}

/// Two platforms (linux/amd64 with a LOW, linux/arm64 with a `variant`-less manifest) and
/// buildx's attestation manifest, under one tag; findings by each platform's digest.
async fn multi_platform_image(rig: &Rig, arm_findings: Vec<Value>) -> (String, Vec<String>) {
    create_repository(&rig.moto, "prod-api", false).await;
    let (index, platforms) = standins::ecr::push_index(
        &rig.moto,
        "prod-api",
        "1.42.0",
        &[
            ("linux/amd64", "amd64-build"),
            ("linux/arm64", "arm64-build"),
        ],
    )
    .await;
    // Through the stub: moto hands a configured result without a tag to the first untagged
    // image it is asked about, and platform images are untagged.
    for (digest, findings) in [
        (&platforms[0], vec![basic_finding("CVE-2024-0003", "LOW")]),
        (&platforms[1], arm_findings),
    ] {
        standins::ecr::ScanOf {
            repository: "prod-api",
            digest,
            status: "COMPLETE",
            findings,
            enhanced: false,
            completed_at: now_secs() - 120,
        }
        .answer(&rig.stub);
    }
    (index, platforms)
}

/// `docker buildx` pushes an image index (with provenance attestations by default), and
/// ECR scans the platform images it lists, not the index. A job naming the index's tag is
/// judged on every platform, the attestation skipped and said, and a PASS promotes the index:
/// what the pipeline deploys.
#[tokio::test]
async fn an_image_index_is_judged_on_every_platform_and_promoted_as_the_index() {
    let rig = Rig::start().await;
    let (index, platforms) = multi_platform_image(&rig, vec![]).await;
    let h = handler(&rig, &[("PASS_TAG", "scan-passed"), ("NOTIFY_ON", "ALL")]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["verdict"], "PASS", "{out}");
    let success = &rig.stub.accepted("PutJobSuccessResult")[0];
    assert_eq!(success["outputVariables"]["IMAGE_DIGEST"], index);
    assert_eq!(
        success["outputVariables"]["PLATFORMS"],
        "linux/amd64,linux/arm64"
    );
    assert_eq!(
        success["outputVariables"]["LOW"], "1",
        "the worst platform's counts"
    );
    for digest in &platforms[..2] {
        assert!(
            rig.stub
                .accepted("DescribeImageScanFindings")
                .iter()
                .any(|c| c["imageId"]["imageDigest"] == digest.as_str()),
            "{digest} judged"
        );
    }
    let promoted = ecr(
        &rig.moto,
        "DescribeImages",
        json!({"repositoryName": "prod-api", "imageIds": [{"imageTag": "scan-passed"}]}),
    )
    .await;
    assert_eq!(
        promoted["imageDetails"][0]["imageDigest"], index,
        "{promoted}"
    );
    let post = rig.sink.delivered()[0].to_string();
    assert!(
        post.contains("linux/amd64")
            && post.contains("linux/arm64")
            && post.contains("build attestation"),
        "{post}"
    );
    assert!(
        rig.stub.accepted("StartImageScan").is_empty(),
        "an index is never scanned itself"
    );
}

#[tokio::test]
async fn an_image_index_fails_when_one_platform_fails_and_says_which() {
    let rig = Rig::start().await;
    multi_platform_image(&rig, vec![basic_finding("CVE-2024-0001", "CRITICAL")]).await;
    let h = handler(&rig, &[("PASS_TAG", "scan-passed")]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["verdict"], "FAIL", "{out}");
    let message = rig.stub.accepted("PutJobFailureResult")[0]["failureDetails"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message
            .contains("linux/arm64: 1 CRITICAL finding(s) exceed MAX_CRITICAL=0 (CVE-2024-0001)"),
        "{message}"
    );
    assert!(!tagged(&rig, "scan-passed"));
}

fn platform_event(digest: &str, counts: Value) -> Value {
    let mut event = counting(scan_event("ecr-image-scan.json", digest), counts);
    event["time"] = json!(rfc3339(now_secs()));
    event["detail"]["image-tags"] = json!([]);
    event["id"] = json!(format!("event-for-{digest}"));
    event
}

/// A scan event names one platform image (untagged: buildx tags the index). The gate finds
/// the index that lists it and judges the index whole; it passes the index only once every
/// platform's own event has come (the first is acknowledged as PENDING), then tags the index,
/// never a platform, and tells the verdict once.
#[tokio::test]
async fn a_platform_scan_event_judges_and_promotes_its_index_once() {
    let rig = Rig::start().await;
    let (index, platforms) = multi_platform_image(&rig, vec![]).await;
    let h = handler(&rig, &[("PASS_TAG", "scan-passed"), ("NOTIFY_ON", "ALL")]);
    let first = h
        .handle(
            &platform_event(&platforms[0], json!({"LOW": 1})),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(first["verdict"], "PENDING", "{first}");
    assert!(rig.stub.accepted("PutImage").is_empty());
    let second = h
        .handle(
            &platform_event(&platforms[1], json!({})),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(second["verdict"], "PASS", "{second}");
    let promoted = ecr(
        &rig.moto,
        "DescribeImages",
        json!({"repositoryName": "prod-api", "imageIds": [{"imageTag": "scan-passed"}]}),
    )
    .await;
    assert_eq!(
        promoted["imageDetails"][0]["imageDigest"], index,
        "{promoted}"
    );
    let puts = rig.stub.accepted("PutImage");
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0]["imageDigest"], index);
    // A redelivery of the first platform's event now finds the index told.
    let mut again = platform_event(&platforms[0], json!({"LOW": 1}));
    again["id"] = json!("a-second-delivery-of-the-first-platforms-event");
    let third = h.handle(&again, budget(30), now_secs()).await.unwrap();
    assert_eq!(third["verdict"], "PASS", "{third}");
    assert_eq!(rig.stub.accepted("PutImage").len(), 1);
    assert_eq!(rig.sink.delivered().len(), 1, "one PASS post for the index");
}

/// One platform's event counted a CRITICAL the findings API does not show yet. Another
/// platform's event, judging the same index, must not pass it on that platform's early look:
/// what each event said is kept for every later look at the image.
#[tokio::test]
async fn a_platforms_event_never_passes_the_index_below_what_another_platforms_event_counted() {
    let rig = Rig::start().await;
    let (_, platforms) = multi_platform_image(&rig, vec![]).await;
    let h = handler(&rig, &[("PASS_TAG", "scan-passed"), ("NOTIFY_ON", "ALL")]);
    // amd64's event counts a CRITICAL its (stubbed) findings do not show; its invocation ends
    // waiting, and Lambda would retry it.
    let early = h
        .handle(
            &platform_event(&platforms[0], json!({"CRITICAL": 1})),
            Deadline::after(Duration::from_secs(12)),
            now_secs(),
        )
        .await
        .unwrap_err();
    assert!(early.is_retryable(), "{early}");
    let other = h
        .handle(
            &platform_event(&platforms[1], json!({})),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(other["verdict"], "PENDING", "{other}");
    assert!(rig.stub.accepted("PutImage").is_empty(), "never tagged");
    assert!(
        rig.sink.delivered().is_empty(),
        "nothing passed, nothing posted"
    );
}

/// ECR's scan on push scans buildx's attestation manifest too, and the scan fails (it is
/// not an image: moby/buildkit#3499). Its scan event is recognised as the index's
/// attestation and acknowledged, never posted as a FAIL.
#[tokio::test]
async fn an_attestations_failed_scan_is_acknowledged_not_posted() {
    let rig = Rig::start().await;
    let (_, digests) = multi_platform_image(&rig, vec![]).await;
    let mut event = platform_event(&digests[2], json!({}));
    event["detail"]["scan-status"] = json!("FAILED");
    let out = handler(&rig, &[])
        .handle(&event, budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert!(rig.sink.delivered().is_empty());
}

/// PASS_TAG marks what was pushed by name. An untagged image that no index lists may be one
/// platform of an index pushed later: it is judged and told, never tagged.
#[tokio::test]
async fn an_untagged_image_no_index_lists_is_judged_but_not_tagged() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let (_, platforms) =
        standins::ecr::push_index(&rig.moto, "prod-api", "9.9.9", &[("linux/amd64", "lone")]).await;
    // The index is gone (deleted, or not pushed yet); its platform image remains.
    ecr(
        &rig.moto,
        "BatchDeleteImage",
        json!({"repositoryName": "prod-api", "imageIds": [{"imageTag": "9.9.9"}]}),
    )
    .await;
    rig.stub.fixture(
        "DescribeImageScanFindings",
        findings_for(&platforms[0]),
        standins::ecr::scan_answer(
            "prod-api",
            json!({"imageDigest": platforms[0]}),
            "COMPLETE",
            vec![],
            false,
            now_secs() - 120,
        ),
    );
    let h = handler(&rig, &[("PASS_TAG", "scan-passed"), ("NOTIFY_ON", "ALL")]);
    let out = h
        .handle(
            &platform_event(&platforms[0], json!({})),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(out["verdict"], "PASS", "{out}");
    assert!(rig.stub.accepted("PutImage").is_empty(), "not tagged");
    assert_eq!(rig.sink.delivered().len(), 1);
}

/// What an event said is a floor for later looks at the same scan; a later scan (a manual
/// re-scan with a newer vulnerability database) that finds less replaces it.
#[tokio::test]
async fn a_rescan_that_finds_less_replaces_what_the_earlier_event_said() {
    let rig = Rig::start().await;
    let digest = image_with_findings_to_come(&rig).await;
    let h = handler(&rig, &[("FINDINGS_SETTLE", "0s")]);
    let mut first = inspector_event(&digest, json!({"CRITICAL": 1, "TOTAL": 1}));
    first["time"] = json!(rfc3339(now_secs() - 300));
    let failed = h.handle(&first, budget(30), now_secs()).await.unwrap();
    assert_eq!(failed["verdict"], "FAIL", "{failed}");
    let mut rescan = inspector_event(&digest, json!({"TOTAL": 0}));
    rescan["id"] = json!("the-rescan");
    let passed = h.handle(&rescan, budget(30), now_secs()).await.unwrap();
    assert_eq!(passed["verdict"], "PASS", "{passed}");
}

/// A platform whose scan ECR completed long before (its image pushed by an earlier build,
/// so scanned and told of then, or never again) does not hold the index: one platform's event
/// decides it.
#[tokio::test]
async fn an_index_whose_other_platforms_were_scanned_long_ago_passes_on_one_event() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let (index, platforms) = standins::ecr::push_index(
        &rig.moto,
        "prod-api",
        "1.42.0",
        &[("linux/amd64", "old-amd64"), ("linux/arm64", "new-arm64")],
    )
    .await;
    for (digest, completed_at) in [
        (&platforms[0], now_secs() - 3600),
        (&platforms[1], now_secs() - 30),
    ] {
        standins::ecr::ScanOf {
            repository: "prod-api",
            digest,
            status: "COMPLETE",
            findings: vec![],
            enhanced: false,
            completed_at,
        }
        .answer(&rig.stub);
    }
    let h = handler(&rig, &[("PASS_TAG", "scan-passed")]);
    let out = h
        .handle(
            &platform_event(&platforms[1], json!({})),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(out["verdict"], "PASS", "{out}");
    assert_eq!(rig.stub.accepted("PutImage")[0]["imageDigest"], index);
}

/// ECR's API reference lists only image manifest types for BatchGetImage's
/// acceptedMediaTypes. Should ECR refuse the index types, the gate asks without the list
/// (manifests come back as stored) to read the index and to tag it.
#[tokio::test]
async fn an_index_is_read_and_tagged_when_ecr_refuses_index_media_types() {
    let rig = Rig::start().await;
    let (index, _) = multi_platform_image(&rig, vec![]).await;
    rig.stub.fixture_error(
        "BatchGetImage",
        json!({"acceptedMediaTypes": [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json"
        ]}),
        "InvalidParameterException",
        "Invalid parameter at 'acceptedMediaTypes'",
    );
    let h = handler(&rig, &[("PASS_TAG", "scan-passed")]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["verdict"], "PASS", "{out}");
    let puts = rig.stub.accepted("PutImage");
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0]["imageDigest"], index);
    assert!(
        rig.stub
            .calls()
            .iter()
            .any(|c| c.operation == "BatchGetImage" && c.status == 400),
        "the refusal was met"
    );
}

/// A scan event the gate cannot judge for good (here: the image was deleted before its scan
/// event arrived) is told to a person, never only logged.
#[tokio::test]
async fn a_scan_event_that_cannot_be_judged_is_told_not_dropped() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let gone = format!("sha256:{}", "0".repeat(64));
    let out = handler(&rig, &[])
        .handle(
            &scan_event("ecr-image-scan.json", &gone),
            budget(30),
            now_secs(),
        )
        .await
        .unwrap();
    assert_eq!(out["verdict"], "FAIL", "{out}");
    let post = rig.sink.delivered()[0].to_string();
    assert!(post.contains("could not be judged"), "{post}");
}

/// ECR refuses to scan an image index (StartImageScan: UnsupportedImageTypeException); the
/// stand-in does too, so a gate that tried would be seen failing here.
#[tokio::test]
async fn the_stand_in_refuses_to_scan_an_index_as_ecr_does() {
    let rig = Rig::start().await;
    let (index, _) = multi_platform_image(&rig, vec![]).await;
    let sdk = aws_sdk_ecr::Client::new(&rig.sdk);
    let refused = sdk
        .start_image_scan()
        .repository_name("prod-api")
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&index)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let code = aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&refused);
    assert_eq!(code, Some("UnsupportedImageTypeException"), "{refused:?}");
}

/// A gate whose configuration is broken still starts, so a pipeline job gets a failure with
/// the reason at once instead of waiting for CodePipeline's timeout, and a person hears it.
#[tokio::test]
async fn a_broken_configuration_fails_each_job_with_the_reason_and_notifies() {
    let rig = Rig::start().await;
    let topic = rig.moto.create_topic("ops-alerts").await;
    let h = handler(&rig, &[("MAX_CRITICAL", "none"), ("SNS_TOPIC_ARN", &topic)]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    assert_eq!(failure["failureDetails"]["type"], "ConfigurationError");
    let message = failure["failureDetails"]["message"].as_str().unwrap();
    assert!(message.contains("MAX_CRITICAL"), "{message}");
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].to_string().contains("MAX_CRITICAL"),
        "{}",
        posts[0]
    );
    assert_eq!(
        rig.stub.accepted("Publish").len(),
        1,
        "and to SNS, built apart from the broken settings"
    );
}

/// Scan events cannot be failed back to anyone, so a broken configuration is posted once
/// per container rather than once per pushed image.
#[tokio::test]
async fn a_broken_configuration_is_posted_once_for_a_burst_of_scan_events() {
    let rig = Rig::start().await;
    let h = handler(&rig, &[("MAX_CRITICAL", "none")]);
    for digest in ["sha256:aaaa", "sha256:bbbb"] {
        let out = h
            .handle(
                &scan_event("ecr-image-scan.json", digest),
                budget(30),
                now_secs(),
            )
            .await
            .unwrap();
        assert_eq!(out["outcome"], "not-judged", "{out}");
    }
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].to_string().contains("configuration error"));
}

/// A role without `codepipeline:PutJobSuccessResult` leaves the stage waiting for its
/// timeout: the refusal reaches a person even for a PASS that `NOTIFY_ON=FAIL` keeps quiet.
#[tokio::test]
async fn a_refused_job_result_is_notified_even_for_a_pass() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "clean").await;
    for id in [
        json!({"imageTag": "1.42.0"}),
        json!({"imageDigest": digest}),
    ] {
        scan_result(&rig.moto, "prod-api", id, "COMPLETE", vec![], false).await;
    }
    rig.stub.fixture_error(
        "PutJobSuccessResult",
        json!({}),
        "AccessDeniedException",
        "User is not authorized to perform: codepipeline:PutJobSuccessResult",
    );
    let h = handler(&rig, &[]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["reported"], "NotReported", "{out}");
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    let post = posts[0].to_string();
    assert!(
        post.contains("Could not report") && post.contains("AccessDeniedException"),
        "{post}"
    );
}

/// prod-api:1.42.0 pushed, and ECR answering that it has no scan (`ScanNotFoundException`).
async fn image_without_a_scan(rig: &Rig) {
    create_repository(&rig.moto, "prod-api", false).await;
    push_image(&rig.moto, "prod-api", "1.42.0", "unscanned").await;
    rig.stub.fixture_error(
        "DescribeImageScanFindings",
        json!({"repositoryName": "prod-api"}),
        "ScanNotFoundException",
        "Image scan does not exist for the image",
    );
}

fn job_for_prod_api() -> Value {
    job(
        "codepipeline-job.json",
        json!({"repository": "prod-api", "tag": "1.42.0"}),
    )
}

/// A repository without scan on push has no scan (`ScanNotFoundException`): the gate starts
/// a basic scan once and waits for it, rather than waiting out MAX_WAIT for nothing.
#[tokio::test]
async fn with_no_scan_the_gate_starts_one_and_waits() {
    let rig = Rig::start().await;
    image_without_a_scan(&rig).await;
    // moto counts a pushed image as scanned today, so its StartImageScan answers the daily
    // limit; the success answer (its documented shape) comes from a fixture.
    rig.stub.fixture(
        "StartImageScan",
        json!({"repositoryName": "prod-api"}),
        json!({"repositoryName": "prod-api", "imageId": {"imageTag": "1.42.0"}, "imageScanStatus": {"status": "IN_PROGRESS"}}),
    );
    let h = handler(&rig, &[]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["result"], "continue", "{out}");
    assert_eq!(rig.stub.accepted("StartImageScan").len(), 1);
    let waiting = &rig.stub.accepted("PutJobSuccessResult")[0];
    let summary = waiting["executionDetails"]["summary"].as_str().unwrap();
    assert!(summary.contains("scan on push"), "{summary}");
}

/// Where no scan can be started (a registry with enhanced scanning refuses StartImageScan;
/// so does a role without the grant), the job fails at once with advice instead of waiting
/// out MAX_WAIT.
#[tokio::test]
async fn with_no_scan_and_none_startable_the_job_fails_fast_with_advice() {
    let rig = Rig::start().await;
    image_without_a_scan(&rig).await;
    rig.stub.fixture_error(
        "StartImageScan",
        json!({"repositoryName": "prod-api"}),
        "ValidationException",
        "This feature is disabled for registries with enhanced scanning",
    );
    let h = handler(&rig, &[]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    let message = failure["failureDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("no scan exists and one could not be started")
            && message.contains("Turn on scan on push"),
        "{message}"
    );
}

/// Each way tagging can fail is told as what it is, not as an immutable-tag conflict.
#[tokio::test]
async fn each_promotion_error_is_told_apart() {
    let rig = Rig::start().await;
    create_repository(&rig.moto, "prod-api", false).await;
    let digest = push_image(&rig.moto, "prod-api", "1.42.0", "clean").await;
    for id in [
        json!({"imageTag": "1.42.0"}),
        json!({"imageDigest": digest}),
    ] {
        scan_result(&rig.moto, "prod-api", id.clone(), "COMPLETE", vec![], false).await;
        scan_result(&rig.moto, "prod-api", id.clone(), "COMPLETE", vec![], false).await;
        scan_result(&rig.moto, "prod-api", id, "COMPLETE", vec![], false).await;
    }
    let h = handler(&rig, &[("PASS_TAG", "scan-passed"), ("NOTIFY_ON", "ALL")]);
    let posted = |i: usize| rig.sink.delivered()[i].to_string();

    rig.stub.fixture_error(
        "PutImage",
        json!({}),
        "AccessDeniedException",
        "not authorized to perform: ecr:PutImage",
    );
    h.handle(
        &scan_event("ecr-image-scan-no-findings.json", &digest),
        budget(30),
        now_secs(),
    )
    .await
    .unwrap();
    assert!(
        posted(0).contains("may not tag this repository"),
        "{}",
        posted(0)
    );

    rig.stub.fixture_error(
        "PutImage",
        json!({}),
        "ThrottlingException",
        "Rate exceeded",
    );
    h.handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert!(
        posted(1).contains("throttling or unavailable"),
        "{}",
        posted(1)
    );

    rig.stub.fixture(
        "BatchGetImage",
        json!({}),
        json!({"images": [], "failures": [{"imageId": {"imageDigest": digest}, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}]}),
    );
    let mut again = job_for_prod_api();
    again["CodePipeline.job"]["id"] = json!("22222222-2222-3333-4444-555555555555");
    h.handle(&again, budget(30), now_secs()).await.unwrap();
    assert!(
        posted(2).contains("ImageNotFound: Requested image not found"),
        "{}",
        posted(2)
    );
}

/// CodePipeline throttling the job result past the SDK's retries: a pipeline job's event
/// carries artifactCredentials, and a failed invocation's event would end in the dead-letter
/// queue. So the invocation still succeeds, and a person is told the stage is waiting.
#[tokio::test]
async fn a_job_result_that_cannot_be_sent_is_told_and_never_fails_the_invocation() {
    let rig = Rig::start().await;
    let digest = vulnerable_image(&rig, "prod-api", "1.42.0").await;
    assert!(!digest.is_empty());
    rig.stub.throttle("PutJobFailureResult", 100);
    let h = handler(&rig, &[]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .expect("never an invocation error on the job path");
    assert_eq!(out["reported"], "NotReported", "{out}");
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].to_string().contains("Could not report"),
        "{}",
        posts[0]
    );
}

/// ECR allows one manual scan per image per day. moto enforces it (it counts a pushed image
/// as scanned today): the refusal means a scan is already on its way, so the job waits.
#[tokio::test]
async fn with_no_scan_found_but_one_started_today_the_job_waits() {
    let rig = Rig::start().await;
    image_without_a_scan(&rig).await;
    let h = handler(&rig, &[]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .unwrap();
    assert_eq!(out["result"], "continue", "{out}");
    // The SDK retries LimitExceededException as throttling before it reaches the gate.
    let starts: Vec<u16> = rig
        .stub
        .calls()
        .into_iter()
        .filter(|c| c.operation == "StartImageScan")
        .map(|c| c.status)
        .collect();
    assert!(
        !starts.is_empty() && starts.iter().all(|s| *s == 400),
        "refused by moto's daily limit: {starts:?}"
    );
}

/// Passes the image, then panics while tagging it: outside the evaluation's own guard.
struct PanicsWhileTagging;

impl Registry for PanicsWhileTagging {
    async fn resolve(&self, _: &ImageRef, _: &Deadline) -> Result<Subject, Error> {
        Ok(one_image())
    }
    async fn index_listing(&self, _: &str, _: &str, _: &Deadline) -> Result<Option<Listed>, Error> {
        Ok(None)
    }
    async fn scan(&self, _: &str, _: &str, _: &Deadline) -> Result<Scan, Error> {
        Ok(Scan::Complete {
            findings: vec![],
            enhanced: false,
            completed_at: None,
        })
    }
    async fn promote(&self, _: &str, _: &str, _: &str, _: &Deadline) -> Result<Promotion, Error> {
        panic!("simulated bug while tagging")
    }
}

/// A panic anywhere on the job path still fails the job with the reason, tells a person, and
/// never fails the invocation (whose event, with artifactCredentials, would be kept whole in
/// the dead-letter queue).
#[tokio::test]
async fn a_panic_outside_the_evaluation_still_fails_the_job_and_acknowledges() {
    let rig = Rig::start().await;
    let h = handler_with(&rig, PanicsWhileTagging, &[("PASS_TAG", "scan-passed")]);
    let out = h
        .handle(&job_for_prod_api(), budget(30), now_secs())
        .await
        .expect("never an invocation error on the job path");
    assert_eq!(out["outcome"], "unanswered", "{out}");
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    let message = failure["failureDetails"]["message"].as_str().unwrap();
    assert!(message.contains("could not finish answering"), "{message}");
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].to_string().contains("the job is failed"),
        "{}",
        posts[0]
    );
}
