//! CodePipeline EventBridge state-change events, parsed leniently and validated strictly.
//!
//! `aws_lambda_events`' `CodePipelineCloudWatchEvent` does not fit: it requires
//! `detail.version` to be an integer while CodePipeline sends `16.0`, requires `time`, and
//! has no `execution-result` or `execution-trigger`. So the envelope is read here, with
//! every field optional, and then checked for what a message needs.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Pipeline,
    Stage,
    Action,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::Stage => "stage",
            Self::Action => "action",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Started,
    Succeeded,
    Resumed,
    Failed,
    Canceled,
    Stopped,
    Stopping,
    Superseded,
    Abandoned,
}

pub const ALL_STATES: [State; 9] = [
    State::Started,
    State::Succeeded,
    State::Resumed,
    State::Failed,
    State::Canceled,
    State::Stopped,
    State::Stopping,
    State::Superseded,
    State::Abandoned,
];

impl State {
    pub fn parse(text: &str) -> Option<Self> {
        ALL_STATES.into_iter().find(|s| s.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::Succeeded => "SUCCEEDED",
            Self::Resumed => "RESUMED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Stopped => "STOPPED",
            Self::Stopping => "STOPPING",
            Self::Superseded => "SUPERSEDED",
            Self::Abandoned => "ABANDONED",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ActionType {
    pub owner: Option<String>,
    pub category: Option<String>,
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ExecutionResult {
    #[serde(rename = "external-execution-summary")]
    pub summary: Option<String>,
    #[serde(rename = "external-execution-url")]
    pub url: Option<String>,
    #[serde(rename = "external-execution-id")]
    pub external_id: Option<String>,
    #[serde(rename = "error-code")]
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Trigger {
    #[serde(rename = "trigger-type")]
    pub kind: Option<String>,
    #[serde(rename = "trigger-detail")]
    pub detail: Option<String>,
}

/// A notifiable event, everything a message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineEvent {
    pub id: String,
    pub level: Level,
    pub state: State,
    pub pipeline: String,
    pub execution_id: String,
    pub stage: Option<String>,
    pub action: Option<String>,
    pub region: String,
    pub account: Option<String>,
    pub time: Option<String>,
    pub start_time: Option<String>,
    pub action_type: Option<ActionType>,
    pub result: Option<ExecutionResult>,
    pub trigger: Option<Trigger>,
}

impl PipelineEvent {
    pub fn is_approval(&self) -> bool {
        self.level == Level::Action
            && self
                .action_type
                .as_ref()
                .and_then(|t| t.category.as_deref())
                == Some("Approval")
    }
}

/// An EventBridge event's envelope, every field optional: each source's parser checks what
/// it needs.
#[derive(Deserialize)]
pub(crate) struct Envelope {
    pub(crate) id: Option<String>,
    #[serde(rename = "detail-type")]
    pub(crate) detail_type: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) time: Option<String>,
    /// Whatever it holds: only ECS's events are read by it.
    pub(crate) resources: Option<Value>,
    pub(crate) detail: Option<Value>,
}

#[derive(Deserialize)]
struct Detail {
    pipeline: Option<String>,
    #[serde(rename = "execution-id")]
    execution_id: Option<String>,
    stage: Option<String>,
    action: Option<String>,
    state: Option<String>,
    region: Option<String>,
    #[serde(rename = "type")]
    action_type: Option<ActionType>,
    #[serde(rename = "execution-result")]
    result: Option<ExecutionResult>,
    #[serde(rename = "execution-trigger")]
    trigger: Option<Trigger>,
    #[serde(rename = "start-time")]
    start_time: Option<String>,
}

pub use shared::error::NotForUs;

/// A field that is present and not blank, trimmed.
pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub fn parse(event: &Value) -> Result<PipelineEvent, NotForUs> {
    let envelope: Envelope = serde_json::from_value(event.clone())
        .map_err(|e| NotForUs(format!("not an EventBridge event ({})", serde_kind(&e))))?;
    if envelope.source.as_deref() != Some("aws.codepipeline") {
        return Err(NotForUs(format!(
            "source is {}, not aws.codepipeline",
            envelope
                .source
                .as_deref()
                .map(|s| format!("{:?}", truncate(s)))
                .unwrap_or_else(|| "missing".into())
        )));
    }
    let level = match envelope.detail_type.as_deref() {
        Some("CodePipeline Pipeline Execution State Change") => Level::Pipeline,
        Some("CodePipeline Stage Execution State Change") => Level::Stage,
        Some("CodePipeline Action Execution State Change") => Level::Action,
        other => {
            return Err(NotForUs(format!(
                "unknown detail-type {}",
                other
                    .map(|s| format!("{:?}", truncate(s)))
                    .unwrap_or_else(|| "(missing)".into())
            )));
        }
    };
    let detail: Detail = serde_json::from_value(envelope.detail.unwrap_or(Value::Null))
        .map_err(|e| NotForUs(format!("malformed detail ({})", serde_kind(&e))))?;
    let state_text =
        non_empty(detail.state).ok_or_else(|| NotForUs("detail.state is missing".into()))?;
    let state = State::parse(&state_text)
        .ok_or_else(|| NotForUs(format!("unknown state {:?}", truncate(&state_text))))?;
    let pipeline =
        non_empty(detail.pipeline).ok_or_else(|| NotForUs("detail.pipeline is missing".into()))?;
    let execution_id = non_empty(detail.execution_id)
        .ok_or_else(|| NotForUs("detail.execution-id is missing".into()))?;
    let stage = non_empty(detail.stage);
    let action = non_empty(detail.action);
    if level != Level::Pipeline && stage.is_none() {
        return Err(NotForUs(format!(
            "{} event without detail.stage",
            level.name()
        )));
    }
    if level == Level::Action && action.is_none() {
        return Err(NotForUs("action event without detail.action".into()));
    }
    let region = non_empty(detail.region)
        .or_else(|| non_empty(envelope.region))
        .ok_or_else(|| NotForUs("no region in the event".into()))?;
    Ok(PipelineEvent {
        id: non_empty(envelope.id)
            .unwrap_or_else(|| format!("{pipeline}/{execution_id}/{state_text}")),
        level,
        state,
        pipeline,
        execution_id,
        stage,
        action,
        region,
        account: non_empty(envelope.account),
        time: non_empty(envelope.time),
        start_time: non_empty(detail.start_time),
        action_type: detail.action_type,
        result: detail.result,
        trigger: detail.trigger,
    })
}

fn serde_kind(e: &serde_json::Error) -> String {
    // serde's message may quote a value from the event; keep only its position and kind.
    let kind = match e.classify() {
        serde_json::error::Category::Data => "a field has the wrong type",
        _ => "unreadable JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action_failed() -> Value {
        json!({
            "id": "e-1", "detail-type": "CodePipeline Action Execution State Change", "source": "aws.codepipeline",
            "account": "123456789012", "time": "2026-11-20T10:00:00Z", "region": "eu-west-1",
            "detail": {
                "pipeline": "prod-api", "execution-id": "0f5a", "stage": "Build", "action": "Build",
                "state": "FAILED", "region": "eu-west-1", "version": 16.0,
                "type": {"owner": "AWS", "category": "Build", "provider": "CodeBuild", "version": "1"},
                "execution-result": {"external-execution-summary": "Build terminated with state: FAILED", "error-code": "JobFailed"}
            }
        })
    }

    #[test]
    fn float_version_and_execution_result_parse() {
        let e = parse(&action_failed()).unwrap();
        assert_eq!(e.level, Level::Action);
        assert_eq!(e.state, State::Failed);
        assert_eq!(e.result.unwrap().error_code.as_deref(), Some("JobFailed"));
    }

    #[test]
    fn other_sources_are_not_for_us() {
        let mut v = action_failed();
        v["source"] = json!("aws.ecr");
        assert_eq!(
            parse(&v).unwrap_err().0,
            "source is \"aws.ecr\", not aws.codepipeline"
        );
    }

    #[test]
    fn unknown_detail_types_and_states_are_not_for_us() {
        let mut v = action_failed();
        v["detail-type"] = json!("CodePipeline Rule Execution State Change");
        assert!(parse(&v).unwrap_err().0.contains("unknown detail-type"));
        let mut v = action_failed();
        v["detail"]["state"] = json!("EXPLODED");
        assert_eq!(parse(&v).unwrap_err().0, "unknown state \"EXPLODED\"");
    }

    #[test]
    fn wrong_types_are_reported_without_quoting_values() {
        let mut v = action_failed();
        v["detail"]["pipeline"] = json!({"secret": "hunter2"});
        let why = parse(&v).unwrap_err().0;
        assert!(why.starts_with("malformed detail"), "{why}");
        assert!(!why.contains("hunter2"));
        assert!(parse(&json!([1, 2])).is_err());
        assert!(parse(&json!(null)).is_err());
    }

    #[test]
    fn action_events_need_stage_and_action() {
        let mut v = action_failed();
        v["detail"].as_object_mut().unwrap().remove("action");
        assert_eq!(
            parse(&v).unwrap_err().0,
            "action event without detail.action"
        );
    }

    #[test]
    fn approvals_are_recognised_by_category() {
        let mut v = action_failed();
        v["detail"]["type"]["category"] = json!("Approval");
        assert!(parse(&v).unwrap().is_approval());
    }
}
