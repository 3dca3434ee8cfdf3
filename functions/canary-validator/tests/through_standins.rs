//! The validator with its real clients against the stand-ins: a local HTTP server for the
//! new version, moto for alarms and SSM (CloudWatch through the stub's CBOR bridge), the
//! recording stub for CodeDeploy, and the Slack sink. Every scenario checks that exactly one
//! correct status was recorded, before the deadline.

mod common;

use std::time::{Duration, Instant};

use common::{hook_event, known_deployments};
use serde_json::{Value, json};
use shared::clients::Clients;
use standins::rig::{Rig, TABLE, budget, quick_slack};
use standins::{Moto, RecordingStub, SelfSignedTls, SlackSink, Target};

type Validator = canary_validator::app::App;

const HOOK_STATUS: &str = "PutLifecycleEventHookExecutionStatus";

/// The shared rig when a scenario needs AWS beyond CodeDeploy, and a target for the checks.
struct World {
    stub: RecordingStub,
    sink: SlackSink,
    target: Target,
    moto: Option<Moto>,
}

impl World {
    /// `with_moto` for alarms and SSM (the shared rig); HTTP-only scenarios skip its start-up
    /// and have no idempotency table.
    async fn start(with_moto: bool) -> Self {
        let (stub, sink, moto) = if with_moto {
            let Rig {
                moto, stub, sink, ..
            } = Rig::start().await;
            (stub, sink, Some(moto))
        } else {
            (RecordingStub::start().await, SlackSink::start().await, None)
        };
        known_deployments(&stub);
        Self {
            stub,
            sink,
            target: Target::start().await,
            moto,
        }
    }

    fn moto(&self) -> &Moto {
        self.moto.as_ref().expect("started with moto")
    }

