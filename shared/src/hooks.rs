//! CodeDeploy lifecycle-hook results.
//!
//! A hook that never reports leaves the deployment hanging for an hour, then failed. The
//! report is sent once per invocation; `LifecycleEventAlreadyCompletedException` (an
//! earlier attempt's report landed) counts as done; throttling is retried by the SDK's
//! standard retry; the whole call is bounded by the deadline.

use std::future::Future;

use aws_sdk_codedeploy::types::LifecycleEventStatus;

use crate::deadline::Deadline;
use crate::error::Error;
use crate::jobs::Reported;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

impl HookStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

/// The port functions depend on; [`HookReporter`] is the AWS implementation.
pub trait ReportHook {
    fn report(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        status: HookStatus,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Reported, Error>> + Send;
}

pub struct HookReporter {
    client: aws_sdk_codedeploy::Client,
}

impl HookReporter {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_codedeploy::Client::new(sdk),
        }
    }
}

impl ReportHook for HookReporter {
    async fn report(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        status: HookStatus,
        deadline: &Deadline,
    ) -> Result<Reported, Error> {
        let sdk_status = match status {
            HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
            HookStatus::Failed => LifecycleEventStatus::Failed,
        };
        let call = self
            .client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment_id)
            .lifecycle_event_hook_execution_id(hook_execution_id)
            .status(sdk_status)
            .send();
        let sent = deadline
            .run(call)
            .await
            .map_err(|_| Error::OutOfTime("reporting the lifecycle hook status"))?;
        let reported = match sent
            .map_err(|e| Error::from_sdk("CodeDeploy", "PutLifecycleEventHookExecutionStatus", e))
        {
            Ok(_) => Reported::Recorded,
            Err(e) if e.aws_code() == Some("LifecycleEventAlreadyCompletedException") => {
                Reported::AlreadyReported
            }
            Err(e) => return Err(e),
        };
        tracing::info!(
            deployment_id,
            hook_execution_id,
            status = status.name(),
            ?reported,
            "lifecycle hook status reported"
        );
        Ok(reported)
    }
}
