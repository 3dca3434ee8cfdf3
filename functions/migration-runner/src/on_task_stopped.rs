//! An ECS task state change: the end of every task this runner started, whatever asked for
//! it, judged and told once across containers however many `STOPPED` versions or duplicates
//! arrive; anything else about a task is acknowledged and ignored.

use serde::Serialize;
use shared::budget::NOTIFY_RESERVE;
use shared::invocation::Invocation;
use shared::invocation::once::{self, Handled, Key};
use shared::notifier::Notify;
use shared::{Deadline, Error, metrics};

use crate::app::Runner;
use crate::config::{Config, NotifyOn};
use crate::ecs::{Cluster, LogTail};
use crate::judge::TaskOutcome;
use crate::launch::{RACE_STOP_REASON, TRIGGER_TAG};
use crate::render::render_outcome;
use crate::task::{Task, cluster_name};

const MIGRATIONS: metrics::Metric = metrics::Metric::count("Migrations");
const MIGRATION_SECONDS: metrics::Metric = metrics::Metric::seconds("MigrationSeconds");

/// What a task state change came to, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StoppedReply {
    /// Judged, and told when `NOTIFY_ON` wants it.
    Reported {
        #[serde(rename = "taskArn")]
        task_arn: String,
        succeeded: bool,
    },
    /// Not the end of a task this runner is to tell.
    Ignored {
        reason: String,
    },
    NotConfigured {
        reason: String,
    },
}

/// `Migrations` {Outcome} and `MigrationSeconds` (created to stopped), once per task in a
/// container: on the task's end, where every migration is told whoever launched it.
fn record_migration(outcome: &TaskOutcome, task: &Task, now: i64) {
    let name = if outcome.succeeded() {
        "succeeded"
    } else {
        "failed"
    };
    metrics::count(&MIGRATIONS, &[("Outcome", name)]);
    if let Some(created_ms) = task.created_at {
        // The event's own stop time; without one, now (delivery lag included).
        let stopped_ms = task.stopped_at.unwrap_or(now.saturating_mul(1000));
        let seconds = stopped_ms.saturating_sub(created_ms) as f64 / 1000.0;
        if seconds >= 0.0 {
            metrics::record(&MIGRATION_SECONDS, &[], seconds);
        }
    }
}

/// The claim on telling a task's end: `task-stopped/<task ARN>`. Keyed by the task alone, not
/// by `detail.version`: its end is one fact, however many STOPPED versions (or duplicates of
/// one) ECS sends.
fn end_of(task_arn: &str) -> Key<'_> {
    Key::Fact("task-stopped", task_arn)
}

/// Whether a migration's end is posted (`NOTIFY_ON`): a failure always, a success with `ALL`.
fn wants(config: &Config, succeeded: bool) -> bool {
    !succeeded || config.notify_on == NotifyOn::All
}

impl<C, L, J, N> Runner<C, L, J, N>
where
    C: Cluster + Sync,
    L: LogTail + Sync,
    N: Notify + Sync,
{
    pub(crate) async fn on_task_stopped(
        &self,
        task: Task,
        invocation: Invocation,
    ) -> Result<Handled<StoppedReply>, Error> {
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                let reason = self.unconfigured(why, &invocation.deadline).await?;
                return Ok(Handled::Done(StoppedReply::NotConfigured { reason }));
            }
        };
        let ignored = |reason: String| {
            tracing::info!(task = %task.task_arn, reason, "task event acknowledged");
            Ok(Handled::Done(StoppedReply::Ignored { reason }))
        };
        if task.started_by.as_deref() != Some(config.started_by.as_str()) {
            return ignored("not started by this function".into());
        }
        if let Some(cluster) = &task.cluster_arn
            && cluster_name(cluster) != cluster_name(&config.cluster)
        {
            return ignored("a task of another cluster".into());
        }
        // Fargate's DEPROVISIONING event already carries exit codes: only STOPPED is final.
        if !task.is_stopped() {
            return ignored(format!("lastStatus {} is not final", task.last_status));
        }
        if task.stopped_reason.as_deref() == Some(RACE_STOP_REASON) {
            return ignored(
                "stopped by the runner itself: another migration started first (its request was told)"
                    .into(),
            );
        }
        let task = &task;
        let now = invocation.now;
        once::handle(
            self.ports.answerer.idempotency(),
            Some(end_of(&task.task_arn)),
            &invocation.deadline,
            |by| async move { self.tell_stopped(config, task, now, &by).await },
        )
        .await
    }

    async fn tell_stopped(
        &self,
        config: &Config,
        task: &Task,
        now: i64,
        notify_by: &Deadline,
    ) -> Result<StoppedReply, Error> {
        let deadline = notify_by.less(NOTIFY_RESERVE);
        // Every task's end is told here, whoever launched it: a pipeline job answers
        // CodePipeline, but its execution may be stopped or superseded before it looks again.
        let trigger = match self
            .ports
            .cluster
            .describe(&config.cluster, &task.task_arn, &deadline)
            .await
        {
            Ok(Some(t)) => t.tags.get(TRIGGER_TAG).cloned(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the task's tags; reporting without its trigger");
                None
            }
        };
        let o = self.outcome_of(config, task, None, &deadline).await;
        tracing::info!(task = %o.task_arn, succeeded = o.succeeded(), reasons = ?o.reasons(), "migration finished");
        if wants(config, o.succeeded()) {
            let n = render_outcome(&o, trigger.as_deref(), &self.cluster_at(Some(config)));
            self.ports
                .answerer
                .notifier()
                .notify(&n, notify_by)
                .await
                .into_result()?;
        }
        // After the notification: a failed one is retried by Lambda and would count twice.
        record_migration(&o, task, now);
        Ok(StoppedReply::Reported {
            succeeded: o.succeeded(),
            task_arn: o.task_arn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tasks_end_is_claimed_under_its_arn_alone() {
        assert_eq!(
            end_of("arn:aws:ecs:us-east-1:1:task/prod/abc").to_string(),
            "task-stopped/arn:aws:ecs:us-east-1:1:task/prod/abc"
        );
    }

    #[test]
    fn replies_keep_their_published_shape() {
        let cases = [
            (
                StoppedReply::Reported {
                    task_arn: "arn:t".into(),
                    succeeded: false,
                },
                json!({"outcome": "reported", "taskArn": "arn:t", "succeeded": false}),
            ),
            (
                StoppedReply::Ignored {
                    reason: "a task of another cluster".into(),
                },
                json!({"outcome": "ignored", "reason": "a task of another cluster"}),
            ),
            (
                StoppedReply::NotConfigured {
                    reason: "configuration error: x".into(),
                },
                json!({"outcome": "not-configured", "reason": "configuration error: x"}),
            ),
        ];
        for (reply, json) in cases {
            assert_eq!(serde_json::to_value(reply).unwrap(), json);
        }
    }
}
