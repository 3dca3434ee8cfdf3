//! A scripted CodePipeline execution's EventBridge events, for the notifier's tests and the
//! demo: what CodePipeline emits for one run of a four-stage pipeline, in order.

use serde_json::Value;

/// How a scripted execution ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    /// The build action fails, so its stage and the pipeline do.
    BuildFails,
    /// A manual approval is still waiting.
    AwaitingApproval,
}

/// Every EventBridge event of one execution of `prod-api` (Source, Build, Approve, Deploy),
/// in the order CodePipeline emits them, each with its own id and a time a few seconds
/// after the one before.
pub fn execution_events(execution_id: &str, ending: Ending) -> Vec<Value> {
    let mut events = Vec::new();
    let mut second = 0u32;
    let mut push = |level: &str,
                    state: &str,
                    stage: Option<&str>,
                    action: Option<(&str, &str, &str)>| {
        second += 3;
        let detail_type = match level {
            "pipeline" => "CodePipeline Pipeline Execution State Change",
            "stage" => "CodePipeline Stage Execution State Change",
            _ => "CodePipeline Action Execution State Change",
        };
        let mut detail = serde_json::json!({
            "pipeline": "prod-api", "execution-id": execution_id, "state": state,
            "region": "eu-west-1", "version": 16.0,
            "start-time": "2026-11-20T10:00:00.000Z"
        });
        if let Some(s) = stage {
            detail["stage"] = serde_json::json!(s);
        }
        if let Some((name, category, provider)) = action {
            detail["action"] = serde_json::json!(name);
            detail["type"] = serde_json::json!({"owner": "AWS", "category": category, "provider": provider, "version": "1"});
            if state == "FAILED" {
                detail["execution-result"] = serde_json::json!({
                    "external-execution-url": "https://console.aws.amazon.com/codebuild/home?region=eu-west-1#/builds/prod-api-build:1/view/new",
                    "external-execution-summary": "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR",
                    "error-code": "JobFailed"
                });
            }
        }
        let id = format!(
            "{execution_id}-{level}-{}-{}-{state}",
            stage.unwrap_or("-"),
            action.map(|a| a.0).unwrap_or("-")
        );
        events.push(serde_json::json!({
            "version": "0", "id": id, "detail-type": detail_type, "source": "aws.codepipeline",
            "account": "123456789012", "region": "eu-west-1",
            "time": format!("2026-11-20T10:{:02}:{:02}Z", second / 60, second % 60),
            "resources": ["arn:aws:codepipeline:eu-west-1:123456789012:prod-api"],
            "detail": detail
        }));
    };
    let source = Some(("Source", "Source", "CodeStarSourceConnection"));
    let build = Some(("BuildImage", "Build", "CodeBuild"));
    let approve = Some(("ProdApproval", "Approval", "Manual"));
    let deploy = Some(("Deploy", "Deploy", "CodeDeployToECS"));
    push("pipeline", "STARTED", None, None);
    push("stage", "STARTED", Some("Source"), None);
    push("action", "STARTED", Some("Source"), source);
    push("action", "SUCCEEDED", Some("Source"), source);
    push("stage", "SUCCEEDED", Some("Source"), None);
    push("stage", "STARTED", Some("Build"), None);
    push("action", "STARTED", Some("Build"), build);
    if ending == Ending::BuildFails {
        push("action", "FAILED", Some("Build"), build);
        push("stage", "FAILED", Some("Build"), None);
        push("pipeline", "FAILED", None, None);
        return events;
    }
    push("action", "SUCCEEDED", Some("Build"), build);
    push("stage", "SUCCEEDED", Some("Build"), None);
    push("stage", "STARTED", Some("Approve"), None);
    push("action", "STARTED", Some("Approve"), approve);
    if ending == Ending::AwaitingApproval {
        return events;
    }
    push("action", "SUCCEEDED", Some("Approve"), approve);
    push("stage", "SUCCEEDED", Some("Approve"), None);
    push("stage", "STARTED", Some("Deploy"), None);
    push("action", "STARTED", Some("Deploy"), deploy);
    push("action", "SUCCEEDED", Some("Deploy"), deploy);
    push("stage", "SUCCEEDED", Some("Deploy"), None);
    push("pipeline", "SUCCEEDED", None, None);
    events
}
