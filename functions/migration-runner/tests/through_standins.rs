//! The runner with its real adapters: ECS, EC2 networking and CloudWatch Logs in moto, every
//! call through the recording stub (which forwards to moto, answers CodePipeline job results,
//! and enforces ECS's client-token and ListTasks rules that moto lacks), Slack through the
//! sink. moto does not end tasks as ECS does (no stop code, no exit codes), so a stopped
//! task's DescribeTasks answer is given to the stub in ECS's published shape.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{EcsWorld, register, sample, stopped_task, task_definition};
use migration_runner::app::Runner;
use migration_runner::ecs::{CloudWatchLogs, Cluster, Ecs, Launch, RunOutcome};
use migration_runner::task::{Task, TaskDefinition};
use migration_runner::{Config, Invocation};
use serde_json::{Value, json};
use shared::config::Loaded;
use shared::jobs::JobReporter;
use shared::notifier::Notifier;
use shared::{Deadline, Error};
use standins::Reply;
use standins::rig::now_secs;

/// The shared rig, with the ECS world (cluster, network, task family, log group) in its moto.
struct Rig {
    base: standins::Rig,
    world: EcsWorld,
}

impl Rig {
    async fn start() -> Self {
        let base = standins::Rig::start().await;
        let world = EcsWorld::create(&base.moto, "prod").await;
        Self { base, world }
    }

    /// The runner's variables: the world's, the rig's (webhook `deploys`), then `extra`.
    fn env(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        standins::rig::env(
            self.world
                .env()
                .into_iter()
                .chain(self.variables("deploys")),
            extra,
        )
    }
}

impl std::ops::Deref for Rig {
    type Target = standins::Rig;

    fn deref(&self) -> &standins::Rig {
        &self.base
    }
}

/// The runner exactly as `main.rs` builds it.
fn runner(rig: &Rig, extra: &[(&str, &str)]) -> migration_runner::app::App {
    migration_runner::app::build(&rig.env(extra), &rig.clients())
}

fn invocation(request_id: &str, budget: Duration, now: i64) -> Invocation {
    Invocation {
        request_id: request_id.into(),
        deadline: Deadline::after(budget),
        now,
    }
}

fn quick(request_id: &str) -> Invocation {
    invocation(request_id, Duration::from_secs(30), now_secs())
}

fn run_tasks(rig: &Rig) -> Vec<Value> {
    rig.stub.accepted("RunTask")
}

fn job(file: &str) -> Value {
    sample(file)
}

/// The next invocation of a continuing action: CodePipeline gives it a new job id and the
/// token the last one returned.
fn continuation(of: &Value, token: &str) -> Value {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let mut next = of.clone();
    let id = format!(
        "continued-{}-{}",
        NEXT.fetch_add(1, Ordering::SeqCst),
        of["CodePipeline.job"]["id"].as_str().unwrap_or_default()
    );
    next["CodePipeline.job"]["id"] = json!(id);
    next["CodePipeline.job"]["data"]["continuationToken"] = json!(token);
    next
}

fn last_token(rig: &Rig) -> String {
    rig.stub
        .accepted("PutJobSuccessResult")
        .last()
        .and_then(|r| r["continuationToken"].as_str().map(str::to_owned))
        .expect("a continuation token")
}

