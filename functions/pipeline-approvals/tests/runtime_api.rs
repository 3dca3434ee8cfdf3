//! End to end: the approvals binary run as Lambda runs it, through the Runtime API, handed
//! Function URL events (payload format 2.0) signed as Slack signs them (an independent signer
//! in the stand-ins), with CodePipeline's approval rules played by the recording stub and Slack
//! (response_url, user groups) by the sink. `PIPELINE_APPROVALS_BIN` points it at another build
//! (the release bootstrap).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use shared::approval::{self, ApprovalRef};
use standins::approvals::Status;
use standins::rig::{Rig, TABLE, now_secs};
use standins::slack_signer::{Delivery, block_actions, form_body, function_url_event};
use standins::slack_sink::{BOT_TOKEN, CHANNEL};
use standins::{FunctionProcess, Outcome, RuntimeApi};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const APPROVER: &str = "U012AB3CD";
const GROUP: &str = "S0614TZR7";
const GROUP_MEMBER: &str = "U0GROUPM01";
const STRANGER: &str = "U0STRANGE1";

fn binary() -> PathBuf {
    standins::runtime_api::binary_under_test(
        "PIPELINE_APPROVALS_BIN",
        env!("CARGO_BIN_EXE_pipeline-approvals"),
    )
}

/// The Approve or Reject button's value on the notifier's own "waiting for approval" message
/// for the sample event, with `SLACK_APPROVALS=on`: what Slack hands back on a click.
fn button_value(approve: bool) -> String {
    let event = pipeline_notifier::event::parse(&standins::sample_event(
        "pipeline-notifier",
        "approval-started.json",
    ))
    .expect("the sample approval");
    let options = pipeline_notifier::render::RenderOptions {
        failure_mention: None,
        action_failures_posted: true,
        approvals: true,
    };
    let payload = pipeline_notifier::render::render(&event, None, &options)
        .slack
        .to_payload();
    let id = if approve {
        approval::APPROVE
    } else {
        approval::REJECT
    };
    payload["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["block_id"] == approval::BLOCK_ID)
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["action_id"] == id)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
        .expect("the notifier's message carries the button")
}

struct Endpoint {
    rig: Rig,
    api: RuntimeApi,
    function: FunctionProcess,
}

