//! The migration-runner section of the demo: a Fargate-ready cluster, a task definition and a
//! log group in moto; the runner's binary through the Lambda Runtime API, with its ECS calls
//! through the recording stub (which holds ECS's client-token rule moto lacks). One migration
//! launched, a second refused while it runs, a pipeline job waiting its turn, and the failure
//! report a person reads in Slack, exit code and log tail included.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use standins::ecs::{EcsWorld, stopped_task};
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, RuntimeApi, SlackSink};

use crate::render::{metrics_summary, slack_payload};
use crate::{Fallible, function_env};

fn response(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Response(v) => v.clone(),
        other => json!({"outcome": format!("{other:?}")}),
    }
}

pub async fn run(
    binary: &Path,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
) -> Fallible<()> {
    println!("\n== migration-runner ({})", binary.display());
    let world = EcsWorld::create(moto, "prod").await;
    println!(
        "moto holds cluster prod, task family {} (container {}, awslogs to {}), a subnet and a\nsecurity group in a VPC with DNS hostnames (Fargate needs them).",
        world.family, world.container, world.log_group
    );
    let api = RuntimeApi::start().await;
    let stub_url = stub.endpoint();
    let mut own: Vec<(String, String)> = world.env();
    own.push(("AWS_ENDPOINT_URL_ECS".into(), stub_url.clone()));
    own.push(("AWS_ENDPOINT_URL_CODEPIPELINE".into(), stub_url));
    let own: Vec<(&str, &str)> = own.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = function_env(moto, &own);
    let mut function = FunctionProcess::spawn(binary, &api, &env);

    println!(
        "\n1. Someone invokes the runner with {{}} (events/migration-runner/direct-invoke.json)."
    );
    let first = api
        .invoke(&mut function, &json!({}), Duration::from_secs(30))
        .await;
    let first = response(&first.outcome);
    let arn = first["taskArn"].as_str().unwrap_or_default().to_owned();
    println!("   {} task {arn}", first["outcome"].as_str().unwrap_or("?"));
    if let Some(run) = stub.accepted("RunTask").first() {
        println!(
            "   RunTask: {} · startedBy {} · clientToken {} · subnets {}",
            run["taskDefinition"].as_str().unwrap_or_default(),
            run["startedBy"],
            run["clientToken"],
            run["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
        );
    }

    println!("\n2. A second request while it runs: refused, nothing launched.");
    let second = api
        .invoke(&mut function, &json!({}), Duration::from_secs(30))
        .await;
    let second = response(&second.outcome);
    println!(
        "   {}: {}",
        second["outcome"].as_str().unwrap_or("?"),
        second["reason"].as_str().unwrap_or_default()
    );
    println!(
        "   tasks in the cluster started by ops-migration: {}",
        world.tasks_started_by(moto, "ops-migration").await.len()
    );

    println!(
        "\n3. A pipeline stage asks for a migration meanwhile (events/migration-runner/codepipeline-job.json):"
    );
    let job = standins::sample_event("migration-runner", "codepipeline-job.json");
    let answer = api
        .invoke(&mut function, &job, Duration::from_secs(30))
        .await;
    let answer = response(&answer.outcome);
    let summary = stub
        .accepted("PutJobSuccessResult")
        .last()
        .map(|r| {
            r["executionDetails"]["summary"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    println!(
        "   CodePipeline got a continuation ({}): \"{summary}\"",
        answer["result"].as_str().unwrap_or("?")
    );

    println!(
        "\n4. The first migration fails: its container logged an error and exited 1. ECS sends the\n   STOPPED task-state event (events/migration-runner/ecs-task-stopped.json, twice: events\n   come at least once), and the runner reports it once, as a person reads it in Slack (the\n   password in the logged connection string is redacted):"
    );
    world
        .write_log(
            moto,
            &arn,
            &[
                "migrate: connecting to postgres://migrator:s3cret@orders-db.internal:5432/orders",
                "migrate: applying 0041_create_invoices ... ok",
                "migrate: applying 0042_add_invoice_index ...",
                "ERROR: could not create unique index \"invoices_number_key\"",
                "DETAIL: Key (number)=(INV-1042) is duplicated.",
                "migrate: rolled back 0042; exiting with status 1",
            ],
        )
        .await;
    let definition = standins::ecs::call(
        moto,
        "DescribeTaskDefinition",
        json!({"taskDefinition": world.family}),
    )
    .await["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut event = standins::sample_event("migration-runner", "ecs-task-stopped.json");
    event["detail"] = stopped_task(
        &world,
        &arn,
        &definition,
        "EssentialContainerExited",
        "Essential container in task exited",
        &[("migrate", Some(1))],
        &[],
    );
    let before = sink.delivered().len();
    for _ in 0..2 {
        api.invoke(&mut function, &event, Duration::from_secs(30))
            .await;
    }
    let posts = sink.delivered();
    println!("   posts for the two deliveries: {}", posts.len() - before);
    if let Some(payload) = posts.get(before) {
        print!("{}", slack_payload(payload));
    }

    println!(
        "\n5. With the first task gone, the waiting pipeline job launches its own on its next\n   invocation; when that one ends well, the job succeeds with TASK_ARN and EXIT_CODE."
    );
    world.stop(moto, &arn).await;
    let token = stub
        .accepted("PutJobSuccessResult")
        .last()
        .and_then(|r| r["continuationToken"].as_str().map(str::to_owned))
        .unwrap_or_default();
    // CodePipeline gives each invocation of a continuing action a new job id.
    let mut next = job.clone();
    next["CodePipeline.job"]["id"] = json!("7a1c2e4f-2222-2222-3333-444455556666");
    next["CodePipeline.job"]["data"]["continuationToken"] = json!(token);
    api.invoke(&mut function, &next, Duration::from_secs(30))
        .await;
    let token = stub
        .accepted("PutJobSuccessResult")
        .last()
        .and_then(|r| r["continuationToken"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let job_task = serde_json::from_str::<Value>(&token).unwrap_or_default()["task"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("   launched {job_task}");
    stub.fixture(
        "DescribeTasks",
        json!({"tasks": [job_task]}),
        json!({"tasks": [stopped_task(&world, &job_task, &definition, "EssentialContainerExited", "Essential container in task exited", &[("migrate", Some(0))], &[])], "failures": []}),
    );
    next["CodePipeline.job"]["id"] = json!("7a1c2e4f-3333-2222-3333-444455556666");
    next["CodePipeline.job"]["data"]["continuationToken"] = json!(token);
    api.invoke(&mut function, &next, Duration::from_secs(30))
        .await;
    if let Some(done) = stub.job_results().last() {
        println!(
            "   CodePipeline got {}: output variables {}",
            done.operation, done.body["outputVariables"]
        );
    }
    print!("{}", metrics_summary(&function.stop().await));
    Ok(())
}
