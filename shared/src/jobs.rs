//! CodePipeline job results for Lambda invoke actions.
//!
//! A job must get exactly one final answer, or the stage hangs until CodePipeline times
//! it out. A repeated answer (the async invocation retried after a report that did land)
//! comes back as `InvalidJobStateException` and counts as already done. Throttling is
//! retried by the SDK's standard retry; the whole report is bounded by the deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};

use serde_json::Value;

use crate::config::ConfigError;
use crate::deadline::Deadline;
use crate::error::{Error, NotForUs};
use crate::text::truncate_plain;

/// CodePipeline fails a Lambda invoke action 24 hours after it started, however often the
/// function answers "in progress" (CodePipeline user guide, Quotas: "AWS Lambda invoke
/// action: 24 hours"). An action's `timeoutInMinutes` applies to manual approvals only
/// (API reference, ActionDeclaration), so no pipeline can give a Lambda action more.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Kept before that timeout for the continuation invocation that acts on a wait's end (fails
/// the job, stops a task): how soon CodePipeline invokes again after "in progress" is not
/// documented, so the room is generous.
pub const ACTION_ROOM: Duration = Duration::from_secs(30 * 60);

/// The longest a job may wait or run and still be ended by this function, not by
/// CodePipeline's timeout (which would leave a task running and nobody told why).
pub fn longest_job() -> Duration {
    ACTION_TIMEOUT.saturating_sub(ACTION_ROOM)
}

/// Refuses a wait or run limit that CodePipeline's own timeout would cut short.
pub fn within_action_timeout(variable: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value > longest_job() {
        return Err(ConfigError::malformed(
            variable,
            "at most 23h30m: CodePipeline fails a Lambda invoke action after 24 hours, and the function must end the job (and stop what it started) before that",
            "longer than a pipeline action may run",
        ));
    }
    Ok(value)
}

const MAX_SUMMARY: usize = 2048;
const MAX_FAILURE_MESSAGE: usize = 5000;
const MAX_CONTINUATION_TOKEN: usize = 2048;

/// What a function needs from a CodePipeline Lambda invoke event. The rest of it —
/// `artifactCredentials` above all — is never read, so it can never be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInvocation {
    pub job_id: String,
    pub account: Option<String>,
    pub user_parameters: Option<String>,
    pub continuation: Option<String>,
    /// Why the job's `data` could not be read; the job is still failed with it, by its id.
    pub malformed: Option<String>,
}

/// A job as a function answers it: its `UserParameters` read into what the function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest<P> {
    pub job_id: String,
    pub account: Option<String>,
    /// What `UserParameters` say (the image to judge, a command override), or why they, or
    /// the job's data, could not be read: the job is then failed with that reason.
    pub parameters: Result<P, String>,
    pub continuation: Option<String>,
}

impl JobInvocation {
    /// The job with its `UserParameters` read by `read`, unless its data was malformed.
    pub fn with_parameters<P>(
        self,
        read: impl FnOnce(Option<&str>) -> Result<P, String>,
    ) -> JobRequest<P> {
        JobRequest {
            parameters: match self.malformed {
                Some(why) => Err(why),
                None => read(self.user_parameters.as_deref()),
            },
            job_id: self.job_id,
            account: self.account,
            continuation: self.continuation,
        }
    }
}