    /// The validator as `main.rs` builds it, with an SDK that retries and gives up sooner.
    async fn validator(&self, checks: Value, extra: &[(&str, &str)]) -> Validator {
        let sdk = standins::moto::sdk_config_for(&self.stub.endpoint())
            .await
            .into_builder()
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(20)),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        let mut base = vec![
            ("HOOK", "AfterAllowTraffic".to_owned()),
            ("CHECKS", checks.to_string()),
            ("SLACK_WEBHOOK_URL", self.sink.webhook_url("deploys")),
            ("REPORT_MARGIN", "1s".to_owned()),
        ];
        if self.moto.is_some() {
            base.push(("IDEMPOTENCY_TABLE", TABLE.to_owned()));
        }
        let env = standins::rig::env(base, extra);
        canary_validator::app::build(&env, &Clients::new(sdk, quick_slack())).unwrap()
    }

    /// The statuses recorded for `hook_execution_id`.
    fn recorded(&self, hook_execution_id: &str) -> Vec<String> {
        self.stub
            .accepted(HOOK_STATUS)
            .iter()
            .filter(|c| c["lifecycleEventHookExecutionId"] == hook_execution_id)
            .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn http(url: String, extra: Value) -> Value {
    let mut check = json!({"type": "http", "url": url, "interval": "50ms", "timeout": "2s"});
    for (k, v) in extra.as_object().unwrap() {
        check[k] = v.clone();
    }
    check
}

#[tokio::test]
async fn a_healthy_version_is_reported_succeeded_once_with_evidence() {
    let w = World::start(true).await;
    w.moto().put_alarm("api-5xx").await;
    let checks = json!([
        http(w.target.url("/healthy"), json!({"name": "health", "attempts": 3,
            "json_pointer": "/status", "json_equals": "UP", "max_latency": "2s"})),
        {"type": "alarms", "alarms": ["api-5xx"], "bake": "1s", "poll": "200ms"},
    ]);
    let topic = w.moto().create_topic("ops-alerts").await;
    let v = w
        .validator(checks, &[("NOTIFY_ON", "ALL"), ("SNS_TOPIC_ARN", &topic)])
        .await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-ok"), budget(20))
        .await
        .unwrap();

    assert_eq!(out["status"], "Succeeded", "{out}");
    assert_eq!(w.recorded("hook-ok"), vec!["Succeeded"]);
    assert_eq!(w.target.hits("/healthy"), 3);
    assert_eq!(out["checks"][0]["evidence"][0], "3/3 passed (needed 3/3)");
    assert!(
        out["checks"][1]["evidence"][0].as_str().unwrap() == "api-5xx OK",
        "{out}"
    );
    let posted = w.sink.delivered();
    assert_eq!(posted.len(), 1);
    let text = posted[0].to_string();
    assert!(
        text.contains("AfterAllowTraffic passed: AppECS-prod-api / prod-api-dg"),
        "{text}"
    );
    assert!(text.contains("codedeploy/deployments/d-GOOD"));
    assert_eq!(
        w.stub.accepted("Publish").len(),
        1,
        "the same notification goes to SNS"
    );
}

#[tokio::test]
async fn each_kind_of_bad_answer_fails_the_hook_with_its_reason() {
    let w = World::start(false).await;
    let cases = [
        ("/error", json!({}), "HTTP 500, expected 200"),
        (
            "/slow",
            json!({"max_latency": "300ms", "attempts": 1}),
            "over the 300 ms limit",
        ),
        (
            "/wrong-body",
            json!({"json_pointer": "/status", "json_equals": "UP"}),
            r#"/status is "DOWN", expected "UP""#,
        ),
        (
            "/flapping",
            json!({"attempts": 6, "min_success_ratio": 0.9}),
            "HTTP 503, expected 200",
        ),
        (
            "/redirect",
            json!({}),
            "HTTP 302 (redirect to https://login.example.com/ not followed)",
        ),
        (
            "/big",
            json!({"json_pointer": "/status", "json_equals": "UP", "attempts": 1}),
            "body is larger than 64 KiB",
        ),
        (
            "/hang",
            json!({"timeout": "1s", "attempts": 1}),
            "no complete answer within 1 s",
        ),
    ];
    for (i, (path, extra, reason)) in cases.into_iter().enumerate() {
        let v = w
            .validator(json!([http(w.target.url(path), extra)]), &[])
            .await;
        let hook = format!("hook-bad-{i}");
        let started = Instant::now();
        let out = v
            .handle(&hook_event("d-GOOD", &hook), budget(20))
            .await
            .unwrap();
        assert_eq!(out["status"], "Failed", "{path}: {out}");
        let reasons: Vec<&str> = out["checks"][0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            reasons.iter().any(|r| r.contains(reason)),
            "{path}: {reasons:?}"
        );
        assert_eq!(w.recorded(&hook), vec!["Failed"], "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        w.target.hits("/redirect"),
        1,
        "one failure ends a strict series"
    );
    assert_eq!(
        w.target.hits("/healthy"),
        0,
        "the redirect was never followed"
    );
    assert_eq!(w.sink.delivered().len(), 7, "every failure is notified");
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_fails_the_check() {
    let w = World::start(false).await;
    let tls = SelfSignedTls::start().await;
    let v = w
        .validator(
            json!([http(tls.url("/health"), json!({"attempts": 1}))]),
            &[],
        )
        .await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-tls"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Failed", "{out}");
    let reason = out["checks"][0]["reasons"][0]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(reason.contains("certificate"), "{reason}");
    assert_eq!(w.recorded("hook-tls"), vec!["Failed"]);
}

#[tokio::test]
async fn flapping_above_the_success_ratio_passes_and_a_big_body_is_read_only_to_the_cap() {
    let w = World::start(false).await;
    let checks = json!([
        http(
            w.target.url("/flapping"),
            json!({"attempts": 4, "min_success_ratio": 0.5})
        ),
        http(
            w.target.url("/big"),
            json!({"body_contains": "\"status\":\"UP\"", "attempts": 2})
        ),
    ]);
    let v = w.validator(checks, &[]).await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-flap"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Succeeded", "{out}");
    assert_eq!(out["checks"][0]["evidence"][0], "2/4 passed (needed 2/4)");
    assert_eq!(out["checks"][0]["evidence"][2], "200×2, 503×2");
    assert_eq!(w.recorded("hook-flap"), vec!["Succeeded"]);
}

#[tokio::test]
async fn an_alarm_going_off_mid_bake_fails_the_hook_at_once() {
    let w = World::start(true).await;
    w.moto().put_alarm("api-5xx").await;
    w.moto().put_alarm("api-p99").await;
    let checks = json!([{"type": "alarms", "alarms": ["api-5xx", "api-p99"], "bake": "30s", "poll": "200ms"}]);
    let v = w.validator(checks, &[]).await;
    let flip = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        w.moto()
            .set_alarm_state("api-p99", "ALARM", "p99 above 2s")
            .await;
    };
    let event = hook_event("d-GOOD", "hook-alarm");
    let started = Instant::now();
    let (out, _) = tokio::join!(v.handle(&event, budget(60)), flip);
    let out = out.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed at once, not after the bake"
    );
    assert_eq!(out["status"], "Failed");
    let reasons = out["checks"][0]["reasons"].to_string();
    assert!(
        reasons.contains("api-p99 is ALARM after") && reasons.contains("p99 above 2s"),
        "{reasons}"
    );
    assert_eq!(w.recorded("hook-alarm"), vec!["Failed"]);
    assert!(
        w.stub
            .calls()
            .iter()
            .filter(|c| c.operation == "DescribeAlarms")
            .count()
            >= 3,
        "watched through CloudWatch, several looks"
    );
}

