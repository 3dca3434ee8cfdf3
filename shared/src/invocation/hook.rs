//! A CodeDeploy lifecycle hook's flow: claim the hook execution, decide within the work share
//! of the budget (guarded against a panic and the deadline), report the status exactly once,
//! notify, reply.
//!
//! A hook that never reports holds the deployment for an hour, then fails it; so every way out
//! of the decision is a status. The hook's payload holds two ids and nothing secret, so a
//! report that failed for a reason a retry can fix is left to Lambda's retry.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::deadline::Deadline;
use crate::error::{Error, NotForUs};
use crate::guard::{Guarded, guarded};
use crate::hooks::{HookStatus, ReportHook};
use crate::notifier::{Notification, Notify};
use crate::report::{Answerer, ReportNotice};

use super::Invocation;
pub use super::job::Unfinished;

/// The two ids CodeDeploy sends: all a hook invocation carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookIds {
    pub deployment_id: String,
    pub hook_execution_id: String,
}

/// `{"DeploymentId": "d-…", "LifecycleEventHookExecutionId": "…"}`, or why the input is not a
/// hook invocation (without both ids there is nothing to report to).
pub fn parse(event: &Value) -> Result<HookIds, NotForUs> {
    let text = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| NotForUs(format!("no {name}")))
    };
    Ok(HookIds {
        deployment_id: text("DeploymentId")?,
        hook_execution_id: text("LifecycleEventHookExecutionId")?,
    })
}

/// What a function answers a hook with.
pub struct HookAnswer<D> {
    pub status: HookStatus,
    /// For people: "AfterAllowTraffic hook status for deployment d-ABC".
    pub subject: String,
    pub notification: Notification,
    /// Whether the answer is worth a post by itself (`NOTIFY_ON`).
    pub wanted: bool,
    /// The function's own fields in the reply.
    pub detail: D,
}

/// A function that answers CodeDeploy hooks supplies the decision; [`answer`] does the rest.
pub trait Hook: Sync {
    type Evaluation: Send;
    type Detail: Serialize + Send;

    /// What happens while no status arrives.
    const IF_UNREPORTED: &'static str;

    /// Kept back from the deadline so the status can always be reported (`REPORT_MARGIN`).
    fn report_margin(&self) -> Duration;
    /// The part of the decision that may hang or panic, bounded by `deadline`.
    fn evaluate(
        &self,
        ids: &HookIds,
        deadline: &Deadline,
    ) -> impl Future<Output = Self::Evaluation> + Send;
    /// What stands for the evaluation when it did not come back.
    fn unfinished(&self, ids: &HookIds, why: Unfinished) -> Self::Evaluation;
    fn conclude(&self, ids: &HookIds, evaluation: Self::Evaluation) -> HookAnswer<Self::Detail>;
}

/// How a hook invocation ended, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum HookReply<D> {
    Reported {
        #[serde(rename = "deploymentId")]
        deployment_id: String,
        status: &'static str,
        #[serde(flatten)]
        detail: D,
        /// `Recorded`, `AlreadyReported` or `NotReported`.
        reported: &'static str,
        notified: bool,
    },
    /// Answered already, on this container or another.
    Duplicate {
        #[serde(rename = "deploymentId")]
        deployment_id: String,
    },
}

/// Answers one hook invocation. CodeDeploy invokes hooks asynchronously: a redelivered hook
/// execution is answered once, by whichever invocation claims it; one still held elsewhere
/// is an error, so Lambda retries and finds it done.
pub async fn answer<H, R, N>(
    hook: &H,
    hooks: &R,
    answerer: &Answerer<N>,
    ids: HookIds,
    invocation: Invocation,
) -> Result<HookReply<H::Detail>, Error>
where
    H: Hook,
    R: ReportHook + Sync,
    N: Notify + Sync,
{
    let ids = &ids;
    let answered = answerer
        .idempotency()
        .once_or_retry(
            &format!("hook/{}", ids.hook_execution_id),
            &invocation.deadline,
            |by| async move { Box::pin(decide_and_report(hook, hooks, answerer, ids, by)).await },
        )
        .await?;
    Ok(answered.unwrap_or_else(|| HookReply::Duplicate {
        deployment_id: ids.deployment_id.clone(),
    }))
}

/// `deadline` is the invocation's, less what recording the claim needs.
async fn decide_and_report<H, R, N>(
    hook: &H,
    hooks: &R,
    answerer: &Answerer<N>,
    ids: &HookIds,
    deadline: Deadline,
) -> Result<HookReply<H::Detail>, Error>
where
    H: Hook,
    R: ReportHook + Sync,
    N: Notify + Sync,
{
    let work = deadline.less(hook.report_margin());
    let evaluation = match guarded(&work, hook.evaluate(ids, &work)).await {
        Guarded::Finished(evaluation) => evaluation,
        Guarded::OutOfTime => hook.unfinished(ids, Unfinished::OutOfTime),
        Guarded::Panicked => hook.unfinished(ids, Unfinished::Panicked),
    };
    let HookAnswer {
        status,
        subject,
        notification,
        wanted,
        detail,
    } = hook.conclude(ids, evaluation);
    let notice = ReportNotice {
        key: ids.hook_execution_id.clone(),
        subject,
        if_unreported: H::IF_UNREPORTED,
        notification,
        wanted,
        decisive: true,
        // The hook payload holds two ids and nothing secret: a retry is safe.
        lambda_retries: true,
    };
    let report = |by: Deadline| async move {
        hooks
            .report(&ids.deployment_id, &ids.hook_execution_id, status, &by)
            .await
    };
    let answered = answerer.answer(notice, report, &deadline).await?;
    Ok(HookReply::Reported {
        deployment_id: ids.deployment_id.clone(),
        status: status.name(),
        detail,
        reported: answered.reported_name(),
        notified: answered.notified,
    })
}
