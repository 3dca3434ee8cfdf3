//! ECS-native lifecycle hooks answered through fakes of every port: a valid `hookStatus` by
//! return value on every path, bakes carried across invocations in sealed `hookDetails`, and
//! each piece of news posted once per deployment.

mod fakes;

use canary_validator::bake;
use canary_validator::checks::parse_book;
use canary_validator::deployment::{Deployments, Lookup};
use fakes::{handler_with, http, reports};
use serde_json::{Value, json};
use shared::budget::now_millis;
use shared::notifier::Notification;
use shared::{Deadline, Error};
use standins::rig::budget;

/// ECS-native hooks never look a CodeDeploy deployment up; asked, CodeDeploy would not know it.
struct NoDeployment;

impl Deployments for NoDeployment {
    async fn lookup(&self, _: &str, _: &Deadline) -> Result<Lookup, Error> {
        Ok(Lookup::Unknown("DeploymentDoesNotExistException".into()))
    }
}

type Test = fakes::Test<NoDeployment>;

/// What was posted.
fn notes(h: &Test) -> Vec<Notification> {
    h.ports.answerer.notifier().0.lock().unwrap().clone()
}

const GREEN: &str = "arn:aws:ecs:us-west-2:123456789012:service-revision/prod/prod-api/222";
const BLUE: &str = "arn:aws:ecs:us-west-2:123456789012:service-revision/prod/prod-api/111";

const DEPLOYMENT: &str =
    "arn:aws:ecs:us-west-2:123456789012:service-deployment/prod/prod-api/EZe5RNVLH6PPzHXINuP28";

fn ecs_event(stage: &str, green_weight: u32) -> Value {
    json!({
        "executionId": "exec-1",
        "lifecycleStage": stage,
        "resourceArn": DEPLOYMENT,
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/prod/prod-api",
            "targetServiceRevisionArn": GREEN,
            "testTrafficWeights": {},
            "productionTrafficWeights": {GREEN: green_weight, BLUE: 100 - green_weight}
        }
    })
}

fn ecs_book() -> Value {
    json!({"ecs_services": {"prod-api": {
        "POST_TEST_TRAFFIC_SHIFT": [http()],
        "POST_PRODUCTION_TRAFFIC_SHIFT": [http(), {"type": "alarms", "alarms": ["api-5xx"], "bake": "30m", "poll": "20s"}]
    }}})
}

fn ecs_handler(status: u16) -> Test {
    handler_with(
        ecs_book(),
        NoDeployment,
        status,
        false,
        &[("NOTIFY_ON", "ALL")],
    )
}

#[tokio::test]
async fn an_ecs_hook_is_answered_by_return_value_without_a_codedeploy_report() {
    let h = ecs_handler(200);
    let out = h
        .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget(10))
        .await
        .unwrap();
    assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
    assert!(reports(&h).is_empty());
    assert_eq!(
        notes(&h)[0].subject,
        "POST_TEST_TRAFFIC_SHIFT passed: prod/prod-api"
    );
    let failing = ecs_handler(500);
    let out = failing
        .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget(10))
        .await
        .unwrap();
    assert_eq!(out, json!({"hookStatus": "FAILED"}));
    assert!(
        notes(&failing)[0]
            .body()
            .contains("rolls the deployment back")
    );
}