/// `None` when `event` is not a CodePipeline job; a job without an id cannot be answered, so
/// it is `NotForUs`.
pub fn job_invocation(event: &Value) -> Option<Result<JobInvocation, NotForUs>> {
    let job = event.get("CodePipeline.job")?;
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let Some(job_id) = text(job.get("id")) else {
        return Some(Err(NotForUs(
            "a CodePipeline job without an id: nothing can be reported".into(),
        )));
    };
    let data = job.get("data").filter(|d| d.is_object());
    let user_parameters =
        data.and_then(|d| d.pointer("/actionConfiguration/configuration/UserParameters"));
    let malformed = match (data, user_parameters) {
        (None, _) => Some("malformed CodePipeline job event: no data object".to_owned()),
        (_, Some(p)) if !p.is_string() && !p.is_null() => {
            Some("malformed CodePipeline job event: UserParameters is not a string".to_owned())
        }
        _ => None,
    };
    Some(Ok(JobInvocation {
        job_id,
        account: text(job.get("accountId")),
        user_parameters: user_parameters.and_then(Value::as_str).map(str::to_owned),
        continuation: text(data.and_then(|d| d.get("continuationToken"))),
        malformed,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    JobFailed,
    ConfigurationError,
    PermissionError,
    RevisionOutOfSync,
    RevisionUnavailable,
    SystemUnavailable,
}

impl FailureKind {
    fn to_sdk(self) -> FailureType {
        match self {
            Self::JobFailed => FailureType::JobFailed,
            Self::ConfigurationError => FailureType::ConfigurationError,
            Self::PermissionError => FailureType::PermissionError,
            Self::RevisionOutOfSync => FailureType::RevisionOutOfSync,
            Self::RevisionUnavailable => FailureType::RevisionUnavailable,
            Self::SystemUnavailable => FailureType::SystemUnavailable,
        }
    }
}

/// What to tell CodePipeline. Output variables exist only on the final success, because
/// CodePipeline rejects them next to a continuation token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Not finished: CodePipeline invokes the function again later with this token.
    InProgress {
        continuation_token: String,
        summary: String,
    },
    Succeeded {
        summary: String,
        output_variables: BTreeMap<String, String>,
    },
    Failed {
        kind: FailureKind,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Recorded,
    /// CodePipeline already had a result for this job: an earlier attempt's report landed.
    AlreadyReported,
}

/// The port the functions depend on; [`JobReporter`] is the AWS implementation.
pub trait ReportJob {
    fn report(
        &self,
        job_id: &str,
        outcome: JobOutcome,
        deadline: &Deadline,
    ) -> impl std::future::Future<Output = Result<Reported, Error>> + Send;
}

pub struct JobReporter {
    client: aws_sdk_codepipeline::Client,
}

impl JobReporter {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_codepipeline::Client::new(sdk),
        }
    }

    async fn send(&self, job_id: &str, outcome: JobOutcome) -> Result<Reported, Error> {
        let result = match outcome {
            JobOutcome::InProgress {
                continuation_token,
                summary,
            } => {
                if continuation_token.is_empty()
                    || continuation_token.len() > MAX_CONTINUATION_TOKEN
                {
                    return Err(Error::bad_input(
                        "a continuation token must be 1 to 2048 characters",
                    ));
                }
                self.client
                    .put_job_success_result()
                    .job_id(job_id)
                    .continuation_token(continuation_token)
                    .execution_details(details(&summary))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::from_sdk("CodePipeline", "PutJobSuccessResult", e))
            }
            JobOutcome::Succeeded {
                summary,
                output_variables,
            } => {
                if let Some(bad) = output_variables.keys().find(|k| !valid_variable_name(k)) {
                    return Err(Error::bad_input(format!(
                        "output variable name {bad:?} is not [A-Za-z0-9@_-]+"
                    )));
                }
                self.client
                    .put_job_success_result()
                    .job_id(job_id)
                    .execution_details(details(&summary))
                    .set_output_variables(
                        (!output_variables.is_empty())
                            .then(|| output_variables.into_iter().collect()),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::from_sdk("CodePipeline", "PutJobSuccessResult", e))
            }
            JobOutcome::Failed { kind, message } => {
                let failure = FailureDetails::builder()
                    .r#type(kind.to_sdk())
                    .message(truncate_plain(&message, MAX_FAILURE_MESSAGE))
                    .build()
                    .map_err(|e| Error::bad_input(format!("failure details: {e}")))?;
                self.client
                    .put_job_failure_result()
                    .job_id(job_id)
                    .failure_details(failure)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::from_sdk("CodePipeline", "PutJobFailureResult", e))
            }
        };
        match result {
            Ok(()) => Ok(Reported::Recorded),
            Err(e) if e.aws_code() == Some("InvalidJobStateException") => {
                Ok(Reported::AlreadyReported)
            }
            Err(e) => Err(e),
        }
    }
}

impl ReportJob for JobReporter {
    async fn report(
        &self,
        job_id: &str,
        outcome: JobOutcome,
        deadline: &Deadline,
    ) -> Result<Reported, Error> {
        let reported = deadline
            .run(self.send(job_id, outcome))
            .await
            .map_err(|_| Error::OutOfTime("reporting the CodePipeline job result"))??;
        match reported {
            Reported::Recorded => tracing::info!(job_id, "CodePipeline job result recorded"),
            Reported::AlreadyReported => tracing::info!(
                job_id,
                "CodePipeline already had a result for this job; nothing more to do"
            ),
        }
        Ok(reported)
    }
}

fn details(summary: &str) -> ExecutionDetails {
    ExecutionDetails::builder()
        .summary(truncate_plain(summary, MAX_SUMMARY))
        .build()
}

fn valid_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_event_yields_its_id_parameters_and_token_and_nothing_else() {
        let event = serde_json::json!({"CodePipeline.job": {"id": "j-1", "accountId": "1",
            "data": {"actionConfiguration": {"configuration": {"UserParameters": "{}"}},
                     "continuationToken": "t", "artifactCredentials": {"secretAccessKey": "x"}}}});
        let job = job_invocation(&event).unwrap().unwrap();
        assert_eq!(job.job_id, "j-1");
        assert_eq!(job.user_parameters.as_deref(), Some("{}"));
        assert_eq!(job.continuation.as_deref(), Some("t"));
        assert!(job.malformed.is_none());
        assert!(job_invocation(&serde_json::json!({"source": "aws.ecr"})).is_none());
        assert!(matches!(
            job_invocation(&serde_json::json!({"CodePipeline.job": {"data": {}}})),
            Some(Err(_))
        ));
        let bad =
            job_invocation(&serde_json::json!({"CodePipeline.job": {"id": "j", "data": "x"}}));
        assert!(bad.unwrap().unwrap().malformed.is_some());
    }

    #[test]
    fn output_variable_names_follow_codepipelines_pattern() {
        assert!(valid_variable_name("VERDICT"));
        assert!(valid_variable_name("count_high-1@x"));
        assert!(!valid_variable_name("has space"));
        assert!(!valid_variable_name(""));
        assert!(!valid_variable_name("dot.ted"));
    }
}
