//! ECS-native lifecycle hooks: the same check book and checks, answered by return value.
//!
//! ECS rolls the deployment back on `FAILED`, on a missing or invalid `hookStatus` and on a
//! function error, so every path here ends in a valid `hookStatus` before the deadline —
//! never an error, which would roll back without a reason anyone can read. A bake longer than
//! the invocation has left answers `IN_PROGRESS` with its state in `hookDetails` (see
//! [`crate::bake`]) and a `callBackDelay` of the poll interval, and ends on a later invocation.
//!
//! The ECS guide calls `executionId` the identifier of "this hook execution" and promises only
//! that `hookDetails` persists between invocations of the same hook within a deployment, so
//! nothing here takes `executionId` for the same hook across callbacks: the bake state and the
//! news posted once are keyed on the service deployment (`resourceArn`), the stage and the
//! step; `executionId` appears in log lines, as the id of this invocation. An invocation
//! without a usable `resourceArn` carries no state: its checks run, but a bake that cannot
//! end within it answers FAILED rather than `IN_PROGRESS` with a state nothing ties to one
//! deployment.

use super::*;
use crate::bake::{self, BakeState, Binding, Restored};
use crate::checks::EcsSelection;
use crate::ecs::{EcsHook, EcsStatus, parse_ecs_hook};
use crate::render::{BakeProgress, EcsNews, render_ecs, render_unreadable_ecs};

/// What one ECS-native invocation decided.
struct Decision {
    status: EcsStatus,
    run: Run,
    /// Returned with `IN_PROGRESS`: the sealed state and when to call again.
    resume: Option<(Value, Duration)>,
    bake: Option<BakeProgress>,
    /// Whether this invocation began a bake that continues later (posted once).
    bake_started: bool,
    rollback: bool,
}