fn token_task(token: &str) -> String {
    serde_json::from_str::<Value>(token).unwrap()["task"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The stub answers DescribeTasks for `task` as ECS would once it stopped.
fn task_stops(rig: &Rig, task: &Value) {
    rig.stub.fixture(
        "DescribeTasks",
        json!({"tasks": [task["taskArn"]]}),
        json!({"tasks": [task], "failures": []}),
    );
}

async fn latest_definition(rig: &Rig) -> String {
    let out = common::call(
        &rig.moto,
        "DescribeTaskDefinition",
        json!({"taskDefinition": rig.world.family}),
    )
    .await;
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ---- launching ----------------------------------------------------------------------

#[tokio::test]
async fn a_launch_runs_the_latest_revision_with_network_overrides_tags_and_a_client_token() {
    let rig = Rig::start().await;
    let v2 = register(
        &rig.moto,
        &task_definition(&rig.world, &rig.world.image("v2"), false),
    )
    .await;
    let app = runner(
        &rig,
        &[
            ("COMMAND", r#"["./migrate","up"]"#),
            ("ENVIRONMENT", r#"{"MIGRATION_LOCK_TIMEOUT":"60"}"#),
        ],
    );
    let out = app
        .handle(&json!({}), quick("3c6e0b8a-1111-2222-3333-444455556666"))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "launched", "{out}");
    let runs = run_tasks(&rig);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        run["taskDefinition"], v2,
        "the family's latest ACTIVE revision"
    );
    assert_eq!(run["startedBy"], "ops-migration");
    assert_eq!(run["launchType"], "FARGATE");
    assert_eq!(run["count"], 1);
    assert_eq!(
        run["clientToken"],
        "invoke/3c6e0b8a-1111-2222-3333-444455556666"
    );
    let vpc = &run["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(vpc["subnets"], json!([rig.world.subnet]));
    assert_eq!(vpc["securityGroups"], json!([rig.world.security_group]));
    assert_eq!(vpc["assignPublicIp"], "DISABLED");
    let container = &run["overrides"]["containerOverrides"][0];
    assert_eq!(container["name"], "migrate");
    assert_eq!(container["command"], json!(["./migrate", "up"]));
    assert_eq!(
        container["environment"],
        json!([{"name": "MIGRATION_LOCK_TIMEOUT", "value": "60"}])
    );
    assert_eq!(run["propagateTags"], "TASK_DEFINITION");
    let tags: HashMap<String, String> = run["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_owned(),
                t["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tags["ops:trigger"],
        "invoke/3c6e0b8a-1111-2222-3333-444455556666"
    );
    assert_eq!(tags["ops:function"], "migration-runner");
    let in_moto = rig.world.tasks_started_by(&rig.moto, "ops-migration").await;
    assert_eq!(in_moto, vec![out["taskArn"].as_str().unwrap().to_owned()]);
}

#[tokio::test]
async fn a_redelivered_request_finds_its_own_task_instead_of_starting_another() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let first = app.handle(&json!({}), quick("req-1")).await.unwrap();
    // The same request again while its task runs: found by its trigger tag, no RunTask.
    let again = app.handle(&json!({}), quick("req-1")).await.unwrap();
    assert_eq!(again["taskArn"], first["taskArn"], "{again}");
    assert_eq!(run_tasks(&rig).len(), 1);
    // After it stopped, the guard no longer sees it; ECS's client token (enforced by the
    // stub as the API reference describes) returns the first task rather than a new one.
    rig.world
        .stop(&rig.moto, first["taskArn"].as_str().unwrap())
        .await;
    let after_stop = app.handle(&json!({}), quick("req-1")).await.unwrap();
    assert_eq!(after_stop["taskArn"], first["taskArn"], "{after_stop}");
    assert_eq!(
        rig.world
            .tasks_started_by(&rig.moto, "ops-migration")
            .await
            .len(),
        1,
        "one task in the cluster, however often the request came"
    );
}

#[tokio::test]
async fn a_second_migration_is_refused_while_one_runs() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let first = app.handle(&json!({}), quick("req-a")).await.unwrap();
    assert_eq!(first["outcome"], "launched");
    let second = app.handle(&json!({}), quick("req-b")).await.unwrap();
    assert_eq!(second["outcome"], "refused", "{second}");
    assert!(
        second["reason"]
            .as_str()
            .unwrap()
            .contains(first["taskArn"].as_str().unwrap())
    );
    assert_eq!(run_tasks(&rig).len(), 1);
    // ListTasks was asked with startedBy as its only filter (the stub refuses otherwise).
    assert!(
        rig.stub
            .accepted("ListTasks")
            .iter()
            .all(|l| l.get("family").is_none())
    );
}

#[tokio::test]
async fn a_command_override_is_refused_unless_allowed() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let out = app
        .handle(&sample("direct-invoke-command.json"), quick("r"))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "refused");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("ALLOW_COMMAND_OVERRIDE")
    );
    assert!(run_tasks(&rig).is_empty());

    let allowed = runner(&rig, &[("ALLOW_COMMAND_OVERRIDE", "true")]);
    let out = allowed
        .handle(&sample("direct-invoke-command.json"), quick("r2"))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "launched", "{out}");
    assert_eq!(
        run_tasks(&rig)[0]["overrides"]["containerOverrides"][0]["command"],
        json!(["./migrate", "status"])
    );
}

#[tokio::test]
async fn payloads_that_are_not_requests_launch_nothing_and_never_panic() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    for payload in [
        json!([]),
        json!(null),
        json!("migrate"),
        json!({"wait": "soon"}),
        json!({"image": "evil:latest"}),
        json!({"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {}}),
        json!({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {"lastStatus": 3}}),
        json!({"CodePipeline.job": {"data": {}}}),
    ] {
        let out = app.handle(&payload, quick("r")).await.unwrap();
        assert_eq!(out["outcome"], "ignored", "{payload} → {out}");
    }
    assert!(run_tasks(&rig).is_empty());
    assert!(rig.sink.delivered().is_empty());
}

#[tokio::test]
async fn a_direct_invocation_that_waits_returns_the_outcome_with_the_log_tail() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    // A task the stub reports stopped as soon as it is described: the arn is moto's.
    let launched = app.handle(&json!({}), quick("first")).await.unwrap();
    let arn = launched["taskArn"].as_str().unwrap().to_owned();
    rig.world
        .write_log(&rig.moto, &arn, &["applying 0042_add_index", "done"])
        .await;
    let definition = latest_definition(&rig).await;
    task_stops(
        &rig,
        &stopped_task(
            &rig.world,
            &arn,
            &definition,
            "EssentialContainerExited",
            "Essential container in task exited",
            &[("migrate", Some(0))],
            &[("ops:trigger", "invoke/first")],
        ),
    );
    let waited = app
        .handle(&json!({"wait": true}), quick("first"))
        .await
        .unwrap();
    assert_eq!(waited["outcome"], "succeeded", "{waited}");
    assert_eq!(waited["exitCode"], 0);
    assert_eq!(
        waited["logTail"],
        json!(["applying 0042_add_index", "done"])
    );
}

#[tokio::test]
async fn a_wait_that_outlasts_the_invocation_returns_running_with_the_arn() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[("REPORT_MARGIN", "1s")]);
    let out = app
        .handle(
            &json!({"wait": true}),
            invocation("w", Duration::from_secs(8), now_secs()),
        )
        .await
        .unwrap();
    assert_eq!(out["outcome"], "launched", "{out}");
    assert!(out["taskArn"].as_str().unwrap().contains(":task/prod/"));
    assert!(out["note"].as_str().unwrap().contains("still running"));
}

