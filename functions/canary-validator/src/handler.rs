//! One hook invocation. A CodeDeploy hook: look up the deployment, run its checks, report
//! Succeeded or Failed exactly once before the deadline, then notify. An ECS-native hook
//! ([`native`]): run the service's checks and answer by return value.

mod native;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use shared::config::LoadError;
use shared::error::NotForUs;
use shared::guard::{Guarded, guarded};
use shared::hooks::{HookStatus, ReportHook};
use shared::idempotency::Once;
use shared::jobs::Reported;
use shared::metrics;
use shared::notifier::{Notification, Notify};
use shared::report::{Answer, Answerer};
use shared::secrets::{Secret, SecretRef, Secrets};
use shared::{Deadline, Error};

use crate::alarms::{Alarms, run_alarms};
use crate::checks::{AlarmsCheck, Check, CheckBook, CheckKind, HttpCheck, Selection, parse_book};
use crate::config::{Config, Hook, NotifyOn};
use crate::deployment::{Deployments, Lookup};
use crate::http::{Probe, run_http};
use crate::render::render;
use crate::report::{CheckReport, CheckState, Evidence, Judgement, OUT_OF_TIME, Run};
use shared::text::human_duration;

/// Checks stop this long before the run's own limit, so their evidence is kept rather than
/// abandoned by the outer guard.
const CHECK_SLACK: Duration = Duration::from_millis(500);
/// Less than this for checks after the report margin is a misconfigured timeout.
const MIN_CHECK_TIME: Duration = Duration::from_secs(1);

/// What the function was built with: a configuration, or why there is none.
pub type Setup = Result<Config, String>;

/// The evidence of a check carried over from an earlier ECS-native invocation; such a check
/// did not run again, so it is not counted again either.
const PASSED_EARLIER: &str = "passed in an earlier invocation";

/// Why the check book could not be had, and whether trying again later may help.
struct BookUnavailable {
    why: String,
    passing: bool,
}

/// How a check runs in this invocation.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    /// In full: probes, and the whole bake window.
    Run,
    /// Passed in an earlier ECS-native invocation of the same hook.
    Passed,
    /// The rest of a bake that fits in this invocation.
    BakeFor(Duration),
    /// One look at the alarms; the bake goes on in a later invocation.
    LookOnce,
}

/// The deadline checks must finish by: the invocation's, less the report margin. Too little
/// left is a misconfigured timeout, said in words a person can act on.
fn work_time(config: &Config, deadline: &Deadline) -> Result<Deadline, String> {
    let margin = config.report_margin;
    let work_deadline = deadline.less(margin);
    if work_deadline.remaining() < MIN_CHECK_TIME {
        return Err(format!(
            "the function's timeout leaves {} for checks after the {} report margin; raise the timeout",
            human_duration(work_deadline.remaining()),
            human_duration(margin)
        ));
    }
    Ok(work_deadline)
}

const HOOK_RESULTS: metrics::Metric = metrics::Metric::count("HookResults");
const CHECK_RESULTS: metrics::Metric = metrics::Metric::count("CheckResults");

/// `HookResults` {Hook, Status} and `CheckResults` {Type, Result}. `hook` is the CodeDeploy
/// hook or the ECS lifecycle stage.
fn record_run(hook: &str, run: &Run, status: &str) {
    if let Some(d) = &run.deployment {
        metrics::context("Application", &d.application);
    }
    metrics::count(&HOOK_RESULTS, &[("Hook", hook), ("Status", status)]);
    for check in run
        .checks
        .iter()
        .filter(|c| c.evidence.0 != [PASSED_EARLIER])
    {
        metrics::count(
            &CHECK_RESULTS,
            &[("Type", check.kind), ("Result", check.result())],
        );
    }
}

pub struct Ports<D, A, P, R, N> {
    pub deployments: D,
    pub alarms: A,
    pub probe: P,
    pub hooks: R,
    /// Reports once, then notifies; one per container.
    pub answerer: Answerer<N>,
    /// Reads `CHECKS` and header values given as references.
    pub secrets: Option<Arc<Secrets>>,
}

pub struct Handler<D, A, P, R, N> {
    setup: Setup,
    hook: Option<Hook>,
    ports: Ports<D, A, P, R, N>,
    region: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    pub deployment_id: String,
    pub hook_execution_id: String,
}

/// The two ids CodeDeploy sends, or why the input is not a hook invocation.
pub fn parse_event(event: &Value) -> Result<HookEvent, NotForUs> {
    let empty = serde_json::Map::new();
    let fields = event.as_object().unwrap_or(&empty);
    Ok(HookEvent {
        deployment_id: crate::ecs::text(fields, "DeploymentId")?,
        hook_execution_id: crate::ecs::text(fields, "LifecycleEventHookExecutionId")?,
    })
}

