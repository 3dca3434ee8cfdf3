//! The picture on this function's page (`pictures/failed.svg`) is its own message as rendered
//! now: the sample STOPPED task judged against its task definition, with the log tail of the
//! failure `make demo` shows (a unique index that could not be built over a duplicate key; the
//! password in the logged connection string redacted). `UPDATE_PICTURES=1` redraws it.

use std::collections::BTreeMap;
use std::path::Path;

use migration_runner::event::Trigger;
use migration_runner::judge::{LogEvidence, TaskOutcome, judge};
use migration_runner::render::{ClusterLocation, render_outcome};
use migration_runner::task::{ContainerDef, LogStream, Task, TaskDefinition, cluster_name};
use standins::picture;

/// The task definition the sample task ran: one essential container logging through awslogs.
fn definition(task: &Task) -> TaskDefinition {
    TaskDefinition {
        arn: task.task_definition_arn.clone(),
        family: task.family().to_owned(),
        containers: vec![ContainerDef {
            name: "migrate".into(),
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/prod-api:1.42.0".into(),
            essential: true,
            log_driver: Some("awslogs".into()),
            log_options: BTreeMap::from([
                ("awslogs-group".to_owned(), "/ecs/prod-migrate".to_owned()),
                ("awslogs-region".to_owned(), "us-east-1".to_owned()),
                ("awslogs-stream-prefix".to_owned(), "ecs".to_owned()),
            ]),
        }],
    }
}

/// What the migration container logged before it exited 1 (the demo's failure).
const LOG: &[&str] = &[
    "migrate: connecting to postgres://migrator:s3cret@orders-db.internal:5432/orders",
    "migrate: applying 0041_create_invoices ... ok",
    "migrate: applying 0042_add_invoice_index ...",
    "ERROR: could not create unique index \"invoices_number_key\"",
    "DETAIL: Key (number)=(INV-1042) is duplicated.",
    "migrate: rolled back 0042; exiting with status 1",
];

#[test]
fn the_pictures_are_the_messages_as_rendered_now() {
    let event = standins::sample_event("migration-runner", "ecs-task-stopped.json");
    let task: Task = serde_json::from_value(event["detail"].clone()).expect("a task");
    let definition = definition(&task);
    let LogStream::CloudWatch { stream, .. } = definition.log_stream("migrate", &task.task_arn)
    else {
        panic!("the container logs to CloudWatch Logs");
    };
    let outcome = TaskOutcome {
        task_arn: task.task_arn.clone(),
        family: task.family().to_owned(),
        judgement: judge(&task, Some(&definition), "migrate"),
        log: LogEvidence::Lines {
            stream,
            lines: LOG.iter().map(|l| (*l).to_owned()).collect(),
        },
        timed_out: None,
    };
    assert!(!outcome.succeeded());
    // Launched by a pipeline stage: the task's trigger tag names the job.
    let job = standins::sample_event("migration-runner", "codepipeline-job.json");
    let trigger = Trigger::Job(job["CodePipeline.job"]["id"].as_str().unwrap().to_owned()).tag();
    let cluster = task.cluster_arn.as_deref().map(cluster_name).unwrap();
    let failed = render_outcome(
        &outcome,
        Some(&trigger),
        &ClusterLocation {
            region: event["region"].as_str().unwrap(),
            cluster,
        },
    )
    .slack
    .to_payload();
    let svg = picture::draw("migration-runner", &[failed]);
    assert!(
        !svg.contains("s3cret"),
        "the password is redacted in the picture too"
    );
    picture::assert_current(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pictures"),
        &[("failed.svg", svg)],
        "cargo test -p migration-runner --test pictures",
    );
}
