//! An ECS-native lifecycle hook: the same check book and checks, answered by return value;
//! the flow around it (guard, post once, a valid `hookStatus` on every way out) is
//! `shared::invocation::ecs_hook`'s.
//!
//! A bake longer than the invocation has left answers `IN_PROGRESS` with its state in
//! `hookDetails` (see [`crate::bake`]) and a `callBackDelay` of the poll interval, and ends on
//! a later invocation.
//!
//! The ECS guide calls `executionId` the identifier of "this hook execution" and promises only
//! that `hookDetails` persists between invocations of the same hook within a deployment, so
//! nothing here takes `executionId` for the same hook across callbacks: the bake state and the
//! news posted once are keyed on the service deployment (`resourceArn`), the stage and the
//! step; `executionId` appears in log lines, as the id of this invocation. An invocation
//! without a usable `resourceArn` carries no state: its checks run, but a bake that cannot
//! end within it answers FAILED rather than `IN_PROGRESS` with a state nothing ties to one
//! deployment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use shared::Deadline;
use shared::budget::now_millis;
use shared::error::NotForUs;
use shared::invocation::ecs_hook::{
    EcsAnswer, EcsHook, EcsReply, EcsStatus, News, Resume, Unfinished,
};
use shared::metrics;
use shared::notifier::{Notification, Notify};
use shared::report::DEFAULT_REPORT_MARGIN;
use shared::secrets::Secret;
use shared::text::human_duration;

use crate::alarms::Alarms;
use crate::app::Validator;
use crate::bake::{self, Binding};
use crate::bake_window::{BakeSoFar, next_look, window};
use crate::checks::{Check, CheckBook, EcsSelection};
use crate::config::{Config, NotifyOn};
use crate::ecs_news::news;
use crate::event::EcsHookEvent;
use crate::outcome::{OUT_OF_TIME, Run, record_hook, record_run};
use crate::probe::Probe;
use crate::render::{BakeProgress, render_ecs, render_unreadable_ecs};
use crate::run_checks::{CHECK_SLACK, CheckPlan, Unavailable, enough_time};

/// What one ECS-native invocation's checks came to, before it is answered.
pub struct EcsEvaluation {
    status: EcsStatus,
    run: Run,
    /// Returned with `IN_PROGRESS`: the sealed state and when to call again.
    resume: Option<Resume>,
    bake: Option<BakeProgress>,
    /// Whether this invocation began a bake that continues later (posted once).
    bake_started: bool,
    rollback: bool,
}

impl EcsEvaluation {
    /// A passing fault in the middle of a bake: the state goes back unchanged, to be checked
    /// on the next call. It has not been checked, and it is what comes back, so its claimed
    /// start is all that bounds the wait: a start that is missing or in the future bounds
    /// nothing (answering `IN_PROGRESS` on it could hold the deployment for ever), and one
    /// `MAX_BAKE` ago ends it.
    fn retry_later(hook: &EcsHookEvent, why: String, max_bake: Duration) -> Self {
        let now = now_millis();
        let Some(held_since) = bake::unverified_held_since(&hook.hook_details, now) else {
            return Self::failed(format!(
                "{why}; and the bake state in hookDetails gives no start (or one in the future), so how long the deployment has been held cannot be bounded"
            ));
        };
        if bake::elapsed_since(held_since, now) >= max_bake {
            return Self::failed(format!(
                "{why}; and the bake has held the deployment for MAX_BAKE ({})",
                human_duration(max_bake)
            ));
        }
        tracing::warn!(reason = %why, "a passing fault during a bake: answering IN_PROGRESS with the state unchanged");
        Self {
            status: EcsStatus::InProgress,
            run: Run {
                deployment: None,
                checks: Vec::new(),
                problem: Some(why),
            },
            resume: Some(Resume {
                after: RETRY_LATER,
                details: Value::Object(hook.hook_details.clone()),
            }),
            bake: None,
            bake_started: false,
            rollback: false,
        }
    }

