//! What a run found: one line of evidence per check, the verdict, and why.

use serde_json::{Value, json};

/// Why a check, or the whole run, was cut off by the deadline. The same words whichever timer
/// noticed first (a request's own cut-off at the deadline, or the guard around the check):
/// which one fires depends on scheduling, and to a person reading the report they mean the
/// same thing.
pub const OUT_OF_TIME: &str = "did not finish before the invocation's time ran out";

/// Facts shown for a check whatever its verdict (status codes, latencies, alarm states).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence(pub Vec<String>);

impl Evidence {
    pub fn line(&self) -> String {
        self.0.join(" · ")
    }
}

/// One check's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub passed: bool,
    pub evidence: Evidence,
    /// Why it failed; empty when it passed.
    pub reasons: Vec<String>,
}

impl Judgement {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub name: String,
    pub kind: &'static str,
    pub state: CheckState,
    pub evidence: Evidence,
    pub reasons: Vec<String>,
}

impl CheckReport {
    pub fn from_judgement(name: &str, kind: &'static str, j: Judgement) -> Self {
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

    pub fn result(&self) -> &'static str {
        match self.state {
            CheckState::Passed => "passed",
            CheckState::Failed => "failed",
            CheckState::Cancelled => "cancelled",
            CheckState::Baking => "baking",
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "result": self.result(),
            "evidence": self.evidence.0,
            "reasons": self.reasons,
        })
    }
}

/// The deployment as CodeDeploy describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub application: String,
    pub group: String,
    pub status: String,
    pub creator: String,
    pub compute_platform: String,
}

/// Everything the report and the notification say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub deployment: Option<Deployment>,
    pub checks: Vec<CheckReport>,
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
