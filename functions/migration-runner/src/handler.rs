//! One input in: at most one task launched for it, and its true outcome told — to
//! CodePipeline exactly once for a job, to people for everything that needs them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use shared::idempotency::Idempotency;
use shared::jobs::{FailureKind, ReportJob};
use shared::metrics;
use shared::notifier::Notify;
use shared::report::{Answerer, DEFAULT_REPORT_MARGIN};
use shared::retry::{Attempt, Backoff, RetryError, retry};
use shared::text::human_duration;
use shared::{Deadline, Error};

use crate::config::{Capacity, Config, NotifyOn};
use crate::ecs::{Cluster, Launch, LogTail, RunOutcome};
use crate::entry::{Direct, Entry, JobRequest, Push, Trigger, parse};
use crate::judge::judge;
use crate::render::{
    LogEvidence, Outcome, Place, redact_credentials, render_outcome, render_problem, render_started,
};
use crate::task::{Task, TaskDefinition, cluster_name};

const MIGRATIONS: metrics::Metric = metrics::Metric::count("Migrations");
const MIGRATION_SECONDS: metrics::Metric = metrics::Metric::seconds("MigrationSeconds");
const LAUNCH_REFUSED: metrics::Metric = metrics::Metric::count("LaunchRefused");

/// `Migrations` {Outcome} and `MigrationSeconds` (created to stopped), once per task in a
/// container: on the task's end, where every migration is told whoever launched it.
fn record_migration(outcome: &Outcome, task: &Task, now: i64) {
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

/// What the runner was built with: a configuration, or why there is none.
pub type Setup = Result<Config, String>;

/// The tag naming what launched a task; the trigger also derives its `clientToken`.
pub const TRIGGER_TAG: &str = "ops:trigger";
pub const FUNCTION_TAG: &str = "ops:function";
const FUNCTION_NAME: &str = "migration-runner";
/// CodePipeline's failure message limit (PutJobFailureResult `failureDetails.message`).
pub(crate) const MAX_JOB_MESSAGE: usize = 5000;
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
/// How often a direct invocation with `"wait": true` looks at its task.
const WAIT_POLL: Duration = Duration::from_secs(5);
/// The key under which a broken configuration is notified, once per container, for events.
const CONFIG_ERROR_KEY: &str = "configuration-error";

pub use shared::invocation::Invocation;

pub struct Handler<C, L, J, N> {
    pub setup: Setup,
    pub cluster: C,
    pub logs: L,
    pub jobs: J,
    /// Reports a job once, then notifies; also posts event outcomes.
    pub answerer: Answerer<N>,
    pub region: String,
}

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

/// The state a pipeline job carries between invocations. CodePipeline gives every invocation
/// of a continuing action a new job id, so `origin` keeps the first one: the launch's trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase", deny_unknown_fields)]
pub enum Continuation {
    /// Not launched yet: another migration runs, or capacity or ECS was short. `tries`: the
    /// launch attempts ECS answered without a task so far.
    Waiting {
        runner: u8,
        origin: String,
        since: i64,
        #[serde(default)]
        tries: u32,
    },
    Running {
        runner: u8,
        origin: String,
        task: String,
        launched: i64,
        /// When the job's first invocation came (seconds since the epoch): CodePipeline's
        /// 24-hour limit counts from the action's start, not from the launch. Absent in
        /// tokens written before it was kept; the launch is the best guess then.
        #[serde(default)]
        job_started: Option<i64>,
    },
}

const TOKEN_VERSION: u8 = 1;

impl Continuation {
    pub(crate) fn waiting(origin: &str, since: i64, tries: u32) -> Self {
        Self::Waiting {
            runner: TOKEN_VERSION,
            origin: origin.to_owned(),
            since,
            tries,
        }
    }

    fn running(origin: &str, task: &str, launched: i64, job_started: i64) -> Self {
        Self::Running {
            runner: TOKEN_VERSION,
            origin: origin.to_owned(),
            task: task.to_owned(),
            launched,
            job_started: Some(job_started),
        }
    }

    pub(crate) fn parse(token: &str) -> Option<Self> {
        serde_json::from_str::<Self>(token)
            .ok()
            .filter(|c| match c {
                Self::Waiting { runner, .. } | Self::Running { runner, .. } => {
                    *runner == TOKEN_VERSION
                }
            })
    }

    pub(crate) fn token(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The clocks a running job's task is watched by (seconds since the epoch).
#[derive(Clone, Copy)]
struct Times {
    launched: i64,
    job_started: i64,
    now: i64,
}

/// What a job's answer will be, before it is sent.
pub enum JobStep {
    Continue {
        token: Continuation,
        summary: String,
        task: Option<String>,
    },
    /// The task ended (or was stopped). Its STOPPED event tells people, as for every task;
    /// `tell` is for what no event will say (a StopTask that failed).
    Finished {
        outcome: Box<Outcome>,
        tell: bool,
    },
    Broken(FailureKind, String),
}

impl<C: Cluster + Sync, L: LogTail + Sync, J: ReportJob + Sync, N: Notify + Sync>
    Handler<C, L, J, N>
{
    /// A bad configuration does not stop the function: a pipeline job that got no answer
    /// would wait for CodePipeline's timeout. Each job is failed with the reason instead.
    pub fn new(
        setup: Setup,
        cluster: C,
        logs: L,
        jobs: J,
        notifier: N,
        region: String,
        idempotency: Idempotency,
    ) -> Self {
        if let Err(why) = &setup {
            tracing::error!(reason = %why, "configuration error: every pipeline job will be failed with it until it is fixed");
        }
        Self {
            setup,
            cluster,
            logs,
            jobs,
            answerer: Answerer::new(notifier, idempotency),
            region,
        }
    }

    pub async fn handle(&self, event: &Value, inv: Invocation) -> Result<Value, Error> {
        if let Ok(config) = &self.setup {
            metrics::context("Cluster", &config.cluster);
        }
        match parse(event) {
            // Boxed: the futures are deep, and unboxed they overflow the compiler's layout
            // query depth once the runtime wraps them.
            Ok(Entry::Job(job)) => {
                let reply = Box::pin(shared::invocation::job::answer(
                    self,
                    &self.jobs,
                    &self.answerer,
                    job,
                    inv,
                ))
                .await;
                serde_json::to_value(reply)
                    .map_err(|e| Error::bad_input(format!("the reply could not be written: {e}")))
            }
            Ok(Entry::Push(push)) => Box::pin(self.push(push, inv)).await,
            Ok(Entry::Direct(direct)) => Box::pin(self.direct(direct, inv)).await,
            Ok(Entry::TaskChange { task, .. }) => Box::pin(self.task_stopped(*task, inv)).await,
            Err(why) => {
                tracing::warn!(reason = %why.0, "input ignored; nothing launched");
                Ok(json!({"outcome": "ignored", "reason": why.0}))
            }
        }
    }

    pub(crate) fn place<'a>(&'a self, config: Option<&'a Config>) -> Place<'a> {
        Place {
            region: &self.region,
            cluster: config.map(|c| c.cluster.as_str()).unwrap_or(""),
        }
    }

    pub(crate) fn margin(&self) -> Duration {
        self.setup
            .as_ref()
            .map(|c| c.report_margin)
            .unwrap_or(DEFAULT_REPORT_MARGIN)
    }

    // ---- launching -------------------------------------------------------------------

    /// Tasks of `family` started through this function and not stopped.
    async fn running_of(
        &self,
        config: &Config,
        family: &str,
        deadline: &Deadline,
    ) -> Result<Vec<Task>, Error> {
        let mut tasks = self
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
                (FUNCTION_TAG.to_owned(), FUNCTION_NAME.to_owned()),
            ]),
        };
        let placed = retry(deadline, &CAPACITY_BACKOFF, |attempt| {
            let launch = Launch {
                client_token: trigger.client_token(tries + attempt),
                ..launch.clone()
            };
            async move {
                match self.cluster.run(&launch, deadline).await {
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

    // ---- judging ---------------------------------------------------------------------

    async fn evidence(
        &self,
        config: &Config,
        definition: Option<&TaskDefinition>,
        task_arn: &str,
        deadline: &Deadline,
    ) -> LogEvidence {
        let Some(definition) = definition else {
            return LogEvidence::Unavailable(
                "the task definition could not be read, so the log stream is unknown".into(),
            );
        };
        match definition.log_stream(&config.container, task_arn) {
            crate::task::LogStream::Unavailable(why) => LogEvidence::Unavailable(why),
            crate::task::LogStream::CloudWatch { group, stream } => match self
                .logs
                .tail(&group, &stream, config.log_tail_lines, deadline)
                .await
            {
                Ok(Some(lines)) => LogEvidence::Lines { stream, lines },
                Ok(None) => LogEvidence::Unavailable(format!(
                    "the log stream {stream} does not exist in {group} (the container may never have started)"
                )),
                Err(e) => {
                    tracing::warn!(error = %e, stream, "could not read the log tail");
                    LogEvidence::Unavailable(format!("could not read {stream}: {e}"))
                }
            },
        }
    }

    /// The judgement of a stopped (or, with `timed_out`, a stopping) task, with its log tail.
    async fn outcome_of(
        &self,
        config: &Config,
        task: &Task,
        timed_out: Option<String>,
        deadline: &Deadline,
    ) -> Outcome {
        let definition = match self
            .cluster
            .task_definition(&task.task_definition_arn, deadline)
            .await
        {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, task_definition = %task.task_definition_arn, "could not read the task definition; judging every container as essential");
                None
            }
        };
        let judgement = judge(task, definition.as_ref(), &config.container);
        let log = self
            .evidence(config, definition.as_ref(), &task.task_arn, deadline)
            .await;
        Outcome {
            task_arn: task.task_arn.clone(),
            family: task.family().to_owned(),
            judgement,
            log,
            timed_out,
        }
    }

    fn wants(config: &Config, succeeded: bool) -> bool {
        !succeeded || config.notify_on == NotifyOn::All
    }

    // ---- 1. CodePipeline job (the flow: on_job.rs) ----------------------------------

    pub(crate) async fn job_step(
        &self,
        job: &JobRequest,
        deadline: &Deadline,
        now: i64,
    ) -> JobStep {
        let config = match &self.setup {
            Ok(c) => c,
            Err(why) => {
                return JobStep::Broken(
                    FailureKind::ConfigurationError,
                    format!("configuration error: {why}"),
                );
            }
        };
        let command = match &job.command {
            Ok(c) => c.clone(),
            Err(why) => return JobStep::Broken(FailureKind::ConfigurationError, why.clone()),
        };
        if command.is_some() && !config.allow_command_override {
            return JobStep::Broken(
                FailureKind::ConfigurationError,
                "UserParameters overrides the command, but ALLOW_COMMAND_OVERRIDE is false; nothing was launched".into(),
            );
        }
        let max = config.max_runtime.as_secs() as i64;
        let state = match job.continuation.as_deref() {
            None => Continuation::waiting(&job.job_id, now, 0),
            Some(token) => match Continuation::parse(token) {
                Some(state) => state,
                None => {
                    return JobStep::Broken(
                        FailureKind::JobFailed,
                        "the continuation token is not one this function issued; nothing was launched"
                            .into(),
                    );
                }
            },
        };
        match state {
            Continuation::Waiting {
                origin,
                since,
                tries,
                ..
            } if now - since >= max => {
                // A launch whose invocation ran out of time may have started the task after all.
                let trigger = Trigger::Job(origin.clone());
                match self.own_task(config, &trigger, deadline).await {
                    Ok(Some(mine)) => {
                        // Its own runtime counts from its creation, not from the wait.
                        let launched = mine.created_at.map(|ms| ms / 1000).unwrap_or(now);
                        let times = Times {
                            launched,
                            job_started: since,
                            now,
                        };
                        self.watch(config, &origin, &mine.task_arn, times, deadline)
                            .await
                    }
                    Ok(None) => JobStep::Broken(
                        FailureKind::JobFailed,
                        format!(
                            "the migration did not start within MAX_RUNTIME ({}): another migration kept running, or ECS had no capacity; no task of this job is running",
                            human_duration(config.max_runtime)
                        ),
                    ),
                    Err(e) => JobStep::Continue {
                        token: Continuation::waiting(&origin, since, tries),
                        summary: format!(
                            "could not check for a task this job may have launched ({e}); checking again"
                        ),
                        task: None,
                    },
                }
            }
            Continuation::Waiting {
                origin,
                since,
                tries,
                ..
            } => {
                self.start_for_job(config, &origin, command, since, tries, now, deadline)
                    .await
            }
            Continuation::Running {
                origin,
                task,
                launched,
                job_started,
                ..
            } => {
                let times = Times {
                    launched,
                    job_started: job_started.unwrap_or(launched),
                    now,
                };
                self.watch(config, &origin, &task, times, deadline).await
            }
        }
    }

    /// This request's task, if it is running (found by its trigger tag).
    async fn own_task(
        &self,
        config: &Config,
        trigger: &Trigger,
        deadline: &Deadline,
    ) -> Result<Option<Task>, Error> {
        let tag = trigger.tag();
        Ok(self
            .cluster
            .active_tasks(&config.cluster, &config.started_by, deadline)
            .await?
            .into_iter()
            .find(|t| t.tags.get(TRIGGER_TAG) == Some(&tag)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_for_job(
        &self,
        config: &Config,
        origin: &str,
        command: Option<Vec<String>>,
        since: i64,
        tries: u32,
        now: i64,
        deadline: &Deadline,
    ) -> JobStep {
        let trigger = Trigger::Job(origin.to_owned());
        let wait = |summary: String, task: Option<String>, tries: u32| JobStep::Continue {
            token: Continuation::waiting(origin, since, tries),
            summary,
            task,
        };
        match self
            .launch(config, &trigger, command, None, tries, deadline)
            .await
        {
            Ok(Launched::Running { task, .. }) => JobStep::Continue {
                token: Continuation::running(origin, &task.task_arn, now, since),
                summary: format!("Migration task {} started", task.id()),
                task: Some(task.task_arn),
            },
            Ok(Launched::Busy {
                other,
                family,
                attempts,
            }) => wait(
                format!(
                    "Waiting: migration task {} of {family} is still running; this one starts after it stops",
                    other.id()
                ),
                Some(other.task_arn),
                attempts,
            ),
            Ok(Launched::NoCapacity { why, attempts }) => wait(
                format!("Waiting: ECS has no capacity yet ({why})"),
                None,
                attempts,
            ),
            Ok(Launched::Refused(why)) => {
                JobStep::Broken(FailureKind::JobFailed, format!("nothing launched: {why}"))
            }
            Err(e) if e.is_retryable() => wait(format!("Waiting: {e}; trying again"), None, tries),
            Err(e) => JobStep::Broken(FailureKind::JobFailed, format!("nothing launched: {e}")),
        }
    }

    async fn watch(
        &self,
        config: &Config,
        origin: &str,
        task_arn: &str,
        times: Times,
        deadline: &Deadline,
    ) -> JobStep {
        let Times {
            launched,
            job_started,
            now,
        } = times;
        let elapsed = Duration::from_secs(now.saturating_sub(launched).max(0) as u64);
        let action_age = Duration::from_secs(now.saturating_sub(job_started).max(0) as u64);
        let keep = |summary: String| JobStep::Continue {
            token: Continuation::running(origin, task_arn, launched, job_started),
            summary,
            task: Some(task_arn.to_owned()),
        };
        let task = match self
            .cluster
            .describe(&config.cluster, task_arn, deadline)
            .await
        {
            Ok(Some(t)) => t,
            Ok(None) => {
                return JobStep::Broken(
                    FailureKind::JobFailed,
                    format!(
                        "task {task_arn} is not known in cluster {}: it stopped over an hour ago, or the continuation token names a task this function did not start",
                        config.cluster
                    ),
                );
            }
            Err(e) if e.is_retryable() && elapsed < config.max_runtime => {
                return keep(format!(
                    "could not read the task's state ({e}); trying again"
                ));
            }
            Err(e) => return JobStep::Broken(FailureKind::JobFailed, e.to_string()),
        };
        if task.started_by.as_deref() != Some(config.started_by.as_str()) {
            return JobStep::Broken(
                FailureKind::JobFailed,
                format!(
                    "task {task_arn} was not started by this function (startedBy is not {}); not judging it",
                    config.started_by
                ),
            );
        }
        if task.is_stopped() {
            let outcome = self.outcome_of(config, &task, None, deadline).await;
            return JobStep::Finished {
                outcome: Box::new(outcome),
                tell: false,
            };
        }
        // A wait for a launch and the run each count up to MAX_RUNTIME, so together they can
        // outlast the pipeline action: the task is stopped before CodePipeline gives up on
        // the job, which would leave it running with nobody told.
        let out_of_action = action_age >= shared::jobs::longest_job();
        if elapsed >= config.max_runtime || out_of_action {
            let reason = if elapsed >= config.max_runtime {
                format!(
                    "ran longer than MAX_RUNTIME ({})",
                    human_duration(config.max_runtime)
                )
            } else {
                format!(
                    "the pipeline action has run for {}, and CodePipeline fails a Lambda invoke action after 24 hours",
                    human_duration(action_age)
                )
            };
            let stopped = self
                .cluster
                .stop(
                    &config.cluster,
                    task_arn,
                    &format!("migration-runner: {reason}"),
                    deadline,
                )
                .await;
            // Stopped, its STOPPED event tells people; not stopped, no event will.
            let (timed_out, tell) = match stopped {
                Ok(()) => (format!("{reason}; the runner stopped it"), false),
                Err(e) => (
                    format!("{reason}; stopping it failed ({e}), so it may still be running"),
                    true,
                ),
            };
            tracing::warn!(task = task_arn, reason = %timed_out, "migration timed out");
            let outcome = self
                .outcome_of(config, &task, Some(timed_out), deadline)
                .await;
            return JobStep::Finished {
                outcome: Box::new(outcome),
                tell,
            };
        }
        keep(format!(
            "Migration task {} is {} after {}",
            task.id(),
            task.last_status,
            human_duration(elapsed)
        ))
    }

    // ---- 2. ECR push -----------------------------------------------------------------

    async fn push(&self, push: Push, inv: Invocation) -> Result<Value, Error> {
        let config = match &self.setup {
            Ok(c) => c,
            Err(why) => return self.unconfigured(why, &inv.deadline).await,
        };
        let ignored = |reason: &str| {
            tracing::info!(repository = %push.repository, reason, "push ignored; nothing launched");
            Ok(json!({"outcome": "ignored", "reason": reason}))
        };
        if config.trigger_repository.as_deref() != Some(push.repository.as_str()) {
            return ignored("not the TRIGGER_REPOSITORY");
        }
        if push.action != "PUSH" || push.result != "SUCCESS" {
            return ignored("not a successful push");
        }
        // Multi-platform builds push each platform's image and their attestations by digest,
        // untagged, before the tagged index: only a tagged push is a release.
        if push.tag.is_none() {
            return ignored("an untagged push (a platform image or attestation pushed by digest)");
        }
        if let Some(glob) = &config.trigger_tag
            && !push.tag.as_deref().is_some_and(|t| glob.matches(t))
        {
            return ignored("the tag does not match TRIGGER_TAG");
        }
        if push.event_id.is_empty() {
            return Box::pin(self.launch_for_push(config, &push, &inv.deadline)).await;
        }
        let push = &push;
        let launched = self
            .answerer
            .idempotency()
            .once_or_retry(
                &format!("event/{}", push.event_id),
                &inv.deadline,
                |by| async move { Box::pin(self.launch_for_push(config, push, &by)).await },
            )
            .await?;
        Ok(launched.unwrap_or_else(
            || json!({"outcome": "skipped", "reason": "already handled (a duplicate delivery)"}),
        ))
    }

    /// `deadline` is the invocation's, less what recording the claim needs.
    async fn launch_for_push(
        &self,
        config: &Config,
        push: &Push,
        deadline: &Deadline,
    ) -> Result<Value, Error> {
        let image = config.pin_image_digest.then(|| image_by_digest(push));
        let trigger = Trigger::Push(push.digest.clone());
        let notify_by = *deadline;
        let deadline = deadline.less(self.margin());
        let what = format!(
            "{}{}",
            push.repository,
            push.tag
                .as_deref()
                .map(|t| format!(":{t}"))
                .unwrap_or_default()
        );
        let place = self.place(Some(config));
        let launched =
            Box::pin(self.launch(config, &trigger, None, image.as_deref(), 0, &deadline)).await?;
        let (result, notice) = match launched {
            Launched::Running { task, family, new } => {
                let n = (new && config.notify_on == NotifyOn::All)
                    .then(|| render_started(&family, &task.task_arn, &trigger.tag(), &place));
                (
                    json!({"outcome": "launched", "taskArn": task.task_arn, "new": new}),
                    n,
                )
            }
            Launched::Busy { other, family, .. } => {
                let why = format!(
                    "The push of {what} did not start a migration: task {} of {family} is still running. Start this one when it has finished (invoke the function with {{}}).",
                    other.id()
                );
                let n = render_problem(
                    &format!("Migration not started: {family}"),
                    &why,
                    Some(&other.task_arn),
                    &place,
                );
                (json!({"outcome": "refused", "reason": why}), Some(n))
            }
            Launched::Refused(why) => {
                let n = render_problem(
                    &format!("Migration not started for {what}"),
                    &why,
                    None,
                    &place,
                );
                (json!({"outcome": "refused", "reason": why}), Some(n))
            }
            // Lambda retries the event; its client token keeps a retry from starting a
            // second task, and the dead-letter queue's alarm tells people if all fail.
            Launched::NoCapacity { why, .. } => {
                return Err(Error::Aws {
                    service: "ECS",
                    operation: "RunTask",
                    code: None,
                    message: format!("no capacity for the migration task: {why}"),
                    retryable: true,
                });
            }
        };
        if let Some(n) = notice {
            self.answerer
                .notifier()
                .notify(&n, &notify_by)
                .await
                .into_result()?;
        }
        Ok(result)
    }

    // ---- 3. direct invocation --------------------------------------------------------

    async fn direct(&self, direct: Direct, inv: Invocation) -> Result<Value, Error> {
        let refused = |reason: String| {
            tracing::warn!(reason, "direct invocation refused; nothing launched");
            Ok(json!({"outcome": "refused", "reason": reason}))
        };
        let config = match &self.setup {
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
        let deadline = inv.deadline.less(self.margin());
        let trigger = Trigger::Invocation(inv.request_id.clone());
        match Box::pin(self.launch(config, &trigger, command, None, 0, &deadline)).await? {
            Launched::Running { task, .. } if direct.wait => {
                Ok(Box::pin(self.wait_for(config, *task, &deadline)).await)
            }
            Launched::Running { task, .. } => Ok(json!({
                "outcome": "launched",
                "taskArn": task.task_arn,
                "status": task.last_status,
            })),
            Launched::Busy { other, family, .. } => refused(format!(
                "migration task {} of {family} is still running",
                other.task_arn
            )),
            Launched::NoCapacity { why, .. } => refused(format!("ECS has no capacity: {why}")),
            Launched::Refused(why) => refused(why),
        }
    }

    async fn wait_for(&self, config: &Config, mut task: Task, deadline: &Deadline) -> Value {
        loop {
            if task.is_stopped() {
                let o = self.outcome_of(config, &task, None, deadline).await;
                let tail = match &o.log {
                    LogEvidence::Lines { lines, .. } => {
                        json!(
                            lines
                                .iter()
                                .map(|l| redact_credentials(l))
                                .collect::<Vec<_>>()
                        )
                    }
                    LogEvidence::Unavailable(why) => json!(why),
                };
                return json!({
                    "outcome": if o.succeeded() { "succeeded" } else { "failed" },
                    "taskArn": o.task_arn,
                    "exitCode": o.judgement.exit_code,
                    "stopCode": o.judgement.stop_code,
                    "reasons": o.reasons(),
                    "logTail": tail,
                });
            }
            if deadline.sleep(WAIT_POLL).await.is_err() {
                break;
            }
            match self
                .cluster
                .describe(&config.cluster, &task.task_arn, deadline)
                .await
            {
                Ok(Some(t)) => task = t,
                Ok(None) => break,
                Err(e) => tracing::warn!(error = %e, "could not describe the task; trying again"),
            }
        }
        json!({"outcome": "launched", "taskArn": task.task_arn, "status": task.last_status, "note": "still running when the invocation's time ran out; its outcome is reported when it stops"})
    }

    // ---- 4. ECS task state change ----------------------------------------------------

    async fn task_stopped(&self, task: Task, inv: Invocation) -> Result<Value, Error> {
        let config = match &self.setup {
            Ok(c) => c,
            Err(why) => return self.unconfigured(why, &inv.deadline).await,
        };
        let ignored = |reason: String| {
            tracing::info!(task = %task.task_arn, reason, "task event acknowledged");
            Ok(json!({"outcome": "ignored", "reason": reason}))
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
        // Keyed by the task alone, not by `detail.version`: its end is one fact, however many
        // STOPPED versions (or duplicates of one) ECS sends.
        let task = &task;
        let told = self
            .answerer
            .idempotency()
            .once_or_retry(
                &format!("task-stopped/{}", task.task_arn),
                &inv.deadline,
                |by| async move { Box::pin(self.tell_stopped(config, task, inv.now, &by)).await },
            )
            .await?;
        Ok(told.unwrap_or_else(
            || json!({"outcome": "skipped", "reason": "already reported (a duplicate delivery)"}),
        ))
    }

    async fn tell_stopped(
        &self,
        config: &Config,
        task: &Task,
        now: i64,
        notify_by: &Deadline,
    ) -> Result<Value, Error> {
        let deadline = notify_by.less(Duration::from_secs(1));
        // Every task's end is told here, whoever launched it: a pipeline job answers
        // CodePipeline, but its execution may be stopped or superseded before it looks again.
        let trigger = match self
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
        let o = Box::pin(self.outcome_of(config, task, None, &deadline)).await;
        tracing::info!(task = %o.task_arn, succeeded = o.succeeded(), reasons = ?o.reasons(), "migration finished");
        if Self::wants(config, o.succeeded()) {
            let n = render_outcome(&o, trigger.as_deref(), &self.place(Some(config)));
            self.answerer
                .notifier()
                .notify(&n, notify_by)
                .await
                .into_result()?;
        }
        // After the notification: a failed one is retried by Lambda and would count twice.
        record_migration(&o, task, now);
        Ok(json!({"outcome": "reported", "taskArn": o.task_arn, "succeeded": o.succeeded()}))
    }

    /// An event reaching a runner that cannot act: said once per container.
    async fn unconfigured(&self, why: &str, deadline: &Deadline) -> Result<Value, Error> {
        metrics::count(&metrics::CONFIG_ERRORS, &[]);
        tracing::error!(reason = %why, "event not handled: configuration error");
        let n = render_problem(
            "Migration runner is not configured",
            &format!("Events are not being acted on until this is fixed: {why}"),
            None,
            &self.place(None),
        );
        self.answerer
            .notify_once(CONFIG_ERROR_KEY, &n, deadline)
            .await?;
        Ok(json!({"outcome": "not-configured", "reason": format!("configuration error: {why}")}))
    }
}

/// The pushed image by digest: `<account>.dkr.ecr.<region>.<domain>/<repository>@sha256:…`.
pub fn image_by_digest(push: &Push) -> String {
    let domain = if push.region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!(
        "{}.dkr.ecr.{}.{domain}/{}@{}",
        push.account, push.region, push.repository, push.digest
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_are_recognised_only_when_issued_here() {
        let t = Continuation::running("job-1", "arn:aws:ecs:us-east-1:1:task/prod/abc", 100, 90);
        assert_eq!(Continuation::parse(&t.token()), Some(t.clone()));
        assert!(Continuation::parse(r#"{"since":100}"#).is_none());
        assert!(
            Continuation::parse(r#"{"state":"waiting","runner":2,"origin":"j","since":1}"#)
                .is_none()
        );
        assert!(Continuation::parse("not json").is_none());
        assert!(t.token().len() <= 2048);
    }

    #[test]
    fn the_pinned_image_is_the_pushed_digest_in_its_partition() {
        let push = Push {
            event_id: "e".into(),
            account: "123456789012".into(),
            region: "cn-north-1".into(),
            repository: "team/api".into(),
            digest: "sha256:abc".into(),
            tag: None,
            action: "PUSH".into(),
            result: "SUCCESS".into(),
        };
        assert_eq!(
            image_by_digest(&push),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/api@sha256:abc"
        );
    }
}