    fn failed(problem: impl Into<String>) -> Self {
        Self {
            status: EcsStatus::Failed,
            run: Run::broken(None, problem),
            resume: None,
            bake: None,
            bake_started: false,
            rollback: false,
        }
    }

    /// Never hold up a rollback: whatever the checks would say, going back is safer.
    fn rollback() -> Self {
        Self {
            status: EcsStatus::Succeeded,
            run: Run {
                deployment: None,
                checks: Vec::new(),
                problem: None,
            },
            resume: None,
            bake: None,
            bake_started: false,
            rollback: true,
        }
    }
}

/// When a bake's callback cannot read its check book or key for a passing reason (throttling,
/// a timeout on a cold container): ask ECS to call again rather than roll back.
const RETRY_LATER: Duration = Duration::from_secs(30);

/// Whether a bake without a signing key has been warned about in this container.
static UNSIGNED_WARNED: AtomicBool = AtomicBool::new(false);

/// The `Status` dimension, in the CodeDeploy hooks' spelling so one alarm reads both.
fn status_dimension(status: EcsStatus) -> &'static str {
    match status {
        EcsStatus::Succeeded => "Succeeded",
        EcsStatus::Failed => "Failed",
        EcsStatus::InProgress => "InProgress",
    }
}

/// The set chosen for this invocation.
struct ChosenSet<'b> {
    /// The book key that matched, for messages and the bake state.
    name: String,
    checks: &'b [Check],
    /// The longest bake in the set.
    window: Duration,
}

impl<D, A, P, R, N> EcsHook for Validator<D, A, P, R, N>
where
    D: Sync,
    A: Alarms + Sync,
    P: Probe + Sync,
    R: Sync,
    N: Notify + Sync,
{
    type Request = EcsHookEvent;
    type Evaluation = EcsEvaluation;

    fn work_margin(&self) -> Duration {
        self.config
            .as_ref()
            .map(|c| c.report_margin)
            .unwrap_or(DEFAULT_REPORT_MARGIN)
    }

    async fn evaluate(&self, hook: &EcsHookEvent, deadline: &Deadline) -> EcsEvaluation {
        // Before the first await: the guard polls the work once before its timer, so these
        // are answered even when the timeout leaves no work time at all. First, before
        // anything that could fail: a rollback needs no configuration.
        if hook.is_rollback() {
            return EcsEvaluation::rollback();
        }
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                return EcsEvaluation::failed(format!("configuration error: {why}"));
            }
        };
        if let Err(why) = enough_time(config, deadline) {
            return EcsEvaluation::failed(why);
        }
        // Boxed: the checks' future is large, and inline it sits on the stack of whatever
        // polls the flow (a debug test thread needs about 200 KiB more).
        Box::pin(self.check_service(config, hook, deadline)).await
    }

    fn unfinished(&self, _: &EcsHookEvent, why: Unfinished) -> EcsEvaluation {
        match why {
            Unfinished::Panicked => {
                EcsEvaluation::failed("internal error while checking; see the function's log")
            }
            Unfinished::OutOfTime => EcsEvaluation::failed(format!("the checks {OUT_OF_TIME}")),
        }
    }

    /// What people should hear, and the answer ECS reads.
    fn conclude(&self, hook: &EcsHookEvent, evaluation: EcsEvaluation) -> EcsAnswer {
        let EcsEvaluation {
            status,
            run,
            resume,
            bake,
            bake_started,
            rollback,
        } = evaluation;
        record_run(
            &hook.stage,
            &run,
            if rollback {
                "Rollback"
            } else {
                status_dimension(status)
            },
        );
        let service = format!("{}/{}", hook.cluster, hook.service);
        match (&status, run.failure_summary()) {
            (_, _) if rollback => {
                tracing::warn!(service, stage = %hook.stage, execution = %hook.execution_id, revision = hook.revision_id(), "rollback invocation: answering SUCCEEDED without checks")
            }
            (EcsStatus::InProgress, _) => {
                tracing::info!(service, stage = %hook.stage, execution = %hook.execution_id, progress = %bake.map(|b| format!("{b:?}")).unwrap_or_default(), "bake continues in a later invocation")
            }
            (_, None) => {
                tracing::info!(service, stage = %hook.stage, execution = %hook.execution_id, checks = run.checks.len(), "all checks passed")
            }
            (_, Some(why)) => {
                tracing::warn!(service, stage = %hook.stage, execution = %hook.execution_id, reason = %why, "hook fails")
            }
        }
        let notify_all = matches!(&self.config, Ok(c) if c.notify_on == NotifyOn::All);
        let next_look = resume.as_ref().map(|r| r.after).unwrap_or_default();
        let news =
            news(hook, status, rollback, bake_started, notify_all, next_look).map(|(key, what)| {
                let region = hook.region().unwrap_or(&self.region).to_owned();
                News {
                    key,
                    notification: render_ecs(hook, &run, what, bake, &region),
                }
            });
        EcsAnswer {
            reply: EcsReply { status, resume },
            news,
        }
    }

    fn unreadable(&self, why: &NotForUs) -> Notification {
        record_hook("(unreadable)", "Failed");
        render_unreadable_ecs(&why.0)
    }
}

