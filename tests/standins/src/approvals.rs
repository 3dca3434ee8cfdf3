//! CodePipeline's manual approvals as the CodePipeline API reference describes them, played
//! by the recording stub (moto has no CodePipeline): `GetPipelineState` shows a waiting
//! approval's `token` in its action's `latestExecution`; `PutApprovalResult` must bring that
//! token and the pipeline, stage and action it belongs to, and is answered once:
//! - a token that is not the approval's current one (its execution was superseded by a newer
//!   one, or the approval expired after its 7 days): `InvalidApprovalTokenException`;
//! - an answer to an approval already approved or rejected: `ApprovalAlreadyCompletedException`;
//! - a status other than `Approved` / `Rejected`, or a summary over 512 characters
//!   (`ApprovalResult`): `ValidationException`;
//! - an unknown pipeline, stage or action: `PipelineNotFoundException`,
//!   `StageNotFoundException`, `ActionNotFoundException`.

use std::collections::HashMap;

use serde_json::{Value, json};

/// `ApprovalResult.summary`'s limit.
const LONGEST_SUMMARY: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Waiting,
    Approved {
        summary: String,
    },
    Rejected {
        summary: String,
    },
    /// Expired (7 days without an answer), or its execution superseded.
    Ended,
}

#[derive(Debug, Clone)]
struct Approval {
    stage: String,
    action: String,
    execution_id: String,
    token: String,
    status: Status,
    changed_at: i64,
}

/// The approvals of each pipeline, newest last.
#[derive(Debug, Default)]
pub struct Approvals {
    by_pipeline: HashMap<String, Vec<Approval>>,
    issued: u64,
}

/// A refusal in CodePipeline's words.
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

impl Approvals {
    /// `execution_id` reaches the manual approval `stage`/`action` of `pipeline` and waits;
    /// an approval of the same action that was still waiting ends (its token goes stale).
    /// Returns the token `GetPipelineState` now shows.
    pub fn wait(
        &mut self,
        pipeline: &str,
        stage: &str,
        action: &str,
        execution_id: &str,
        now: i64,
    ) -> String {
        self.issued += 1;
        let token = format!(
            "{:08x}-approval-{:04}",
            self.issued.wrapping_mul(2_654_435_761),
            self.issued
        );
        let approvals = self.by_pipeline.entry(pipeline.to_owned()).or_default();
        for a in approvals
            .iter_mut()
            .filter(|a| a.stage == stage && a.action == action && a.status == Status::Waiting)
        {
            a.status = Status::Ended;
            a.changed_at = now;
        }
        approvals.push(Approval {
            stage: stage.to_owned(),
            action: action.to_owned(),
            execution_id: execution_id.to_owned(),
            token: token.clone(),
            status: Status::Waiting,
            changed_at: now,
        });
        token
    }

    /// The approval waiting at `stage`/`action` expires.
    pub fn expire(&mut self, pipeline: &str, stage: &str, action: &str, now: i64) {
        for a in self.by_pipeline.get_mut(pipeline).into_iter().flatten() {
            if a.stage == stage && a.action == action && a.status == Status::Waiting {
                a.status = Status::Ended;
                a.changed_at = now;
            }
        }
    }

    /// What each approval of `pipeline` came to, oldest first: (execution id, status).
    pub fn outcomes(&self, pipeline: &str) -> Vec<(String, Status)> {
        self.by_pipeline
            .get(pipeline)
            .into_iter()
            .flatten()
            .map(|a| (a.execution_id.clone(), a.status.clone()))
            .collect()
    }

    pub fn knows(&self, pipeline: &str) -> bool {
        self.by_pipeline.contains_key(pipeline)
    }

    /// `GetPipelineState`'s answer: each approval action's newest execution.
    pub fn state(&self, pipeline: &str) -> Option<Value> {
        let approvals = self.by_pipeline.get(pipeline)?;
        let mut stages: Vec<Value> = Vec::new();
        for a in approvals.iter().rev() {
            if stages.iter().any(|s| s["stageName"] == a.stage.as_str()) {
                continue;
            }
            let (status, summary) = match &a.status {
                Status::Waiting => ("InProgress", None),
                Status::Approved { summary } => ("Succeeded", Some(summary.clone())),
                Status::Rejected { summary } => ("Failed", Some(summary.clone())),
                Status::Ended => ("Failed", None),
            };
            let mut latest = json!({"status": status, "lastStatusChange": a.changed_at});
            if a.status == Status::Waiting {
                latest["token"] = json!(a.token);
            }
            if let Some(s) = summary {
                latest["summary"] = json!(s);
            }
            stages.push(json!({
                "stageName": a.stage,
                "inboundTransitionState": {"enabled": true},
                "actionStates": [{"actionName": a.action, "latestExecution": latest}],
                "latestExecution": {"pipelineExecutionId": a.execution_id, "status": if a.status == Status::Waiting { "InProgress" } else { status }}
            }));
        }
        Some(json!({"pipelineName": pipeline, "pipelineVersion": 1, "stageStates": stages}))
    }