#[tokio::test]
async fn an_alarm_that_does_not_exist_fails_the_hook() {
    let w = World::start(true).await;
    w.moto().put_alarm("api-5xx").await;
    let checks = json!([{"type": "alarms", "alarms": ["api-5xx", "api-5xxx"]}]);
    let v = w.validator(checks, &[]).await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-typo"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Failed");
    assert_eq!(
        out["checks"][0]["reasons"][0],
        "alarm api-5xxx does not exist"
    );
    assert_eq!(w.recorded("hook-typo"), vec!["Failed"]);
}

#[tokio::test]
async fn a_throttled_status_report_is_retried_and_lands_once() {
    let w = World::start(false).await;
    w.stub.throttle(HOOK_STATUS, 2);
    let v = w
        .validator(
            json!([http(w.target.url("/healthy"), json!({"attempts": 1}))]),
            &[],
        )
        .await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-throttled"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["reported"], "Recorded");
    let statuses: Vec<u16> = w
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == HOOK_STATUS)
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![400, 400, 200]);
    assert_eq!(w.recorded("hook-throttled"), vec!["Succeeded"]);
}

#[tokio::test]
async fn a_redelivered_hook_is_answered_and_posted_once_whichever_container_gets_it() {
    let w = World::start(true).await;
    let checks = json!([http(w.target.url("/error"), json!({"attempts": 1}))]);
    let v = w.validator(checks.clone(), &[]).await;
    let event = hook_event("d-GOOD", "hook-twice");
    let first = v.handle(&event, budget(20)).await.unwrap();
    let again = v.handle(&event, budget(20)).await.unwrap();
    let elsewhere = w.validator(checks, &[]).await;
    let third = elsewhere.handle(&event, budget(20)).await.unwrap();
    assert_eq!(first["reported"], "Recorded");
    assert_eq!(again["outcome"], "duplicate", "{again}");
    assert_eq!(third["outcome"], "duplicate", "{third}");
    assert_eq!(w.recorded("hook-twice"), vec!["Failed"]);
    assert_eq!(w.sink.delivered().len(), 1, "one failure, one post");
    assert_eq!(w.target.hits("/error"), 1, "the checks ran once");
}

