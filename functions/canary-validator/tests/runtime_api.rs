//! End to end: the validator's binary run as Lambda runs it, through the Runtime API, with
//! CodeDeploy on the recording stub, alarms and SSM in moto, a local target and the Slack
//! sink. `CANARY_VALIDATOR_BIN` points it at another build (the release bootstrap).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{
    deployment, ecs_deployment_arn, ecs_hook_event, hook_event, known_deployments, sample,
};
use serde_json::json;
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, Rig, RuntimeApi, SlackSink, Target};

fn binary() -> PathBuf {
    standins::runtime_api::binary_under_test(
        "CANARY_VALIDATOR_BIN",
        env!("CARGO_BIN_EXE_canary-validator"),
    )
}

const TOKEN: &str = "Bearer e2e-t0ken-NOT-FOR-LOGS";

#[tokio::test]
async fn the_binary_reports_every_hook_once_and_in_time() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    known_deployments(&stub);
    stub.fixture(
        "GetDeployment",
        json!({"deploymentId": "d-HANG"}),
        deployment("d-HANG", "hang-dg"),
    );
    let target = Target::start().await;
    moto.put_alarm("prod-api-5xx").await;
    moto.put_parameter("/canary/e2e-token", TOKEN, "SecureString")
        .await;
    let checks = json!({
        "default": [{"type": "http", "name": "health", "url": target.url("/error"), "attempts": 1}],
        "deployment_groups": {
            "prod-api-dg": [
                {"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 2, "interval": "100ms",
                 "headers": {"Authorization": "ssm:/canary/e2e-token"},
                 "json_pointer": "/status", "json_equals": "UP"},
                {"type": "alarms", "alarms": ["prod-api-5xx"], "bake": "1s", "poll": "300ms"}
            ],
            "hang-dg": [{"type": "http", "name": "stuck", "url": target.url("/hang"), "timeout": "60s"}]
        }
    });

    let api = RuntimeApi::start().await;
    // Every AWS call through the recording stub (forwarding to moto), so the IAM check sees
    // what the release build calls too.
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("deploys")),
        ("HOOK".to_owned(), "AfterAllowTraffic".to_owned()),
        ("CHECKS".to_owned(), checks.to_string()),
        ("REPORT_MARGIN".to_owned(), "2s".to_owned()),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let good = api
        .invoke(
            &mut function,
            &hook_event("d-GOOD", "hook-good"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(&good.outcome, Outcome::Response(v) if v["status"] == "Succeeded"),
        "{good:?}"
    );
    let other = api
        .invoke(
            &mut function,
            &hook_event("d-OTHER", "hook-other"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(&other.outcome, Outcome::Response(v) if v["status"] == "Failed"),
        "{other:?}"
    );
    let hanging = api
        .invoke(
            &mut function,
            &hook_event("d-HANG", "hook-hang"),
            Duration::from_secs(6),
        )
        .await;
    assert!(
        matches!(&hanging.outcome, Outcome::Response(v) if v["status"] == "Failed"),
        "a hanging check is reported before the deadline: {hanging:?}"
    );
    // The stand-in allows 500 ms past the deadline, as Lambda does: the outcome alone
    // cannot show a late answer.
    assert!(hanging.took < Duration::from_secs(6), "{:?}", hanging.took);
    let ignored = api
        .invoke(
            &mut function,
            &sample("not-a-hook.json"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(&ignored.outcome, Outcome::Response(v) if v["outcome"] == "ignored"),
        "{ignored:?}"
    );

    let recorded: Vec<(String, String)> = stub
        .accepted("PutLifecycleEventHookExecutionStatus")
        .iter()
        .map(|c| {
            (
                c["lifecycleEventHookExecutionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        vec![
            ("hook-good".to_owned(), "Succeeded".to_owned()),
            ("hook-other".to_owned(), "Failed".to_owned()),
            ("hook-hang".to_owned(), "Failed".to_owned()),
        ]
    );
    assert_eq!(
        target.header_values("/healthy", "authorization"),
        vec![TOKEN, TOKEN]
    );
    assert_eq!(sink.delivered().len(), 2, "the two failures are notified");

    let lines = function.stop().await;
    let emf = standins::emf::parse(&lines);
    let hooks = |status| {
        emf.sum(
            "HookResults",
            &[("Hook", "AfterAllowTraffic"), ("Status", status)],
        )
    };
    assert_eq!(hooks("Succeeded"), 1.0);
    assert_eq!(hooks("Failed"), 2.0);
    let checks = |kind, result| emf.sum("CheckResults", &[("Type", kind), ("Result", result)]);
    assert_eq!(checks("http", "passed"), 1.0);
    assert_eq!(checks("alarms", "passed"), 1.0);
    assert_eq!(
        checks("http", "failed"),
        2.0,
        "the default set's failing health check, and the one that hung to its deadline"
    );
    assert_eq!(emf.sum("ReportFailures", &[]), 0.0);
    let logs = lines.join("\n");
    standins::runtime_api::assert_no_secrets(&logs, &["e2e-t0ken"]);
    assert!(logs.contains("hook fails"), "{logs}");
}

#[tokio::test]
async fn the_binary_with_a_broken_configuration_still_reports_failed() {
    let stub = RecordingStub::start().await;
    // The sample's deployment, so the IAM check knows its deployment group.
    stub.fixture(
        "GetDeployment",
        json!({"deploymentId": "d-7JQ2XK4LB"}),
        deployment("d-7JQ2XK4LB", "prod-api-dg"),
    );
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("HOOK".to_owned(), "BeforeAllowTraffic".to_owned()),
        (
            "CHECKS".to_owned(),
            r#"[{"type":"http","url":"ftp://nowhere/"}]"#.to_owned(),
        ),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let out = api
        .invoke(
            &mut function,
            &sample("before-allow-traffic.json"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        matches!(&out.outcome, Outcome::Response(v) if v["status"] == "Failed"
            && v["problem"].as_str().unwrap_or_default().contains("CHECKS")),
        "{out:?}"
    );
    let recorded = stub.accepted("PutLifecycleEventHookExecutionStatus");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["deploymentId"], "d-7JQ2XK4LB");
    assert_eq!(recorded[0]["status"], "Failed");
    let emf = standins::emf::parse(&function.stop().await);
    assert_eq!(emf.sum("ConfigErrors", &[]), 1.0);
    assert_eq!(
        emf.sum(
            "HookResults",
            &[("Hook", "BeforeAllowTraffic"), ("Status", "Failed")]
        ),
        1.0
    );
}

/// ECS-native hooks (ECS developer guide, "Lambda hooks for Amazon ECS service deployments"):
/// the answer is the return value, `IN_PROGRESS` brings a callback after `callBackDelay`
/// seconds with the `hookDetails` returned, and anything but a valid `hookStatus` — an error,
/// a timeout — rolls the deployment back. The loop below plays ECS's part.
#[tokio::test]
async fn the_binary_answers_ecs_native_hooks_and_bakes_across_invocations() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let target = Target::start().await;
    moto.put_alarm("prod-api-5xx").await;
    keep_state_key(&moto).await;
    let checks = json!({"ecs_services": {
        "prod/prod-api": {
            "POST_TEST_TRAFFIC_SHIFT": [{"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 1}],
            "POST_PRODUCTION_TRAFFIC_SHIFT": [
                {"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 1},
                {"type": "alarms", "name": "bake", "alarms": ["prod-api-5xx"], "bake": "4s", "poll": "1s"}
            ]
        },
        "hangs": [{"type": "http", "name": "stuck", "url": target.url("/hang"), "timeout": "60s"}]
    }});
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("deploys")),
        ("CHECKS".to_owned(), checks.to_string()),
        ("NOTIFY_ON".to_owned(), "ALL".to_owned()),
        ("REPORT_MARGIN".to_owned(), "1s".to_owned()),
        (
            "HOOK_STATE_KEY".to_owned(),
            "secretsmanager:canary/hook-state-key".to_owned(),
        ),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    // Three seconds an invocation: far less than the 4 s bake, so it must span invocations.
    let timeout = Duration::from_secs(3);
    let mut answer = async |event: &serde_json::Value| {
        let out = api.invoke(&mut function, event, timeout).await;
        match out.outcome {
            Outcome::Response(v) => v,
            other => panic!("ECS would roll back on {other:?}"),
        }
    };

    // Both payload shapes, one check book.
    let nested = ecs_hook_event("exec-test", "POST_TEST_TRAFFIC_SHIFT", "prod-api", 0);
    assert_eq!(answer(&nested).await, json!({"hookStatus": "SUCCEEDED"}));
    let mut flat = ecs_hook_event("exec-flat", "POST_TEST_TRAFFIC_SHIFT", "prod-api", 0);
    let details = flat["executionDetails"].take();
    flat.as_object_mut().unwrap().remove("executionDetails");
    for (k, v) in details.as_object().unwrap() {
        flat[k] = v.clone();
    }
    assert_eq!(answer(&flat).await, json!({"hookStatus": "SUCCEEDED"}));

    // A bake longer than an invocation: IN_PROGRESS with state, then SUCCEEDED.
    let baking = ecs_hook_event(
        "exec-bake",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "prod-api",
        100,
    );
    let mut event = baking.clone();
    let mut statuses = Vec::new();
    let mut first_details = None;
    loop {
        let out = answer(&event).await;
        statuses.push(out["hookStatus"].as_str().unwrap_or_default().to_owned());
        if out["hookStatus"] != "IN_PROGRESS" {
            break;
        }
        assert!(statuses.len() < 10, "the bake never ended: {statuses:?}");
        first_details.get_or_insert(out["hookDetails"].clone());
        event["hookDetails"] = out["hookDetails"].clone();
        let delay = out["callBackDelay"].as_u64().unwrap_or(30);
        assert!((1..=4).contains(&delay), "{out}");
        tokio::time::sleep(Duration::from_secs(delay)).await;
    }
    assert!(statuses.len() >= 3, "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("SUCCEEDED"));
    assert_eq!(
        target.hits("/healthy"),
        3,
        "two POST_TEST_TRAFFIC_SHIFT probes and one in the bake: a passed check is not repeated"
    );

    // An alarm that goes off on the third invocation fails the hook.
    let mut event = ecs_hook_event(
        "exec-alarm",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "prod-api",
        100,
    );
    for n in 1..=3 {
        if n == 3 {
            moto.set_alarm_state("prod-api-5xx", "ALARM", "Threshold Crossed: 9 > 5")
                .await;
        }
        let out = answer(&event).await;
        let expected = if n < 3 { "IN_PROGRESS" } else { "FAILED" };
        assert_eq!(out["hookStatus"], expected, "invocation {n}: {out}");
        event["hookDetails"] = out["hookDetails"].clone();
    }
    moto.set_alarm_state("prod-api-5xx", "OK", "back to normal")
        .await;

    // `hookDetails` is promised within one hook of one deployment: a state made for another
    // deployment, or edited, is not trusted, and the bake starts again from zero.
    let mut foreign = ecs_hook_event(
        "exec-other",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "prod-api",
        100,
    );
    foreign["hookDetails"] = first_details.clone().unwrap_or_default();
    let mut edited = baking.clone();
    edited["executionId"] = json!("exec-bake-edited");
    edited["hookDetails"] = first_details.unwrap_or_default();
    edited["hookDetails"]["canaryValidatorBake"]["passed"] = json!([0, 1]);
    for untrusted in [foreign, edited] {
        let out = answer(&untrusted).await;
        assert_eq!(out["hookStatus"], "IN_PROGRESS", "{out}");
        assert_eq!(
            out["hookDetails"]["canaryValidatorBake"]["invocations"], 1,
            "{out}"
        );
        assert_eq!(
            out["hookDetails"]["canaryValidatorBake"]["passed"],
            json!([0]),
            "{out}"
        );
    }

    // MAX_BAKE (60m by default) counts from the first IN_PROGRESS answer.
    let book = canary_validator::checks::parse_book(&checks.to_string()).unwrap();
    let set = &book.ecs_services["prod/prod-api"].stages["POST_PRODUCTION_TRAFFIC_SHIFT"];
    let now = shared::budget::now_millis();
    let held = canary_validator::bake::BakeState {
        held_since_ms: now - 61 * 60 * 1000,
        started_ms: now - 1000,
        passed: vec![0],
        invocations: 120,
        set: canary_validator::bake::set_digest("prod/prod-api", set),
        step: "100".into(),
    };
    let mut too_long = ecs_hook_event(
        "exec-long",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "prod-api",
        100,
    );
    too_long["hookDetails"] = canary_validator::bake::seal(
        &serde_json::Map::new(),
        &held,
        canary_validator::bake::Binding {
            deployment: &ecs_deployment_arn("prod-api", "dep-exec-long"),
            stage: "POST_PRODUCTION_TRAFFIC_SHIFT",
            revision: too_long["executionDetails"]["targetServiceRevisionArn"]
                .as_str()
                .unwrap(),
            step: "100",
        },
        Some(STATE_KEY.as_bytes()),
    )
    .unwrap();
    assert_eq!(answer(&too_long).await, json!({"hookStatus": "FAILED"}));

    // A rollback is never held up; a hanging check still answers before the deadline.
    let rollback = ecs_hook_event("exec-back", "PRODUCTION_TRAFFIC_SHIFT", "prod-api", 0);
    assert_eq!(answer(&rollback).await, json!({"hookStatus": "SUCCEEDED"}));
    let hanging = ecs_hook_event("exec-hang", "POST_TEST_TRAFFIC_SHIFT", "hangs", 0);
    assert_eq!(answer(&hanging).await, json!({"hookStatus": "FAILED"}));

    assert!(
        stub.accepted("PutLifecycleEventHookExecutionStatus")
            .is_empty(),
        "ECS-native hooks answer by return value"
    );
    let posts: Vec<String> = sink
        .delivered()
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let count = |needle: &str| posts.iter().filter(|t| t.contains(needle)).count();
    assert_eq!(count("POST_TEST_TRAFFIC_SHIFT passed"), 2, "{posts:#?}");
    assert_eq!(
        count("POST_PRODUCTION_TRAFFIC_SHIFT baking"),
        3,
        "one start post per deployment's bake (the edited state's restart is the same deployment), none per callback: {posts:#?}"
    );
    assert_eq!(
        count("POST_PRODUCTION_TRAFFIC_SHIFT passed"),
        1,
        "{posts:#?}"
    );
    assert_eq!(
        count("POST_PRODUCTION_TRAFFIC_SHIFT FAILED"),
        2,
        "the alarm and MAX_BAKE: {posts:#?}"
    );
    assert_eq!(count("rollback in progress"), 1, "{posts:#?}");

    let lines = function.stop().await;
    let emf = standins::emf::parse(&lines);
    let hooks = |stage, status| emf.sum("HookResults", &[("Hook", stage), ("Status", status)]);
    assert!(hooks("POST_PRODUCTION_TRAFFIC_SHIFT", "InProgress") >= 4.0);
    assert_eq!(hooks("POST_PRODUCTION_TRAFFIC_SHIFT", "Failed"), 2.0);
    let logs = lines.join("\n");
    standins::runtime_api::assert_no_secrets(&logs, &[STATE_KEY]);
}

const STATE_KEY: &str = "e2e-state-key-NOT-FOR-LOGS";

/// The key that seals the bake state, where `HOOK_STATE_KEY` names it (Secrets Manager).
async fn keep_state_key(moto: &Moto) {
    moto.aws_json(
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": "canary/hook-state-key", "SecretString": STATE_KEY}),
    )
    .await;
}

/// The ECS developer guide ("Lambda hooks for Amazon ECS service deployments") calls
/// `executionId` the identifier of "this hook execution" and promises only that `hookDetails`
/// persists between invocations of the same hook within a deployment. So, with an 18 s bake
/// served in invocations of 8 s (the Runtime API stand-in's deadline), playing ECS for two
/// deployments at once, interleaved as ECS would call them:
/// - `steady`: every callback carries a new `executionId` and the `hookDetails` of the last
///   answer: the bake resumes each time and passes, no sooner than its 18 s;
/// - `altered`: the same, but the state is altered between callbacks (its start and hold
///   moved back by 17 s, then its `passed` claiming the alarm check): each time the bake starts
///   again from zero, and it passes only 18 s after the last restart.
#[tokio::test]
async fn a_bake_resumes_with_a_new_execution_id_on_every_callback_and_altered_state_never_shortens_it()
 {
    const BAKE: Duration = Duration::from_secs(18);
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let target = Target::start().await;
    moto.put_alarm("prod-api-5xx").await;
    keep_state_key(&moto).await;
    let checks = json!({"ecs_services": {"prod/prod-api": {"POST_PRODUCTION_TRAFFIC_SHIFT": [
        {"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 1},
        {"type": "alarms", "name": "bake", "alarms": ["prod-api-5xx"], "bake": "18s", "poll": "5s"}
    ]}}});
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("deploys")),
        ("CHECKS".to_owned(), checks.to_string()),
        ("NOTIFY_ON".to_owned(), "ALL".to_owned()),
        ("REPORT_MARGIN".to_owned(), "1s".to_owned()),
        (
            "HOOK_STATE_KEY".to_owned(),
            "secretsmanager:canary/hook-state-key".to_owned(),
        ),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    struct Deployment {
        name: &'static str,
        event: serde_json::Value,
        due: tokio::time::Instant,
        /// When the bake last began: the first invocation, or the last altered callback.
        bake_began: tokio::time::Instant,
        callbacks: u32,
        /// The invocations the last answer's state counted.
        invocations: u64,
        passed_after: Option<Duration>,
    }
    let now = tokio::time::Instant::now();
    let mut deployments: Vec<Deployment> = ["steady", "altered"]
        .into_iter()
        .map(|name| Deployment {
            name,
            event: ecs_hook_event(
                &format!("exec-{name}-0"),
                "POST_PRODUCTION_TRAFFIC_SHIFT",
                "prod-api",
                100,
            ),
            due: now,
            bake_began: now,
            callbacks: 0,
            invocations: 0,
            passed_after: None,
        })
        .collect();
    while let Some(d) = deployments
        .iter_mut()
        .filter(|d| d.passed_after.is_none())
        .min_by_key(|d| d.due)
    {
        tokio::time::sleep_until(d.due).await;
        let altered = d.name == "altered" && (1..=2).contains(&d.callbacks);
        if altered {
            let state = &mut d.event["hookDetails"]["canaryValidatorBake"];
            if d.callbacks == 1 {
                for field in ["started_ms", "held_since_ms"] {
                    state[field] = json!(state[field].as_u64().unwrap_or_default() - 17_000);
                }
            } else {
                state["passed"] = json!([0, 1]);
            }
        }
        let claimed_hold = d.event["hookDetails"]["canaryValidatorBake"]["held_since_ms"].as_u64();
        let sent_at = tokio::time::Instant::now();
        let sent_ms = shared::budget::now_millis();
        if altered {
            d.bake_began = sent_at;
        }
        let out = match api
            .invoke(&mut function, &d.event, Duration::from_secs(8))
            .await
            .outcome
        {
            Outcome::Response(v) => v,
            other => panic!("{}: ECS would roll back on {other:?}", d.name),
        };
        let waited = sent_at - d.bake_began;
        match out["hookStatus"].as_str() {
            Some("SUCCEEDED") => {
                let took = tokio::time::Instant::now() - d.bake_began;
                assert!(
                    took >= BAKE,
                    "{}: passed after {took:?} of an 18 s bake",
                    d.name
                );
                d.passed_after = Some(took);
            }
            Some("IN_PROGRESS") => {
                assert!(
                    waited < BAKE + Duration::from_secs(10),
                    "{}: the bake never ends: {out}",
                    d.name
                );
                let state = &out["hookDetails"]["canaryValidatorBake"];
                let started = state["started_ms"].as_u64().unwrap_or_default();
                if altered {
                    assert_eq!(
                        state["invocations"], 1,
                        "{}: the bake starts again: {out}",
                        d.name
                    );
                    assert!(
                        started >= sent_ms,
                        "{}: from zero, not from the altered start: {out}",
                        d.name
                    );
                    assert!(
                        state["held_since_ms"].as_u64() <= claimed_hold.map(|h| h.min(sent_ms)),
                        "{}: MAX_BAKE never counts from later than the claimed start or now: {out}",
                        d.name
                    );
                } else {
                    assert_eq!(
                        state["invocations"],
                        d.invocations + 1,
                        "{}: resumed: {out}",
                        d.name
                    );
                }
                d.invocations = state["invocations"].as_u64().unwrap_or_default();
                let delay = out["callBackDelay"].as_u64().unwrap_or(30);
                assert!((1..=5).contains(&delay), "{}: {out}", d.name);
                d.callbacks += 1;
                // The next callback is another hook execution, as far as anyone promises.
                d.event["executionId"] = json!(format!("exec-{}-{}", d.name, d.callbacks));
                d.event["hookDetails"] = out["hookDetails"].clone();
                d.due = tokio::time::Instant::now() + Duration::from_secs(delay);
            }
            _ => panic!("{}: {out}", d.name),
        }
    }
    let steady = &deployments[0];
    assert!(
        steady.callbacks >= 2,
        "the bake spanned invocations: {}",
        steady.callbacks
    );
    let altered = &deployments[1];
    assert!(
        altered.callbacks >= 4,
        "two restarts, then a whole bake: {}",
        altered.callbacks
    );

    let posts: Vec<String> = sink
        .delivered()
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let count = |needle: &str| posts.iter().filter(|t| t.contains(needle)).count();
    assert_eq!(
        count("POST_PRODUCTION_TRAFFIC_SHIFT baking"),
        2,
        "one start post per deployment, whatever the executionId and the restarts: {posts:#?}"
    );
    assert_eq!(
        count("POST_PRODUCTION_TRAFFIC_SHIFT passed"),
        2,
        "{posts:#?}"
    );
    assert_eq!(count("FAILED"), 0, "{posts:#?}");
    let logs = function.stop().await.join("\n");
    assert!(logs.contains("starting the bake from zero"), "{logs}");
    standins::runtime_api::assert_no_secrets(&logs, &[STATE_KEY]);
}

/// The answer is the return value, so a Slack that never answers must not turn a verdict into
/// a timeout (which ECS would take as a function error and roll back without a reason).
#[tokio::test]
async fn a_hanging_slack_does_not_delay_the_ecs_answer_past_the_deadline() {
    let sink = SlackSink::start().await;
    sink.script(std::iter::repeat_n(standins::slack_sink::Reply::Hang, 10));
    let target = Target::start().await;
    let stub = RecordingStub::start().await;
    let checks = json!({"ecs_services": {"prod-api": [
        {"type": "http", "name": "health", "url": target.url("/error"), "attempts": 1}
    ]}});
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("deploys")),
        ("CHECKS".to_owned(), checks.to_string()),
        ("REPORT_MARGIN".to_owned(), "2s".to_owned()),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let event = ecs_hook_event("exec-slow-slack", "POST_TEST_TRAFFIC_SHIFT", "prod-api", 0);
    let out = api
        .invoke(&mut function, &event, Duration::from_secs(4))
        .await;
    assert!(
        matches!(&out.outcome, Outcome::Response(v) if v == &json!({"hookStatus": "FAILED"})),
        "{out:?}"
    );
    // Not a speed target: the deadline itself. The stand-in, like Lambda, allows a little
    // grace before it kills the process, so the outcome alone would not show a late answer.
    assert!(
        out.took < Duration::from_secs(4),
        "answered after the deadline: {out:?}"
    );
    assert!(!sink.requests().is_empty(), "the post was tried");
    function.stop().await;
}

/// Planted at DEBUG (every crate's debug output on): the function's AWS secret key and
/// session token, a check's `Authorization` header kept in SSM, the bake-state key kept in
/// Secrets Manager and the webhook. Through a CodeDeploy hook whose check sends the header and
/// fails, and an ECS-native hook whose bake is handed back sealed, none of them reaches a log
/// line, an answer (`hookDetails` among them), a post or a request to AWS.
#[tokio::test]
async fn at_debug_no_planted_secret_reaches_a_log_an_answer_a_post_or_a_report() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    known_deployments(&stub);
    let target = Target::start().await;
    moto.put_alarm("prod-api-5xx").await;
    moto.put_parameter("/canary/e2e-token", TOKEN, "SecureString")
        .await;
    keep_state_key(&moto).await;
    let checks = json!({
        "deployment_groups": {"prod-api-dg": [
            {"type": "http", "name": "health", "url": target.url("/error"), "attempts": 1,
             "headers": {"Authorization": "ssm:/canary/e2e-token"}}
        ]},
        "ecs_services": {"prod/prod-api": [
            {"type": "alarms", "name": "bake", "alarms": ["prod-api-5xx"], "bake": "10s", "poll": "1s"}
        ]}
    });
    let mut env = standins::planted::debug_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("deploys")),
        ("HOOK".to_owned(), "AfterAllowTraffic".to_owned()),
        ("CHECKS".to_owned(), checks.to_string()),
        ("NOTIFY_ON".to_owned(), "ALL".to_owned()),
        ("REPORT_MARGIN".to_owned(), "1s".to_owned()),
        (
            "HOOK_STATE_KEY".to_owned(),
            "secretsmanager:canary/hook-state-key".to_owned(),
        ),
    ]);
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let mut answers = Vec::new();
    let codedeploy = api
        .invoke(
            &mut function,
            &hook_event("d-GOOD", "hook-planted"),
            Duration::from_secs(20),
        )
        .await;
    answers.push(format!("{:?}", codedeploy.outcome));
    let ecs = ecs_hook_event(
        "exec-planted",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "prod-api",
        100,
    );
    let baking = api
        .invoke(&mut function, &ecs, Duration::from_secs(3))
        .await;
    assert!(
        matches!(&baking.outcome, Outcome::Response(v) if v["hookStatus"] == "IN_PROGRESS"),
        "{baking:?}"
    );
    answers.push(format!("{:?}", baking.outcome));
    let logs = function.stop().await;
    assert_eq!(
        target.header_values("/error", "authorization"),
        vec![TOKEN.to_owned()],
        "the header reached the check"
    );
    let mut secrets = standins::planted::always();
    secrets.extend([TOKEN, "e2e-t0ken-NOT-FOR-LOGS", STATE_KEY]);
    standins::planted::assert_none_leaked(&secrets, &logs, &answers, &sink, &stub);
}

/// Every input is untrusted (fault matrix, "bad input"): each unusable body ends in an
/// answer or a clean invocation error, never a panic, a crash or a hang — and reports no
/// hook status for input that names no hook.
#[tokio::test]
async fn bad_payloads_end_cleanly_and_the_process_lives_on() {
    let stub = RecordingStub::start().await;
    let sink = SlackSink::start().await;
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend([
        ("SLACK_WEBHOOK_URL".to_owned(), sink.webhook_url("deploys")),
        ("HOOK".to_owned(), "AfterAllowTraffic".to_owned()),
        ("CHECKS".to_owned(), json!({"default": []}).to_string()),
    ]);
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    standins::runtime_api::assert_bad_payloads_end_cleanly(&api, &mut function, &[]).await;
    assert!(
        stub.accepted("PutLifecycleEventHookExecutionStatus")
            .is_empty()
    );
    let logs = function.stop().await.join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
}
