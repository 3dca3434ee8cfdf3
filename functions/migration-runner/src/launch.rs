//! Launching a migration: at most one task per request, at most one migration of a family
//! at a time, capacity shortages retried within the deadline, and of two tasks launched at
//! once the later stopped again.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::retry::{Attempt, Backoff, RetryError, retry};
use shared::{Deadline, Error, metrics};

use crate::app::{FUNCTION, Runner};
use crate::config::{Capacity, Config};
use crate::ecs::{Cluster, Launch, RunOutcome};
use crate::event::Trigger;
use crate::task::Task;

const LAUNCH_REFUSED: metrics::Metric = metrics::Metric::count("LaunchRefused");

/// The tag naming what launched a task; the trigger also derives its `clientToken`.
pub const TRIGGER_TAG: &str = "ops:trigger";
pub const FUNCTION_TAG: &str = "ops:function";
/// Capacity shortages are retried within the deadline; a pipeline job also tries again on
/// its next invocation.
const CAPACITY_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(2),
    max: Duration::from_secs(15),
    max_attempts: 6,
};
/// StopTask's reason for the later of two tasks launched at once; its STOPPED event is not a
/// failed migration.
pub const RACE_STOP_REASON: &str =
    "migration-runner: another migration of this family started first";

/// What a launch came to.
#[derive(Debug)]
pub enum Launched {
    /// Started now, or found already running for this same request (a redelivery).
    Running {
        task: Box<Task>,
        family: String,
        new: bool,
    },
    /// Another migration of the family is running: nothing launched (or, when two were
    /// launched at once, this one stopped again). `attempts`: the last client token used.
    Busy {
        other: Box<Task>,
        family: String,
        attempts: u32,
    },
    /// ECS placed nothing for lack of capacity, through every retry the deadline allowed;
    /// `attempts` is the last launch attempt's number (it names its client token).
    NoCapacity { why: String, attempts: u32 },
    /// Refused for good: nothing launched.
    Refused(String),
}

enum Placement {
    /// Why, and the number of the attempt that got this answer.
    Capacity(String, u32),
    Refused(String),
    Failed(Error),
}

impl<C: Cluster + Sync, L, J, N> Runner<C, L, J, N> {
    /// Tasks of `family` started through this function and not stopped.
    async fn running_of(
        &self,
        config: &Config,
        family: &str,
        deadline: &Deadline,
    ) -> Result<Vec<Task>, Error> {
        let mut tasks = self
            .ports
            .cluster
            .active_tasks(&config.cluster, &config.started_by, deadline)
            .await?;
        tasks.retain(|t| t.family() == family);
        Ok(tasks)
    }

    /// At most one task per request: a task this request already started is found again by
    /// its trigger tag (and ECS's `clientToken` returns it for a replayed RunTask); a task of
    /// the same family started by anyone through this function blocks a second one, and of two
    /// launched at once (two containers passing the check together) the later stops itself.
    /// `tries`: launch attempts ECS already answered without a task (a job's earlier
    /// invocations), so each new attempt gets a new client token.
    pub async fn launch(
        &self,
        config: &Config,
        trigger: &Trigger,
        command: Option<Vec<String>>,
        pin: Option<&str>,
        tries: u32,
        deadline: &Deadline,
    ) -> Result<Launched, Error> {
        let launched = self
            .launch_unrecorded(config, trigger, command, pin, tries, deadline)
            .await;
        let refused = match &launched {
            Ok(Launched::Busy { .. }) => Some("busy"),
            Ok(Launched::NoCapacity { .. }) => Some("no-capacity"),
            Ok(Launched::Refused(_)) => Some("refused"),
            Ok(Launched::Running { .. }) | Err(_) => None,
        };
        if let Some(reason) = refused {
            metrics::count(&LAUNCH_REFUSED, &[("Reason", reason)]);
        }
        launched
    }