// ---- ECR push and digest pinning ----------------------------------------------------

#[tokio::test]
async fn a_push_runs_exactly_the_pushed_image_by_digest_once() {
    let rig = Rig::start().await;
    let extra = [
        ("TRIGGER_REPOSITORY", "prod-api"),
        ("TRIGGER_TAG", "1.*"),
        ("PIN_IMAGE_DIGEST", "true"),
    ];
    let push = sample("ecr-push.json");
    let digest = push["detail"]["image-digest"].as_str().unwrap().to_owned();
    let out = runner(&rig, &extra)
        .handle(&push, quick("r"))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "launched", "{out}");
    let registered = rig.stub.accepted("RegisterTaskDefinition");
    assert_eq!(registered.len(), 1);
    let image = registered[0]["containerDefinitions"][0]["image"]
        .as_str()
        .unwrap();
    assert_eq!(
        image,
        format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/prod-api@{digest}")
    );
    assert_eq!(
        registered[0]["taskRoleArn"], rig.world.task_role,
        "the new revision keeps the task's roles"
    );
    assert_eq!(
        run_tasks(&rig)[0]["taskDefinition"],
        latest_definition(&rig).await,
        "the pinned revision is what runs"
    );
    // Redelivered to a fresh container: the claim in the store says it was handled.
    let again = runner(&rig, &extra)
        .handle(&push, quick("r"))
        .await
        .unwrap();
    assert_eq!(again["outcome"], "skipped", "{again}");
    // Without the store, the next line of defence: the pinned revision is reused, not
    // registered again, and the running task is found by its trigger.
    let mut unguarded = extra.to_vec();
    unguarded.push(("IDEMPOTENCY_TABLE", ""));
    let again = runner(&rig, &unguarded)
        .handle(&push, quick("r"))
        .await
        .unwrap();
    assert_eq!(again["taskArn"], out["taskArn"], "{again}");
    assert_eq!(rig.stub.accepted("RegisterTaskDefinition").len(), 1);
    assert_eq!(run_tasks(&rig).len(), 1);
}

#[tokio::test]
async fn pushes_of_other_repositories_tags_or_failed_pushes_are_ignored() {
    let rig = Rig::start().await;
    let app = runner(
        &rig,
        &[("TRIGGER_REPOSITORY", "prod-api"), ("TRIGGER_TAG", "1.*")],
    );
    let mut untagged = sample("ecr-push.json");
    untagged["detail"]
        .as_object_mut()
        .unwrap()
        .remove("image-tag");
    let out = app.handle(&untagged, quick("r")).await.unwrap();
    assert_eq!(out["outcome"], "ignored", "{out}");
    for (field, value) in [
        ("repository-name", "other"),
        ("image-tag", "2.0.0"),
        ("result", "FAILURE"),
        ("action-type", "DELETE"),
    ] {
        let mut push = sample("ecr-push.json");
        push["detail"][field] = json!(value);
        let out = app.handle(&push, quick("r")).await.unwrap();
        assert_eq!(out["outcome"], "ignored", "{field}={value}: {out}");
    }
    assert!(run_tasks(&rig).is_empty());
}

#[tokio::test]
async fn a_push_while_a_migration_runs_is_refused_and_a_person_is_told() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[("TRIGGER_REPOSITORY", "prod-api")]);
    app.handle(&json!({}), quick("manual")).await.unwrap();
    let out = app
        .handle(&sample("ecr-push.json"), quick("r"))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "refused", "{out}");
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].to_string().contains("still running"),
        "{}",
        posts[0]
    );
    assert_eq!(run_tasks(&rig).len(), 1);
}

// ---- task state events ----------------------------------------------------------------

/// A launched task and the STOPPED event ECS would send for it.
async fn stopped_event(
    rig: &Rig,
    app: &migration_runner::app::App,
    exits: &[(&str, Option<i64>)],
    stop_code: &str,
) -> (Value, String) {
    let launched = app.handle(&json!({}), quick("manual-run")).await.unwrap();
    let arn = launched["taskArn"].as_str().unwrap().to_owned();
    let definition = latest_definition(rig).await;
    let task = stopped_task(
        &rig.world,
        &arn,
        &definition,
        stop_code,
        "Essential container in task exited",
        exits,
        &[],
    );
    let mut event = sample("ecs-task-stopped.json");
    event["detail"] = task;
    (event, arn)
}

