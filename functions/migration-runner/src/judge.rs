//! Whether a stopped migration task succeeded. Success is narrow on purpose: the task
//! stopped because an essential container exited, and every essential container (per the
//! task definition, not only the first) exited 0. Anything else is a failure with its
//! reasons, so "the task never started" can never read as "the migration ran". The outcome
//! is judged on the task definition ECS ran, and carries the log tail as its evidence.

use shared::Deadline;

use crate::app::Runner;
use crate::config::Config;
use crate::ecs::{Cluster, LogTail};
use crate::task::{LogStream, Task, TaskDefinition};

/// The log lines read back, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvidence {
    Lines { stream: String, lines: Vec<String> },
    Unavailable(String),
}

/// A finished migration task as people are told of it: the judgement, the log tail as its
/// evidence, and whether the runner stopped it.
#[derive(Debug, Clone)]
pub struct TaskOutcome {
    pub task_arn: String,
    pub family: String,
    pub judgement: Judgement,
    pub log: LogEvidence,
    /// Set when the runner stopped the task itself (MAX_RUNTIME).
    pub timed_out: Option<String>,
}

impl TaskOutcome {
    pub fn succeeded(&self) -> bool {
        self.timed_out.is_none() && self.judgement.succeeded
    }

    pub fn reasons(&self) -> Vec<String> {
        self.timed_out
            .iter()
            .cloned()
            .chain(self.judgement.reasons.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLine {
    pub name: String,
    pub essential: bool,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub succeeded: bool,
    /// Why it failed; empty on success.
    pub reasons: Vec<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub containers: Vec<ContainerLine>,
    /// The migration container's exit code, for the pipeline's `EXIT_CODE` variable.
    pub exit_code: Option<i64>,
}

/// What a stop code means for a person (ECS API reference, Task `stopCode`).
fn stop_code_meaning(code: &str) -> &'static str {
    match code {
        "TaskFailedToStart" => "the task failed to start",
        "EssentialContainerExited" => "an essential container exited",
        "UserInitiated" => "the task was stopped by a user or an API call (StopTask)",
        "ServiceSchedulerInitiated" => "a service scheduler stopped the task",
        "SpotInterruption" => "the Fargate Spot or EC2 Spot capacity was reclaimed",
        "TerminationNotice" => "the underlying host was terminated",
        _ => "an unknown stop code",
    }
}

/// `definition` is `None` when it could not be read: then every container counts as
/// essential, failing closed rather than letting a failed container pass unseen.
pub fn judge(task: &Task, definition: Option<&TaskDefinition>, migration: &str) -> Judgement {
    let essential = |name: &str| {
        definition
            .and_then(|d| d.container(name))
            .is_none_or(|c| c.essential)
    };
    let containers: Vec<ContainerLine> = task
        .containers
        .iter()
        .map(|c| ContainerLine {
            name: c.name.clone(),
            essential: essential(&c.name),
            exit_code: c.exit_code,
            reason: c.reason.clone().filter(|r| !r.is_empty()),
        })
        .collect();
    let mut reasons = Vec::new();
    let stopped_reason = task.stopped_reason.clone().filter(|r| !r.is_empty());
    match task.stop_code.as_deref() {
        Some("EssentialContainerExited") => {}
        Some(code) => reasons.push(format!(
            "stop code {code}: {}{}",
            stop_code_meaning(code),
            stopped_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )),
        None => reasons.push(format!(
            "ECS gave no stop code{}",
            stopped_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )),
    }
    if containers.is_empty() {
        reasons.push("the task reported no containers".into());
    }
    for c in containers.iter().filter(|c| c.essential) {
        let why = c
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        match c.exit_code {
            Some(0) => {}
            Some(code) => reasons.push(format!(
                "essential container {} exited with {code}{why}",
                c.name
            )),
            None => reasons.push(format!(
                "essential container {} has no exit code{why}",
                c.name
            )),
        }
    }
    if definition.is_none() {
        reasons.push(
            "the task definition could not be read, so every container was judged as essential"
                .into(),
        );
    }
    let exit_code = containers
        .iter()
        .find(|c| c.name == migration)
        .and_then(|c| c.exit_code);
    let succeeded = reasons.is_empty();
    Judgement {
        succeeded,
        reasons,
        stop_code: task.stop_code.clone(),
        stopped_reason,
        containers,
        exit_code,
    }
}

impl<C: Cluster + Sync, L: LogTail + Sync, J, N> Runner<C, L, J, N> {
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
            LogStream::Unavailable(why) => LogEvidence::Unavailable(why),
            LogStream::CloudWatch { group, stream } => match self
                .ports
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
    pub(crate) async fn outcome_of(
        &self,
        config: &Config,
        task: &Task,
        timed_out: Option<String>,
        deadline: &Deadline,
    ) -> TaskOutcome {
        let definition = match self
            .ports
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
        TaskOutcome {
            task_arn: task.task_arn.clone(),
            family: task.family().to_owned(),
            judgement,
            log,
            timed_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{ContainerDef, ContainerRun};

    fn def(containers: &[(&str, bool)]) -> TaskDefinition {
        TaskDefinition {
            arn: "td".into(),
            family: "api-migrate".into(),
            containers: containers
                .iter()
                .map(|(n, e)| ContainerDef {
                    name: (*n).into(),
                    image: "img".into(),
                    essential: *e,
                    log_driver: None,
                    log_options: Default::default(),
                })
                .collect(),
        }
    }

    fn stopped(code: Option<&str>, runs: &[(&str, Option<i64>)]) -> Task {
        Task {
            task_arn: "arn:aws:ecs:us-east-1:1:task/prod/abc".into(),
            last_status: "STOPPED".into(),
            stop_code: code.map(str::to_owned),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: runs
                .iter()
                .map(|(n, c)| ContainerRun {
                    name: (*n).into(),
                    exit_code: *c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_essential_container_at_zero_is_success() {
        let d = def(&[("migrate", true), ("proxy", true)]);
        let j = judge(
            &stopped(
                Some("EssentialContainerExited"),
                &[("migrate", Some(0)), ("proxy", Some(0))],
            ),
            Some(&d),
            "migrate",
        );
        assert!(j.succeeded, "{:?}", j.reasons);
        assert_eq!(j.exit_code, Some(0));
    }

    #[test]
    fn a_second_essential_container_failing_fails_the_migration() {
        let d = def(&[("migrate", true), ("proxy", true)]);
        let j = judge(
            &stopped(
                Some("EssentialContainerExited"),
                &[("migrate", Some(0)), ("proxy", Some(137))],
            ),
            Some(&d),
            "migrate",
        );
        assert!(!j.succeeded);
        assert_eq!(j.reasons, ["essential container proxy exited with 137"]);
    }

    #[test]
    fn a_non_essential_sidecar_is_shown_but_does_not_decide() {
        let d = def(&[("migrate", true), ("log-router", false)]);
        let j = judge(
            &stopped(
                Some("EssentialContainerExited"),
                &[("migrate", Some(0)), ("log-router", Some(1))],
            ),
            Some(&d),
            "migrate",
        );
        assert!(j.succeeded);
        assert_eq!(j.containers[1].exit_code, Some(1));
        assert!(!j.containers[1].essential);
    }

    #[test]
    fn a_missing_exit_code_is_a_failure() {
        let d = def(&[("migrate", true)]);
        let j = judge(
            &stopped(Some("EssentialContainerExited"), &[("migrate", None)]),
            Some(&d),
            "migrate",
        );
        assert!(!j.succeeded);
        assert!(j.reasons[0].contains("no exit code"));
    }

    #[test]
    fn a_task_that_failed_to_start_says_why() {
        let mut t = stopped(Some("TaskFailedToStart"), &[("migrate", None)]);
        t.stopped_reason = Some(
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
                .into(),
        );
        let j = judge(&t, Some(&def(&[("migrate", true)])), "migrate");
        assert!(!j.succeeded);
        assert!(
            j.reasons[0].contains("failed to start")
                && j.reasons[0].contains("CannotPullContainerError")
        );
    }

    #[test]
    fn unknown_user_initiated_and_missing_stop_codes_fail_even_with_zero_exits() {
        for code in [
            Some("UserInitiated"),
            Some("SpotInterruption"),
            Some("SomethingNew"),
            None,
        ] {
            let j = judge(
                &stopped(code, &[("migrate", Some(0))]),
                Some(&def(&[("migrate", true)])),
                "migrate",
            );
            assert!(!j.succeeded, "{code:?}");
        }
    }

    #[test]
    fn without_the_task_definition_every_container_counts() {
        let j = judge(
            &stopped(
                Some("EssentialContainerExited"),
                &[("migrate", Some(0)), ("log-router", Some(1))],
            ),
            None,
            "migrate",
        );
        assert!(!j.succeeded);
        assert!(
            j.reasons
                .iter()
                .any(|r| r.contains("log-router exited with 1"))
        );
    }
}