/// A report that fails for a reason a retry can fix returns an error for Lambda's retry, and
/// gives the hook's claim back so that retry (on any container) answers it at once.
#[tokio::test]
async fn a_report_throttled_past_every_attempt_is_left_to_lambdas_retry_which_answers_it_once() {
    let w = World::start(true).await;
    w.stub.throttle(HOOK_STATUS, 4);
    let checks = json!([http(w.target.url("/healthy"), json!({"attempts": 1}))]);
    let v = w.validator(checks.clone(), &[]).await;
    let event = hook_event("d-GOOD", "hook-retried");
    let failed = v.handle(&event, budget(20)).await.unwrap_err();
    assert!(failed.is_retryable(), "{failed}");
    let retry = w.validator(checks, &[]).await;
    let out = retry.handle(&event, budget(20)).await.unwrap();
    assert_eq!(out["reported"], "Recorded", "{out}");
    assert_eq!(w.recorded("hook-retried"), vec!["Succeeded"]);
    let released = w
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == "DeleteItem")
        .count();
    assert_eq!(
        released, 1,
        "the claim was given back, not left to its lease"
    );
}

/// Three timers can end this run, all at about the same instant: the request's own cut-off
/// (its 60 s timeout shortened to the time left), the guard around the check, and the guard
/// around the whole run. Which fires first depends on scheduling, so the test asserts what
/// holds whichever does: Failed, reported once, before the deadline, and a reason that says
/// the check ran out of time.
#[tokio::test]
async fn a_check_that_hangs_past_the_deadline_still_ends_in_failed_before_it() {
    let w = World::start(false).await;
    let checks = json!([http(
        w.target.url("/hang"),
        json!({"timeout": "60s", "attempts": 3})
    )]);
    let v = w.validator(checks, &[]).await;
    let started = Instant::now();
    let out = v
        .handle(&hook_event("d-GOOD", "hook-hang"), budget(4))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "reported after the deadline: {took:?}"
    );
    assert_eq!(out["status"], "Failed");
    assert_eq!(w.recorded("hook-hang"), vec!["Failed"]);
    let everything_said = format!("{} {}", out["problem"], out["checks"]);
    assert!(
        everything_said.contains(canary_validator::outcome::OUT_OF_TIME),
        "{out}"
    );
}

#[tokio::test]
async fn an_unknown_deployment_id_is_reported_failed_with_the_reason() {
    let w = World::start(false).await;
    let v = w
        .validator(json!([http(w.target.url("/healthy"), json!({}))]), &[])
        .await;
    let out = v
        .handle(&hook_event("d-UNKNOWN", "hook-unknown"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Failed");
    assert!(
        out["problem"]
            .as_str()
            .unwrap()
            .contains("could not be found"),
        "{out}"
    );
    assert_eq!(w.recorded("hook-unknown"), vec!["Failed"]);
    assert_eq!(
        w.target.hits("/healthy"),
        0,
        "nothing is checked for a deployment that is not real"
    );
    assert!(
        w.sink.delivered()[0]
            .to_string()
            .contains("unknown deployment d-UNKNOWN")
    );
}

#[tokio::test]
async fn the_deployment_group_chooses_its_checks_over_the_default() {
    let w = World::start(false).await;
    let checks = json!({
        "default": [http(w.target.url("/error"), json!({"attempts": 1}))],
        "deployment_groups": {"prod-api-dg": [http(w.target.url("/healthy"), json!({"attempts": 1}))]}
    });
    let v = w.validator(checks, &[]).await;
    let good = v
        .handle(&hook_event("d-GOOD", "hook-group"), budget(20))
        .await
        .unwrap();
    let other = v
        .handle(&hook_event("d-OTHER", "hook-default"), budget(20))
        .await
        .unwrap();
    assert_eq!(good["status"], "Succeeded");
    assert_eq!(other["status"], "Failed");
    assert_eq!((w.target.hits("/healthy"), w.target.hits("/error")), (1, 1));
}

#[tokio::test]
async fn checks_and_header_secrets_are_read_from_ssm_and_never_shown() {
    let w = World::start(true).await;
    let checks = json!([http(
        w.target.url("/healthy"),
        json!({"attempts": 1,
        "headers": {"Authorization": "ssm:/canary/token", "X-Canary": "prod-api"}})
    )]);
    for (name, value, kind) in [
        ("/canary/checks", checks.to_string(), "String"),
        (
            "/canary/token",
            "Bearer t0ken-DO-NOT-SHOW".to_owned(),
            "SecureString",
        ),
    ] {
        w.moto().put_parameter(name, &value, kind).await;
    }
    let v = w
        .validator(
            json!(null),
            &[("CHECKS", "ssm:/canary/checks"), ("NOTIFY_ON", "ALL")],
        )
        .await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-ssm"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Succeeded", "{out}");
    assert_eq!(
        w.target.header_values("/healthy", "authorization"),
        vec!["Bearer t0ken-DO-NOT-SHOW"]
    );
    assert_eq!(
        w.target.header_values("/healthy", "x-canary"),
        vec!["prod-api"]
    );
    assert!(!out.to_string().contains("t0ken"));
    assert!(!w.sink.delivered()[0].to_string().contains("t0ken"));
}

#[tokio::test]
async fn a_broken_configuration_still_reports_failed() {
    let w = World::start(false).await;
    let v = w.validator(json!({"default": []}), &[]).await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-broken"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Failed");
    assert!(
        out["problem"]
            .as_str()
            .unwrap()
            .contains("configuration error"),
        "{out}"
    );
    assert_eq!(w.recorded("hook-broken"), vec!["Failed"]);
    let posts = w.sink.delivered();
    assert_eq!(posts.len(), 1, "a broken configuration reaches a person");
    assert!(
        posts[0].to_string().contains("configuration error"),
        "{}",
        posts[0]
    );
}

