//! The pictures on this function's page (`pictures/*.svg`) are its own messages as rendered
//! now: the webhook messages of a run starting, an action failing (with the
//! `FAILURE_MENTION`), an approval waiting, an ECS deployment rolled back, a pipeline green
//! again, and the live message of Web API mode.
//! `UPDATE_PICTURES=1` redraws them after a change.

mod common;
#[path = "common/deployment.rs"]
mod deployment;

use std::path::Path;

use pipeline_notifier::Config;
use pipeline_notifier::ecs_render::{EcsRenderOptions, render_ecs};
use pipeline_notifier::event::{State, parse};
use pipeline_notifier::live::state::{Execution, merge};
use pipeline_notifier::live::view::render_live;
use pipeline_notifier::lookup::{ExecutionInfo, revision};
use pipeline_notifier::recovery::{
    self, Cause, Change, Outcome, Outcomes, Place, Subject, render_recovery,
};
use pipeline_notifier::render::epoch;
use pipeline_notifier::render::{RenderOptions, render};
use serde_json::Value;
use standins::codepipeline::{Ending, execution_events};
use standins::picture;

const APP: &str = "pipeline-notifier";
const EXECUTION: &str = "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01";

fn check(pictures: &[(&str, String)], test: &str) {
    picture::assert_current(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pictures"),
        pictures,
        &format!("cargo test -p pipeline-notifier --test pictures {test}"),
    );
}

/// What GetPipelineExecution says of the sample execution (its source revision).
fn info() -> ExecutionInfo {
    let answer = common::sample("api/get-pipeline-execution.json");
    let revisions = answer["pipelineExecution"]["artifactRevisions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let s = |k: &str| r[k].as_str().map(str::to_owned);
            revision(
                s("name"),
                s("revisionId"),
                s("revisionSummary"),
                s("revisionUrl"),
            )
        })
        .collect();
    ExecutionInfo {
        status_summary: None,
        trigger_detail: None,
        revisions,
    }
}

/// The webhook message for a sample event, with a team mention configured for failures.
fn webhook_message(sample: &str) -> Value {
    message_with(sample, "off")
}

/// The same, with `SLACK_APPROVALS` as given (`on`: Approve and Reject buttons).
fn message_with(sample: &str, approvals: &str) -> Value {
    let config = Config::from_env(&[
        ("FAILURE_MENTION", "<!subteam^S0PLATFORM|@platform-oncall>"),
        ("SLACK_APPROVALS", approvals),
    ])
    .expect("a valid configuration");
    let options = RenderOptions {
        failure_mention: config.failure_mention.as_deref(),
        action_failures_posted: config.notify_on.posts_action_failures(),
        approvals: config.approvals,
    };
    let event = parse(&common::sample(sample)).expect("a pipeline event");
    render(&event, Some(&info()), &options).slack.to_payload()
}

/// The ECS guide's circuit-breaker failure, as ECS describes the deployment it rolled back.
fn ecs_rolled_back() -> Value {
    let event = pipeline_notifier::ecs_event::parse(&common::sample("ecs-deployment-failed.json"))
        .expect("an ECS event");
    let options = EcsRenderOptions {
        failure_mention: Some("<!subteam^S0PLATFORM|@platform-oncall>"),
    };
    render_ecs(&event, Some(&deployment::ecs_deployment(true)), &options)
        .slack
        .to_payload()
}

/// The sample pipeline green again: the scripted failing run, then a run that succeeded,
/// merged as the outcomes document merges them.
fn green_again() -> Value {
    let outcomes = [
        execution_events("3f2a0c1e-red", Ending::BuildFails),
        execution_events("7d41c2e9-green", Ending::Succeeded),
    ];
    let mut doc = Outcomes::default();
    for (run, events) in ["3f2a0c1e-red", "7d41c2e9-green"].iter().zip(&outcomes) {
        let last = parse(events.last().expect("events")).expect("a pipeline event");
        let at = last.time.as_deref().and_then(epoch).expect("a time");
        let mut changes = vec![Change::Ended(Outcome {
            run: (*run).into(),
            failed: last.state == State::Failed,
            at: at
                + if last.state == State::Failed {
                    0
                } else {
                    1_800
                },
        })];
        if last.state == State::Failed {
            changes.insert(
                0,
                Change::Cause(Cause {
                    run: (*run).into(),
                    what: "BuildImage in stage Build (CodeBuild): Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR".into(),
                }),
            );
        }
        for change in &changes {
            doc = recovery::merge(Some(&doc), change).unwrap_or(doc);
        }
    }
    let recovery = doc.due().expect("a recovery");
    let place = Place {
        region: "eu-west-1",
        account: Some("123456789012"),
    };
    render_recovery(Subject::Pipeline("prod-api"), &recovery, &place)
        .slack
        .to_payload()
}

#[test]
fn the_pictures_are_the_messages_as_rendered_now() {
    check(
        &[
            (
                "started.svg",
                picture::draw(APP, &[webhook_message("pipeline-started.json")]),
            ),
            (
                "failed.svg",
                picture::draw(APP, &[webhook_message("action-failed-codebuild.json")]),
            ),
            (
                "approval.svg",
                picture::draw(APP, &[webhook_message("approval-started.json")]),
            ),
            (
                "approval-buttons.svg",
                picture::draw(APP, &[message_with("approval-started.json", "on")]),
            ),
            (
                "ecs-rolled-back.svg",
                picture::draw(APP, &[ecs_rolled_back()]),
            ),
            ("green-again.svg", picture::draw(APP, &[green_again()])),
        ],
        "the_pictures_are_the_messages_as_rendered_now",
    );
}

fn fold(events: &[Value]) -> Execution {
    let mut state: Option<Execution> = None;
    for e in events {
        let e = parse(e).unwrap();
        if let Some(next) = merge(state.as_ref(), &e, false) {
            state = Some(next);
        }
    }
    state.unwrap()
}

/// The README's picture of the live message (Web API mode) is this rendering: a failed run,
/// then a green one.
#[test]
fn the_readme_picture_is_the_live_message_as_rendered_now() {
    let messages = [
        render_live(&fold(&execution_events(EXECUTION, Ending::BuildFails))).to_payload(),
        render_live(&fold(&execution_events(EXECUTION, Ending::Succeeded))).to_payload(),
    ];
    check(
        &[("live-message.svg", picture::draw(APP, &messages))],
        "the_readme_picture_is_the_live_message_as_rendered_now",
    );
}