impl<D, A, P, R, N> Validator<D, A, P, R, N>
where
    A: Alarms + Sync,
    P: Probe + Sync,
{
    /// The service's checks for this stage, run for as much of their bake as fits; a bake
    /// that does not fit goes on in a later invocation.
    async fn check_service(
        &self,
        config: &Config,
        hook: &EcsHookEvent,
        deadline: &Deadline,
    ) -> EcsEvaluation {
        let deployment = hook.service_deployment();
        // Without a deployment no state is ours to carry (none was returned), so a fault is
        // not one in the middle of a bake.
        let mid_bake = deployment.is_some() && hook.hook_details.contains_key(bake::DETAILS_KEY);
        let book = match self.book(config, deadline).await {
            Ok(b) => b,
            Err(e) if e.passing && mid_bake => {
                return EcsEvaluation::retry_later(hook, e.why, config.max_bake);
            }
            Err(e) => return EcsEvaluation::failed(e.why),
        };
        let set = match choose_set(&book, config, hook) {
            Ok(set) => set,
            Err(why) => return EcsEvaluation::failed(why),
        };
        let key = match self.state_key(config, deadline).await {
            Ok(key) => key,
            Err(e) if e.passing && mid_bake => {
                return EcsEvaluation::retry_later(hook, e.why, config.max_bake);
            }
            Err(e) => return EcsEvaluation::failed(e.why),
        };
        let key = key.as_ref().map(|k| k.expose().as_bytes());
        let digest = bake::set_digest(&set.name, set.checks);
        let step = hook
            .production_weight()
            .map(|w| w.to_string())
            .unwrap_or_default();
        let binding = deployment.map(|deployment| Binding {
            deployment,
            stage: &hook.stage,
            revision: &hook.target_revision,
            step: &step,
        });
        let now = now_millis();
        let so_far = BakeSoFar::restore(hook, binding, key, &set.name, &digest, &step, now);
        let watched = so_far.watched(now);
        let progress = BakeProgress {
            watched,
            window: set.window,
            invocations: so_far.invocations,
        };
        if so_far.held(now) >= config.max_bake {
            let since = if so_far.claimed_start {
                " (by the start an untrusted bake state claims)"
            } else {
                ""
            };
            return EcsEvaluation {
                bake: Some(progress),
                ..EcsEvaluation::failed(format!(
                    "the hook has held the deployment for MAX_BAKE ({}){since} over {} invocations without the bake finishing",
                    human_duration(config.max_bake),
                    so_far.invocations
                ))
            };
        }
        let time_for_checks = deadline.remaining().saturating_sub(CHECK_SLACK * 2);
        let plans = so_far.plans(set.checks, watched, time_for_checks);
        if binding.is_none() && plans.iter().any(|p| matches!(p, CheckPlan::LookOnce)) {
            return EcsEvaluation::failed(format!(
                "the bake ({}) cannot end within this invocation, and the invocation names no service deployment (resourceArn) to carry it to the next one",
                human_duration(set.window)
            ));
        }
        let checks = self.run_checks(set.checks, &plans, deadline).await;
        let run = Run {
            deployment: None,
            checks,
            problem: None,
        };
        let bake = (set.window > Duration::ZERO).then_some(BakeProgress {
            watched: so_far.watched(now_millis()),
            ..progress
        });
        if !run.baking() {
            let status = if run.passed() {
                EcsStatus::Succeeded
            } else {
                EcsStatus::Failed
            };
            return EcsEvaluation {
                status,
                run,
                resume: None,
                bake,
                bake_started: false,
                rollback: false,
            };
        }
        let after = next_look(set.checks, &plans, watched);
        let state = so_far.next_state(&run, digest, step.clone());
        if key.is_none() && !UNSIGNED_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "HOOK_STATE_KEY is not set: the bake state in hookDetails is bound to its deployment and checked, not signed"
            );
        }
        let Some(binding) = binding else {
            return EcsEvaluation::failed(
                "the bake cannot be carried to a later invocation: the invocation names no service deployment (resourceArn)",
            );
        };
        let Some(details) = bake::seal(&hook.hook_details, &state, binding, key) else {
            return EcsEvaluation::failed(
                "the bake state could not be sealed; see the function's log",
            );
        };
        EcsEvaluation {
            status: EcsStatus::InProgress,
            run,
            resume: Some(Resume { after, details }),
            bake,
            bake_started: so_far.previous.is_none(),
            rollback: false,
        }
    }

    /// `HOOK_STATE_KEY`, when set.
    async fn state_key(
        &self,
        config: &Config,
        deadline: &Deadline,
    ) -> Result<Option<Secret>, Unavailable> {
        let Some(reference) = &config.state_key else {
            return Ok(None);
        };
        match self.resolve(reference, deadline).await {
            Ok(secret) => Ok(Some(secret)),
            Err(e) => Err(Unavailable {
                why: format!("cannot read HOOK_STATE_KEY ({}): {e}", reference.describe()),
                passing: e.is_retryable(),
            }),
        }
    }
}

