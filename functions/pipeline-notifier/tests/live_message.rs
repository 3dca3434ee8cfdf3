//! Web API mode through the real servers: the notifier as `app::build` wires it, execution
//! state in moto's DynamoDB, Slack's `chat.postMessage` / `chat.update` and threads in the
//! sink (which enforces the Web API's rules: see its module notes).

mod common;
#[path = "common/ecs_answers.rs"]
mod ecs_answers;

use std::time::{Duration, Instant};

use pipeline_notifier::EventReply;
use serde_json::Value;
use shared::{Deadline, Error};
use standins::codepipeline::{Ending, execution_events};
use standins::rig::{Rig, TABLE, quick_slack};
use standins::slack_sink::{
    ARCHIVED_CHANNEL, BOT_TOKEN, CHANNEL, CHANNEL_WITHOUT_BOT, OTHER_CHANNEL, SlackMessage,
};
use standins::{Reply, SlackSink};

const MENTION: &str = "<!subteam^S0PLATFORM>";

/// One container's notifier, as `main.rs` builds it, in Web API mode unless `extra` says
/// otherwise (an empty value takes a variable away).
fn container(rig: &Rig, extra: &[(&str, &str)]) -> pipeline_notifier::app::App {
    let mut base = rig.variables("default");
    base.extend([
        ("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()),
        ("SLACK_CHANNEL".into(), CHANNEL.into()),
        ("SLACK_API_URL".into(), rig.sink.api_url()),
        ("FAILURE_MENTION".into(), MENTION.into()),
    ]);
    pipeline_notifier::app::build(
        &standins::rig::env(base, extra),
        &rig.clients_with(quick_slack()),
    )
}

/// Delivers `event` as Lambda's async invoke does: a retryable error is retried (twice).
async fn deliver(h: &pipeline_notifier::app::App, event: &Value) -> Result<EventReply, Error> {
    let mut last = None;
    for _ in 0..3 {
        match h
            .handle(event, Deadline::after(Duration::from_secs(20)))
            .await
        {
            Err(e) if e.is_retryable() => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap())
}

/// A reproducible shuffle (no random-number crate): a linear congruential generator.
fn shuffled(mut events: Vec<Value>, seed: u64) -> Vec<Value> {
    let mut state = seed;
    for i in (1..events.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        events.swap(i, (state >> 33) as usize % (i + 1));
    }
    events
}

async fn run_all(h: pipeline_notifier::app::App, share: Vec<(usize, &Value)>) {
    for (_, e) in share {
        deliver(&h, e).await.unwrap();
    }
}

fn header(m: &SlackMessage) -> String {
    m.blocks[0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn only_top(sink: &SlackSink, channel: &str) -> SlackMessage {
    let tops = sink.top_messages(channel);
    assert_eq!(tops.len(), 1, "one message per execution: {tops:#?}");
    tops.into_iter().next().unwrap()
}

#[tokio::test]
async fn an_execution_in_order_is_one_message_updated_to_green() {
    let rig = Rig::start().await;
    let h = container(&rig, &[]);
    let events = execution_events("exec-in-order", Ending::Succeeded);
    for e in &events {
        deliver(&h, e).await.unwrap();
    }
    let top = only_top(&rig.sink, CHANNEL);
    assert_eq!(
        top.updates as usize,
        events.len() - 1,
        "posted by the first event, updated by each one after"
    );
    assert_eq!(header(&top), "✅ prod-api succeeded");
    // What the channel shows is the rendering of the merged state (the README's picture is
    // drawn from that rendering).
    let mut state = None;
    for e in &events {
        let e = pipeline_notifier::event::parse(e).unwrap();
        if let Some(next) = pipeline_notifier::live::state::merge(state.as_ref(), &e, false) {
            state = Some(next);
        }
    }
    let rendered = pipeline_notifier::live::view::render_live(&state.unwrap()).to_payload();
    assert_eq!(top.blocks, rendered["blocks"]);
    let text = top.blocks.to_string();
    for stage in ["Source", "Build", "Approve", "Deploy"] {
        assert!(text.contains(&format!("✅ *{stage}*")), "{stage}: {text}");
    }
    assert!(text.contains("took 54 s"), "{text}");
    let replies = rig.sink.replies(CHANNEL, &top.ts);
    assert_eq!(replies.len(), 1, "the approval that waited: {replies:#?}");
    assert!(
        replies[0].reply_broadcast,
        "an approver has to see it in the channel"
    );
    assert!(
        rig.sink.delivered().is_empty(),
        "nothing through the webhook in Web API mode"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_events_on_two_containers_at_once_end_in_the_same_one_message() {
    let in_order = Rig::start().await;
    let h = container(&in_order, &[]);
    for e in execution_events("exec-race", Ending::Succeeded) {
        deliver(&h, &e).await.unwrap();
    }
    let expected = only_top(&in_order.sink, CHANNEL);

    for seed in [7, 1234] {
        let rig = Rig::start().await;
        let (a, b) = (container(&rig, &[]), container(&rig, &[]));
        let events = shuffled(execution_events("exec-race", Ending::Succeeded), seed);
        let (left, right): (Vec<_>, Vec<_>) =
            events.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        tokio::join!(run_all(a, left), run_all(b, right));
        let top = only_top(&rig.sink, CHANNEL);
        assert_eq!(
            top.blocks, expected.blocks,
            "seed {seed}: the final message shows the final state"
        );
        assert_eq!(rig.sink.replies(CHANNEL, &top.ts).len(), 1, "seed {seed}");
    }
}

#[tokio::test]
async fn a_failure_turns_the_message_red_and_is_told_once_in_the_thread_and_channel() {
    let rig = Rig::start().await;
    let h = container(&rig, &[]);
    for e in execution_events("exec-fails", Ending::BuildFails) {
        deliver(&h, &e).await.unwrap();
    }
    let top = only_top(&rig.sink, CHANNEL);
    assert_eq!(header(&top), "❌ prod-api failed");
    assert!(
        top.blocks
            .to_string()
            .contains("BuildImage failed `JobFailed`"),
        "{}",
        top.blocks
    );
    assert!(
        !top.blocks.to_string().contains(MENTION),
        "an edit notifies nobody: the mention belongs in the reply"
    );
    let replies = rig.sink.replies(CHANNEL, &top.ts);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0].reply_broadcast,
        "the first failure shows in the channel"
    );
    let reply = replies[0].blocks.to_string();
    assert!(
        reply.contains("JobFailed") && reply.contains(MENTION) && reply.contains("Open build logs"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_waiting_approval_shows_on_top_and_in_the_thread() {
    let rig = Rig::start().await;
    let h = container(&rig, &[]);
    for e in execution_events("exec-approval", Ending::AwaitingApproval) {
        deliver(&h, &e).await.unwrap();
    }
    let top = only_top(&rig.sink, CHANNEL);
    assert_eq!(header(&top), "✋ prod-api is waiting for approval");
    assert!(top.blocks.to_string().contains("Review and approve"));
    let replies = rig.sink.replies(CHANNEL, &top.ts);
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0]
            .blocks
            .to_string()
            .contains("waiting for a reviewer")
    );
}

#[tokio::test]
async fn a_duplicate_event_makes_no_extra_update() {
    let rig = Rig::start().await;
    let (a, b) = (container(&rig, &[]), container(&rig, &[]));
    let events = execution_events("exec-dup", Ending::Succeeded);
    for e in &events[..4] {
        deliver(&a, e).await.unwrap();
    }
    let before = rig.sink.accepted("chat.update");
    // Redelivered to the same container and to another one.
    for h in [&a, &b] {
        let again = deliver(h, &events[3]).await.unwrap();
        assert!(matches!(again, EventReply::Skipped { .. }), "{again:?}");
    }
    assert_eq!(rig.sink.accepted("chat.update"), before);
    assert_eq!(rig.sink.accepted("chat.postMessage"), 1);
}

#[tokio::test]
async fn a_message_a_person_deleted_is_posted_again_and_then_updated() {
    let rig = Rig::start().await;
    let h = container(&rig, &[]);
    let events = execution_events("exec-deleted", Ending::Succeeded);
    for e in &events[..3] {
        deliver(&h, e).await.unwrap();
    }
    let first = only_top(&rig.sink, CHANNEL);
    rig.sink.delete(CHANNEL, &first.ts);
    for e in &events[3..] {
        deliver(&h, e).await.unwrap();
    }
    let second = only_top(&rig.sink, CHANNEL);
    assert_ne!(second.ts, first.ts);
    assert_eq!(header(&second), "✅ prod-api succeeded");
    assert!(second.updates > 0, "later events update the new message");
}

#[tokio::test]
async fn slack_refusals_are_permanent_and_say_what_to_do() {
    let rig = Rig::start().await;
    let started = |id: &str| execution_events(id, Ending::Succeeded).remove(0);
    // (execution, settings, Slack's word, the advice the error gives)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            "e1",
            &[("SLACK_CHANNEL", CHANNEL_WITHOUT_BOT)],
            "not_in_channel",
            "invite the bot",
        ),
        (
            "e2",
            &[("SLACK_CHANNEL", ARCHIVED_CHANNEL)],
            "is_archived",
            "archived",
        ),
        (
            "e3",
            &[("SLACK_CHANNEL", "C0NOSUCHCHAN")],
            "channel_not_found",
            "SLACK_CHANNEL",
        ),
        (
            "e4",
            &[("SLACK_BOT_TOKEN", "xoxb-wrong")],
            "invalid_auth",
            "reinstall",
        ),
    ];
    for (id, extra, word, advice) in cases {
        let e = deliver(&container(&rig, extra), &started(id))
            .await
            .unwrap_err();
        assert!(!e.is_retryable(), "{word}: {e}");
        let said = e.to_string();
        assert!(
            said.contains(word) && said.contains(advice),
            "{word}: {said}"
        );
        assert!(!said.contains(BOT_TOKEN));
    }

    let h = container(&rig, &[]);
    rig.sink.script([Reply::Api("msg_too_long")]);
    let e = deliver(&h, &started("e5")).await.unwrap_err();
    assert!(!e.is_retryable() && e.to_string().contains("msg_too_long"));

    rig.sink.revoke_token();
    let e = deliver(&h, &started("e6")).await.unwrap_err();
    assert!(!e.is_retryable() && e.to_string().contains("token_revoked"));
    assert!(rig.sink.top_messages(CHANNEL).is_empty());
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_waited_out_and_post_once() {
    let rig = Rig::start().await;
    let h = container(&rig, &[]);
    rig.sink.script([
        Reply::RateLimited {
            retry_after_secs: 1,
        },
        Reply::Status(503, "service_unavailable"),
    ]);
    let started = Instant::now();
    let outcome = deliver(&h, &execution_events("exec-429", Ending::Succeeded)[0]).await;
    assert!(
        matches!(outcome, Ok(EventReply::Notified { .. })),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After is honoured"
    );
    assert_eq!(rig.sink.top_messages(CHANNEL).len(), 1);
}

#[tokio::test]
async fn without_the_table_or_the_token_it_is_webhook_mode() {
    let rig = Rig::start().await;
    let event = execution_events("exec-webhook", Ending::Succeeded).remove(0);
    for extra in [[("IDEMPOTENCY_TABLE", "")], [("SLACK_BOT_TOKEN", "")]] {
        let h = container(&rig, &extra);
        deliver(&h, &event).await.unwrap();
    }
    assert_eq!(rig.sink.delivered().len(), 2, "each through the webhook");
    assert!(rig.sink.top_messages(CHANNEL).is_empty());
    assert_eq!(rig.sink.accepted("chat.postMessage"), 0);
}

#[tokio::test]
async fn a_route_sends_a_pipeline_to_its_own_channel() {
    let rig = Rig::start().await;
    let routes = format!(r#"[{{"pipeline":"prod-*","channel":"{OTHER_CHANNEL}"}}]"#);
    let h = container(&rig, &[("SLACK_ROUTES", &routes)]);
    deliver(&h, &execution_events("exec-routed", Ending::Succeeded)[0])
        .await
        .unwrap();
    assert_eq!(rig.sink.top_messages(OTHER_CHANNEL).len(), 1);
    assert!(rig.sink.top_messages(CHANNEL).is_empty());
}

#[tokio::test]
async fn events_notify_on_leaves_out_only_shape_the_message_once_it_exists() {
    let rig = Rig::start().await;
    let h = container(&rig, &[("NOTIFY_ON", "pipeline:FAILED,action:FAILED")]);
    let events = execution_events("exec-quiet", Ending::BuildFails);
    let (before, failure) = events.split_at(7);
    for e in before {
        let o = deliver(&h, e).await.unwrap();
        assert!(matches!(o, EventReply::Skipped { .. }), "{o:?}");
    }
    assert!(
        rig.sink.top_messages(CHANNEL).is_empty(),
        "nothing selected yet: nothing posted"
    );
    for e in failure {
        deliver(&h, e).await.unwrap();
    }
    let top = only_top(&rig.sink, CHANNEL);
    assert_eq!(header(&top), "❌ prod-api failed");
    assert!(
        top.blocks.to_string().contains("✅ *Source*"),
        "the quiet events are in it: {}",
        top.blocks
    );
    // The state is in the table under the function's own key prefix.
    let items = rig.moto.dynamodb_items(TABLE).await;
    assert!(
        items.iter().any(|i| i["id"]["S"]
            .as_str()
            .is_some_and(|id| id.starts_with("pipeline-notifier#live/prod-api/exec-quiet"))),
        "{items:#?}"
    );
}

#[tokio::test]
async fn slack_down_is_retried_by_lambda_without_publishing_to_sns_again() {
    let rig = Rig::start().await;
    let topic = rig.moto.create_topic("ops-alerts").await;
    let h = container(&rig, &[("SNS_TOPIC_ARN", &topic)]);
    let failure = execution_events("exec-sns", Ending::BuildFails);
    for e in &failure[..7] {
        deliver(&h, e).await.unwrap();
    }
    // The failure's update and reply meet a Slack that is down for this invocation.
    rig.sink.script(std::iter::repeat_n(
        Reply::Status(503, "service_unavailable"),
        8,
    ));
    let first = h
        .handle(&failure[7], Deadline::after(Duration::from_secs(20)))
        .await;
    assert!(
        first.as_ref().is_err_and(Error::is_retryable),
        "SNS has it, Slack does not: Lambda must retry: {first:?}"
    );
    let published = rig.stub.accepted("Publish").len();
    let retried = h
        .handle(&failure[7], Deadline::after(Duration::from_secs(20)))
        .await;
    assert!(
        matches!(retried, Ok(EventReply::Notified { .. })),
        "{retried:?}"
    );
    assert_eq!(
        rig.stub.accepted("Publish").len(),
        published,
        "the retry does not publish again"
    );
    let top = only_top(&rig.sink, CHANNEL);
    let replies = rig.sink.replies(CHANNEL, &top.ts);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(replies[0].reply_broadcast);
}

#[tokio::test]
async fn a_failure_reply_is_posted_even_when_the_edit_is_refused() {
    let rig = Rig::start().await;
    let h = container(&rig, &[]);
    let failure = execution_events("exec-edit-refused", Ending::BuildFails);
    for e in &failure[..7] {
        deliver(&h, e).await.unwrap();
    }
    rig.sink.script([Reply::Api("cant_update_message")]);
    let refused = deliver(&h, &failure[7]).await;
    assert!(
        refused.as_ref().is_err_and(|e| !e.is_retryable()),
        "{refused:?}"
    );
    let top = only_top(&rig.sink, CHANNEL);
    let replies = rig.sink.replies(CHANNEL, &top.ts);
    assert_eq!(
        replies.len(),
        1,
        "the failure still reaches the thread and channel"
    );
    assert!(replies[0].reply_broadcast);
}

/// The ECS guide's deployment events of a release the circuit breaker rolled back, with each
/// its own id and time (the guide's examples share one).
fn ecs_rollback_events() -> Vec<Value> {
    let event = |sample: &str, id: &str, deployment: &str, time: &str| {
        let mut e = common::sample(sample);
        e["id"] = serde_json::json!(id);
        e["time"] = serde_json::json!(time);
        e["detail"]["deploymentId"] = serde_json::json!(deployment);
        e
    };
    vec![
        event(
            "ecs-deployment-in-progress.json",
            "ecs-1",
            "ecs-svc/1",
            "2026-11-20T12:29:02Z",
        ),
        event(
            "ecs-deployment-failed.json",
            "ecs-2",
            "ecs-svc/1",
            "2026-11-20T12:31:14Z",
        ),
        event(
            "ecs-deployment-rollback.json",
            "ecs-3",
            "ecs-svc/2",
            "2026-11-20T12:31:20Z",
        ),
        event(
            "ecs-deployment-completed.json",
            "ecs-4",
            "ecs-svc/2",
            "2026-11-20T12:34:51Z",
        ),
    ]
}

/// Web API mode for ECS: a release and the rollback that undoes it are two ECS deployments and
/// one story. Shuffled, on two containers at once, they end in one message for the service
/// that says it was rolled back, with the failure told once in its thread (with the mention,
/// shown in the channel); a duplicate edits nothing, and a later release gets a message of
/// its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_release_and_its_rollback_shuffled_on_two_containers_are_one_message() {
    for seed in [3, 99] {
        let rig = Rig::start().await;
        ecs_answers::describe_the_rolled_back_deployment(&rig.stub);
        let (a, b) = (container(&rig, &[]), container(&rig, &[]));
        let events = shuffled(ecs_rollback_events(), seed);
        let (left, right): (Vec<_>, Vec<_>) =
            events.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        tokio::join!(run_all(a, left), run_all(b, right));
        let top = only_top(&rig.sink, CHANNEL);
        assert_eq!(
            header(&top),
            "↩️ servicetest: deployment failed, rolled back to servicetest:41",
            "seed {seed}"
        );
        let shown = top.blocks.to_string();
        assert!(
            shown.contains("`ecs-svc/1` failed") && shown.contains("`ecs-svc/2` completed"),
            "seed {seed}: {shown}"
        );
        let replies = rig.sink.replies(CHANNEL, &top.ts);
        assert_eq!(replies.len(), 1, "seed {seed}: {replies:#?}");
        assert!(replies[0].reply_broadcast && replies[0].blocks.to_string().contains(MENTION));

        let h = container(&rig, &[]);
        let updates = only_top(&rig.sink, CHANNEL).updates;
        deliver(&h, &events[0]).await.unwrap();
        assert_eq!(
            only_top(&rig.sink, CHANNEL).updates,
            updates,
            "a duplicate edits nothing"
        );
        let mut next = common::sample("ecs-deployment-in-progress.json");
        next["id"] = serde_json::json!("ecs-5");
        next["time"] = serde_json::json!("2026-11-20T13:02:00Z");
        next["detail"]["deploymentId"] = serde_json::json!("ecs-svc/3");
        // ECS does not describe the new one yet.
        rig.stub.fixture(
            "ListServiceDeployments",
            serde_json::json!({}),
            serde_json::json!({"serviceDeployments": []}),
        );
        deliver(&h, &next).await.unwrap();
        let headers: Vec<String> = rig.sink.top_messages(CHANNEL).iter().map(header).collect();
        assert_eq!(headers.len(), 2, "a later release, a message of its own");
        assert!(
            headers.contains(&"🚀 servicetest: deploying".to_owned()),
            "{headers:?}"
        );
    }
}