impl Endpoint {
    async fn start() -> Self {
        let rig = Rig::start().await;
        rig.sink.user_group(GROUP, &[GROUP_MEMBER]);
        let mut env = standins::moto::aws_env(&rig.stub.endpoint());
        rig.moto
            .aws_json(
                "ssm",
                "AmazonSSM.PutParameter",
                &json!({"Name": "/ops/slack/signing-secret", "Value": SECRET, "Type": "SecureString"}),
            )
            .await;
        env.extend([
            (
                "SLACK_SIGNING_SECRET".into(),
                "ssm:/ops/slack/signing-secret".into(),
            ),
            // As an operator writes it: the order matters (the first glob that matches decides),
            // and json! would sort the keys.
            (
                "APPROVERS".into(),
                format!(r#"{{"prod-*": ["{APPROVER}", "{GROUP}"], "*": ["{STRANGER}"]}}"#),
            ),
            ("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()),
            ("SLACK_API_URL".into(), rig.sink.api_url()),
            ("IDEMPOTENCY_TABLE".into(), TABLE.into()),
        ]);
        let api = RuntimeApi::start().await;
        let function = FunctionProcess::spawn(&binary(), &api, &env);
        Self { rig, api, function }
    }

    /// A click as Slack delivers it; `(status, the response_url's name)`.
    async fn click(
        &mut self,
        user: &str,
        approve: bool,
        value: &str,
        delivery: Delivery<'_>,
        name: &str,
    ) -> u16 {
        let id = if approve {
            approval::APPROVE
        } else {
            approval::REJECT
        };
        let payload = block_actions(
            user,
            id,
            value,
            &self.rig.sink.response_url(name),
            CHANNEL,
            "1795000000.000100",
        );
        self.send(&function_url_event(&form_body(&payload), delivery))
            .await
    }

    async fn send(&mut self, event: &Value) -> u16 {
        self.send_for(event).await.0
    }

    /// The HTTP status and what the request came to (the `x-approvals-outcome` header).
    async fn send_for(&mut self, event: &Value) -> (u16, String) {
        let answer = self
            .api
            .invoke(&mut self.function, event, Duration::from_secs(20))
            .await;
        match answer.outcome {
            Outcome::Response(v) => (
                v["statusCode"].as_u64().unwrap_or_default() as u16,
                v["headers"]["x-approvals-outcome"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            other => panic!("an HTTP response, always: {other:?}"),
        }
    }

    fn approvals_answered(&self) -> Vec<Value> {
        self.rig
            .stub
            .calls()
            .into_iter()
            .filter(|c| c.operation == "PutApprovalResult" && c.status == 200)
            .map(|c| c.body)
            .collect()
    }

    /// What was posted to the response_url `name`.
    fn responses(&self, name: &str) -> Vec<Value> {
        self.rig
            .sink
            .requests()
            .into_iter()
            .filter(|r| r.path.contains(&format!("/{name}/")))
            .map(|r| r.body)
            .collect()
    }
}

fn signed(at: i64) -> Delivery<'static> {
    Delivery {
        secret: Some(SECRET),
        at,
        base64: false,
    }
}

/// The done-when: the notifier's button, clicked by an approver and signed by Slack, makes
/// exactly one PutApprovalResult with the token GetPipelineState gave, and the message says who
/// approved; a forged signature, a stale timestamp, no signature, a non-approver and a replay
/// change nothing in CodePipeline.
#[tokio::test]
async fn an_approvers_signed_click_approves_once_and_nothing_else_reaches_codepipeline() {
    let mut e = Endpoint::start().await;
    let value = button_value(true);
    let a = ApprovalRef::from_value(&value).expect("the button names the approval");
    let token = e
        .rig
        .stub
        .approval_waits(&a.pipeline, &a.stage, &a.action, &a.execution);
    let now = now_secs();

    let forged = Delivery {
        secret: Some("not the signing secret"),
        ..signed(now)
    };
    assert_eq!(e.click(APPROVER, true, &value, forged, "forged").await, 401);
    let stale = signed(now - 6 * 60);
    assert_eq!(
        e.click(APPROVER, true, &value, stale, "stale").await,
        401,
        "a replay after 5 minutes"
    );
    let unsigned = Delivery {
        secret: None,
        ..signed(now)
    };
    assert_eq!(
        e.click(APPROVER, true, &value, unsigned, "unsigned").await,
        401
    );
    assert_eq!(
        e.click(STRANGER, true, &value, signed(now), "stranger")
            .await,
        200
    );
    assert!(
        e.approvals_answered().is_empty(),
        "nothing reached CodePipeline"
    );
    let told = e.responses("stranger");
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0]["response_type"], "ephemeral",
        "only the clicker sees it"
    );
    assert!(e.responses("forged").is_empty() && e.responses("stale").is_empty());

    // The approver's click, its body base64 as a Function URL may hand it, then a replay of it.
    let payload = block_actions(
        APPROVER,
        approval::APPROVE,
        &value,
        &e.rig.sink.response_url("approved"),
        CHANNEL,
        "1795000000.000100",
    );
    let click = function_url_event(
        &form_body(&payload),
        Delivery {
            base64: true,
            ..signed(now)
        },
    );
    assert_eq!(e.send_for(&click).await, (200, "approved".to_owned()));
    assert_eq!(
        e.send_for(&click).await,
        (200, "already-answered".to_owned()),
        "a replay is acknowledged and does nothing"
    );
    assert_eq!(
        e.click(APPROVER, true, &value, signed(now), "double").await,
        200,
        "a double click"
    );

    let answered = e.approvals_answered();
    assert_eq!(answered.len(), 1, "one answer: {answered:?}");
    assert_eq!(
        answered[0]["token"],
        token.as_str(),
        "the token GetPipelineState gave"
    );
    assert_eq!(answered[0]["result"]["status"], "Approved");
    assert!(
        answered[0]["result"]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains(APPROVER)
    );
    let updated = e.responses("approved");
    assert_eq!(updated[0]["replace_original"], true, "{updated:?}");
    let shown = updated[0].to_string();
    assert!(
        shown.contains(&format!("Approved by <@{APPROVER}>")),
        "{shown}"
    );
    assert!(!shown.contains(approval::APPROVE), "the buttons are gone");
    assert_eq!(
        e.rig.stub.approval_outcomes(&a.pipeline)[0].1,
        Status::Approved {
            summary: answered[0]["result"]["summary"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    );
    let logs = e.function.stop().await;
    assert!(
        !logs.iter().any(|l| l.contains(SECRET)),
        "the signing secret never reaches a log"
    );
}

/// A member of a user group APPROVERS names rejects (the group's members read with the bot
/// token); a click on an approval a newer execution superseded changes nothing and says so.
#[tokio::test]
async fn a_group_member_rejects_and_a_superseded_approval_is_left_alone() {
    let mut e = Endpoint::start().await;
    let value = button_value(false);
    let a = ApprovalRef::from_value(&value).expect("the button names the approval");
    e.rig
        .stub
        .approval_waits(&a.pipeline, &a.stage, &a.action, &a.execution);
    // The approval's message in the channel, as the notifier posts it in Web API mode.
    let posted: Value = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", e.rig.sink.api_url()))
        .bearer_auth(BOT_TOKEN)
        .json(&json!({"channel": CHANNEL, "text": "prod-api: waiting for approval"}))
        .send()
        .await
        .expect("the sink answers")
        .json()
        .await
        .expect("JSON");
    let ts = posted["ts"].as_str().unwrap_or_default().to_owned();
    let now = now_secs();
    let payload = block_actions(
        GROUP_MEMBER,
        approval::REJECT,
        &value,
        &e.rig.sink.response_url("group"),
        CHANNEL,
        &ts,
    );
    assert_eq!(
        e.send_for(&function_url_event(&form_body(&payload), signed(now)))
            .await,
        (200, "rejected".to_owned())
    );
    let answered = e.approvals_answered();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["result"]["status"], "Rejected");
    assert!(e.responses("group")[0].to_string().contains("Rejected by"));
    // In the thread too: the notifier's next edit of its live message would take the
    // replacement away.
    let replies = e.rig.sink.replies(CHANNEL, &ts);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].blocks.to_string().contains("Rejected by"));