#[tokio::test]
async fn a_failed_migration_is_reported_once_with_exit_codes_and_the_log_tail() {
    let rig = Rig::start().await;
    let topic = rig.moto.create_topic("ops-alerts").await;
    let app = runner(&rig, &[("SNS_TOPIC_ARN", topic.as_str())]);
    let (event, arn) = stopped_event(
        &rig,
        &app,
        &[("migrate", Some(3))],
        "EssentialContainerExited",
    )
    .await;
    rig.world
        .write_log(
            &rig.moto,
            &arn,
            &[
                "applying 0041_users",
                "ERROR: relation \"orders\" does not exist <!channel>",
            ],
        )
        .await;
    let out = app.handle(&event, quick("e1")).await.unwrap();
    assert_eq!(out["succeeded"], false, "{out}");
    // A duplicate, and an older event arriving late: neither reports again.
    let dup = app.handle(&event, quick("e2")).await.unwrap();
    assert_eq!(dup["outcome"], "skipped");
    let mut late = sample("ecs-task-deprovisioning.json");
    late["detail"]["taskArn"] = json!(arn);
    late["detail"]["startedBy"] = json!("ops-migration");
    let late = app.handle(&late, quick("e3")).await.unwrap();
    assert_eq!(late["outcome"], "ignored");
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let text = posts[0].to_string();
    assert!(
        text.contains("Migration failed") && text.contains("exited with 3"),
        "{text}"
    );
    assert!(
        text.contains("relation"),
        "the log tail is in the post: {text}"
    );
    assert!(!text.contains("<!channel>"), "escaped: {text}");
    let published = rig.stub.accepted("Publish");
    assert_eq!(published.len(), 1, "SNS too, once");
    assert!(
        published[0]["Message"]
            .as_str()
            .unwrap()
            .contains("exited with 3")
    );
}

#[tokio::test]
async fn a_deprovisioning_event_with_exit_codes_reports_nothing() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let mut event = sample("ecs-task-deprovisioning.json");
    event["detail"]["clusterArn"] = json!(rig.world.cluster_arn());
    let out = app.handle(&event, quick("e")).await.unwrap();
    assert_eq!(out["outcome"], "ignored", "{out}");
    assert!(rig.sink.delivered().is_empty());
}

#[tokio::test]
async fn a_succeeded_migration_is_posted_only_when_notify_on_is_all() {
    let rig = Rig::start().await;
    let quiet = runner(&rig, &[]);
    let (event, _) = stopped_event(
        &rig,
        &quiet,
        &[("migrate", Some(0))],
        "EssentialContainerExited",
    )
    .await;
    let out = quiet.handle(&event, quick("e")).await.unwrap();
    assert_eq!(out["succeeded"], true, "{out}");
    assert!(rig.sink.delivered().is_empty());
    // Without the store: with it, the same event is (rightly) already handled.
    let loud = runner(&rig, &[("NOTIFY_ON", "ALL"), ("IDEMPOTENCY_TABLE", "")]);
    loud.handle(&event, quick("e")).await.unwrap();
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].to_string().contains("Migration succeeded"));
}

/// ECS task events arrive at least once and out of order. A failed task's end is told once:
/// the post that failed for now gives its claim back (DeleteItem) and Lambda's retry posts
/// it; a duplicate, on any container, is skipped; an earlier RUNNING version is ignored.
#[tokio::test]
async fn a_stopped_task_is_told_once_across_a_failed_post_a_retry_and_duplicates() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let (event, _) = stopped_event(
        &rig,
        &app,
        &[("migrate", Some(1))],
        "EssentialContainerExited",
    )
    .await;
    rig.sink.script([Reply::Hang]);
    let short = invocation("first", Duration::from_secs(3), now_secs());
    let failed = app.handle(&event, short).await.unwrap_err();
    assert!(failed.is_retryable(), "{failed}");

    let retried = runner(&rig, &[])
        .handle(&event, quick("retry"))
        .await
        .unwrap();
    assert_eq!(retried["succeeded"], false, "{retried}");
    let duplicate = runner(&rig, &[])
        .handle(&event, quick("dup"))
        .await
        .unwrap();
    assert_eq!(duplicate["outcome"], "skipped", "{duplicate}");
    let mut older = event.clone();
    older["detail"]["lastStatus"] = json!("RUNNING");
    older["detail"]["version"] = json!(2);
    let late = app.handle(&older, quick("late")).await.unwrap();
    assert_eq!(late["outcome"], "ignored", "{late}");

    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1, "one post for one failed migration");
    assert!(
        posts[0].to_string().contains("Migration failed"),
        "{}",
        posts[0]
    );
    let released = rig
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == "DeleteItem")
        .count();
    assert_eq!(released, 1);
}

#[tokio::test]
async fn a_task_that_could_not_pull_its_image_is_a_failure_that_says_so() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let (mut event, _) = stopped_event(&rig, &app, &[("migrate", None)], "TaskFailedToStart").await;
    event["detail"]["stoppedReason"] = json!(
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): manifest unknown"
    );
    let out = app.handle(&event, quick("e")).await.unwrap();
    assert_eq!(out["succeeded"], false);
    let text = rig.sink.delivered()[0].to_string();
    assert!(
        text.contains("CannotPullContainerError") && text.contains("failed to start"),
        "{text}"
    );
    assert!(
        text.contains("does not exist"),
        "no log stream, said plainly: {text}"
    );
}

#[tokio::test]
async fn tasks_of_another_starter_are_acknowledged_and_ignored() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let mut event = sample("ecs-task-stopped.json");
    event["detail"]["startedBy"] = json!("ecs-svc/123");
    let out = app.handle(&event, quick("e")).await.unwrap();
    assert_eq!(out["outcome"], "ignored");
    assert!(rig.sink.delivered().is_empty());
}

// ---- CodePipeline jobs ----------------------------------------------------------------

