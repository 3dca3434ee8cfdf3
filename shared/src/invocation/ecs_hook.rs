//! An ECS-native lifecycle hook's flow: decide within the work share of the budget (guarded
//! against a panic and the deadline), post what people should hear once, answer by return
//! value.
//!
//! ECS runs the deployment itself and reads the hook's *return value* (`{"hookStatus": …}`);
//! there is no status API to report to. It rolls the deployment back on `FAILED`, on a missing
//! or invalid `hookStatus` and on a function error, so every way out of this flow is a valid
//! `hookStatus` before the deadline — never an error, which would roll back without a reason
//! anyone can read. Only the posts are claimed: every invocation, each callback after
//! `IN_PROGRESS` included, must get its own answer.

use std::future::Future;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::budget::ANSWER_RESERVE;
use crate::deadline::Deadline;
use crate::error::NotForUs;
use crate::guard::{Guarded, guarded};
use crate::idempotency::Once;
use crate::jobs::Reported;
use crate::notifier::{Notification, Notify};
use crate::report::{Answerer, ReportNotice};

use super::Invocation;
pub use super::job::Unfinished;

/// The answer ECS reads from the return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EcsStatus {
    Succeeded,
    Failed,
    InProgress,
}

impl EcsStatus {
    /// The `hookStatus` value.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::InProgress => "IN_PROGRESS",
        }
    }
}

/// Returned with `IN_PROGRESS`: what ECS hands back on the next invocation of the same hook,
/// and how long it waits before making it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resume {
    #[serde(rename = "callBackDelay", serialize_with = "whole_seconds")]
    pub after: Duration,
    #[serde(rename = "hookDetails")]
    pub details: Value,
}

/// `callBackDelay` is an integer number of seconds: a fraction rounds up, so ECS never calls
/// back before the function asked.
fn whole_seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// How an ECS-native hook invocation ended: the invocation's result, which is the answer
/// (`{"hookStatus": …}`, with `callBackDelay` and `hookDetails` when it resumes later).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcsReply {
    #[serde(rename = "hookStatus")]
    pub status: EcsStatus,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

impl EcsReply {
    /// A final answer, or an `IN_PROGRESS` that hands nothing back.
    pub fn status(status: EcsStatus) -> Self {
        Self {
            status,
            resume: None,
        }
    }
}

/// Something people should hear, posted once per `key` across containers (the idempotency
/// store remembers it): a key names the deployment, never one invocation, so callbacks do not
/// post again.
pub struct News {
    pub key: String,
    pub notification: Notification,
}

/// An invocation meant as an ECS-native hook whose payload cannot be read: it is answered
/// `FAILED`, and `key` says what its post is remembered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub why: NotForUs,
    pub key: String,
}

/// What a function answers an ECS-native hook with.
pub struct EcsAnswer {
    pub reply: EcsReply,
    /// Posted once before the answer is returned.
    pub news: Option<News>,
}

/// A function that answers ECS-native hooks supplies the decision; [`answer`] does the rest.
pub trait EcsHook: Sync {
    /// What the function read from the payload.
    type Request: Send + Sync;
    /// What the guarded part of the decision came to.
    type Evaluation: Send;

    /// Kept back from the deadline for what follows the decision: posting, and returning the
    /// answer (`REPORT_MARGIN`).
    fn work_margin(&self) -> Duration;
    /// The part of the decision that may hang or panic, bounded by `deadline`.
    fn evaluate(
        &self,
        request: &Self::Request,
        deadline: &Deadline,
    ) -> impl Future<Output = Self::Evaluation> + Send;
    /// What stands for the evaluation when it did not come back.
    fn unfinished(&self, request: &Self::Request, why: Unfinished) -> Self::Evaluation;
    fn conclude(&self, request: &Self::Request, evaluation: Self::Evaluation) -> EcsAnswer;
    /// The notice for a payload that cannot be read: it fails, so people must hear why.
    fn unreadable(&self, why: &NotForUs) -> Notification;
}

/// Answers one ECS-native hook invocation, read (`Ok`) or not.
pub async fn answer<H, N>(
    hook: &H,
    answerer: &Answerer<N>,
    request: Result<H::Request, Unreadable>,
    invocation: Invocation,
) -> EcsReply
where
    H: EcsHook,
    N: Notify + Sync,
{
    let deadline = invocation.deadline;
    // The answer is the return value, and a timeout rolls the deployment back: posting stops
    // short of the deadline.
    let post_by = deadline.less(ANSWER_RESERVE);
    let request = match request {
        Ok(request) => request,
        Err(Unreadable { why, key }) => {
            tracing::warn!(reason = %why, "an ECS lifecycle hook invocation that cannot be read: answering FAILED");
            let notification = hook.unreadable(&why);
            post_once(answerer, News { key, notification }, &post_by).await;
            return EcsReply::status(EcsStatus::Failed);
        }
    };
    let work = deadline.less(hook.work_margin());
    let evaluation = match guarded(&work, hook.evaluate(&request, &work)).await {
        Guarded::Finished(evaluation) => evaluation,
        Guarded::OutOfTime => hook.unfinished(&request, Unfinished::OutOfTime),
        Guarded::Panicked => hook.unfinished(&request, Unfinished::Panicked),
    };
    let EcsAnswer { reply, news } = hook.conclude(&request, evaluation);
    if let Some(news) = news {
        post_once(answerer, news, &post_by).await;
    }
    reply
}

/// Posts once per key, across containers through the idempotency store. The answer itself is
/// the return value, so there is no report that can fail: the shared answerer only notifies
/// and remembers. A post that failed is not tried again for the same key.
async fn post_once<N: Notify + Sync>(answerer: &Answerer<N>, news: News, deadline: &Deadline) {
    let claim = format!("ecs-news/{}", news.key);
    let told = answerer
        .idempotency()
        .once(&claim, deadline, |by| async move {
            post(answerer, news, &by).await;
            Ok(())
        })
        .await;
    if let Once::Held { .. } = told {
        tracing::info!(key = %claim, "another invocation is posting this news; not posting it here");
    }
}

async fn post<N: Notify + Sync>(answerer: &Answerer<N>, news: News, deadline: &Deadline) {
    let News { key, notification } = news;
    let notice = ReportNotice {
        key,
        subject: notification.subject.clone(),
        if_unreported: "ECS rolls the deployment back when the hook gives no valid answer",
        notification,
        wanted: true,
        decisive: true,
        lambda_retries: false,
    };
    let answered = answerer
        .answer(notice, |_| async { Ok(Reported::Recorded) }, deadline)
        .await;
    if let Err(e) = answered {
        tracing::error!(error = %e, "could not notify; the hook still answers");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reply_is_the_hook_status_with_a_callback_only_when_it_resumes() {
        let failed = serde_json::to_value(EcsReply::status(EcsStatus::Failed)).unwrap();
        assert_eq!(failed, json!({"hookStatus": "FAILED"}));
        let baking = EcsReply {
            status: EcsStatus::InProgress,
            resume: Some(Resume {
                after: Duration::from_millis(20_001),
                details: json!({"k": 1}),
            }),
        };
        assert_eq!(
            serde_json::to_value(baking).unwrap(),
            json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 21, "hookDetails": {"k": 1}})
        );
        for status in [
            EcsStatus::Succeeded,
            EcsStatus::Failed,
            EcsStatus::InProgress,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.wire());
        }
    }
}
