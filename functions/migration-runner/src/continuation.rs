//! A pipeline job's continuation token: what the job has done so far, handed back by
//! CodePipeline on its next invocation, and trusted only when this function wrote it.

use serde::{Deserialize, Serialize};

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

    pub(crate) fn running(origin: &str, task: &str, launched: i64, job_started: i64) -> Self {
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
}
