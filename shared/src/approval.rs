//! What a "waiting for approval" message's buttons carry to `pipeline-approvals`: the contract
//! between the notifier, which draws the buttons, and the approvals function, which acts on a
//! click. Only what finds the approval (pipeline, stage, action, execution), nothing secret:
//! everyone in the channel can read a message's payload, and anyone can send the function a
//! payload; what it may do with one is decided by the signature and the approvers, never by
//! what the button says.

use serde::{Deserialize, Serialize};

/// The `action_id`s of the two buttons.
pub const APPROVE: &str = "pipeline-approvals.approve";
pub const REJECT: &str = "pipeline-approvals.reject";
/// The actions block's `block_id`.
pub const BLOCK_ID: &str = "pipeline-approvals";

/// A manual approval action of one pipeline execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRef {
    pub pipeline: String,
    pub stage: String,
    pub action: String,
    pub execution: String,
}

/// CodePipeline's names: 1-100 characters of `A-Za-z0-9.@-_` (API reference,
/// `PipelineDeclaration.name`, `StageDeclaration.name`, `ActionDeclaration.name`).
fn is_name(text: &str) -> bool {
    (1..=100).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'))
}

/// An execution id: a UUID (`PipelineExecution.pipelineExecutionId`).
fn is_execution_id(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

impl ApprovalRef {
    /// The button's `value`.
    pub fn to_value(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A button's `value`, if it names an approval in CodePipeline's own formats.
    pub fn from_value(value: &str) -> Option<Self> {
        if value.len() > 1000 {
            return None;
        }
        let r: Self = serde_json::from_str(value).ok()?;
        (is_name(&r.pipeline)
            && is_name(&r.stage)
            && is_name(&r.action)
            && is_execution_id(&r.execution))
        .then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_value_round_trips_and_anything_else_is_refused() {
        let r = ApprovalRef {
            pipeline: "prod-api".into(),
            stage: "Approve".into(),
            action: "ProdApproval".into(),
            execution: "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01".into(),
        };
        assert_eq!(ApprovalRef::from_value(&r.to_value()), Some(r.clone()));
        for bad in [
            r#"{"pipeline":"prod api","stage":"A","action":"B","execution":"3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01"}"#,
            r#"{"pipeline":"p","stage":"A","action":"B","execution":"../../etc"}"#,
            r#"{"pipeline":"p","stage":"A","action":"B","execution":"3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01","token":"x"}"#,
            "not json",
        ] {
            assert_eq!(ApprovalRef::from_value(bad), None, "{bad}");
        }
    }
}