#[tokio::test]
async fn a_bake_longer_than_the_invocation_continues_with_sealed_state() {
    let h = ecs_handler(200);
    let event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
    let out = h.handle(&event, budget(10)).await.unwrap();
    assert_eq!(out["hookStatus"], "IN_PROGRESS", "{out}");
    assert_eq!(out["callBackDelay"], 20);
    let state = &out["hookDetails"][bake::DETAILS_KEY];
    assert_eq!(
        state["passed"],
        json!([0]),
        "the http check is not repeated"
    );
    assert_eq!(
        notes(&h)[0].subject,
        "POST_PRODUCTION_TRAFFIC_SHIFT baking: prod/prod-api",
        "the bake's start is posted once"
    );
    // The ECS guide promises `hookDetails` between invocations of one hook in one
    // deployment, and nothing about `executionId` across callbacks: each callback here
    // carries a new one, and the bake resumes and is not posted again.
    let mut again = event.clone();
    again["executionId"] = json!("exec-2");
    again["hookDetails"] = out["hookDetails"].clone();
    let second = h.handle(&again, budget(10)).await.unwrap();
    assert_eq!(second["hookStatus"], "IN_PROGRESS");
    assert_eq!(second["hookDetails"][bake::DETAILS_KEY]["invocations"], 2);
    assert_eq!(
        second["hookDetails"][bake::DETAILS_KEY]["started_ms"],
        state["started_ms"],
        "the same bake, resumed"
    );
    assert_eq!(notes(&h).len(), 1, "callbacks are not posted");
    assert!(
        notes(&h)[0].body().contains("EZe5RNVLH6PPzHXINuP28"),
        "the post names the deployment, not the execution: {}",
        notes(&h)[0].body()
    );
}

/// The same verdict for the same hook in the same deployment is posted once, whatever
/// `executionId` each invocation carries (the guide does not promise it stays the same).
#[tokio::test]
async fn a_verdict_is_posted_once_per_deployment_whatever_the_execution_id() {
    let h = ecs_handler(500);
    for execution in ["exec-1", "exec-2"] {
        let mut event = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
        event["executionId"] = json!(execution);
        let out = h.handle(&event, budget(10)).await.unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
    }
    assert_eq!(notes(&h).len(), 1);
    let mut next_deployment = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
    next_deployment["resourceArn"] = json!(DEPLOYMENT.replace("EZe5", "NEXT"));
    h.handle(&next_deployment, budget(10)).await.unwrap();
    assert_eq!(notes(&h).len(), 2, "another deployment's verdict is news");
}

/// On rollback ECS invokes both traffic-shift hooks again (each its own hook execution):
/// the rollback is one event of the deployment, posted once.
#[tokio::test]
async fn a_rollback_is_posted_once_though_both_traffic_shift_hooks_are_called() {
    let h = ecs_handler(0);
    let mut test_shift = ecs_event("TEST_TRAFFIC_SHIFT", 100);
    test_shift["executionId"] = json!("exec-test-shift");
    test_shift["executionDetails"]["testTrafficWeights"] = json!({GREEN: 0, BLUE: 100});
    let mut production_shift = ecs_event("PRODUCTION_TRAFFIC_SHIFT", 0);
    production_shift["executionId"] = json!("exec-production-shift");
    for event in [test_shift, production_shift] {
        let out = h.handle(&event, budget(10)).await.unwrap();
        assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
    }
    assert_eq!(notes(&h).len(), 1, "{:?}", notes(&h));
}

/// `hookDetails` is promised only within one hook of one deployment, and anyone who can
/// edit the service's hook can put anything there: a state altered, or sealed for another
/// deployment, is never trusted and never shortens a bake — the bake starts from zero.
#[tokio::test]
async fn tampered_or_foreign_bake_state_restarts_the_bake_from_zero() {
    let h = ecs_handler(200);
    let event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
    let out = h.handle(&event, budget(10)).await.unwrap();
    let sealed = out["hookDetails"][bake::DETAILS_KEY].clone();
    let restarted = |answer: &Value| {
        assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer}");
        let state = &answer["hookDetails"][bake::DETAILS_KEY];
        assert_eq!(state["invocations"], 1, "a new bake: {state}");
        assert!(state["started_ms"].as_u64() >= sealed["started_ms"].as_u64());
        state.clone()
    };
    let mut tampered = event.clone();
    tampered["hookDetails"] = out["hookDetails"].clone();
    tampered["hookDetails"][bake::DETAILS_KEY]["started_ms"] = json!(0);
    tampered["hookDetails"][bake::DETAILS_KEY]["passed"] = json!([0, 1]);
    let state = restarted(&h.handle(&tampered, budget(10)).await.unwrap());
    assert_eq!(state["passed"], json!([0]), "only what ran again passed");
    assert_eq!(
        state["held_since_ms"], sealed["held_since_ms"],
        "MAX_BAKE still counts from the start the altered state claims, as it is not later than now"
    );
    let mut foreign = event.clone();
    foreign["resourceArn"] = json!(DEPLOYMENT.replace("EZe5", "OTHER"));
    foreign["hookDetails"] = out["hookDetails"].clone();
    restarted(&h.handle(&foreign, budget(10)).await.unwrap());
    let subjects: Vec<String> = notes(&h).iter().map(|n| n.subject.clone()).collect();
    assert_eq!(
        subjects,
        vec![
            "POST_PRODUCTION_TRAFFIC_SHIFT baking: prod/prod-api",
            "POST_PRODUCTION_TRAFFIC_SHIFT baking: prod/prod-api",
        ],
        "a restart in the same deployment is not a second bake; the other deployment's is"
    );
}

