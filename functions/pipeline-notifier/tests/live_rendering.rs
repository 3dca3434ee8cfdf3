//! Snapshots of the live message in each state an execution can be in, rendered from the
//! state its events merge into, and the escaping of hostile names in it.

use pipeline_notifier::event::parse;
use pipeline_notifier::live::state::{Execution, merge};
use pipeline_notifier::live::view::render_live;
use serde_json::{Value, json};
use standins::codepipeline::{Ending, execution_events};

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

/// The events of a run up to (and including) the first whose id ends with `last`.
fn until(ending: Ending, last: &str) -> Vec<Value> {
    let events = execution_events("3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01", ending);
    let end = events
        .iter()
        .position(|e| e["id"].as_str().unwrap().ends_with(last))
        .unwrap();
    events[..=end].to_vec()
}

fn with_pipeline_event(mut events: Vec<Value>, state: &str) -> Vec<Value> {
    let mut last = events[0].clone();
    last["id"] = json!(format!("pipeline-{state}"));
    last["time"] = json!("2026-11-20T10:30:00Z");
    last["detail"]["state"] = json!(state);
    events.push(last);
    events
}

#[test]
fn the_live_message_in_each_state() {
    let states = [
        ("started", until(Ending::Succeeded, "pipeline-----STARTED")),
        (
            "building",
            until(Ending::Succeeded, "Build-BuildImage-STARTED"),
        ),
        (
            "waiting-for-approval",
            execution_events(
                "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01",
                Ending::AwaitingApproval,
            ),
        ),
        (
            "succeeded",
            execution_events("3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01", Ending::Succeeded),
        ),
        (
            "failed",
            execution_events("3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01", Ending::BuildFails),
        ),
        (
            "stopping",
            with_pipeline_event(
                until(Ending::Succeeded, "Build-BuildImage-STARTED"),
                "STOPPING",
            ),
        ),
        (
            "stopped",
            with_pipeline_event(
                until(Ending::Succeeded, "Build-BuildImage-STARTED"),
                "STOPPED",
            ),
        ),
        (
            "superseded",
            with_pipeline_event(
                until(Ending::Succeeded, "Approve-ProdApproval-STARTED"),
                "SUPERSEDED",
            ),
        ),
    ];
    for (name, events) in states {
        let message = render_live(&fold(&events));
        insta::assert_json_snapshot!(format!("live-{name}"), message.to_payload());
    }
}

#[test]
fn hostile_names_in_events_arrive_escaped() {
    let mut events = execution_events("exec", Ending::BuildFails);
    for e in &mut events {
        if e["detail"]["stage"] == json!("Build") {
            e["detail"]["stage"] = json!("<!channel> Build");
        }
        if e["detail"]["action"] == json!("BuildImage") {
            e["detail"]["action"] = json!("<https://evil.example|click>");
        }
    }
    let text = render_live(&fold(&events)).to_payload().to_string();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
    assert!(text.contains("&lt;!channel&gt; Build"), "{text}");
}