/// A role without `codedeploy:PutLifecycleEventHookExecutionStatus` gets AccessDenied: the
/// deployment then waits an hour, so a person must hear of it even though the checks passed
/// and `NOTIFY_ON` is FAIL.
#[tokio::test]
async fn a_refused_status_report_is_notified_even_when_the_checks_passed() {
    let w = World::start(false).await;
    w.stub.fixture_error(
        HOOK_STATUS,
        json!({"lifecycleEventHookExecutionId": "hook-denied"}),
        "AccessDeniedException",
        "User is not authorized to perform: codedeploy:PutLifecycleEventHookExecutionStatus",
    );
    let v = w
        .validator(json!([http(w.target.url("/healthy"), json!({}))]), &[])
        .await;
    let (metrics, _) = shared::metrics::Metrics::from_env("canary-validator", &[("METRICS", "on")]);
    let (out, lines) = metrics
        .capture(v.handle(&hook_event("d-GOOD", "hook-denied"), budget(20)))
        .await;
    let out = out.unwrap();
    assert_eq!(
        out["reported"], "NotReported",
        "a refusal is permanent: {out}"
    );
    assert_eq!(
        standins::emf::parse(&lines).sum("ReportFailures", &[]),
        1.0,
        "the signal the template's ReportFailures alarm watches"
    );
    let posts = w.sink.delivered();
    assert_eq!(posts.len(), 1);
    let post = posts[0].to_string();
    assert!(
        post.contains("Could not report") && post.contains("AccessDeniedException"),
        "{post}"
    );
}

/// The first report lands but its answer comes after the SDK's attempt timeout; the SDK's
/// retry then hears "already completed" about its own report. Nobody has been told yet, so
/// the failure is still posted, once.
#[tokio::test]
async fn a_report_whose_answer_was_lost_is_still_notified_once() {
    let w = World::start(false).await;
    w.stub.delay_answers(HOOK_STATUS, Duration::from_secs(4), 1);
    let v = w
        .validator(
            json!([http(w.target.url("/error"), json!({"attempts": 1}))]),
            &[],
        )
        .await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-lost"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Failed");
    assert_eq!(out["reported"], "AlreadyReported", "{out}");
    assert_eq!(w.recorded("hook-lost"), vec!["Failed"]);
    assert_eq!(w.sink.delivered().len(), 1);
}

#[test]
fn the_sample_check_book_is_valid() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/canary-validator/checks.json"),
    )
    .unwrap();
    let book = canary_validator::checks::parse_book(&text).unwrap();
    assert_eq!(book.groups["DgpECS-prod-api"].len(), 3);
    assert_eq!(book.ecs_services["prod/prod-api"].stages.len(), 2);
}