    /// `PutApprovalResult`, under CodePipeline's rules.
    pub fn put_result(&mut self, request: &Value, now: i64) -> Result<Value, Refusal> {
        let field = |name: &str| {
            request
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (pipeline, stage, action, token) = (
            field("pipelineName"),
            field("stageName"),
            field("actionName"),
            field("token"),
        );
        let status = request["result"]["status"].as_str().unwrap_or_default();
        let summary = request["result"]["summary"].as_str().unwrap_or_default();
        if !matches!(status, "Approved" | "Rejected") {
            return Err(refuse(
                "ValidationException",
                "result.status must be Approved or Rejected",
            ));
        }
        if summary.chars().count() > LONGEST_SUMMARY {
            return Err(refuse(
                "ValidationException",
                "result.summary is longer than 512 characters",
            ));
        }
        let approvals = self.by_pipeline.get_mut(pipeline).ok_or_else(|| {
            refuse(
                "PipelineNotFoundException",
                format!("pipeline {pipeline} not found"),
            )
        })?;
        if !approvals.iter().any(|a| a.stage == stage) {
            return Err(refuse(
                "StageNotFoundException",
                format!("stage {stage} not found"),
            ));
        }
        if !approvals
            .iter()
            .any(|a| a.stage == stage && a.action == action)
        {
            return Err(refuse(
                "ActionNotFoundException",
                format!("action {action} not found"),
            ));
        }
        let Some(approval) = approvals
            .iter_mut()
            .find(|a| a.stage == stage && a.action == action && a.token == token)
        else {
            return Err(refuse(
                "InvalidApprovalTokenException",
                "The token for the approval request is not valid",
            ));
        };
        match approval.status {
            Status::Waiting => {}
            Status::Approved { .. } | Status::Rejected { .. } => {
                return Err(refuse(
                    "ApprovalAlreadyCompletedException",
                    "The approval request has already been completed",
                ));
            }
            Status::Ended => {
                return Err(refuse(
                    "InvalidApprovalTokenException",
                    "The token for the approval request is not valid",
                ));
            }
        }
        approval.status = if status == "Approved" {
            Status::Approved {
                summary: summary.to_owned(),
            }
        } else {
            Status::Rejected {
                summary: summary.to_owned(),
            }
        };
        approval.changed_at = now;
        Ok(json!({"approvedAt": now}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(token: &str, status: &str) -> Value {
        json!({"pipelineName": "prod-api", "stageName": "Approve", "actionName": "ProdApproval",
               "result": {"status": status, "summary": "Approved by U012AB3CD"}, "token": token})
    }

    #[test]
    fn an_approval_is_answered_once_and_only_with_its_current_token() {
        let mut approvals = Approvals::default();
        let first = approvals.wait("prod-api", "Approve", "ProdApproval", "exec-1", 100);
        let state = approvals.state("prod-api").unwrap();
        assert_eq!(
            state["stageStates"][0]["actionStates"][0]["latestExecution"]["token"],
            first.as_str()
        );
        // A newer execution reaches the approval: the first token is stale.
        let second = approvals.wait("prod-api", "Approve", "ProdApproval", "exec-2", 200);
        let stale = approvals
            .put_result(&answer(&first, "Approved"), 300)
            .err()
            .unwrap();
        assert_eq!(stale.code, "InvalidApprovalTokenException");
        assert!(
            approvals
                .put_result(&answer(&second, "Approved"), 300)
                .is_ok()
        );
        let again = approvals
            .put_result(&answer(&second, "Rejected"), 301)
            .err()
            .unwrap();
        assert_eq!(again.code, "ApprovalAlreadyCompletedException");
        let state = approvals.state("prod-api").unwrap();
        assert_eq!(
            state["stageStates"][0]["actionStates"][0]["latestExecution"]["status"],
            "Succeeded"
        );
        assert!(
            state["stageStates"][0]["actionStates"][0]["latestExecution"]
                .get("token")
                .is_none()
        );
    }

    #[test]
    fn an_expired_approval_and_a_wrong_answer_are_refused() {
        let mut approvals = Approvals::default();
        let token = approvals.wait("prod-api", "Approve", "ProdApproval", "exec-1", 100);
        assert_eq!(
            approvals
                .put_result(&answer(&token, "Maybe"), 200)
                .err()
                .unwrap()
                .code,
            "ValidationException"
        );
        approvals.expire("prod-api", "Approve", "ProdApproval", 200);
        assert_eq!(
            approvals
                .put_result(&answer(&token, "Approved"), 300)
                .err()
                .unwrap()
                .code,
            "InvalidApprovalTokenException"
        );
        let mut elsewhere = answer(&token, "Approved");
        elsewhere["actionName"] = json!("Other");
        assert_eq!(
            approvals.put_result(&elsewhere, 300).err().unwrap().code,
            "ActionNotFoundException"
        );
    }
}