impl<D, A, P, R, N> Handler<D, A, P, R, N>
where
    D: Deployments + Sync,
    A: Alarms + Sync,
    P: Probe + Sync,
    R: ReportHook + Sync,
    N: Notify + Sync,
{
    /// `hook` is known even when the rest of the configuration is not, so a broken
    /// configuration's report still says which hook failed.
    pub fn new(
        setup: Setup,
        hook: Option<Hook>,
        ports: Ports<D, A, P, R, N>,
        region: String,
    ) -> Self {
        if let Err(why) = &setup {
            tracing::error!(reason = %why, "configuration error: every invocation will report Failed until it is fixed");
        }
        Self {
            hook: setup.as_ref().ok().and_then(|c| c.hook).or(hook),
            setup,
            ports,
            region,
        }
    }

    pub async fn handle(&self, event: &Value, deadline: Deadline) -> Result<Value, Error> {
        if crate::ecs::looks_like_ecs_hook(event) {
            return Ok(self.handle_ecs(event, deadline).await);
        }
        let ids = match parse_event(event) {
            Ok(ids) => ids,
            Err(why) => {
                // Without both ids there is nothing to report to.
                tracing::warn!(reason = %why, "input ignored: not a CodeDeploy lifecycle hook invocation");
                return Ok(json!({"outcome": "ignored", "reason": why.0}));
            }
        };
        // CodeDeploy invokes hooks asynchronously: a redelivered hook execution is answered
        // once, by whichever invocation claims it.
        let hook = &ids;
        let answered = self
            .ports
            .answerer
            .idempotency()
            .once_or_retry(
                &format!("hook/{}", ids.hook_execution_id),
                &deadline,
                |by| async move { Box::pin(self.codedeploy_hook(hook, by)).await },
            )
            .await?;
        Ok(answered
            .unwrap_or_else(|| json!({"outcome": "duplicate", "deploymentId": ids.deployment_id})))
    }

    /// `deadline` is the invocation's, less what recording the claim needs.
    async fn codedeploy_hook(&self, ids: &HookEvent, deadline: Deadline) -> Result<Value, Error> {
        let config = match &self.setup {
            Ok(c) => c,
            Err(why) => {
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                let run = Run::broken(None, format!("configuration error: {why}"));
                return self.finish(ids, run, &deadline).await;
            }
        };
        if config.hook.is_none() {
            metrics::count(&metrics::CONFIG_ERRORS, &[]);
            let run = Run::broken(
                None,
                "configuration error: HOOK is not set; a CodeDeploy hook needs it (BeforeAllowTraffic, AfterAllowTraffic, ...)",
            );
            return self.finish(ids, run, &deadline).await;
        }
        let work_deadline = match work_time(config, &deadline) {
            Ok(d) => d,
            Err(why) => return self.finish(ids, Run::broken(None, why), &deadline).await,
        };
        let run = match guarded(
            &work_deadline,
            Box::pin(self.evaluate(config, ids, &work_deadline)),
        )
        .await
        {
            Guarded::Finished(run) => run,
            Guarded::Panicked => Run::broken(
                None,
                "internal error while checking; see the function's log",
            ),
            Guarded::OutOfTime => Run::broken(None, format!("the checks {OUT_OF_TIME}")),
        };
        self.finish(ids, run, &deadline).await
    }

    /// Reports the run's verdict once, then notifies.
    async fn finish(&self, ids: &HookEvent, run: Run, deadline: &Deadline) -> Result<Value, Error> {
        let status = if run.passed() {
            HookStatus::Succeeded
        } else {
            HookStatus::Failed
        };
        let hook = self.hook.map(Hook::name).unwrap_or("(unknown hook)");
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
            || matches!(&self.setup, Ok(c) if c.notify_on == NotifyOn::All);
        let answer = Answer {
            key: ids.hook_execution_id.clone(),
            subject: format!("{hook} hook status for deployment {}", ids.deployment_id),
            if_unreported: "CodeDeploy holds the deployment for up to an hour, then fails it; stop it by hand to roll back sooner",
            notification: render(self.hook, &ids.deployment_id, &run, status, &self.region),
            wanted,
            decisive: true,
            // The hook payload holds two ids and nothing secret: a retry is safe.
            lambda_retries: true,
        };
        let hooks = &self.ports.hooks;
        let report = |by: Deadline| async move {
            hooks
                .report(&ids.deployment_id, &ids.hook_execution_id, status, &by)
                .await
        };
        // Boxed: unboxed, the nested futures overflow the compiler's layout query depth once
        // the runtime wraps them.
        let answered = Box::pin(self.ports.answerer.answer(answer, report, deadline)).await?;
        Ok(json!({
            "outcome": "reported",
            "hook": hook,
            "deploymentId": ids.deployment_id,
            "status": status.name(),
            "reported": answered.reported_name(),
            "notified": answered.notified,
            "problem": run.problem,
            "checks": run.checks.iter().map(CheckReport::to_json).collect::<Vec<_>>(),
        }))
    }

    async fn evaluate(&self, config: &Config, ids: &HookEvent, deadline: &Deadline) -> Run {
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
            .run_checks(checks, &vec![Plan::Run; checks.len()], deadline)
            .await;
        Run {
            deployment,
            checks,
            problem: None,
        }
    }

    async fn book<'a>(
        &self,
        config: &'a Config,
        deadline: &Deadline,
    ) -> Result<Cow<'a, CheckBook>, BookUnavailable> {
        let secrets = self.ports.secrets.as_deref();
        config
            .checks
            .load(secrets, deadline, parse_book)
            .await
            .map_err(|e| {
                // A throttled or timed-out read is not a configuration a person must fix.
                let person_must_fix = match &e {
                    LoadError::Invalid { .. } => true,
                    LoadError::Unreadable { error, .. } => !error.is_retryable(),
                };
                if person_must_fix {
                    metrics::count(&metrics::CONFIG_ERRORS, &[]);
                }
                BookUnavailable {
                    why: e.describe("CHECKS"),
                    passing: !person_must_fix,
                }
            })
    }

    async fn resolve(&self, reference: &SecretRef, deadline: &Deadline) -> Result<Secret, Error> {
        // Literals need no reader, so a handler built without one still runs inline checks.
        if let SecretRef::Literal(s) = reference {
            return Ok(s.clone());
        }
        let secrets = self.ports.secrets.as_ref().ok_or_else(|| {
            Error::bad_input("a reference is configured but no secret reader is available")
        })?;
        secrets.resolve(reference, deadline).await
    }

    async fn headers(&self, check: &HttpCheck, deadline: &Deadline) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &check.headers {
            let text = self
                .resolve(value, deadline)
                .await
                .map_err(|e| format!("header {name}: cannot read {}: {e}", value.describe()))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header name {name} is not valid"))?;
            let mut value = HeaderValue::from_str(text.expose())
                .map_err(|_| format!("header {name}: the value is not a valid header value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(headers)
    }

    async fn run_one(&self, check: &Check, plan: &Plan, deadline: &Deadline) -> CheckReport {
        let label = check.kind.label();
        let work = async {
            match (&check.kind, plan) {
                (_, Plan::Passed) => Judgement {
                    passed: true,
                    evidence: Evidence(vec![PASSED_EARLIER.into()]),
                    reasons: Vec::new(),
                },
                (CheckKind::Alarms(a), Plan::BakeFor(left)) => {
                    let rest = AlarmsCheck {
                        bake: *left,
                        ..a.clone()
                    };
                    run_alarms(&self.ports.alarms, &rest, deadline).await
                }
                (CheckKind::Alarms(a), Plan::LookOnce) => {
                    let look = AlarmsCheck {
                        bake: Duration::ZERO,
                        ..a.clone()
                    };
                    run_alarms(&self.ports.alarms, &look, deadline).await
                }
                (CheckKind::Http(h), _) => match self.headers(h, deadline).await {
                    Ok(headers) => run_http(&self.ports.probe, h, headers, deadline).await,
                    Err(why) => Judgement::failed(why),
                },
                (CheckKind::Alarms(a), _) => run_alarms(&self.ports.alarms, a, deadline).await,
            }
        };
        let judgement = match guarded(deadline, work).await {
            Guarded::Finished(j) => j,
            Guarded::Panicked => Judgement::failed("the check panicked; see the function's log"),
            Guarded::OutOfTime => Judgement::failed(OUT_OF_TIME),
        };
        let mut report = CheckReport::from_judgement(&check.name, label, judgement);
        if matches!(plan, Plan::LookOnce) && report.state == CheckState::Passed {
            report.state = CheckState::Baking;
        }
        report
    }

    /// All checks at once; the first failure decides the verdict, so the rest are stopped
    /// rather than holding the deployment (and its rollback) for the rest of a bake.
    async fn run_checks(
        &self,
        checks: &[Check],
        plans: &[Plan],
        deadline: &Deadline,
    ) -> Vec<CheckReport> {
        let deadline = deadline.less(CHECK_SLACK);
        let mut done: Vec<Option<CheckReport>> = vec![None; checks.len()];
        {
            let mut running: FuturesUnordered<_> = checks
                .iter()
                .enumerate()
                .zip(plans)
                .map(|((i, check), plan)| {
                    let deadline = &deadline;
                    // Boxed: unboxed, the nested futures overflow the compiler's layout
                    // query depth once the runtime wraps them.
                    async move { (i, Box::pin(self.run_one(check, plan, deadline)).await) }
                })
                .collect();
            while let Some((i, report)) = running.next().await {
                let failed = report.state == CheckState::Failed;
                done[i] = Some(report);
                if failed {
                    break;
                }
            }
        }
        let first_failure = done
            .iter()
            .flatten()
            .find(|r| r.state == CheckState::Failed)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        done.into_iter()
            .zip(checks)
            .map(|(report, check)| {
                report.unwrap_or_else(|| CheckReport {
                    name: check.name.clone(),
                    kind: check.kind.label(),
                    state: CheckState::Cancelled,
                    evidence: Evidence::default(),
                    reasons: vec![format!("stopped: {first_failure} had already failed")],
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::AlarmState;
    use crate::http::{ProbeRequest, ProbeResponse};
    use crate::report::Deployment;
    use shared::notifier::{ChannelOutcome, DeliveryReport};
    use std::sync::Mutex;
    use std::time::Instant;

    enum Found {
        Group(&'static str),
        Unknown,
        Unreachable,
    }

    struct FakeDeployments(Found);

    impl Deployments for FakeDeployments {
        async fn lookup(&self, _: &str, _: &Deadline) -> Result<Lookup, Error> {
            match self.0 {
                Found::Group(g) => Ok(Lookup::Found(Deployment {
                    application: "prod-api".into(),
                    group: g.into(),
                    ..Deployment::default()
                })),
                Found::Unknown => Ok(Lookup::Unknown("DeploymentDoesNotExistException".into())),
                Found::Unreachable => Err(Error::OutOfTime("looking up the deployment")),
            }
        }
    }

    struct QuietAlarms;

    impl Alarms for QuietAlarms {
        async fn states(&self, names: &[String], _: &Deadline) -> Result<Vec<AlarmState>, Error> {
            Ok(names
                .iter()
                .map(|n| AlarmState {
                    name: n.clone(),
                    state: "OK".into(),
                    reason: String::new(),
                })
                .collect())
        }
    }

    /// Answers every request with `status`, or panics when it is 0.
    struct FixedProbe(u16);

    impl Probe for FixedProbe {
        async fn send(&self, _: ProbeRequest<'_>) -> ProbeResponse {
            assert!(self.0 != 0, "probe exploded");
            ProbeResponse::Answered {
                status: self.0,
                latency: Duration::from_millis(5),
                body: Vec::new(),
                truncated: false,
                location: None,
            }
        }
    }

    #[derive(Default)]
    struct Hooks {
        reports: Mutex<Vec<(String, HookStatus)>>,
        already: bool,
    }

    impl ReportHook for Hooks {
        async fn report(
            &self,
            _: &str,
            hook_execution_id: &str,
            status: HookStatus,
            _: &Deadline,
        ) -> Result<Reported, Error> {
            self.reports
                .lock()
                .unwrap()
                .push((hook_execution_id.into(), status));
            Ok(if self.already {
                Reported::AlreadyReported
            } else {
                Reported::Recorded
            })
        }
    }

    #[derive(Default)]
    struct Notes(Mutex<Vec<Notification>>);

    impl Notify for Notes {
        async fn notify(&self, n: &Notification, _: &Deadline) -> DeliveryReport {
            self.0.lock().unwrap().push(n.clone());
            DeliveryReport {
                slack: ChannelOutcome::Delivered,
                sns: ChannelOutcome::NotConfigured,
            }
        }
    }

    type Test = Handler<FakeDeployments, QuietAlarms, FixedProbe, Hooks, Notes>;

    fn handler(checks: Value, found: Found, status: u16, already: bool) -> Test {
        handler_with(
            checks,
            found,
            status,
            already,
            &[("HOOK", "AfterAllowTraffic")],
        )
    }

    fn handler_with(
        checks: Value,
        found: Found,
        status: u16,
        already: bool,
        extra: &[(&str, &str)],
    ) -> Test {
        let checks = checks.to_string();
        let mut env: std::collections::HashMap<String, String> = [
            ("CHECKS".to_owned(), checks),
            ("REPORT_MARGIN".to_owned(), "1s".to_owned()),
        ]
        .into();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let setup = Config::from_env(&env).map_err(|e| e.to_string());
        Handler::new(
            setup,
            None,
            Ports {
                deployments: FakeDeployments(found),
                alarms: QuietAlarms,
                probe: FixedProbe(status),
                hooks: Hooks {
                    already,
                    ..Hooks::default()
                },
                answerer: Answerer::new(
                    Notes::default(),
                    shared::idempotency::Idempotency::in_memory("canary-validator"),
                ),
                secrets: None,
            },
            "us-east-1".into(),
        )
    }

    fn http() -> Value {
        json!({"type": "http", "url": "https://test.internal/health", "attempts": 1})
    }

    fn event() -> Value {
        json!({"DeploymentId": "d-TEST12345", "LifecycleEventHookExecutionId": "hook-1"})
    }

    fn budget() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    fn reports(h: &Test) -> Vec<(String, HookStatus)> {
        h.ports.hooks.reports.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn passing_checks_report_succeeded_once_and_stay_quiet() {
        let h = handler(json!([http()]), Found::Group("prod-api-dg"), 200, false);
        let out = h.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["status"], "Succeeded");
        assert_eq!(reports(&h), vec![("hook-1".into(), HookStatus::Succeeded)]);
        assert!(
            h.ports.answerer.notifier().0.lock().unwrap().is_empty(),
            "NOTIFY_ON defaults to FAIL"
        );
    }

    #[tokio::test]
    async fn a_panicking_check_still_reports_failed() {
        let h = handler(json!([http()]), Found::Group("g"), 0, false);
        let out = h.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert_eq!(
            out["checks"][0]["reasons"][0],
            "the check panicked; see the function's log"
        );
        assert_eq!(reports(&h).len(), 1);
    }

    #[tokio::test]
    async fn a_broken_configuration_reports_failed_with_the_reason() {
        let h = handler(json!([]), Found::Group("g"), 200, false);
        let out = h.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(out["problem"].as_str().unwrap().contains("CHECKS"), "{out}");
        let notes = h.ports.answerer.notifier().0.lock().unwrap();
        assert!(notes[0].body().contains("configuration error"));
    }

    #[tokio::test]
    async fn an_unknown_deployment_is_failed_with_the_reason() {
        let h = handler(json!([http()]), Found::Unknown, 200, false);
        let out = h.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(
            out["problem"]
                .as_str()
                .unwrap()
                .starts_with("unknown deployment d-TEST12345")
        );
    }

    #[tokio::test]
    async fn without_the_deployment_group_only_a_default_only_book_is_used() {
        let default_only = handler(json!([http()]), Found::Unreachable, 200, false);
        let out = default_only.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["status"], "Succeeded");
        let grouped = handler(
            json!({"deployment_groups": {"prod-api-dg": [http()]}, "default": [http()]}),
            Found::Unreachable,
            200,
            false,
        );
        let out = grouped.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(
            out["problem"]
                .as_str()
                .unwrap()
                .contains("cannot be chosen")
        );
    }

    #[tokio::test]
    async fn the_first_failure_stops_a_running_bake() {
        let h = handler(
            json!([{"type": "alarms", "alarms": ["api-5xx"], "bake": "6s", "poll": "1s"}, http()]),
            Found::Group("g"),
            500,
            false,
        );
        let started = Instant::now();
        let out = h.handle(&event(), budget()).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(out["status"], "Failed");
        assert_eq!(out["checks"][0]["result"], "cancelled");
        assert_eq!(out["checks"][1]["result"], "failed");
    }

    /// CodeDeploy's "already completed" also answers a retry whose own first report landed
    /// but whose response was lost: nobody may have been told, so the failure is posted —
    /// once: a redelivery of the same hook execution finds it claimed and done.
    #[tokio::test]
    async fn an_already_completed_failed_hook_is_notified_once_and_a_redelivery_does_nothing() {
        let h = handler(json!([http()]), Found::Group("g"), 500, true);
        let out = h.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["reported"], "AlreadyReported");
        assert_eq!(out["notified"], true);
        let again = h.handle(&event(), budget()).await.unwrap();
        assert_eq!(again["outcome"], "duplicate");
        assert_eq!(h.ports.answerer.notifier().0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_timeout_shorter_than_the_report_margin_fails_with_advice() {
        let h = handler(json!([http()]), Found::Group("g"), 200, false);
        let out = h
            .handle(&event(), Deadline::after(Duration::from_millis(1500)))
            .await
            .unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(
            out["problem"]
                .as_str()
                .unwrap()
                .contains("raise the timeout"),
            "{out}"
        );
        assert_eq!(reports(&h).len(), 1);
    }

    #[tokio::test]
    async fn input_without_both_ids_is_ignored_without_a_report() {
        let h = handler(json!([http()]), Found::Group("g"), 200, false);
        let out = h
            .handle(&json!({"DeploymentId": "d-1"}), budget())
            .await
            .unwrap();
        assert_eq!(out["outcome"], "ignored");
        assert!(reports(&h).is_empty());
    }

    const GREEN: &str = "arn:aws:ecs:us-west-2:123456789012:service-revision/prod/prod-api/222";
    const BLUE: &str = "arn:aws:ecs:us-west-2:123456789012:service-revision/prod/prod-api/111";

    const DEPLOYMENT: &str =
        "arn:aws:ecs:us-west-2:123456789012:service-deployment/prod/prod-api/EZe5RNVLH6PPzHXINuP28";

    fn ecs_event(stage: &str, green_weight: u32) -> Value {
        json!({
            "executionId": "exec-1",
            "lifecycleStage": stage,
            "resourceArn": DEPLOYMENT,
            "executionDetails": {
                "serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/prod/prod-api",
                "targetServiceRevisionArn": GREEN,
                "testTrafficWeights": {},
                "productionTrafficWeights": {GREEN: green_weight, BLUE: 100 - green_weight}
            }
        })
    }

    fn ecs_book() -> Value {
        json!({"ecs_services": {"prod-api": {
            "POST_TEST_TRAFFIC_SHIFT": [http()],
            "POST_PRODUCTION_TRAFFIC_SHIFT": [http(), {"type": "alarms", "alarms": ["api-5xx"], "bake": "30m", "poll": "20s"}]
        }}})
    }

    fn ecs_handler(status: u16) -> Test {
        handler_with(
            ecs_book(),
            Found::Unknown,
            status,
            false,
            &[("NOTIFY_ON", "ALL")],
        )
    }

    fn notes(h: &Test) -> Vec<Notification> {
        h.ports.answerer.notifier().0.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn an_ecs_hook_is_answered_by_return_value_without_a_codedeploy_report() {
        let h = ecs_handler(200);
        let out = h
            .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget())
            .await
            .unwrap();
        assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
        assert!(reports(&h).is_empty());
        assert_eq!(
            notes(&h)[0].subject,
            "POST_TEST_TRAFFIC_SHIFT passed: prod/prod-api"
        );
        let failing = ecs_handler(500);
        let out = failing
            .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget())
            .await
            .unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
        assert!(
            notes(&failing)[0]
                .body()
                .contains("rolls the deployment back")
        );
    }

    #[tokio::test]
    async fn a_bake_longer_than_the_invocation_continues_with_sealed_state() {
        let h = ecs_handler(200);
        let event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
        let out = h.handle(&event, budget()).await.unwrap();
        assert_eq!(out["hookStatus"], "IN_PROGRESS", "{out}");
        assert_eq!(out["callBackDelay"], 20);
        let state = &out["hookDetails"][crate::bake::DETAILS_KEY];
        assert_eq!(
            state["passed"],
            json!([0]),
            "the http check is not repeated"
        );
        assert_eq!(
            notes(&h)[0].subject,
            "POST_PRODUCTION_TRAFFIC_SHIFT baking: prod/prod-api",
            "the bake's start is posted once"
        );
        // The ECS guide promises `hookDetails` between invocations of one hook in one
        // deployment, and nothing about `executionId` across callbacks: each callback here
        // carries a new one, and the bake resumes and is not posted again.
        let mut again = event.clone();
        again["executionId"] = json!("exec-2");
        again["hookDetails"] = out["hookDetails"].clone();
        let second = h.handle(&again, budget()).await.unwrap();
        assert_eq!(second["hookStatus"], "IN_PROGRESS");
        assert_eq!(
            second["hookDetails"][crate::bake::DETAILS_KEY]["invocations"],
            2
        );
        assert_eq!(
            second["hookDetails"][crate::bake::DETAILS_KEY]["started_ms"],
            state["started_ms"],
            "the same bake, resumed"
        );
        assert_eq!(notes(&h).len(), 1, "callbacks are not posted");
        assert!(
            notes(&h)[0].body().contains("EZe5RNVLH6PPzHXINuP28"),
            "the post names the deployment, not the execution: {}",
            notes(&h)[0].body()
        );
    }

    /// The same verdict for the same hook in the same deployment is posted once, whatever
    /// `executionId` each invocation carries (the guide does not promise it stays the same).
    #[tokio::test]
    async fn a_verdict_is_posted_once_per_deployment_whatever_the_execution_id() {
        let h = ecs_handler(500);
        for execution in ["exec-1", "exec-2"] {
            let mut event = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
            event["executionId"] = json!(execution);
            let out = h.handle(&event, budget()).await.unwrap();
            assert_eq!(out, json!({"hookStatus": "FAILED"}));
        }
        assert_eq!(notes(&h).len(), 1);
        let mut next_deployment = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
        next_deployment["resourceArn"] = json!(DEPLOYMENT.replace("EZe5", "NEXT"));
        h.handle(&next_deployment, budget()).await.unwrap();
        assert_eq!(notes(&h).len(), 2, "another deployment's verdict is news");
    }

    /// On rollback ECS invokes both traffic-shift hooks again (each its own hook execution):
    /// the rollback is one event of the deployment, posted once.
    #[tokio::test]
    async fn a_rollback_is_posted_once_though_both_traffic_shift_hooks_are_called() {
        let h = ecs_handler(0);
        let mut test_shift = ecs_event("TEST_TRAFFIC_SHIFT", 100);
        test_shift["executionId"] = json!("exec-test-shift");
        test_shift["executionDetails"]["testTrafficWeights"] = json!({GREEN: 0, BLUE: 100});
        let mut production_shift = ecs_event("PRODUCTION_TRAFFIC_SHIFT", 0);
        production_shift["executionId"] = json!("exec-production-shift");
        for event in [test_shift, production_shift] {
            let out = h.handle(&event, budget()).await.unwrap();
            assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
        }
        assert_eq!(notes(&h).len(), 1, "{:?}", notes(&h));
    }

    /// `hookDetails` is promised only within one hook of one deployment, and anyone who can
    /// edit the service's hook can put anything there: a state altered, or sealed for another
    /// deployment, is never trusted and never shortens a bake — the bake starts from zero.
    #[tokio::test]
    async fn tampered_or_foreign_bake_state_restarts_the_bake_from_zero() {
        let h = ecs_handler(200);
        let event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
        let out = h.handle(&event, budget()).await.unwrap();
        let sealed = out["hookDetails"][crate::bake::DETAILS_KEY].clone();
        let restarted = |answer: &Value| {
            assert_eq!(answer["hookStatus"], "IN_PROGRESS", "{answer}");
            let state = &answer["hookDetails"][crate::bake::DETAILS_KEY];
            assert_eq!(state["invocations"], 1, "a new bake: {state}");
            assert!(state["started_ms"].as_u64() >= sealed["started_ms"].as_u64());
            state.clone()
        };
        let mut tampered = event.clone();
        tampered["hookDetails"] = out["hookDetails"].clone();
        tampered["hookDetails"][crate::bake::DETAILS_KEY]["started_ms"] = json!(0);
        tampered["hookDetails"][crate::bake::DETAILS_KEY]["passed"] = json!([0, 1]);
        let state = restarted(&h.handle(&tampered, budget()).await.unwrap());
        assert_eq!(state["passed"], json!([0]), "only what ran again passed");
        assert_eq!(
            state["held_since_ms"], sealed["held_since_ms"],
            "MAX_BAKE still counts from the start the altered state claims, as it is not later than now"
        );
        let mut foreign = event.clone();
        foreign["resourceArn"] = json!(DEPLOYMENT.replace("EZe5", "OTHER"));
        foreign["hookDetails"] = out["hookDetails"].clone();
        restarted(&h.handle(&foreign, budget()).await.unwrap());
        let subjects: Vec<String> = notes(&h).iter().map(|n| n.subject.clone()).collect();
        assert_eq!(
            subjects,
            vec![
                "POST_PRODUCTION_TRAFFIC_SHIFT baking: prod/prod-api",
                "POST_PRODUCTION_TRAFFIC_SHIFT baking: prod/prod-api",
            ],
            "a restart in the same deployment is not a second bake; the other deployment's is"
        );
    }

    /// A crafted start can end a hold sooner, never later: one `MAX_BAKE` ago fails, one in
    /// the future counts as now (a fresh start), so the deployment is never held past
    /// `MAX_BAKE` from the first invocation that could check its state.
    #[tokio::test]
    async fn an_untrusted_state_never_extends_max_bake() {
        let h = handler_with(
            ecs_book(),
            Found::Unknown,
            200,
            false,
            &[("MAX_BAKE", "45m")],
        );
        let event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
        let out = h.handle(&event, budget()).await.unwrap();
        let now = crate::bake::now_ms();
        let mut long_ago = event.clone();
        long_ago["hookDetails"] = out["hookDetails"].clone();
        long_ago["hookDetails"][crate::bake::DETAILS_KEY]["held_since_ms"] =
            json!(now - 46 * 60 * 1000);
        let answer = h.handle(&long_ago, budget()).await.unwrap();
        assert_eq!(answer, json!({"hookStatus": "FAILED"}));
        assert!(notes(&h).last().unwrap().body().contains("MAX_BAKE"));
        let mut future = event.clone();
        future["hookDetails"] = out["hookDetails"].clone();
        future["hookDetails"][crate::bake::DETAILS_KEY]["held_since_ms"] =
            json!(now + 24 * 3600 * 1000);
        let answer = h.handle(&future, budget()).await.unwrap();
        assert_eq!(answer["hookStatus"], "IN_PROGRESS");
        let held = answer["hookDetails"][crate::bake::DETAILS_KEY]["held_since_ms"]
            .as_u64()
            .unwrap();
        assert!(held <= crate::bake::now_ms(), "no later than a fresh start");
    }

    /// `resourceArn` is what the guide says names the service deployment: without a usable
    /// one nothing ties a state to one deployment, so none is trusted or handed out, and a
    /// bake that cannot end in this invocation fails rather than wait on state it cannot bind.
    #[tokio::test]
    async fn without_a_service_deployment_no_bake_state_is_carried() {
        let h = ecs_handler(200);
        let first = h
            .handle(&ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100), budget())
            .await
            .unwrap();
        for unusable in [
            Value::Null,
            json!("arn:aws:ecs:us-west-2:123456789012:service-deployment/prod/other-service/EZe5"),
        ] {
            let mut event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
            event["resourceArn"] = unusable;
            event["hookDetails"] = first["hookDetails"].clone();
            let out = h.handle(&event, budget()).await.unwrap();
            assert_eq!(out, json!({"hookStatus": "FAILED"}));
            assert!(
                notes(&h).last().unwrap().body().contains("resourceArn"),
                "{}",
                notes(&h).last().unwrap().body()
            );
        }
        let mut quick = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
        quick.as_object_mut().unwrap().remove("resourceArn");
        let out = h.handle(&quick, budget()).await.unwrap();
        assert_eq!(
            out,
            json!({"hookStatus": "SUCCEEDED"}),
            "checks that end in one invocation still run"
        );
    }

    #[tokio::test]
    async fn a_bake_past_max_bake_fails() {
        let h = handler_with(
            ecs_book(),
            Found::Unknown,
            200,
            false,
            &[("MAX_BAKE", "45m")],
        );
        let mut event = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
        let book = parse_book(&ecs_book().to_string()).unwrap();
        let set = &book.ecs_services["prod-api"].stages["POST_PRODUCTION_TRAFFIC_SHIFT"];
        let state = crate::bake::BakeState {
            held_since_ms: crate::bake::now_ms() - 46 * 60 * 1000,
            started_ms: crate::bake::now_ms() - 60 * 1000,
            passed: vec![0],
            invocations: 90,
            set: crate::bake::set_digest("prod-api", set),
            step: "100".into(),
        };
        let binding = crate::bake::Binding {
            deployment: DEPLOYMENT,
            stage: "POST_PRODUCTION_TRAFFIC_SHIFT",
            revision: GREEN,
            step: "100",
        };
        event["hookDetails"] =
            crate::bake::seal(&serde_json::Map::new(), &state, binding, None).unwrap();
        let out = h.handle(&event, budget()).await.unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
        assert!(notes(&h)[0].body().contains("MAX_BAKE"));
        let too_long = handler_with(
            ecs_book(),
            Found::Unknown,
            200,
            false,
            &[("MAX_BAKE", "10m")],
        );
        let out = too_long
            .handle(&ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 100), budget())
            .await
            .unwrap();
        assert_eq!(
            out,
            json!({"hookStatus": "FAILED"}),
            "a 30m bake can never fit 10m"
        );
    }

    #[tokio::test]
    async fn each_linear_step_bakes_afresh() {
        let h = ecs_handler(200);
        let step_one = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 10);
        let out = h.handle(&step_one, budget()).await.unwrap();
        assert_eq!(out["hookStatus"], "IN_PROGRESS");
        // ECS hands the last step's hookDetails back at the next step.
        let mut step_two = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT", 20);
        step_two["hookDetails"] = out["hookDetails"].clone();
        let next = h.handle(&step_two, budget()).await.unwrap();
        assert_eq!(next["hookStatus"], "IN_PROGRESS", "{next}");
        let state = &next["hookDetails"][crate::bake::DETAILS_KEY];
        assert_eq!(state["invocations"], 1, "a new bake, not the old one's");
        assert_eq!(state["step"], "20");
    }

    #[tokio::test]
    async fn a_rollback_is_not_held_up_by_a_broken_configuration() {
        let broken = handler_with(json!([]), Found::Unknown, 200, false, &[]);
        let out = broken
            .handle(&ecs_event("PRODUCTION_TRAFFIC_SHIFT", 0), budget())
            .await
            .unwrap();
        assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
    }

    #[tokio::test]
    async fn a_rollback_invocation_succeeds_at_once_and_is_notified() {
        let h = ecs_handler(0);
        let out = h
            .handle(&ecs_event("PRODUCTION_TRAFFIC_SHIFT", 0), budget())
            .await
            .unwrap();
        assert_eq!(out, json!({"hookStatus": "SUCCEEDED"}));
        let n = notes(&h);
        assert_eq!(
            n[0].subject,
            "PRODUCTION_TRAFFIC_SHIFT rollback in progress: prod/prod-api"
        );
    }

    #[tokio::test]
    async fn ecs_hooks_always_answer_a_valid_status() {
        let panicking = ecs_handler(0);
        let out = panicking
            .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget())
            .await
            .unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
        let no_stage = ecs_handler(200);
        let out = no_stage
            .handle(&ecs_event("PRE_SCALE_UP", 0), budget())
            .await
            .unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
        assert!(
            notes(&no_stage)[0]
                .body()
                .contains("no checks for stage PRE_SCALE_UP")
        );
        let mut named = ecs_event("POST_TEST_TRAFFIC_SHIFT", 0);
        named["hookDetails"] = json!({"checkSet": "typo"});
        let out = no_stage.handle(&named, budget()).await.unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
        let unreadable = no_stage
            .handle(
                &json!({"lifecycleStage": "POST_TEST_TRAFFIC_SHIFT"}),
                budget(),
            )
            .await
            .unwrap();
        assert_eq!(unreadable, json!({"hookStatus": "FAILED"}));
        let broken = handler_with(json!([]), Found::Unknown, 200, false, &[]);
        let out = broken
            .handle(&ecs_event("POST_TEST_TRAFFIC_SHIFT", 0), budget())
            .await
            .unwrap();
        assert_eq!(out, json!({"hookStatus": "FAILED"}));
    }

    #[tokio::test]
    async fn a_codedeploy_hook_without_hook_set_reports_failed() {
        let h = handler_with(json!([http()]), Found::Group("g"), 200, false, &[]);
        let out = h.handle(&event(), budget()).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(out["problem"].as_str().unwrap().contains("HOOK is not set"));
        assert_eq!(reports(&h).len(), 1);
    }
}
