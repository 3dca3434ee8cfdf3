//! A CodeDeploy lifecycle hook: look up the deployment, choose its checks, run them, and
//! answer Succeeded or Failed. The flow around it (claim, guard, report once before the
//! deadline, notify) is `shared::invocation::hook`'s.

use std::time::Duration;

use serde::Serialize;
use shared::Deadline;
use shared::hooks::{HookStatus, ReportHook};
use shared::invocation::hook::{Hook, HookAnswer, HookIds, Unfinished};
use shared::metrics;
use shared::notifier::Notify;
use shared::report::DEFAULT_REPORT_MARGIN;

use crate::alarms::Alarms;
use crate::app::Validator;
use crate::checks::Selection;
use crate::config::{CodeDeployHook, Config, NotifyOn};
use crate::deployment::{Deployments, Lookup};
use crate::outcome::{CheckOutcome, OUT_OF_TIME, Run, record_run};
use crate::probe::Probe;
use crate::render::render;
use crate::run_checks::{CheckPlan, enough_time};

/// The validator's own fields in a CodeDeploy hook's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookDetail {
    pub hook: &'static str,
    pub problem: Option<String>,
    pub checks: Vec<CheckOutcome>,
}

impl<D, A, P, R, N> Hook for Validator<D, A, P, R, N>
where
    D: Deployments + Sync,
    A: Alarms + Sync,
    P: Probe + Sync,
    R: ReportHook + Sync,
    N: Notify + Sync,
{
    type Evaluation = Run;
    type Detail = HookDetail;

    const IF_UNREPORTED: &'static str = "CodeDeploy holds the deployment for up to an hour, then fails it; stop it by hand to roll back sooner";

    fn report_margin(&self) -> Duration {
        self.config
            .as_ref()
            .map(|c| c.report_margin)
            .unwrap_or(DEFAULT_REPORT_MARGIN)
    }

    async fn evaluate(&self, ids: &HookIds, deadline: &Deadline) -> Run {
        // Before the first await: the guard polls the work once before its timer, so these
        // are answered even when the timeout leaves no work time at all.
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                return Run::broken(None, format!("configuration error: {why}"));
            }
        };
        if config.hook.is_none() {
            metrics::count(&metrics::CONFIG_ERRORS, &[]);
            return Run::broken(
                None,
                "configuration error: HOOK is not set; a CodeDeploy hook needs it (BeforeAllowTraffic, AfterAllowTraffic, ...)",
            );
        }
        if let Err(why) = enough_time(config, deadline) {
            return Run::broken(None, why);
        }
        // Boxed: the checks' future is large, and inline it sits on the stack of whatever
        // polls the flow (a debug test thread needs about 200 KiB more).
        Box::pin(self.check_deployment(config, ids, deadline)).await
    }

    fn unfinished(&self, _: &HookIds, why: Unfinished) -> Run {
        match why {
            Unfinished::Panicked => Run::broken(
                None,
                "internal error while checking; see the function's log",
            ),
            Unfinished::OutOfTime => Run::broken(None, format!("the checks {OUT_OF_TIME}")),
        }
    }

    fn conclude(&self, ids: &HookIds, run: Run) -> HookAnswer<HookDetail> {
        let status = if run.passed() {
            HookStatus::Succeeded
        } else {
            HookStatus::Failed
        };
        let hook = self
            .hook
            .map(CodeDeployHook::name)
            .unwrap_or("(unknown hook)");
        record_run(hook, &run, status.name());
        match run.failure_summary() {
            None => {
                tracing::info!(deployment_id = %ids.deployment_id, hook, checks = run.checks.len(), "all checks passed")
            }
            Some(why) => {
                tracing::warn!(deployment_id = %ids.deployment_id, hook, reason = %why, "hook fails")
            }
        }
        let wanted = status == HookStatus::Failed
            || matches!(&self.config, Ok(c) if c.notify_on == NotifyOn::All);
        HookAnswer {
            status,
            subject: format!("{hook} hook status for deployment {}", ids.deployment_id),
            notification: render(self.hook, &ids.deployment_id, &run, status, &self.region),
            wanted,
            detail: HookDetail {
                hook,
                problem: run.problem,
                checks: run.checks,
            },
        }
    }
}

impl<D, A, P, R, N> Validator<D, A, P, R, N>
where
    D: Deployments + Sync,
    A: Alarms + Sync,
    P: Probe + Sync,
{
    /// The deployment's group chooses its checks; without the group (the look-up failed)
    /// only a book that cannot check the wrong service is used.
    async fn check_deployment(&self, config: &Config, ids: &HookIds, deadline: &Deadline) -> Run {
        let (deployment, lookup_error) = match self
            .ports
            .deployments
            .lookup(&ids.deployment_id, deadline)
            .await
        {
            Ok(Lookup::Found(d)) => (Some(d), None),
            Ok(Lookup::Unknown(why)) => {
                return Run::broken(
                    None,
                    format!("unknown deployment {}: {why}", ids.deployment_id),
                );
            }
            Err(e) => (None, Some(e)),
        };
        let book = match self.book(config, deadline).await {
            Ok(b) => b,
            Err(e) => return Run::broken(deployment, e.why),
        };
        let group = deployment.as_ref().map(|d| d.group.clone());
        let checks = match book.select(group.as_deref()) {
            Selection::Group(set) | Selection::Default(set) => set,
            Selection::Ambiguous => {
                let why = lookup_error.map(|e| e.to_string()).unwrap_or_default();
                return Run::broken(
                    None,
                    format!(
                        "could not look up the deployment, so its deployment group's checks cannot be chosen: {why}"
                    ),
                );
            }
            Selection::Nothing => {
                return Run::broken(
                    deployment,
                    format!(
                        "no checks are configured for deployment group {} and there is no default set",
                        group.as_deref().unwrap_or("?")
                    ),
                );
            }
        };
        if let Some(e) = &lookup_error {
            tracing::warn!(error = %e, "deployment look-up failed; running the default checks");
        }
        let checks = self
            .run_checks(checks, &vec![CheckPlan::Run; checks.len()], deadline)
            .await;
        Run {
            deployment,
            checks,
            problem: None,
        }
    }
}
