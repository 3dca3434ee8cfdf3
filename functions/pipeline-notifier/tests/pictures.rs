//! The pictures on this function's page (`pictures/*.svg`) are its own messages as rendered
//! now: the webhook messages of a run starting, an action failing (with the
//! `FAILURE_MENTION`) and an approval waiting, and the live message of Web API mode.
//! `UPDATE_PICTURES=1` redraws them after a change.

mod common;

use std::path::Path;

use pipeline_notifier::Config;
use pipeline_notifier::event::parse;
use pipeline_notifier::live::state::{Execution, merge};
use pipeline_notifier::live::view::render_live;
use pipeline_notifier::lookup::{ExecutionInfo, revision};
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
    let config = Config::from_env(&[("FAILURE_MENTION", "<!subteam^S0PLATFORM|@platform-oncall>")])
        .expect("a valid configuration");
    let options = RenderOptions {
        failure_mention: config.failure_mention.as_deref(),
        action_failures_posted: config.notify_on.posts_action_failures(),
    };
    let event = parse(&common::sample(sample)).expect("a pipeline event");
    render(&event, Some(&info()), &options).slack.to_payload()
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
