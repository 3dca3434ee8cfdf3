//! Snapshot of the message a person gets for every sample event, and the escaping and
//! limits applied to hostile or huge text from events and the API.

mod common;
#[path = "common/deployment.rs"]
mod deployment;

use pipeline_notifier::ecs_event::EcsState;
use pipeline_notifier::ecs_lookup::DeploymentInfo;
use pipeline_notifier::ecs_render::{EcsRenderOptions, render_ecs};
use pipeline_notifier::event::parse;
use pipeline_notifier::lookup::{ExecutionInfo, revision};
use pipeline_notifier::recovery::{Place, Recovery, Subject, render_recovery};
use pipeline_notifier::render::{RenderOptions, render};
use serde_json::{Value, json};
use shared::text::slack_len;

fn info() -> ExecutionInfo {
    ExecutionInfo {
        status_summary: Some("Stage Build failed: action BuildImage (CodeBuild) returned JobFailed".into()),
        trigger_detail: None,
        revisions: vec![revision(
            Some("SourceArtifact".into()),
            Some("8e0c6fb80e09020556d271d4cf0bacdab3614fbd".into()),
            Some(r#"{"ProviderType":"GitHub","CommitMessage":"Retry ECR pushes on 5xx\n\nCloses #412","AuthorName":"Ada Lovelace"}"#.into()),
            Some("https://github.com/example/prod-api/commit/8e0c6fb80e09020556d271d4cf0bacdab3614fbd".into()),
        )],
    }
}

const OPTIONS: RenderOptions = RenderOptions {
    failure_mention: Some("<!subteam^S0PLATFORM>"),
    action_failures_posted: true,
    approvals: false,
};

const ECS_OPTIONS: EcsRenderOptions = EcsRenderOptions {
    failure_mention: Some("<!subteam^S0PLATFORM>"),
};

/// The sample ECS events' deployment as ECS describes it: rolled back, except while it is
/// still rolling out.
fn ecs_info(state: EcsState) -> Option<DeploymentInfo> {
    match state {
        EcsState::InProgress => Some(deployment::ecs_deployment(false)),
        EcsState::Failed | EcsState::RollingBack | EcsState::Completed => {
            Some(deployment::ecs_deployment(true))
        }
        _ => None,
    }
}

#[test]
fn a_recovery_says_what_broke_for_how_long_and_what_fixed_it() {
    let recovery = Recovery {
        fixed_by: "7d41c2e9-0b6a-4f1e-8d2c-5a9b3e7f1c20".into(),
        fixed_at: 1_795_171_287,
        first_failed: "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01".into(),
        broken_since: 1_795_169_643,
        failed_runs: 2,
        cause: Some(
            "BuildImage in stage Build (CodeBuild): Build terminated with state: FAILED".into(),
        ),
    };
    let place = Place {
        region: "eu-west-1",
        account: Some("123456789012"),
    };
    let n = render_recovery(Subject::Pipeline("prod-api"), &recovery, &place);
    assert_eq!(n.attributes.severity, shared::notifier::Tone::Recovery);
    insta::assert_json_snapshot!(
        "recovery",
        json!({"slack": n.slack.to_payload(), "sns": {"subject": n.subject, "message": n.body()}})
    );
}

#[test]
fn every_sample_event_renders_the_expected_message() {
    for name in standins::sample_names("pipeline-notifier") {
        let event = common::sample(&name);
        if pipeline_notifier::ecs_event::is_ecs(&event) {
            let snapshot = match pipeline_notifier::ecs_event::parse(&event) {
                Ok(e) => {
                    let info = ecs_info(e.state);
                    let n = render_ecs(&e, info.as_ref(), &ECS_OPTIONS);
                    json!({"slack": n.slack.to_payload(), "sns": {"subject": n.subject, "message": n.body()}})
                }
                Err(why) => json!({"ignored": why.0}),
            };
            insta::assert_json_snapshot!(name.trim_end_matches(".json"), snapshot);
            continue;
        }
        let snapshot = match parse(&event) {
            Ok(e) => {
                let n = render(&e, Some(&info()), &OPTIONS);
                json!({"slack": n.slack.to_payload(), "sns": {"subject": n.subject, "message": n.body()}})
            }
            Err(why) => json!({"ignored": why.0}),
        };
        insta::assert_json_snapshot!(name.trim_end_matches(".json"), snapshot);
    }
}

fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        Value::Object(o) => o.values().for_each(|x| texts(x, out)),
        _ => {}
    }
}

