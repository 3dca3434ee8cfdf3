//! Where an alarm bake across ECS-native invocations stands in this one: the state ECS handed
//! back resumed or the bake begun again, which checks still run and for how long, and the
//! state to hand back. The sealing itself is [`crate::bake`]'s.

use std::time::Duration;

use crate::bake::{self, BakeState, Binding, Restored};
use crate::checks::{Check, CheckKind};
use crate::event::EcsHookEvent;
use crate::outcome::{CheckState, Run};
use crate::run_checks::CheckPlan;

/// The longest bake window in a set; zero when nothing bakes.
pub fn window(checks: &[Check]) -> Duration {
    checks
        .iter()
        .filter_map(|c| match &c.kind {
            CheckKind::Alarms(a) => Some(a.bake),
            CheckKind::Http(_) => None,
        })
        .max()
        .unwrap_or_default()
}

/// The bake as this invocation finds it.
pub struct BakeSoFar {
    /// The state resumed, when this bake is the one ECS handed back.
    pub previous: Option<BakeState>,
    /// When the hook began holding the deployment: `MAX_BAKE` counts from here.
    pub held_since_ms: u64,
    /// Whether `held_since_ms` is the start an untrusted state claims.
    pub claimed_start: bool,
    /// When the current bake window began.
    pub started_ms: u64,
    /// Positions of the checks that passed earlier and are not run again.
    pub passed_before: Vec<usize>,
    /// Invocations so far, this one included.
    pub invocations: u32,
}

impl BakeSoFar {
    /// From what ECS handed back, for the set `set_name` (digest `digest`) at `step`.
    /// `binding` is `None` without a usable service deployment: then nothing is trusted.
    pub fn restore(
        hook: &EcsHookEvent,
        binding: Option<Binding<'_>>,
        key: Option<&[u8]>,
        set_name: &str,
        digest: &str,
        step: &str,
        now: u64,
    ) -> Self {
        let restored = match binding {
            Some(binding) => bake::restore(&hook.hook_details, binding, key),
            None => {
                if hook.hook_details.contains_key(bake::DETAILS_KEY) {
                    tracing::warn!(execution = %hook.execution_id, "the invocation has no usable resourceArn (service deployment): the bake state in hookDetails is not trusted");
                }
                Restored::Fresh
            }
        };
        // Anything but this bake's own state starts the bake from zero: only a state sealed
        // for this deployment, stage, revision and step may shorten it.
        let (previous, held_since_ms, claimed_start) = match restored {
            Restored::Fresh => (None, now, false),
            Restored::Resumed(state) => {
                let held_since = state.held_since_ms;
                (Some(state), held_since, false)
            }
            Restored::Elsewhere(state) if state.step != step => {
                // A linear/canary deployment's next step: ECS handed back the last step's
                // state, and this step bakes on its own.
                tracing::info!(from = %state.step, to = %step, "a new traffic step: starting a new bake");
                (None, now, false)
            }
            Restored::Elsewhere(_) => {
                tracing::warn!(execution = %hook.execution_id, "the bake state in hookDetails was sealed for another deployment, stage or revision: starting the bake from zero");
                (None, now, false)
            }
            Restored::Unverified { why, held_since_ms } => {
                // A rotated key or an upgrade mid-bake also lands here, so this restarts
                // rather than rolls back; MAX_BAKE keeps the claimed start only when it is
                // not later than now, which can end the hold sooner and never later.
                tracing::warn!(reason = %why, execution = %hook.execution_id, "starting the bake from zero");
                (None, held_since_ms.unwrap_or(now).min(now), true)
            }
        };
        let (started_ms, passed_before) = match &previous {
            None => (now, Vec::new()),
            Some(state) if state.set == digest => (state.started_ms, state.passed.clone()),
            Some(_) => {
                // The book changed mid-bake (a stored CHECKS was edited): the new set is
                // checked from the start, while MAX_BAKE still counts from the first answer.
                tracing::warn!(set = %set_name, "the check set changed since the bake began: starting its window again");
                (now, Vec::new())
            }
        };
        let invocations = previous.as_ref().map_or(0, |s| s.invocations) + 1;
        Self {
            previous,
            held_since_ms,
            claimed_start,
            started_ms,
            passed_before,
            invocations,
        }
    }

    /// How long the current window has been watched, at `now`.
    pub fn watched(&self, now: u64) -> Duration {
        bake::elapsed_since(self.started_ms, now)
    }

    /// How long the hook has held the deployment, at `now`.
    pub fn held(&self, now: u64) -> Duration {
        bake::elapsed_since(self.held_since_ms, now)
    }

    /// Each check's plan: what passed before is not run again, and a bake runs to its end
    /// when that fits in `time_for_checks`, or is looked at once and goes on later.
    pub fn plans(
        &self,
        checks: &[Check],
        watched: Duration,
        time_for_checks: Duration,
    ) -> Vec<CheckPlan> {
        checks
            .iter()
            .enumerate()
            .map(|(i, check)| match &check.kind {
                _ if self.passed_before.contains(&i) => CheckPlan::Passed,
                CheckKind::Http(_) => CheckPlan::Run,
                CheckKind::Alarms(a) => {
                    let left = a.bake.saturating_sub(watched);
                    if left <= time_for_checks {
                        CheckPlan::BakeFor(left)
                    } else {
                        CheckPlan::LookOnce
                    }
                }
            })
            .collect()
    }

    /// The state to hand back after `run`, for the set `digest` at `step`.
    pub fn next_state(&self, run: &Run, digest: String, step: String) -> BakeState {
        BakeState {
            held_since_ms: self.held_since_ms,
            started_ms: self.started_ms,
            passed: run
                .checks
                .iter()
                .enumerate()
                .filter(|(_, c)| c.state == CheckState::Passed)
                .map(|(i, _)| i)
                .collect(),
            invocations: self.invocations,
            set: digest,
            step,
        }
    }
}

/// When ECS should call again: the soonest next look of a bake still going on, at least a
/// second (30 s when none says).
pub fn next_look(checks: &[Check], plans: &[CheckPlan], watched: Duration) -> Duration {
    checks
        .iter()
        .zip(plans)
        .filter_map(|(check, plan)| match (&check.kind, plan) {
            (CheckKind::Alarms(a), CheckPlan::LookOnce) => {
                Some(a.poll.min(a.bake.saturating_sub(watched)))
            }
            _ => None,
        })
        .min()
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_secs(1))
}