/// A crafted start can end a hold sooner, never later: one `MAX_BAKE` ago fails, one in
/// the future counts as now (a fresh start), so the deployment is never held past
/// `MAX_BAKE` from the first invocation that could check its state.
#[tokio::test]
async fn an_untrusted_state_never_extends_max_bake() {
    let h = handler_with(ecs_book(), NoDeployment, 200, false, &[("MAX_BAKE", "45m")]);
    let event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
    let out = h.handle(&event, budget(10)).await.unwrap();
    let now = now_millis();
    let mut long_ago = event.clone();
    long_ago["hookDetails"] = out["hookDetails"].clone();
    long_ago["hookDetails"][bake::DETAILS_KEY]["held_since_ms"] = json!(now - 46 * 60 * 1000);
    let answer = h.handle(&long_ago, budget(10)).await.unwrap();
    assert_eq!(answer, json!({"hookStatus": "FAILED"}));
    assert!(notes(&h).last().unwrap().body().contains("MAX_BAKE"));
    let mut future = event.clone();
    future["hookDetails"] = out["hookDetails"].clone();
    future["hookDetails"][bake::DETAILS_KEY]["held_since_ms"] = json!(now + 24 * 3600 * 1000);
    let answer = h.handle(&future, budget(10)).await.unwrap();
    assert_eq!(answer["hookStatus"], "IN_PROGRESS");
    let held = answer["hookDetails"][bake::DETAILS_KEY]["held_since_ms"]
        .as_u64()
        .unwrap();
    assert!(held <= now_millis(), "no later than a fresh start");
}

/// `resourceArn` is what the guide says names the service deployment: without a usable
/// one nothing ties a state to one deployment, so none is trusted or handed out, and a
/// bake that cannot end in this invocation fails rather than wait on state it cannot bind.
#[tokio::test]
async fn without_a_service_deployment_no_bake_state_is_carried() {
    let h = ecs_handler(200);
    let first = h
        .handle(&ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100), budget(10))
        .await
        .unwrap();
    for unusable in [
        Value::Null,
        json!("arn:aws:ecs:us-west-2:123456789012:service-deployment/prod/other-service/EZe5"),
    ] {
        let mut event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
        event["resourceArn"] = unusable;
        event["hookDetails"] = first["hookDetails"].clone();
        let out = h.handle(&event, budget(10)).await.unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
        assert!(
            notes(&h).last().unwrap().body().contains("resourceArn"),
            "{}",
            notes(&h).last().unwrap().body()
        );
    }
    let mut quick = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
    quick.as_object_mut().unwrap().remove("resourceArn");
    let out = h.handle(&quick, budget(10)).await.unwrap();
    assert_eq!(
        out,
        json!({"hookStatus": "SUCCEEDED"}),
        "checks that end in one invocation still run"
    );
}