    async fn launch_unrecorded(
        &self,
        config: &Config,
        trigger: &Trigger,
        command: Option<Vec<String>>,
        pin: Option<&str>,
        tries: u32,
        deadline: &Deadline,
    ) -> Result<Launched, Error> {
        let mut definition = self
            .ports
            .cluster
            .task_definition(config.task.reference(), deadline)
            .await?;
        if definition.container(&config.container).is_none() {
            return Ok(Launched::Refused(format!(
                "task definition {} has no container named {} (CONTAINER)",
                definition.arn, config.container
            )));
        }
        let family = definition.family.clone();
        let tag = trigger.tag();
        let running = self.running_of(config, &family, deadline).await?;
        if let Some(mine) = running
            .iter()
            .find(|t| t.tags.get(TRIGGER_TAG) == Some(&tag))
        {
            tracing::info!(task = %mine.task_arn, trigger = %tag, "this request's task is already running; not launching another");
            return Ok(Launched::Running {
                task: Box::new(mine.clone()),
                family,
                new: false,
            });
        }
        if let Some(other) = running.into_iter().next() {
            return Ok(Launched::Busy {
                other: Box::new(other),
                family,
                attempts: tries,
            });
        }
        // Pinned only once nothing else runs: a refused push registers no revision.
        if let Some(image) = pin {
            definition = self
                .ports
                .cluster
                .pin_image(&definition, &config.container, image, deadline)
                .await?;
            tracing::info!(task_definition = %definition.arn, image, "running the pushed image by digest");
        }
        let (launch_type, capacity_provider) = match &config.capacity {
            Capacity::LaunchType(t) => (Some(t.clone()), None),
            Capacity::Provider(p) => (None, Some(p.clone())),
        };
        let launch = Launch {
            cluster: config.cluster.clone(),
            task_definition: definition.arn.clone(),
            container: config.container.clone(),
            command: command.or_else(|| config.command.clone()),
            environment: config.environment.clone(),
            subnets: config.subnets.clone(),
            security_groups: config.security_groups.clone(),
            assign_public_ip: config.assign_public_ip,
            launch_type,
            capacity_provider,
            started_by: config.started_by.clone(),
            client_token: String::new(),
            tags: BTreeMap::from([
                (TRIGGER_TAG.to_owned(), tag.clone()),
                (FUNCTION_TAG.to_owned(), FUNCTION.to_owned()),
            ]),
        };
        let placed = retry(deadline, &CAPACITY_BACKOFF, |attempt| {
            let launch = Launch {
                client_token: trigger.client_token(tries + attempt),
                ..launch.clone()
            };
            async move {
                match self.ports.cluster.run(&launch, deadline).await {
                    Ok(RunOutcome::Started(task)) => Attempt::Done((task, tries + attempt)),
                    Ok(RunOutcome::NotPlaced(failures)) => {
                        let why = failures
                            .iter()
                            .map(|f| f.describe())
                            .collect::<Vec<_>>()
                            .join("; ");
                        if failures.iter().all(|f| f.is_capacity()) {
                            tracing::warn!(attempt, reason = %why, "ECS has no capacity for the task yet; retrying");
                            Attempt::Retry {
                                error: Placement::Capacity(why, tries + attempt),
                                after: None,
                            }
                        } else {
                            Attempt::Permanent(Placement::Refused(format!(
                                "ECS could not place the task: {why}"
                            )))
                        }
                    }
                    Err(e) if e.aws_code() == Some("ConflictException") => {
                        Attempt::Permanent(Placement::Refused(format!(
                            "ECS says this request already started a task with other parameters (its client token was used before); not launching again ({e})"
                        )))
                    }
                    Err(e) => Attempt::Permanent(Placement::Failed(e)),
                }
            }
        })
        .await;
        let (mut task, attempt) = match placed {
            Ok(placed) => placed,
            Err(RetryError::Permanent(Placement::Refused(why))) => {
                return Ok(Launched::Refused(why));
            }
            Err(RetryError::Permanent(Placement::Failed(e))) => return Err(e),
            Err(
                RetryError::Exhausted { last, .. }
                | RetryError::OutOfTime { last, .. }
                | RetryError::Permanent(last @ Placement::Capacity(..)),
            ) => {
                return Ok(match last {
                    Placement::Capacity(why, attempts) => Launched::NoCapacity { why, attempts },
                    Placement::Refused(why) => Launched::Refused(why),
                    Placement::Failed(e) => Launched::NoCapacity {
                        why: e.to_string(),
                        attempts: tries,
                    },
                });
            }
        };
        tracing::info!(task = %task.task_arn, trigger = %tag, family, "migration task launched");
        // ListTasks is eventually consistent and two runners may pass the check together:
        // look again, and let the task created first be the one that runs. Every runner keys
        // tasks the same way (creation time as ECS lists it, then ARN), so exactly one yields.
        let running = match self.running_of(config, &family, deadline).await {
            Ok(running) => running,
            Err(e) => {
                tracing::warn!(error = %e, "could not check for a migration launched at the same time");
                Vec::new()
            }
        };
        if let Some(listed) = running.iter().find(|t| t.task_arn == task.task_arn) {
            task.created_at = listed.created_at.or(task.created_at);
        }
        let earlier = running
            .into_iter()
            .filter(|t| t.task_arn != task.task_arn && t.started_before(&task))
            .min_by_key(|t| (t.created_at.unwrap_or(i64::MAX), t.task_arn.clone()));
        if let Some(other) = earlier {
            tracing::warn!(task = %task.task_arn, other = %other.task_arn, "another migration of this family started first; stopping this one");
            if let Err(e) = self
                .ports
                .cluster
                .stop(&config.cluster, &task.task_arn, RACE_STOP_REASON, deadline)
                .await
            {
                // Both run: say so rather than claim this one did not start.
                tracing::error!(task = %task.task_arn, other = %other.task_arn, error = %e, "could not stop the second migration task; two migrations are running");
                return Ok(Launched::Running {
                    task,
                    family,
                    new: true,
                });
            }
            // The earlier one is this request's own (a launch whose answer was lost): that is
            // the launch.
            if other.tags.get(TRIGGER_TAG) == Some(&tag) {
                return Ok(Launched::Running {
                    task: Box::new(other),
                    family,
                    new: false,
                });
            }
            return Ok(Launched::Busy {
                other: Box::new(other),
                family,
                attempts: attempt,
            });
        }
        Ok(Launched::Running {
            task,
            family,
            new: true,
        })
    }
}
