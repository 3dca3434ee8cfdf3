//! End to end: the runner's binary run as Lambda runs it, through the Runtime API, against
//! moto (ECS, EC2, CloudWatch Logs) and the recording stub (CodePipeline job results, ECS's
//! client-token rules). `MIGRATION_RUNNER_BIN` points it at another build (the release
//! bootstrap).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{EcsWorld, sample, stopped_task};
use serde_json::json;
use standins::{FunctionProcess, Outcome, Rig, RuntimeApi};

fn binary() -> PathBuf {
    standins::runtime_api::binary_under_test(
        "MIGRATION_RUNNER_BIN",
        env!("CARGO_BIN_EXE_migration-runner"),
    )
}

#[tokio::test]
async fn the_binary_runs_a_migration_once_answers_its_job_and_reports_its_end() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let world = EcsWorld::create(&moto, "prod").await;

    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend(world.env());
    env.push(("SLACK_WEBHOOK_URL".into(), sink.webhook_url("deploys")));
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);

    let launched = api
        .invoke(
            &mut function,
            &sample("direct-invoke.json"),
            Duration::from_secs(30),
        )
        .await;
    let Outcome::Response(launched) = &launched.outcome else {
        panic!("{launched:?}")
    };
    assert_eq!(launched["outcome"], "launched", "{launched}");
    let arn = launched["taskArn"].as_str().unwrap().to_owned();
    assert_eq!(
        stub.accepted("RunTask")[0]["clientToken"]
            .as_str()
            .unwrap()
            .len(),
        "invoke/00000000-0000-4000-8000-000000000001".len(),
        "the client token comes from the invocation's request id"
    );

    // A pipeline job while that migration runs: it waits, launching nothing.
    let job = api
        .invoke(
            &mut function,
            &sample("codepipeline-job.json"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(&job.outcome, Outcome::Response(v) if v["result"] == "continue"),
        "{job:?}"
    );
    assert_eq!(stub.accepted("RunTask").len(), 1);

    let ignored = api
        .invoke(&mut function, &json!([]), Duration::from_secs(10))
        .await;
    assert!(
        matches!(&ignored.outcome, Outcome::Response(v) if v["outcome"] == "ignored"),
        "{ignored:?}"
    );

    // The migration ends with a failure: ECS's STOPPED event is reported once.
    world
        .write_log(&moto, &arn, &["applying 0042", "ERROR: duplicate key"])
        .await;
    let definition = common::call(
        &moto,
        "DescribeTaskDefinition",
        json!({"taskDefinition": world.family}),
    )
    .await["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut event = sample("ecs-task-stopped.json");
    event["detail"] = stopped_task(
        &world,
        &arn,
        &definition,
        "EssentialContainerExited",
        "Essential container in task exited",
        &[("migrate", Some(2))],
        &[],
    );
    // ECS's events carry when the task was created; the runner measures from there.
    event["detail"]["createdAt"] = json!("2026-01-01T00:00:00.000Z");
    event["detail"]["stoppedAt"] = json!("2026-01-01T00:01:30.500Z");
    for _ in 0..2 {
        let reported = api
            .invoke(&mut function, &event, Duration::from_secs(30))
            .await;
        assert!(
            matches!(&reported.outcome, Outcome::Response(_)),
            "{reported:?}"
        );
    }
    let posts = sink.delivered();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].to_string().contains("duplicate key"));

    let lines = function.stop().await;
    let emf = standins::emf::parse(&lines);
    assert_eq!(
        emf.sum("LaunchRefused", &[("Reason", "busy")]),
        1.0,
        "the job, while the migration ran"
    );
    assert_eq!(
        emf.sum("Migrations", &[("Outcome", "failed")]),
        1.0,
        "once, though the STOPPED event came twice"
    );
    let seconds = emf.values("MigrationSeconds", &[]);
    assert_eq!(seconds.len(), 1, "{seconds:?}");
    assert_eq!(seconds, [90.5], "from createdAt to stoppedAt");
    let logs = lines.join("\n");
    standins::runtime_api::assert_no_secrets(&logs, &[]);
    assert!(logs.contains("migration task launched"), "{logs}");
}

/// Planted at DEBUG (every crate's debug output on): the function's AWS secret key and
/// session token, the job's `artifactCredentials`, and the webhook kept in SSM. Through a
/// pipeline job that launches, a request refused while it runs and the failed migration's
/// STOPPED event (posted), none of them reaches a log line, an answer, a post or a request
/// to AWS (RunTask's among them).
#[tokio::test]
async fn at_debug_no_planted_secret_reaches_a_log_an_answer_a_post_or_a_launch() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    // The webhook where the stack as tested keeps it (SlackWebhookParameterName): SSM.
    let webhook = standins::rig::webhook_in_ssm(&moto, &sink, "deploys").await;
    let world = EcsWorld::create(&moto, "prod").await;
    let mut env = standins::planted::debug_env(&stub.endpoint());
    env.extend(world.env());
    env.push(("SLACK_WEBHOOK_URL".into(), webhook));
    let api = RuntimeApi::start().await;
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    let mut answers = Vec::new();
    for event in [
        sample("codepipeline-job.json"),
        sample("direct-invoke.json"),
    ] {
        let out = api
            .invoke(&mut function, &event, Duration::from_secs(30))
            .await;
        answers.push(format!("{:?}", out.outcome));
    }
    // The job's migration fails: its STOPPED event is posted, so the webhook is used.
    let launched = stub.accepted("RunTask");
    assert_eq!(
        launched.len(),
        1,
        "the job launched, the request was refused"
    );
    let arn = common::call(&moto, "ListTasks", json!({"cluster": "prod"})).await["taskArns"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let definition = common::call(
        &moto,
        "DescribeTaskDefinition",
        json!({"taskDefinition": world.family}),
    )
    .await["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut event = sample("ecs-task-stopped.json");
    event["detail"] = stopped_task(
        &world,
        &arn,
        &definition,
        "EssentialContainerExited",
        "Essential container in task exited",
        &[("migrate", Some(1))],
        &[],
    );
    let out = api
        .invoke(&mut function, &event, Duration::from_secs(30))
        .await;
    answers.push(format!("{:?}", out.outcome));
    let logs = function.stop().await;
    assert!(!sink.delivered().is_empty(), "the scenario posted");
    let mut secrets = standins::planted::always();
    secrets.extend(standins::planted::ARTIFACT_SECRETS);
    standins::planted::assert_none_leaked(&secrets, &logs, &answers, &sink, &stub);
}

/// Every input is untrusted (fault matrix, "bad input"): each unusable body ends in an
/// acknowledgement or a clean invocation error, never a panic, a crash or a hang — and
/// launches nothing.
#[tokio::test]
async fn bad_payloads_end_cleanly_launch_nothing_and_the_process_lives_on() {
    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let world = EcsWorld::create(&moto, "prod").await;
    let api = RuntimeApi::start().await;
    let mut env = standins::moto::aws_env(&stub.endpoint());
    env.extend(world.env());
    env.push(("SLACK_WEBHOOK_URL".into(), sink.webhook_url("deploys")));
    let mut function = FunctionProcess::spawn(&binary(), &api, &env);
    // `{}` is a real request here: "run the migration".
    standins::runtime_api::assert_bad_payloads_end_cleanly(
        &api,
        &mut function,
        &["an empty object"],
    )
    .await;
    assert!(stub.accepted("RunTask").is_empty(), "nothing launched");
    let logs = function.stop().await.join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
}
