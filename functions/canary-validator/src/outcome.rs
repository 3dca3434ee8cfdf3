//! What a run of checks found: one line of evidence per check, each check's state, the
//! verdict and why; and the metrics each run is counted in.

use serde::{Serialize, Serializer};
use shared::metrics;

use crate::deployment::Deployment;

/// Why a check, or the whole run, was cut off by the deadline. The same words whichever timer
/// noticed first (a request's own cut-off at the deadline, or the guard around the check):
/// which one fires depends on scheduling, and to a person reading the report they mean the
/// same thing.
pub const OUT_OF_TIME: &str = "did not finish before the invocation's time ran out";

/// The evidence of a check carried over from an earlier ECS-native invocation; such a check
/// did not run again, so it is not counted again either.
pub const PASSED_EARLIER: &str = "passed in an earlier invocation";

/// Facts shown for a check whatever its verdict (status codes, latencies, alarm states).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Evidence(pub Vec<String>);

impl Evidence {
    pub fn line(&self) -> String {
        self.0.join(" · ")
    }
}

/// What one check found, before it is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFinding {
    pub passed: bool,
    pub evidence: Evidence,
    /// Why it failed; empty when it passed.
    pub reasons: Vec<String>,
}

impl CheckFinding {
    pub fn failed(reason: impl Into<String>) -> Self {
        Self {
            passed: false,
            evidence: Evidence::default(),
            reasons: vec![reason.into()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Passed,
    Failed,
    /// Still running when another check failed; the verdict no longer depended on it.
    Cancelled,
    /// An alarm bake that is quiet so far and continues in a later ECS-native invocation.
    Baking,
}

impl CheckState {
    /// The `result` of a check in a reply, and its `Result` metric dimension.
    pub fn name(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Baking => "baking",
        }
    }
}

impl Serialize for CheckState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One check as a reply, a post and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "result")]
    pub state: CheckState,
    pub evidence: Evidence,
    pub reasons: Vec<String>,
}

impl CheckOutcome {
    pub fn from_finding(name: &str, kind: &'static str, j: CheckFinding) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            state: if j.passed {
                CheckState::Passed
            } else {
                CheckState::Failed
            },
            evidence: j.evidence,
            reasons: j.reasons,
        }
    }
}

/// Everything the reply and the notification say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub deployment: Option<Deployment>,
    pub checks: Vec<CheckOutcome>,
    /// A failure that is not one check's: bad configuration, unknown deployment, no checks,
    /// a panic, the deadline.
    pub problem: Option<String>,
}

impl Run {
    pub fn broken(deployment: Option<Deployment>, problem: impl Into<String>) -> Self {
        Self {
            deployment,
            checks: Vec::new(),
            problem: Some(problem.into()),
        }
    }

    /// Nothing has failed and a bake continues in a later invocation.
    pub fn baking(&self) -> bool {
        self.problem.is_none()
            && self.checks.iter().any(|c| c.state == CheckState::Baking)
            && self
                .checks
                .iter()
                .all(|c| matches!(c.state, CheckState::Passed | CheckState::Baking))
    }

    /// Succeeded only when nothing went wrong and at least one check ran and passed all.
    pub fn passed(&self) -> bool {
        self.problem.is_none()
            && !self.checks.is_empty()
            && self.checks.iter().all(|c| c.state == CheckState::Passed)
    }

    /// One line: why the hook failed.
    pub fn failure_summary(&self) -> Option<String> {
        if self.passed() || self.baking() {
            return None;
        }
        if let Some(p) = &self.problem {
            return Some(p.clone());
        }
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.state == CheckState::Failed)
            .map(|c| match c.reasons.first() {
                Some(r) => format!("{}: {r}", c.name),
                None => c.name.clone(),
            })
            .collect();
        Some(if failed.is_empty() {
            "no check passed".to_owned()
        } else {
            failed.join("; ")
        })
    }
}

const HOOK_RESULTS: metrics::Metric = metrics::Metric::count("HookResults");
const CHECK_RESULTS: metrics::Metric = metrics::Metric::count("CheckResults");

/// `HookResults` {Hook, Status} and `CheckResults` {Type, Result}. `hook` is the CodeDeploy
/// hook or the ECS lifecycle stage.
pub fn record_run(hook: &str, run: &Run, status: &str) {
    if let Some(d) = &run.deployment {
        metrics::context("Application", &d.application);
    }
    record_hook(hook, status);
    for check in run
        .checks
        .iter()
        .filter(|c| c.evidence.0 != [PASSED_EARLIER])
    {
        metrics::count(
            &CHECK_RESULTS,
            &[("Type", check.kind), ("Result", check.state.name())],
        );
    }
}

/// `HookResults` {Hook, Status} alone: an invocation that ran no checks.
pub fn record_hook(hook: &str, status: &str) {
    metrics::count(&HOOK_RESULTS, &[("Hook", hook), ("Status", status)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_serializes_under_the_names_its_metrics_use() {
        let check = CheckOutcome {
            name: "health".into(),
            kind: "http",
            state: CheckState::Cancelled,
            evidence: Evidence(vec!["1/3 passed".into()]),
            reasons: vec!["stopped".into()],
        };
        assert_eq!(
            serde_json::to_value(&check).unwrap(),
            serde_json::json!({"name": "health", "type": "http", "result": "cancelled",
                "evidence": ["1/3 passed"], "reasons": ["stopped"]})
        );
    }
}