#[tokio::test]
async fn a_pipeline_job_launches_continues_and_succeeds_with_output_variables() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let first = job("codepipeline-job.json");
    let out = app.handle(&first, quick("i1")).await.unwrap();
    assert_eq!(out["result"], "continue", "{out}");
    let token = last_token(&rig);
    let arn = token_task(&token);
    assert_eq!(
        run_tasks(&rig)[0]["clientToken"],
        "codepipeline-job/7a1c2e4f-1111-2222-3333-444455556666"
    );
    // Still running in moto: the job continues with the same task.
    let out = app
        .handle(&continuation(&first, &token), quick("i2"))
        .await
        .unwrap();
    assert_eq!(out["result"], "continue", "{out}");
    assert_eq!(token_task(&last_token(&rig)), arn);
    let definition = latest_definition(&rig).await;
    task_stops(
        &rig,
        &stopped_task(
            &rig.world,
            &arn,
            &definition,
            "EssentialContainerExited",
            "Essential container in task exited",
            &[("migrate", Some(0))],
            &[(
                "ops:trigger",
                "codepipeline-job/7a1c2e4f-1111-2222-3333-444455556666",
            )],
        ),
    );
    let out = app
        .handle(&continuation(&first, &token), quick("i3"))
        .await
        .unwrap();
    assert_eq!(out["result"], "succeeded", "{out}");
    let results = rig.stub.job_results();
    let last = &results.last().unwrap().body;
    assert!(last.get("continuationToken").is_none());
    assert_eq!(last["outputVariables"]["TASK_ARN"], arn);
    assert_eq!(last["outputVariables"]["EXIT_CODE"], "0");
    assert_eq!(run_tasks(&rig).len(), 1);
    // The task's STOPPED event is where people hear of it (a success only with NOTIFY_ON=ALL).
    let mut event = sample("ecs-task-stopped.json");
    event["detail"] = stopped_task(
        &rig.world,
        &arn,
        &definition,
        "EssentialContainerExited",
        "Essential container in task exited",
        &[("migrate", Some(0))],
        &[],
    );
    let out = app.handle(&event, quick("e")).await.unwrap();
    assert_eq!(out["succeeded"], true, "{out}");
    assert!(rig.sink.delivered().is_empty());
}

#[tokio::test]
async fn a_failed_migration_fails_the_job_with_the_log_tail_and_its_stopped_event_tells_people() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[("LOG_TAIL_LINES", "2")]);
    let first = job("codepipeline-job.json");
    app.handle(&first, quick("i1")).await.unwrap();
    let token = last_token(&rig);
    let arn = token_task(&token);
    rig.world
        .write_log(
            &rig.moto,
            &arn,
            &["connecting", "applying 0042", "ERROR: lock timeout"],
        )
        .await;
    task_stops(
        &rig,
        &stopped_task(
            &rig.world,
            &arn,
            &latest_definition(&rig).await,
            "EssentialContainerExited",
            "Essential container in task exited",
            &[("migrate", Some(1))],
            &[(
                "ops:trigger",
                "codepipeline-job/7a1c2e4f-1111-2222-3333-444455556666",
            )],
        ),
    );
    let out = app
        .handle(&continuation(&first, &token), quick("i2"))
        .await
        .unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    let message = failure["failureDetails"]["message"].as_str().unwrap();
    assert!(message.contains("exited with 1"), "{message}");
    assert!(
        message.ends_with("applying 0042\nERROR: lock timeout"),
        "the last LOG_TAIL_LINES lines: {message}"
    );
    assert!(!message.contains("connecting"));
    assert!(
        rig.sink.delivered().is_empty(),
        "the job answers CodePipeline; the task's end is told once, by its event"
    );
    let mut event = sample("ecs-task-stopped.json");
    event["detail"] = stopped_task(
        &rig.world,
        &arn,
        &latest_definition(&rig).await,
        "EssentialContainerExited",
        "Essential container in task exited",
        &[("migrate", Some(1))],
        &[],
    );
    app.handle(&event, quick("e")).await.unwrap();
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), 1);
    let text = posts[0].to_string();
    assert!(
        text.contains("codepipeline-job/7a1c2e4f-1111-2222-3333-444455556666")
            && text.contains("lock timeout"),
        "{text}"
    );
}

#[tokio::test]
async fn a_continued_job_finds_the_task_its_first_invocation_launched() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[("MAX_RUNTIME", "10m")]);
    let first = job("codepipeline-job.json");
    let started = now_secs();
    app.handle(&first, invocation("i1", Duration::from_secs(30), started))
        .await
        .unwrap();
    let arn = token_task(&last_token(&rig));
    // As if the first invocation had run out of time after RunTask: it asked to be invoked
    // again, still "waiting". The next invocation (a new job id) finds the task by its origin.
    let waiting = json!({"state": "waiting", "runner": 1,
        "origin": "7a1c2e4f-1111-2222-3333-444455556666", "since": started, "tries": 0})
    .to_string();
    app.handle(
        &continuation(&first, &waiting),
        invocation("i2", Duration::from_secs(30), started + 60),
    )
    .await
    .unwrap();
    assert_eq!(token_task(&last_token(&rig)), arn);
    // Even past MAX_RUNTIME, a waiting job first looks for its own task before failing, and
    // that task's runtime counts from its own start (moto gives no createdAt: from now).
    app.handle(
        &continuation(&first, &waiting),
        invocation("i3", Duration::from_secs(30), started + 11 * 60),
    )
    .await
    .unwrap();
    assert_eq!(run_tasks(&rig).len(), 1);
    assert!(
        rig.stub.accepted("StopTask").is_empty(),
        "not stopped at once"
    );
    assert_eq!(token_task(&last_token(&rig)), arn);
    assert!(rig.stub.accepted("PutJobFailureResult").is_empty());
}

