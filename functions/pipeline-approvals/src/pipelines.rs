//! CodePipeline, as the approvals function uses it: the approval's current token from
//! `GetPipelineState`, and `PutApprovalResult` with it. Each of CodePipeline's answers is told
//! apart, because each means something different to the person who clicked.

use std::future::Future;

use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{ActionExecutionStatus, ApprovalResult, ApprovalStatus};
use shared::approval::ApprovalRef;
use shared::{Deadline, Error};

/// Where the approval stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Waiting for an answer, with the token an answer must bring.
    Waiting { token: String },
    /// Approved (`Succeeded`) or rejected or expired (`Failed`), with CodePipeline's summary
    /// (who answered, when it was answered in Slack).
    Answered {
        approved: bool,
        summary: Option<String>,
    },
    /// The stage runs another execution now: the one the message was about was superseded.
    Superseded,
    /// The pipeline, stage or action does not exist (renamed, deleted).
    Gone,
    /// The function's role may not read it: the pipeline is not in `ApprovalPipelines`.
    Denied,
}

/// What `PutApprovalResult` came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recorded,
    /// `InvalidApprovalTokenException`: superseded or expired since it was looked up.
    Stale,
    /// `ApprovalAlreadyCompletedException`: someone answered first.
    AlreadyAnswered,
    /// The function's role may not approve this pipeline (`ApprovalPipelines`).
    Denied,
}

pub trait Pipelines {
    fn standing(
        &self,
        approval: &ApprovalRef,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Standing, Error>> + Send;

    fn answer(
        &self,
        approval: &ApprovalRef,
        token: &str,
        approve: bool,
        summary: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send;
}

pub struct CodePipeline {
    client: aws_sdk_codepipeline::Client,
}

impl CodePipeline {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_codepipeline::Client::new(sdk),
        }
    }
}

/// `ApprovalResult.summary` is at most 512 characters.
const LONGEST_SUMMARY: usize = 512;

impl Pipelines for CodePipeline {
    async fn standing(&self, a: &ApprovalRef, deadline: &Deadline) -> Result<Standing, Error> {
        let call = self.client.get_pipeline_state().name(&a.pipeline).send();
        let state = match deadline.run(call).await {
            Err(_) => return Err(Error::OutOfTime("GetPipelineState")),
            Ok(Ok(state)) => state,
            Ok(Err(e)) if e.code() == Some("PipelineNotFoundException") => {
                return Ok(Standing::Gone);
            }
            Ok(Err(e)) if e.code() == Some("AccessDeniedException") => {
                return Ok(Standing::Denied);
            }
            Ok(Err(e)) => return Err(Error::from_sdk("CodePipeline", "GetPipelineState", e)),
        };
        let Some(stage) = state
            .stage_states()
            .iter()
            .find(|s| s.stage_name() == Some(a.stage.as_str()))
        else {
            return Ok(Standing::Gone);
        };
        let running = stage.latest_execution().map(|x| x.pipeline_execution_id());
        if running != Some(a.execution.as_str()) {
            return Ok(Standing::Superseded);
        }
        let Some(action) = stage
            .action_states()
            .iter()
            .find(|x| x.action_name() == Some(a.action.as_str()))
        else {
            return Ok(Standing::Gone);
        };
        let Some(latest) = action.latest_execution() else {
            return Ok(Standing::Superseded);
        };
        Ok(match (latest.status(), latest.token()) {
            (Some(ActionExecutionStatus::InProgress), Some(token)) => Standing::Waiting {
                token: token.to_owned(),
            },
            (Some(ActionExecutionStatus::Succeeded), _) => Standing::Answered {
                approved: true,
                summary: latest.summary().map(str::to_owned),
            },
            (Some(ActionExecutionStatus::Failed | ActionExecutionStatus::Abandoned), _) => {
                Standing::Answered {
                    approved: false,
                    summary: latest.summary().map(str::to_owned),
                }
            }
            _ => Standing::Superseded,
        })
    }

    async fn answer(
        &self,
        a: &ApprovalRef,
        token: &str,
        approve: bool,
        summary: &str,
        deadline: &Deadline,
    ) -> Result<Outcome, Error> {
        let status = if approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        let result = ApprovalResult::builder()
            .status(status)
            .summary(summary.chars().take(LONGEST_SUMMARY).collect::<String>())
            .build()
            .map_err(|e| Error::bad_input(format!("an approval result: {e}")))?;
        let call = self
            .client
            .put_approval_result()
            .pipeline_name(&a.pipeline)
            .stage_name(&a.stage)
            .action_name(&a.action)
            .token(token)
            .result(result)
            .send();
        match deadline.run(call).await {
            Err(_) => Err(Error::OutOfTime("PutApprovalResult")),
            Ok(Ok(_)) => Ok(Outcome::Recorded),
            Ok(Err(e)) => match e.code() {
                Some("InvalidApprovalTokenException") => Ok(Outcome::Stale),
                Some("ApprovalAlreadyCompletedException") => Ok(Outcome::AlreadyAnswered),
                Some("AccessDeniedException") => Ok(Outcome::Denied),
                _ => Err(Error::from_sdk("CodePipeline", "PutApprovalResult", e)),
            },
        }
    }
}