    // The same action, reached again by a newer execution: the old message's click is stale.
    let newer = ApprovalRef {
        execution: "9c3d2a10-0000-4000-8000-000000000002".into(),
        ..a.clone()
    };
    e.rig.stub.approval_waits(
        &newer.pipeline,
        &newer.stage,
        &newer.action,
        &newer.execution,
    );
    let old = ApprovalRef {
        execution: "5e1f0a2b-0000-4000-8000-000000000001".into(),
        ..a.clone()
    };
    assert_eq!(
        e.click(APPROVER, true, &old.to_value(), signed(now), "superseded")
            .await,
        200
    );
    assert_eq!(
        e.approvals_answered().len(),
        1,
        "nothing more reached CodePipeline"
    );
    let told = e.responses("superseded");
    assert!(told[0].to_string().contains("no longer waits"), "{told:?}");
    e.function.stop().await;
}

/// Requests that are not Slack's clicks end cleanly: not a POST, not a Function URL event,
/// an oversized body, a signed interaction of another kind.
#[tokio::test]
async fn what_is_not_an_approval_click_is_answered_and_changes_nothing() {
    let mut e = Endpoint::start().await;
    let now = now_secs();
    let mut get = function_url_event("", signed(now));
    get["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(e.send(&get).await, 405);
    assert_eq!(e.send(&json!({"Records": []})).await, 400);
    let huge = "payload=".to_owned() + &"a".repeat(2 * 1024 * 1024);
    assert_eq!(e.send(&function_url_event(&huge, signed(now))).await, 400);
    // The sample the page runs with sam local invoke: a click signed with another secret.
    let sample = standins::sample_event("pipeline-approvals", "forged-click.json");
    assert_eq!(e.send_for(&sample).await, (401, "refused".to_owned()));
    let shortcut = json!({"type": "shortcut", "user": {"id": APPROVER}});
    assert_eq!(
        e.send(&function_url_event(&form_body(&shortcut), signed(now)))
            .await,
        200
    );
    assert!(e.approvals_answered().is_empty());
    e.function.stop().await;
}

/// Bodies no function can use (empty, `null`, wrong types, 1 MB, nested past any parser's
/// limit, not UTF-8): each ends in an HTTP answer or a clean invocation error, never a crash
/// or a hang, and the process lives on.
#[tokio::test]
async fn bad_payloads_end_cleanly_and_the_process_lives_on() {
    let mut e = Endpoint::start().await;
    standins::runtime_api::assert_bad_payloads_end_cleanly(&e.api, &mut e.function, &[]).await;
    assert!(e.approvals_answered().is_empty());
    e.function.stop().await;
}

/// CodePipeline failing to take the answer (PutApprovalResult HTTP 500 past the SDK's
/// retries): nothing is recorded, the claim on the token is given back and the clicker is told
/// to click again; the next click approves, once.
#[tokio::test]
async fn when_codepipeline_fails_nothing_is_recorded_and_the_next_click_approves() {
    let mut e = Endpoint::start().await;
    let value = button_value(true);
    let a = ApprovalRef::from_value(&value).expect("the button names the approval");
    e.rig
        .stub
        .approval_waits(&a.pipeline, &a.stage, &a.action, &a.execution);
    e.rig.stub.server_error("PutApprovalResult", 10);
    let now = now_secs();
    assert_eq!(
        e.click(APPROVER, true, &value, signed(now), "down").await,
        200
    );
    assert!(e.approvals_answered().is_empty());
    assert!(
        e.responses("down")[0].to_string().contains("Click again"),
        "{:?}",
        e.responses("down")
    );
    e.rig.stub.server_error("PutApprovalResult", 0);
    let payload = block_actions(
        APPROVER,
        approval::APPROVE,
        &value,
        &e.rig.sink.response_url("again"),
        CHANNEL,
        "1795000000.000100",
    );
    let again = e
        .send_for(&function_url_event(&form_body(&payload), signed(now)))
        .await;
    assert_eq!(
        again,
        (200, "approved".to_owned()),
        "{:?}",
        e.responses("again")
    );
    assert_eq!(
        e.approvals_answered().len(),
        1,
        "approved by the next click"
    );
    e.function.stop().await;
}

/// Planted at DEBUG (every crate's debug output on): the function's AWS secret key and session
/// token, the signing secret (kept in SSM), the bot token and each click's response_url. Through
/// an approval, a forged click and a non-approver's, none of them reaches a log line, an
/// answer, a Slack post or a request to AWS.
#[tokio::test]
async fn at_debug_no_planted_secret_reaches_a_log_an_answer_a_post_or_a_request() {
    let rig = Rig::start().await;
    rig.sink.user_group(GROUP, &[GROUP_MEMBER]);
    rig.moto
        .aws_json(
            "ssm",
            "AmazonSSM.PutParameter",
            &json!({"Name": "/ops/slack/signing-secret", "Value": SECRET, "Type": "SecureString"}),
        )
        .await;
    let mut env = standins::planted::debug_env(&rig.stub.endpoint());
    env.extend([
        (
            "SLACK_SIGNING_SECRET".into(),
            "ssm:/ops/slack/signing-secret".into(),
        ),
        (
            "APPROVERS".into(),
            format!(r#"{{"prod-*": ["{APPROVER}", "{GROUP}"]}}"#),
        ),
        ("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()),
        ("SLACK_API_URL".into(), rig.sink.api_url()),
        ("IDEMPOTENCY_TABLE".into(), TABLE.into()),
    ]);
    let api = RuntimeApi::start().await;
    let function = FunctionProcess::spawn(&binary(), &api, &env);
    let mut e = Endpoint { rig, api, function };
    let value = button_value(true);
    let a = ApprovalRef::from_value(&value).expect("the button names the approval");
    e.rig
        .stub
        .approval_waits(&a.pipeline, &a.stage, &a.action, &a.execution);
    let now = now_secs();
    let mut answers = Vec::new();
    for (user, delivery, name) in [
        (STRANGER, signed(now), "stranger"),
        (
            APPROVER,
            Delivery {
                secret: Some("forged"),
                ..signed(now)
            },
            "forged",
        ),
        (GROUP_MEMBER, signed(now), "approver"),
    ] {
        answers.push(format!(
            "{:?}",
            e.click(user, true, &value, delivery, name).await
        ));
    }
    assert_eq!(e.approvals_answered().len(), 1, "the scenario approved");
    let logs = e.function.stop().await;
    let mut secrets = standins::planted::always();
    secrets.push(SECRET);
    standins::planted::assert_none_leaked(&secrets, &logs, &answers, &e.rig.sink, &e.rig.stub);
}

/// Two approvers click at nearly the same moment, on two containers, while CodePipeline is
/// slow to answer the first: one PutApprovalResult, and the second clicker is told it was
/// answered (or is being answered).
#[tokio::test]
async fn two_clicks_at_once_on_two_containers_answer_once() {
    let mut e = Endpoint::start().await;
    let value = button_value(true);
    let a = ApprovalRef::from_value(&value).expect("the button names the approval");
    e.rig
        .stub
        .approval_waits(&a.pipeline, &a.stage, &a.action, &a.execution);
    // The first answer lands at once but is answered late: the claim is held meanwhile.
    e.rig
        .stub
        .delay_answers("PutApprovalResult", Duration::from_millis(1_200), 1);
    let mut env = standins::moto::aws_env(&e.rig.stub.endpoint());
    env.extend([
        (
            "SLACK_SIGNING_SECRET".into(),
            "ssm:/ops/slack/signing-secret".into(),
        ),
        (
            "APPROVERS".into(),
            format!(r#"{{"prod-*": ["{APPROVER}", "{GROUP}"]}}"#),
        ),
        ("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()),
        ("SLACK_API_URL".into(), e.rig.sink.api_url()),
        ("IDEMPOTENCY_TABLE".into(), TABLE.into()),
    ]);
    let other_api = RuntimeApi::start().await;
    let mut other = FunctionProcess::spawn(&binary(), &other_api, &env);
    let now = now_secs();
    let click = |user: &str, name: &str| {
        let payload = block_actions(
            user,
            approval::APPROVE,
            &value,
            &e.rig.sink.response_url(name),
            CHANNEL,
            "1795000000.000100",
        );
        function_url_event(&form_body(&payload), signed(now))
    };
    let (first, second) = (click(APPROVER, "first"), click(GROUP_MEMBER, "second"));
    let outcome = |v: &standins::runtime_api::Invocation| match &v.outcome {
        Outcome::Response(r) => r["headers"]["x-approvals-outcome"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        other => format!("{other:?}"),
    };
    let (a_answer, b_answer) = tokio::join!(
        e.api
            .invoke(&mut e.function, &first, Duration::from_secs(20)),
        async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            other_api
                .invoke(&mut other, &second, Duration::from_secs(20))
                .await
        }
    );
    assert_eq!(outcome(&a_answer), "approved", "{a_answer:?}");
    // The answer lands in CodePipeline at once (only its reply is late), so the second click
    // finds it answered, or, had it looked a moment sooner, the token claimed.
    assert!(
        ["already-answered", "duplicate"].contains(&outcome(&b_answer).as_str()),
        "{b_answer:?}"
    );
    assert_eq!(e.approvals_answered().len(), 1, "one answer");
    other.stop().await;
    e.function.stop().await;
}