fn all_text(v: &Value) -> String {
    let mut out = Vec::new();
    texts(v, &mut out);
    out.join("\n")
}

#[test]
fn hostile_summary_and_commit_message_can_neither_ping_nor_disguise_links() {
    let mut event = common::sample("action-failed-codebuild.json");
    event["detail"]["execution-result"]["external-execution-summary"] =
        json!("<!channel> build broke, see <https://evil.example|the logs> &amp; `rm -rf /`");
    let mut hostile = info();
    hostile.revisions[0] = revision(
        None,
        Some("abc".into()),
        Some("<!here> <https://evil.example|fix> &amp; ``` done".into()),
        None,
    );
    let n = render(&parse(&event).unwrap(), Some(&hostile), &OPTIONS);
    let text = all_text(&n.slack.to_payload());
    assert!(
        !text.contains("<!channel>") && !text.contains("<!here>"),
        "{text}"
    );
    assert!(!text.contains("<https://evil"), "{text}");
    assert!(
        text.contains("&lt;!channel&gt;") && text.contains("&amp;amp;"),
        "{text}"
    );
    // The operator's mention is the only live one.
    assert!(text.contains("<!subteam^S0PLATFORM>"));
}

#[test]
fn hundred_kilobyte_summary_and_multibyte_text_are_cut_within_slack_limits() {
    let mut event = common::sample("action-failed-codebuild.json");
    let huge = "ünïcødé ✓ 😀 ".repeat(10_000);
    event["detail"]["execution-result"]["external-execution-summary"] = json!(huge.clone());
    event["detail"]["action"] = json!(huge.clone());
    let n = render(&parse(&event).unwrap(), Some(&info()), &OPTIONS);
    let payload = n.slack.to_payload();
    for block in payload["blocks"].as_array().unwrap() {
        if let Some(t) = block["text"]["text"].as_str() {
            let limit = if block["type"] == "header" { 150 } else { 3000 };
            assert!(
                slack_len(t) <= limit,
                "{} block of {} units",
                block["type"],
                slack_len(t)
            );
        }
    }
    assert!(slack_len(payload["text"].as_str().unwrap()) <= 40_000);
    assert!(all_text(&payload).contains(shared::text::TRUNCATION_MARKER));
    assert!(shared::sns::sns_subject(&n.subject).len() <= shared::sns::MAX_SUBJECT);
}

#[test]
fn failure_mention_goes_only_on_real_failures() {
    let mention = "<!subteam^S0PLATFORM>";
    let has_mention = |file: &str, opts: &RenderOptions| {
        let n = render(&parse(&common::sample(file)).unwrap(), None, opts);
        all_text(&n.slack.to_payload()).contains(mention)
    };
    assert!(has_mention("action-failed-codebuild.json", &OPTIONS));
    assert!(!has_mention("approval-rejected.json", &OPTIONS));
    assert!(!has_mention("pipeline-succeeded.json", &OPTIONS));
    // Pipeline failure: short and silent when the action failure was posted, full otherwise.
    assert!(!has_mention("pipeline-failed.json", &OPTIONS));
    let without_actions = RenderOptions {
        failure_mention: Some(mention),
        action_failures_posted: false,
        approvals: false,
    };
    assert!(has_mention("pipeline-failed.json", &without_actions));
}