/// The set for this service and stage; a set that could never pass within `MAX_BAKE` fails
/// the hook rather than hold the deployment until it runs out.
fn choose_set<'b>(
    book: &'b CheckBook,
    config: &Config,
    hook: &EcsHookEvent,
) -> Result<ChosenSet<'b>, String> {
    let (name, checks) = match book.select_ecs(
        hook.named_check_set(),
        &hook.cluster,
        &hook.service,
        &hook.stage,
    ) {
        EcsSelection::Found { name, checks } => (name, checks),
        EcsSelection::Default(checks) => ("default".to_owned(), checks),
        EcsSelection::UnknownSet(name) => {
            return Err(format!(
                "the service's hookDetails names check set {name:?}, which CHECKS' ecs_services does not have"
            ));
        }
        EcsSelection::NoStage { name } => {
            return Err(format!(
                "CHECKS' ecs_services entry {name:?} has no checks for stage {} and no default set",
                hook.stage
            ));
        }
        EcsSelection::Nothing => {
            return Err(format!(
                "no checks are configured for ECS service {}/{} and there is no default set",
                hook.cluster, hook.service
            ));
        }
    };
    let window = window(checks);
    if window > config.max_bake {
        return Err(format!(
            "check set {name:?} bakes for {}, longer than MAX_BAKE ({}): it could never pass",
            human_duration(window),
            human_duration(config.max_bake)
        ));
    }
    Ok(ChosenSet {
        name,
        checks,
        window,
    })
}