/// A header value kept in Secrets Manager (a JSON secret, one key of it) reaches the request
/// and never the report or the post; the stack grants it through `ConfigSecretArns`.
#[tokio::test]
async fn a_header_secret_is_read_from_secrets_manager_by_json_key() {
    let w = World::start(true).await;
    w.moto()
        .aws_json(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            &json!({"Name": "canary/api", "SecretString": r#"{"token":"Bearer sm-t0ken-DO-NOT-SHOW"}"#}),
        )
        .await;
    let checks = json!([http(
        w.target.url("/healthy"),
        json!({"attempts": 1, "headers": {"Authorization": "secretsmanager:canary/api#token"}})
    )]);
    let v = w.validator(checks, &[("NOTIFY_ON", "ALL")]).await;
    let out = v
        .handle(&hook_event("d-GOOD", "hook-sm"), budget(20))
        .await
        .unwrap();
    assert_eq!(out["status"], "Succeeded", "{out}");
    assert_eq!(
        w.target.header_values("/healthy", "authorization"),
        vec!["Bearer sm-t0ken-DO-NOT-SHOW"]
    );
    assert!(!out.to_string().contains("sm-t0ken"));
    assert!(!w.sink.delivered()[0].to_string().contains("sm-t0ken"));
}

/// A callback in the middle of a bake lands on a cold container whose read of the signing key
/// is throttled (past the SDK's retries): answering FAILED would roll back a healthy release,
/// so the hook asks ECS to call again with the state unchanged. Without a bake under way the
/// same fault fails closed, and so does a state whose start cannot bound the wait.
#[tokio::test]
async fn a_passing_fault_mid_bake_asks_ecs_to_call_again() {
    let w = World::start(false).await;
    w.stub.fixture_error(
        "GetSecretValue",
        json!({"SecretId": "canary/throttled-key"}),
        "ThrottlingException",
        "Rate exceeded",
    );
    let checks = json!({"ecs_services": {"prod-api": [{"type": "alarms", "alarms": ["api-5xx"], "bake": "30m"}]}});
    let v = w
        .validator(
            checks,
            &[("HOOK_STATE_KEY", "secretsmanager:canary/throttled-key")],
        )
        .await;
    let mut event = common::ecs_hook_event(
        "exec-cold",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "prod-api",
        100,
    );
    let first = v.handle(&event, budget(20)).await.unwrap();
    assert_eq!(
        first,
        json!({"hookStatus": "FAILED"}),
        "no bake under way: fail closed"
    );
    let now = shared::budget::now_millis();
    event["hookDetails"] = json!({"checkSet": "prod-api", "canaryValidatorBake": {
        "v": 1, "held_since_ms": now - 60_000, "started_ms": now - 60_000, "passed": [],
        "invocations": 2, "set": "x", "step": "100", "tag": "00"}});
    let out = v.handle(&event, budget(20)).await.unwrap();
    assert_eq!(out["hookStatus"], "IN_PROGRESS", "{out}");
    assert_eq!(out["callBackDelay"], 30);
    assert_eq!(
        out["hookDetails"], event["hookDetails"],
        "the state goes back unchanged"
    );
    event["hookDetails"]["canaryValidatorBake"]["held_since_ms"] = json!(now - 2 * 3600 * 1000);
    let out = v.handle(&event, budget(20)).await.unwrap();
    assert_eq!(
        out,
        json!({"hookStatus": "FAILED"}),
        "past MAX_BAKE even unchecked"
    );
    // The state goes back unchecked, and ECS hands back what was returned: a start that is
    // missing or in the future would let that loop hold the deployment for ever.
    for unbounded in [json!(now + 3600 * 1000), json!(null), json!("yesterday")] {
        event["hookDetails"]["canaryValidatorBake"]["held_since_ms"] = unbounded.clone();
        let out = v.handle(&event, budget(20)).await.unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}), "{unbounded}");
    }
    event["hookDetails"]["canaryValidatorBake"] = json!("let me through");
    let out = v.handle(&event, budget(20)).await.unwrap();
    assert_eq!(out, json!({"hookStatus": "FAILED"}), "not a state at all");
}