#[tokio::test]
async fn a_bake_past_max_bake_fails() {
    let h = handler_with(ecs_book(), NoDeployment, 200, false, &[("MAX_BAKE", "45m")]);
    let mut event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
    let book = parse_book(&ecs_book().to_string()).unwrap();
    let set = &book.ecs_services["prod-api"].stages["POST_PRODUCTION_TRAFFIC_SHIFT"];
    let state = bake::BakeState {
        held_since_ms: now_millis() - 46 * 60 * 1000,
        started_ms: now_millis() - 60 * 1000,
        passed: vec![0],
        invocations: 90,
        set: bake::set_digest("prod-api", set),
        step: "100".into(),
    };
    let binding = bake::Binding {
        deployment: DEPLOYMENT,
        stage: "POST_PRODUCTION_TRAFFIC_SHIFT",
        revision: GREEN,
        step: "100",
    };
    event["hookDetails"] = bake::seal(&serde_json::Map::new(), &state, binding, None).unwrap();
    let out = h.handle(&event, budget(10)).await.unwrap();
    assert_eq!(out, json!({"hookStatus": "FAILED"}));
    assert!(notes(&h)[0].body().contains("MAX_BAKE"));
    let too_long = handler_with(ecs_book(), NoDeployment, 200, false, &[("MAX_BAKE", "10m")]);
    let out = too_long
        .handle(&ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100), budget(10))
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({"hookStatus": "FAILED"}),
        "a 30m bake can never fit 10m"
    );
}

#[tokio::test]
async fn each_linear_step_bakes_afresh() {
    let h = ecs_handler(200);
    let step_one = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 10);
    let out = h.handle(&step_one, budget(10)).await.unwrap();
    assert_eq!(out["hookStatus"], "IN_PROGRESS");
    // ECS hands the last step's hookDetails back at the next step.
    let mut step_two = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 20);
    step_two["hookDetails"] = out["hookDetails"].clone();
    let next = h.handle(&step_two, budget(10)).await.unwrap();
    assert_eq!(next["hookStatus"], "IN_PROGRESS", "{next}");
    let state = &next["hookDetails"][bake::DETAILS_KEY];
    assert_eq!(state["invocations"], 1, "a new bake, not the old one's");
    assert_eq!(state["step"], "20");
}

#[tokio::test]
async fn a_rollback_is_not_held_up_by_a_broken_configuration() {
    let broken = handler_with(json!([]), NoDeployment, 200, false, &[]);
    let out = broken
        .handle(&ecs_event("PRODUCTION_TRAFFIC_SHIFT", 0), budget(10))
        .await
        .unwrap();
    assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
}

#[tokio::test]
async fn a_rollback_invocation_succeeds_at_once_and_is_notified() {
    let h = ecs_handler(0);
    let out = h
        .handle(&ecs_event("PRODUCTION_TRAFFIC_SHIFT", 0), budget(10))
        .await
        .unwrap();
    assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
    let n = notes(&h);
    assert_eq!(
        n[0].subject,
        "PRODUCTION_TRAFFIC_SHIFT rollback in progress: prod/prod-api"
    );
}

#[tokio::test]
async fn ecs_hooks_always_answer_a_valid_status() {
    let panicking = ecs_handler(0);
    let out = panicking
        .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget(10))
        .await
        .unwrap();
    assert_eq!(out, json!({"hookStatus": "FAILED"}));
    let no_stage = ecs_handler(200);
    let out = no_stage
        .handle(&ecs_event("PRE_SCALE_UP", 0), budget(10))
        .await
        .unwrap();
    assert_eq!(out, json!({"hookStatus": "FAILED"}));
    assert!(
        notes(&no_stage)[0]
            .body()
            .contains("no checks for stage PRE_SCALE_UP")
    );
    let mut named = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
    named["hookDetails"] = json!({"checkSet": "typo"});
    let out = no_stage.handle(&named, budget(10)).await.unwrap();
    assert_eq!(out, json!({"hookStatus": "FAILED"}));
    let unreadable = no_stage
        .handle(
            &json!({"lifecycleStage": "POST_TEST_TRAFFIC_SHIFT"}),
            budget(10),
        )
        .await
        .unwrap();
    assert_eq!(unreadable, json!({"hookStatus": "FAILED"}));
    let broken = handler_with(json!([]), NoDeployment, 200, false, &[]);
    let out = broken
        .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget(10))
        .await
        .unwrap();
    assert_eq!(out, json!({"hookStatus": "FAILED"}));
}