#[tokio::test]
async fn past_max_runtime_the_task_is_stopped_and_the_job_failed() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[("MAX_RUNTIME", "10m")]);
    let first = job("codepipeline-job.json");
    let started = now_secs();
    app.handle(&first, invocation("i1", Duration::from_secs(30), started))
        .await
        .unwrap();
    let token = last_token(&rig);
    let arn = token_task(&token);
    let out = app
        .handle(
            &continuation(&first, &token),
            invocation("i2", Duration::from_secs(30), started + 11 * 60),
        )
        .await
        .unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    let stops = rig.stub.accepted("StopTask");
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["task"], arn);
    let message = rig.stub.accepted("PutJobFailureResult")[0]["failureDetails"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("MAX_RUNTIME (10 min)"), "{message}");
}

/// CodePipeline fails a Lambda invoke action 24 hours after it started (CodePipeline user
/// guide, Quotas), and the function is never invoked again to stop what it launched. A job
/// that waited for a launch and then ran, each within MAX_RUNTIME, can outlast that: the
/// runner stops its task before the pipeline gives up on it.
#[tokio::test]
async fn a_task_is_stopped_before_the_pipeline_action_would_time_out() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[("MAX_RUNTIME", "23h")]);
    let first = job("codepipeline-job.json");
    let job_started = now_secs();
    app.handle(
        &first,
        invocation("i1", Duration::from_secs(30), job_started),
    )
    .await
    .unwrap();
    let token = last_token(&rig);
    // Launched 12 hours into the job (after waiting for another migration), 23h40m ago now.
    let mut state: Value = serde_json::from_str(&token).unwrap();
    let later = job_started + 23 * 3600 + 40 * 60;
    state["job_started"] = json!(job_started);
    state["launched"] = json!(job_started + 12 * 3600);
    let out = app
        .handle(
            &continuation(&first, &state.to_string()),
            invocation("i2", Duration::from_secs(30), later),
        )
        .await
        .unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    assert_eq!(rig.stub.accepted("StopTask").len(), 1);
    let message = rig.stub.accepted("PutJobFailureResult")[0]["failureDetails"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("after 24 hours"), "{message}");
}

#[tokio::test]
async fn a_job_waits_for_a_running_migration_then_launches() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let other = app.handle(&json!({}), quick("manual")).await.unwrap();
    let first = job("codepipeline-job.json");
    let out = app.handle(&first, quick("i1")).await.unwrap();
    assert_eq!(out["result"], "continue");
    let token = last_token(&rig);
    assert!(token.contains("waiting"), "{token}");
    assert_eq!(
        run_tasks(&rig).len(),
        1,
        "nothing launched beside the other"
    );
    rig.world
        .stop(&rig.moto, other["taskArn"].as_str().unwrap())
        .await;
    app.handle(&continuation(&first, &token), quick("i2"))
        .await
        .unwrap();
    assert!(last_token(&rig).contains("running"));
    assert_eq!(run_tasks(&rig).len(), 2);
}

