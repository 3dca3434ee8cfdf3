//! A direct invocation (`{}`, `{"command": […]}`, `{"wait": true}`): one migration launched
//! for the request, its task returned at once or, with `wait`, its judged end with the log
//! tail; a refusal says why, and launches nothing.

use std::time::Duration;

use serde::Serialize;
use shared::invocation::Invocation;
use shared::{Deadline, Error, metrics};

use crate::app::Runner;
use crate::config::Config;
use crate::ecs::{Cluster, LogTail};
use crate::event::{Direct, Trigger};
use crate::judge::LogEvidence;
use crate::launch::Launched;
use crate::render::redact_credentials;
use crate::task::Task;

/// How often a direct invocation with `"wait": true` looks at its task.
const WAIT_POLL: Duration = Duration::from_secs(5);
const STILL_RUNNING: &str =
    "still running when the invocation's time ran out; its outcome is reported when it stops";

/// What a direct invocation came to, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum DirectReply {
    /// `note`: why a `wait` returned before the task stopped.
    Launched {
        #[serde(rename = "taskArn")]
        task_arn: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<&'static str>,
    },
    Succeeded(Ended),
    Failed(Ended),
    Refused {
        reason: String,
    },
}

/// A waited-for task's end, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ended {
    pub task_arn: String,
    pub exit_code: Option<i64>,
    pub stop_code: Option<String>,
    pub reasons: Vec<String>,
    pub log_tail: Tail,
}

/// The log tail's lines (credentials redacted), or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Tail {
    Lines(Vec<String>),
    Unavailable(String),
}

impl<C, L, J, N> Runner<C, L, J, N>
where
    C: Cluster + Sync,
    L: LogTail + Sync,
{
    pub(crate) async fn on_direct(
        &self,
        direct: Direct,
        invocation: Invocation,
    ) -> Result<DirectReply, Error> {
        let refused = |reason: String| {
            tracing::warn!(reason, "direct invocation refused; nothing launched");
            Ok(DirectReply::Refused { reason })
        };
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                return refused(format!("configuration error: {why}"));
            }
        };
        let command = match direct.command {
            Ok(c) => c,
            Err(why) => return refused(why),
        };
        if command.is_some() && !config.allow_command_override {
            return refused(
                "command overrides are not allowed (ALLOW_COMMAND_OVERRIDE is false)".into(),
            );
        }
        let deadline = invocation.deadline.less(self.margin());
        let trigger = Trigger::Invocation(invocation.request_id.clone());
        match self
            .launch(config, &trigger, command, None, 0, &deadline)
            .await?
        {
            Launched::Running { task, .. } if direct.wait => {
                Ok(self.wait_for(config, *task, &deadline).await)
            }
            Launched::Running { task, .. } => Ok(DirectReply::Launched {
                task_arn: task.task_arn,
                status: task.last_status,
                note: None,
            }),
            Launched::Busy { other, family, .. } => refused(format!(
                "migration task {} of {family} is still running",
                other.task_arn
            )),
            Launched::NoCapacity { why, .. } => refused(format!("ECS has no capacity: {why}")),
            Launched::Refused(why) => refused(why),
        }
    }

    async fn wait_for(&self, config: &Config, mut task: Task, deadline: &Deadline) -> DirectReply {
        loop {
            if task.is_stopped() {
                let o = self.outcome_of(config, &task, None, deadline).await;
                let log_tail = match &o.log {
                    LogEvidence::Lines { lines, .. } => Tail::Lines(
                        lines
                            .iter()
                            .map(|l| redact_credentials(l).into_owned())
                            .collect(),
                    ),
                    LogEvidence::Unavailable(why) => Tail::Unavailable(why.clone()),
                };
                let ended = Ended {
                    exit_code: o.judgement.exit_code,
                    stop_code: o.judgement.stop_code.clone(),
                    reasons: o.reasons(),
                    log_tail,
                    task_arn: o.task_arn.clone(),
                };
                return if o.succeeded() {
                    DirectReply::Succeeded(ended)
                } else {
                    DirectReply::Failed(ended)
                };
            }
            if deadline.sleep(WAIT_POLL).await.is_err() {
                break;
            }
            match self
                .ports
                .cluster
                .describe(&config.cluster, &task.task_arn, deadline)
                .await
            {
                Ok(Some(t)) => task = t,
                Ok(None) => break,
                Err(e) => tracing::warn!(error = %e, "could not describe the task; trying again"),
            }
        }
        DirectReply::Launched {
            task_arn: task.task_arn,
            status: task.last_status,
            note: Some(STILL_RUNNING),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_keep_their_published_shape() {
        let launched = DirectReply::Launched {
            task_arn: "arn:t".into(),
            status: "PROVISIONING".into(),
            note: None,
        };
        assert_eq!(
            serde_json::to_value(launched).unwrap(),
            json!({"outcome": "launched", "taskArn": "arn:t", "status": "PROVISIONING"})
        );
        let waited = DirectReply::Launched {
            task_arn: "arn:t".into(),
            status: "RUNNING".into(),
            note: Some(STILL_RUNNING),
        };
        assert_eq!(
            serde_json::to_value(waited).unwrap(),
            json!({"outcome": "launched", "taskArn": "arn:t", "status": "RUNNING", "note": "still running when the invocation's time ran out; its outcome is reported when it stops"})
        );
        let failed = DirectReply::Failed(Ended {
            task_arn: "arn:t".into(),
            exit_code: None,
            stop_code: Some("TaskFailedToStart".into()),
            reasons: vec!["no exit code".into()],
            log_tail: Tail::Unavailable("no stream".into()),
        });
        assert_eq!(
            serde_json::to_value(failed).unwrap(),
            json!({"outcome": "failed", "taskArn": "arn:t", "exitCode": null, "stopCode": "TaskFailedToStart", "reasons": ["no exit code"], "logTail": "no stream"})
        );
        let succeeded = DirectReply::Succeeded(Ended {
            task_arn: "arn:t".into(),
            exit_code: Some(0),
            stop_code: None,
            reasons: vec![],
            log_tail: Tail::Lines(vec!["done".into()]),
        });
        assert_eq!(
            serde_json::to_value(succeeded).unwrap(),
            json!({"outcome": "succeeded", "taskArn": "arn:t", "exitCode": 0, "stopCode": null, "reasons": [], "logTail": ["done"]})
        );
        assert_eq!(
            serde_json::to_value(DirectReply::Refused {
                reason: "why".into()
            })
            .unwrap(),
            json!({"outcome": "refused", "reason": "why"})
        );
    }
}