impl Decision {
    /// A passing fault in the middle of a bake: the state goes back unchanged, to be checked
    /// on the next call. It has not been checked, and it is what comes back, so its claimed
    /// start is all that bounds the wait: a start that is missing or in the future bounds
    /// nothing (answering `IN_PROGRESS` on it could hold the deployment for ever), and one
    /// `MAX_BAKE` ago ends it.
    fn retry_later(hook: &EcsHook, why: String, max_bake: Duration) -> Self {
        let now = bake::now_ms();
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
            resume: Some((Value::Object(hook.hook_details.clone()), RETRY_LATER)),
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
}

/// Kept back from the deadline for returning the answer after the notification: the answer
/// is the return value, and a timeout rolls the deployment back.
const ANSWER_RESERVE: Duration = Duration::from_millis(500);
/// When a bake's callback cannot read its check book or key for a passing reason (throttling,
/// a timeout on a cold container): ask ECS to call again rather than roll back.
const RETRY_LATER: Duration = Duration::from_secs(30);

/// Whether a bake without a signing key has been warned about in this container.
static UNSIGNED_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whole seconds, at least one: `callBackDelay` is an integer number of seconds.
fn callback_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl<D, A, P, R, N> Handler<D, A, P, R, N>
where
    D: Deployments + Sync,
    A: Alarms + Sync,
    P: Probe + Sync,
    R: ReportHook + Sync,
    N: Notify + Sync,
{
    pub(super) async fn handle_ecs(&self, event: &Value, deadline: Deadline) -> Value {
        let hook = match parse_ecs_hook(event) {
            Ok(hook) => hook,
            Err(why) => {
                tracing::warn!(reason = %why, "an ECS lifecycle hook invocation that cannot be read: answering FAILED");
                metrics::count(
                    &HOOK_RESULTS,
                    &[("Hook", "(unreadable)"), ("Status", "Failed")],
                );
                // Posted once per deployment and stage when the payload names them. Without a
                // deployment nothing names the hook across invocations; FAILED ends it, so
                // there is no callback for the invocation's own id to repeat across.
                let field = |name| event.get(name).and_then(Value::as_str);
                let key = match (field("resourceArn"), field("executionId")) {
                    (Some(deployment), _) => format!(
                        "{deployment}/{}",
                        field("lifecycleStage").unwrap_or("(no lifecycleStage)")
                    ),
                    (None, Some(execution)) => execution.to_owned(),
                    (None, None) => "(no resourceArn or executionId)".to_owned(),
                };
                let key = key.chars().take(512).collect::<String>();
                let notification = render_unreadable_ecs(&why.0);
                let by = deadline.less(ANSWER_RESERVE);
                self.tell(format!("{key}/unreadable"), notification, &by)
                    .await;
                return json!({"hookStatus": EcsStatus::Failed.wire()});
            }
        };
        let decision = self.decide(&hook, &deadline).await;
        self.finish_ecs(&hook, decision, &deadline).await
    }

    async fn decide(&self, hook: &EcsHook, deadline: &Deadline) -> Decision {
        // First, before anything that could fail: a rollback needs no configuration.
        if hook.is_rollback() {
            // Never hold up a rollback: whatever the checks would say, going back is safer.
            return Decision {
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
            };
        }
        let config = match &self.setup {
            Ok(c) => c,
            Err(why) => {
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                return Decision::failed(format!("configuration error: {why}"));
            }
        };
        let work_deadline = match work_time(config, deadline) {
            Ok(d) => d,
            Err(why) => return Decision::failed(why),
        };
        match guarded(
            &work_deadline,
            Box::pin(self.evaluate_ecs(config, hook, &work_deadline)),
        )
        .await
        {
            Guarded::Finished(decision) => decision,
            Guarded::Panicked => {
                Decision::failed("internal error while checking; see the function's log")
            }
            Guarded::OutOfTime => Decision::failed(format!("the checks {OUT_OF_TIME}")),
        }
    }

    async fn evaluate_ecs(&self, config: &Config, hook: &EcsHook, deadline: &Deadline) -> Decision {
        let deployment = hook.service_deployment();
        // Without a deployment no state is ours to carry (none was returned), so a fault is
        // not one in the middle of a bake.
        let mid_bake = deployment.is_some() && hook.hook_details.contains_key(bake::DETAILS_KEY);
        let book = match self.book(config, deadline).await {
            Ok(b) => b,
            Err(e) if e.passing && mid_bake => {
                return Decision::retry_later(hook, e.why, config.max_bake);
            }
            Err(e) => return Decision::failed(e.why),
        };
        let (set_name, checks) = match book.select_ecs(
            hook.named_check_set(),
            &hook.cluster,
            &hook.service,
            &hook.stage,
        ) {
            EcsSelection::Found { name, checks } => (name, checks),
            EcsSelection::Default(checks) => ("default".to_owned(), checks),
            EcsSelection::UnknownSet(name) => {
                return Decision::failed(format!(
                    "the service's hookDetails names check set {name:?}, which CHECKS' ecs_services does not have"
                ));
            }
            EcsSelection::NoStage { name } => {
                return Decision::failed(format!(
                    "CHECKS' ecs_services entry {name:?} has no checks for stage {} and no default set",
                    hook.stage
                ));
            }
            EcsSelection::Nothing => {
                return Decision::failed(format!(
                    "no checks are configured for ECS service {}/{} and there is no default set",
                    hook.cluster, hook.service
                ));
            }
        };
        let window = checks
            .iter()
            .filter_map(|c| match &c.kind {
                CheckKind::Alarms(a) => Some(a.bake),
                CheckKind::Http(_) => None,
            })
            .max()
            .unwrap_or_default();
        if window > config.max_bake {
            return Decision::failed(format!(
                "check set {set_name:?} bakes for {}, longer than MAX_BAKE ({}): it could never pass",
                human_duration(window),
                human_duration(config.max_bake)
            ));
        }
        let key = match &config.state_key {
            None => None,
            Some(reference) => match self.resolve(reference, deadline).await {
                Ok(secret) => Some(secret),
                Err(e) if e.is_retryable() && mid_bake => {
                    return Decision::retry_later(
                        hook,
                        format!("cannot read HOOK_STATE_KEY ({}): {e}", reference.describe()),
                        config.max_bake,
                    );
                }
                Err(e) => {
                    return Decision::failed(format!(
                        "cannot read HOOK_STATE_KEY ({}): {e}",
                        reference.describe()
                    ));
                }
            },
        };
        let key = key.as_ref().map(|k| k.expose().as_bytes());
        let digest = bake::set_digest(&set_name, checks);
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
        let now = bake::now_ms();
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
        let watched = bake::elapsed_since(started_ms, now);
        let invocations = previous.as_ref().map_or(0, |s| s.invocations) + 1;
        let progress = BakeProgress {
            watched,
            window,
            invocations,
        };
        if bake::elapsed_since(held_since_ms, now) >= config.max_bake {
            let since = if claimed_start {
                " (by the start an untrusted bake state claims)"
            } else {
                ""
            };
            return Decision {
                bake: Some(progress),
                ..Decision::failed(format!(
                    "the hook has held the deployment for MAX_BAKE ({}){since} over {} invocations without the bake finishing",
                    human_duration(config.max_bake),
                    invocations
                ))
            };
        }
        let time_for_checks = deadline.remaining().saturating_sub(CHECK_SLACK * 2);
        let plans: Vec<Plan> = checks
            .iter()
            .enumerate()
            .map(|(i, check)| match &check.kind {
                _ if passed_before.contains(&i) => Plan::Passed,
                CheckKind::Http(_) => Plan::Run,
                CheckKind::Alarms(a) => {
                    let left = a.bake.saturating_sub(watched);
                    if left <= time_for_checks {
                        Plan::BakeFor(left)
                    } else {
                        Plan::LookOnce
                    }
                }
            })
            .collect();
        if binding.is_none() && plans.iter().any(|p| matches!(p, Plan::LookOnce)) {
            return Decision::failed(format!(
                "the bake ({}) cannot end within this invocation, and the invocation names no service deployment (resourceArn) to carry it to the next one",
                human_duration(window)
            ));
        }
        let reports = self.run_checks(checks, &plans, deadline).await;
        let run = Run {
            deployment: None,
            checks: reports,
            problem: None,
        };
        let bake = (window > Duration::ZERO).then_some(BakeProgress {
            watched: bake::elapsed_since(started_ms, bake::now_ms()),
            ..progress
        });
        if !run.baking() {
            let status = if run.passed() {
                EcsStatus::Succeeded
            } else {
                EcsStatus::Failed
            };
            return Decision {
                status,
                run,
                resume: None,
                bake,
                bake_started: false,
                rollback: false,
            };
        }
        let next_look = checks
            .iter()
            .zip(&plans)
            .filter_map(|(check, plan)| match (&check.kind, plan) {
                (CheckKind::Alarms(a), Plan::LookOnce) => {
                    Some(a.poll.min(a.bake.saturating_sub(watched)))
                }
                _ => None,
            })
            .min()
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_secs(1));
        let state = BakeState {
            held_since_ms,
            started_ms,
            passed: run
                .checks
                .iter()
                .enumerate()
                .filter(|(_, c)| c.state == CheckState::Passed)
                .map(|(i, _)| i)
                .collect(),
            invocations,
            set: digest,
            step: step.clone(),
        };
        if key.is_none() && !UNSIGNED_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "HOOK_STATE_KEY is not set: the bake state in hookDetails is bound to its deployment and checked, not signed"
            );
        }
        let Some(binding) = binding else {
            return Decision::failed(
                "the bake cannot be carried to a later invocation: the invocation names no service deployment (resourceArn)",
            );
        };
        let Some(details) = bake::seal(&hook.hook_details, &state, binding, key) else {
            return Decision::failed("the bake state could not be sealed; see the function's log");
        };
        Decision {
            status: EcsStatus::InProgress,
            run,
            resume: Some((details, next_look)),
            bake,
            bake_started: previous.is_none(),
            rollback: false,
        }
    }

    /// Notifies what people should hear, then returns the answer ECS reads.
    async fn finish_ecs(&self, hook: &EcsHook, decision: Decision, deadline: &Deadline) -> Value {
        let Decision {
            status,
            run,
            resume,
            bake,
            bake_started,
            rollback,
        } = decision;
        record_run(
            &hook.stage,
            &run,
            if rollback {
                "Rollback"
            } else {
                status.metric()
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
        let notify_all = matches!(&self.setup, Ok(c) if c.notify_on == NotifyOn::All);
        // Linear and canary deployments run the production-shift hooks at every step: the
        // weight tells the steps apart.
        let step = hook
            .production_weight()
            .map(|w| format!("/{w}"))
            .unwrap_or_default();
        // News is keyed on the deployment, never on `executionId` (which may change on every
        // callback and would post again each time). Without a usable resourceArn the service
        // and its target revision stand in: such an invocation is never called back, so the
        // only cost of the weaker key is a repeated verdict for the same revision, stage and
        // step going unposted while the idempotency store remembers the first.
        let deployment = hook.service_deployment().map_or_else(
            || format!("{}/{}", hook.service_arn, hook.target_revision),
            str::to_owned,
        );
        let base = format!("{deployment}/{}{step}", hook.stage);
        let news = if rollback {
            // One post per rollback, though ECS calls both traffic-shift hooks for it.
            Some((format!("{deployment}/rollback"), EcsNews::Rollback))
        } else {
            match status {
                // The verdict is in the key: a different answer for the same hook (only a
                // replayed or forged invocation gets one) is news, the same one is not.
                EcsStatus::Failed | EcsStatus::Succeeded
                    if status == EcsStatus::Failed || notify_all =>
                {
                    Some((
                        format!("{base}/{}", status.wire()),
                        EcsNews::Verdict(status),
                    ))
                }
                EcsStatus::InProgress if bake_started && notify_all => {
                    let next_look = resume.as_ref().map(|(_, d)| *d).unwrap_or_default();
                    Some((format!("{base}/bake"), EcsNews::BakeStarted { next_look }))
                }
                _ => None,
            }
        };
        if let Some((key, news)) = news {
            let region = hook.region().unwrap_or(&self.region).to_owned();
            let notification = render_ecs(hook, &run, news, bake, &region);
            self.tell(key, notification, &deadline.less(ANSWER_RESERVE))
                .await;
        }
        match resume {
            Some((details, delay)) => json!({
                "hookStatus": status.wire(),
                "callBackDelay": callback_seconds(delay),
                "hookDetails": details,
            }),
            None => json!({"hookStatus": status.wire()}),
        }
    }

    /// Posts once per key, across containers through the idempotency store. The answer
    /// itself is the return value, so there is no report that can fail: the shared answerer
    /// only notifies and remembers. A post that failed is not tried again for the same key.
    async fn tell(&self, key: String, notification: Notification, deadline: &Deadline) {
        let answerer = &self.ports.answerer;
        let claim = format!("ecs-news/{key}");
        let told = answerer
            .idempotency()
            .once(&claim, deadline, |by| async move {
                Box::pin(self.post_news(key, notification, &by)).await;
                Ok(())
            })
            .await;
        if let Once::Held { .. } = told {
            tracing::info!(key = %claim, "another invocation is posting this news; not posting it here");
        }
    }

    async fn post_news(&self, key: String, notification: Notification, deadline: &Deadline) {
        let answer = Answer {
            key,
            subject: notification.subject.clone(),
            if_unreported: "ECS rolls the deployment back when the hook gives no valid answer",
            notification,
            wanted: true,
            decisive: true,
            lambda_retries: false,
        };
        let answered = Box::pin(self.ports.answerer.answer(
            answer,
            |_| async { Ok(Reported::Recorded) },
            deadline,
        ))
        .await;
        if let Err(e) = answered {
            tracing::error!(error = %e, "could not notify; the hook still answers");
        }
    }
}