#[tokio::test]
async fn capacity_shortages_are_retried_and_other_placement_failures_fail_the_job() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    rig.stub.fixture(
        "RunTask",
        json!({}),
        json!({"tasks": [], "failures": [{"arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/x", "reason": "RESOURCE:MEMORY"}]}),
    );
    let out = app
        .handle(
            &job("codepipeline-job.json"),
            invocation("i1", Duration::from_secs(12), now_secs()),
        )
        .await
        .unwrap();
    assert_eq!(out["result"], "continue", "{out}");
    let tokens: Vec<String> = rig
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == "RunTask")
        .map(|c| c.body["clientToken"].as_str().unwrap().to_owned())
        .collect();
    assert!(tokens.len() >= 2, "retried within the invocation");
    assert_eq!(
        tokens
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        tokens.len(),
        "each attempt after a placement failure has its own client token: {tokens:?}"
    );
    assert!(last_token(&rig).contains("waiting"));

    rig.stub.fixture(
        "RunTask",
        json!({}),
        json!({"tasks": [], "failures": [{"reason": "ATTRIBUTE", "detail": "requires ecs.capability.efs"}]}),
    );
    let before = rig
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == "RunTask")
        .count();
    let out = app
        .handle(&job("codepipeline-job-command.json"), quick("i2"))
        .await
        .unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    let after = rig
        .stub
        .calls()
        .iter()
        .filter(|c| c.operation == "RunTask")
        .count();
    assert_eq!(
        after, before,
        "the command override is refused before launching"
    );
    let allowed = runner(&rig, &[("ALLOW_COMMAND_OVERRIDE", "true")]);
    let mut another = job("codepipeline-job-command.json");
    another["CodePipeline.job"]["id"] = json!("job-with-override");
    let out = allowed.handle(&another, quick("i3")).await.unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    let message =
        rig.stub.accepted("PutJobFailureResult").last().unwrap()["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(
        message.contains("ATTRIBUTE") && message.contains("efs"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_job_input_fails_the_job_clearly_and_launches_nothing() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[]);
    let mut malformed = job("codepipeline-job.json");
    malformed["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!("migrate please");
    app.handle(&malformed, quick("a")).await.unwrap();
    let mut foreign = job("codepipeline-job.json");
    foreign["CodePipeline.job"]["id"] = json!("job-foreign");
    foreign["CodePipeline.job"]["data"]["continuationToken"] = json!(r#"{"since": 1}"#);
    app.handle(&foreign, quick("b")).await.unwrap();
    let mut unknown = sample("codepipeline-job-continuation.json");
    unknown["CodePipeline.job"]["id"] = json!("job-unknown");
    app.handle(&unknown, quick("c")).await.unwrap();
    let failures = rig.stub.accepted("PutJobFailureResult");
    assert_eq!(failures.len(), 3);
    let message = |i: usize| {
        failures[i]["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(failures[0]["failureDetails"]["type"], "ConfigurationError");
    assert!(message(0).contains("UserParameters"));
    assert!(message(1).contains("not one this function issued"));
    assert!(
        message(2).contains("not known in cluster"),
        "{}",
        message(2)
    );
    assert!(run_tasks(&rig).is_empty());
}

#[tokio::test]
async fn a_bad_configuration_fails_every_job_and_is_posted_once_for_events() {
    let rig = Rig::start().await;
    let app = runner(&rig, &[("STARTED_BY", "has spaces")]);
    let out = app
        .handle(&job("codepipeline-job.json"), quick("i"))
        .await
        .unwrap();
    assert_eq!(out["result"], "failed");
    let failure = &rig.stub.accepted("PutJobFailureResult")[0];
    assert_eq!(failure["failureDetails"]["type"], "ConfigurationError");
    assert!(
        failure["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("STARTED_BY")
    );
    for _ in 0..2 {
        app.handle(&sample("ecs-task-stopped.json"), quick("e"))
            .await
            .unwrap();
    }
    assert_eq!(
        rig.sink.delivered().len(),
        2,
        "the failed job, then one configuration notice for events"
    );
    assert!(run_tasks(&rig).is_empty());
}

// ---- always one report ----------------------------------------------------------------

/// ECS as in production, except that launching panics or hangs.
struct Faulty {
    inner: Ecs,
    hang: bool,
    runs: AtomicUsize,
}

impl Cluster for Faulty {
    async fn task_definition(&self, r: &str, d: &Deadline) -> Result<TaskDefinition, Error> {
        self.inner.task_definition(r, d).await
    }
    async fn pin_image(
        &self,
        b: &TaskDefinition,
        c: &str,
        i: &str,
        d: &Deadline,
    ) -> Result<TaskDefinition, Error> {
        self.inner.pin_image(b, c, i, d).await
    }
    async fn active_tasks(&self, c: &str, s: &str, d: &Deadline) -> Result<Vec<Task>, Error> {
        self.inner.active_tasks(c, s, d).await
    }
    async fn run(&self, _: &Launch, _: &Deadline) -> Result<RunOutcome, Error> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::future::pending::<()>().await;
        }
        panic!("injected fault in RunTask");
    }
    async fn describe(&self, c: &str, t: &str, d: &Deadline) -> Result<Option<Task>, Error> {
        self.inner.describe(c, t, d).await
    }
    async fn stop(&self, c: &str, t: &str, r: &str, d: &Deadline) -> Result<(), Error> {
        self.inner.stop(c, t, r, d).await
    }
}

/// The runner as `main.rs` builds it, with ECS seen through `cluster`.
fn runner_with<C>(
    rig: &Rig,
    cluster: impl FnOnce(Ecs) -> C,
) -> Runner<C, CloudWatchLogs, JobReporter, Notifier> {
    let env = rig.env(&[]);
    let clients = rig.clients();
    let config: Loaded<Config> = Config::from_env(&env).map_err(|e| e.to_string());
    let ports = migration_runner::app::ports(&env, &clients);
    let ecs = Ecs::new(&clients.sdk);
    Runner::new(config, ports.with_cluster(cluster(ecs)), "us-east-1".into())
}

fn faulty_runner(rig: &Rig, hang: bool) -> Runner<Faulty, CloudWatchLogs, JobReporter, Notifier> {
    runner_with(rig, |inner| Faulty {
        inner,
        hang,
        runs: AtomicUsize::new(0),
    })
}

#[tokio::test]
async fn a_panic_while_launching_still_answers_the_job_exactly_once() {
    let rig = Rig::start().await;
    let app = faulty_runner(&rig, false);
    let out = app
        .handle(&job("codepipeline-job.json"), quick("i"))
        .await
        .unwrap();
    assert_eq!(out["result"], "failed", "{out}");
    assert_eq!(rig.stub.job_results().len(), 1);
    assert!(
        rig.stub.accepted("PutJobFailureResult")[0]["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("internal error")
    );
    assert_eq!(rig.sink.delivered().len(), 1);
}

#[tokio::test]
async fn a_hang_while_launching_still_answers_the_job_before_the_deadline() {
    let rig = Rig::start().await;
    let app = faulty_runner(&rig, true);
    let budget = Duration::from_secs(8);
    let started = std::time::Instant::now();
    let out = app
        .handle(
            &job("codepipeline-job.json"),
            invocation("i", budget, now_secs()),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < budget, "answered within the deadline");
    assert_eq!(out["result"], "continue", "asks to be invoked again: {out}");
    assert_eq!(rig.stub.job_results().len(), 1);
    assert_eq!(app.ports.cluster.runs.load(Ordering::SeqCst), 1);
}

/// ECS as in production, except that the first look for running migrations sees none: what
/// ListTasks' eventual consistency, or a second container checking at the same moment, allows.
struct Blind {
    inner: Ecs,
    looked: AtomicUsize,
}

impl Cluster for Blind {
    async fn task_definition(&self, r: &str, d: &Deadline) -> Result<TaskDefinition, Error> {
        self.inner.task_definition(r, d).await
    }
    async fn pin_image(
        &self,
        b: &TaskDefinition,
        c: &str,
        i: &str,
        d: &Deadline,
    ) -> Result<TaskDefinition, Error> {
        self.inner.pin_image(b, c, i, d).await
    }
    async fn active_tasks(&self, c: &str, s: &str, d: &Deadline) -> Result<Vec<Task>, Error> {
        if self.looked.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(Vec::new());
        }
        // moto gives tasks no createdAt; ECS does. The one launched first is the older.
        let mut tasks = self.inner.active_tasks(c, s, d).await?;
        for t in &mut tasks {
            let first = t
                .tags
                .get("ops:trigger")
                .is_some_and(|v| v == "invoke/first");
            t.created_at = Some(if first { 1 } else { 2 });
        }
        Ok(tasks)
    }
    async fn run(&self, l: &Launch, d: &Deadline) -> Result<RunOutcome, Error> {
        match self.inner.run(l, d).await? {
            RunOutcome::Started(mut t) => {
                t.created_at = Some(2);
                Ok(RunOutcome::Started(t))
            }
            other => Ok(other),
        }
    }
    async fn describe(&self, c: &str, t: &str, d: &Deadline) -> Result<Option<Task>, Error> {
        self.inner.describe(c, t, d).await
    }
    async fn stop(&self, c: &str, t: &str, r: &str, d: &Deadline) -> Result<(), Error> {
        self.inner.stop(c, t, r, d).await
    }
}

#[tokio::test]
async fn of_two_migrations_launched_at_once_the_later_stops_itself() {
    let rig = Rig::start().await;
    let first = runner(&rig, &[])
        .handle(&json!({}), quick("first"))
        .await
        .unwrap();
    let racing = runner_with(&rig, |inner| Blind {
        inner,
        looked: AtomicUsize::new(0),
    });
    let second = racing.handle(&json!({}), quick("second")).await.unwrap();
    assert_eq!(second["outcome"], "refused", "{second}");
    assert!(
        second["reason"]
            .as_str()
            .unwrap()
            .contains(first["taskArn"].as_str().unwrap())
    );
    assert_eq!(run_tasks(&rig).len(), 2, "the race happened");
    let stops = rig.stub.accepted("StopTask");
    assert_eq!(stops.len(), 1);
    assert_ne!(
        stops[0]["task"], first["taskArn"],
        "the later one stopped itself"
    );
    // Its STOPPED event is not a failed migration: the request was already told.
    let mut event = sample("ecs-task-stopped.json");
    event["detail"] = stopped_task(
        &rig.world,
        stops[0]["task"].as_str().unwrap(),
        &latest_definition(&rig).await,
        "UserInitiated",
        migration_runner::launch::RACE_STOP_REASON,
        &[("migrate", None)],
        &[],
    );
    let out = racing.handle(&event, quick("e")).await.unwrap();
    assert_eq!(out["outcome"], "ignored", "{out}");
    assert!(rig.sink.delivered().is_empty());
}

/// A stop code, each container's exit, and whether that is a success.
type Case = (&'static str, &'static [(&'static str, Option<i64>)], bool);

#[tokio::test]
async fn task_events_in_the_published_shape_are_judged_on_every_essential_container() {
    let rig = Rig::start().await;
    // A migration with a non-essential log router beside it.
    let definition = register(
        &rig.moto,
        &task_definition(&rig.world, &rig.world.image("v3"), true),
    )
    .await;
    let app = runner(&rig, &[("NOTIFY_ON", "ALL")]);
    let cases: [Case; 6] = [
        (
            "EssentialContainerExited",
            &[("migrate", Some(0)), ("log-router", Some(0))],
            true,
        ),
        (
            "EssentialContainerExited",
            &[("migrate", Some(0)), ("log-router", Some(137))],
            true,
        ),
        (
            "EssentialContainerExited",
            &[("migrate", Some(2)), ("log-router", Some(0))],
            false,
        ),
        (
            "EssentialContainerExited",
            &[("migrate", None), ("log-router", Some(0))],
            false,
        ),
        (
            "SpotInterruption",
            &[("migrate", Some(0)), ("log-router", Some(0))],
            false,
        ),
        (
            "SomethingNewFromEcs",
            &[("migrate", Some(0)), ("log-router", Some(0))],
            false,
        ),
    ];
    for (n, (stop_code, exits, succeeded)) in cases.iter().enumerate() {
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/prod/case{n}");
        let mut event = sample("ecs-task-stopped.json");
        event["detail"] = stopped_task(
            &rig.world,
            &arn,
            &definition,
            stop_code,
            "Essential container in task exited",
            exits,
            &[],
        );
        let out = app.handle(&event, quick("e")).await.unwrap();
        assert_eq!(
            out["succeeded"], *succeeded,
            "case {n} ({stop_code}, {exits:?}): {out}"
        );
    }
    let posts = rig.sink.delivered();
    assert_eq!(posts.len(), cases.len());
    assert!(
        posts[1]
            .to_string()
            .contains("log-router (not essential): exit 137"),
        "a sidecar's exit is shown: {}",
        posts[1]
    );
}
