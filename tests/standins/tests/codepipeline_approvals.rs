//! The recording stub's manual approvals through the CodePipeline SDK, as the approvals
//! function will call them: the token `GetPipelineState` shows is the one `PutApprovalResult`
//! takes, and CodePipeline's refusals arrive as the SDK's own error types (the CodePipeline
//! API reference, `PutApprovalResult` errors).

use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};
use standins::RecordingStub;

async fn client(stub: &RecordingStub) -> aws_sdk_codepipeline::Client {
    let sdk = standins::moto::sdk_config_for(&stub.endpoint()).await;
    aws_sdk_codepipeline::Client::new(&sdk)
}

fn result(status: ApprovalStatus) -> ApprovalResult {
    ApprovalResult::builder()
        .status(status)
        .summary("Approved in Slack by <@U012AB3CD>")
        .build()
        .expect("both fields set")
}

#[tokio::test]
async fn the_token_get_pipeline_state_shows_approves_once_and_a_stale_one_is_refused() {
    let stub = RecordingStub::start().await;
    let stale = stub.approval_waits("prod-api", "Approve", "ProdApproval", "exec-1");
    let token = stub.approval_waits("prod-api", "Approve", "ProdApproval", "exec-2");
    let pipelines = client(&stub).await;

    let state = pipelines
        .get_pipeline_state()
        .name("prod-api")
        .send()
        .await
        .unwrap();
    let stage = &state.stage_states()[0];
    assert_eq!(
        stage.latest_execution().unwrap().pipeline_execution_id(),
        "exec-2"
    );
    let shown = stage.action_states()[0].latest_execution().unwrap().token();
    assert_eq!(shown, Some(token.as_str()));

    let put = |token: &str, status: ApprovalStatus| {
        pipelines
            .put_approval_result()
            .pipeline_name("prod-api")
            .stage_name("Approve")
            .action_name("ProdApproval")
            .token(token)
            .result(result(status))
            .send()
    };
    let refused = put(&stale, ApprovalStatus::Approved).await.unwrap_err();
    assert!(
        refused
            .as_service_error()
            .unwrap()
            .is_invalid_approval_token_exception()
    );
    put(&token, ApprovalStatus::Approved).await.unwrap();
    let twice = put(&token, ApprovalStatus::Rejected).await.unwrap_err();
    assert!(
        twice
            .as_service_error()
            .unwrap()
            .is_approval_already_completed_exception()
    );
    assert_eq!(
        stub.approval_outcomes("prod-api")[1].1,
        standins::approvals::Status::Approved {
            summary: "Approved in Slack by <@U012AB3CD>".into()
        }
    );
}
