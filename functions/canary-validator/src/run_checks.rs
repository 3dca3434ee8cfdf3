//! Running a set of checks from the check book, whichever hook asked: the book read, header
//! secrets resolved, every check at once under its own guard, and the first failure stopping
//! the rest.

use std::borrow::Cow;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use shared::config::LoadError;
use shared::guard::{Guarded, guarded};
use shared::metrics;
use shared::secrets::{Secret, SecretRef};
use shared::text::human_duration;
use shared::{Deadline, Error};

use crate::alarms::{Alarms, run_alarms};
use crate::app::Validator;
use crate::checks::{AlarmsCheck, Check, CheckBook, CheckKind, HttpCheck, parse_book};
use crate::config::Config;
use crate::outcome::{
    CheckFinding, CheckOutcome, CheckState, Evidence, OUT_OF_TIME, PASSED_EARLIER,
};
use crate::probe::{Probe, run_http};

/// Checks stop this long before the run's own limit, so their evidence is kept rather than
/// abandoned by the outer guard.
pub const CHECK_SLACK: Duration = Duration::from_millis(500);
/// Less than this for checks after the report margin is a misconfigured timeout.
const MIN_CHECK_TIME: Duration = Duration::from_secs(1);

/// Too little left for checks (`work`: the invocation's deadline less the report margin) is a
/// misconfigured timeout, said in words a person can act on.
pub fn enough_time(config: &Config, work: &Deadline) -> Result<(), String> {
    if work.remaining() < MIN_CHECK_TIME {
        return Err(format!(
            "the function's timeout leaves {} for checks after the {} report margin; raise the timeout",
            human_duration(work.remaining()),
            human_duration(config.report_margin)
        ));
    }
    Ok(())
}

/// Why a setting (the check book, a key) could not be read, and whether trying again later
/// may help.
pub struct Unavailable {
    pub why: String,
    pub passing: bool,
}

/// How a check runs in this invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckPlan {
    /// In full: probes, and the whole bake window.
    Run,
    /// Passed in an earlier ECS-native invocation of the same hook.
    Passed,
    /// The rest of a bake that fits in this invocation.
    BakeFor(Duration),
    /// One look at the alarms; the bake goes on in a later invocation.
    LookOnce,
}

impl<D, A, P, R, N> Validator<D, A, P, R, N>
where
    A: Alarms + Sync,
    P: Probe + Sync,
{
    pub(crate) async fn book<'a>(
        &self,
        config: &'a Config,
        deadline: &Deadline,
    ) -> Result<Cow<'a, CheckBook>, Unavailable> {
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
                Unavailable {
                    why: e.describe("CHECKS"),
                    passing: !person_must_fix,
                }
            })
    }

    pub(crate) async fn resolve(
        &self,
        reference: &SecretRef,
        deadline: &Deadline,
    ) -> Result<Secret, Error> {
        // Literals need no reader, so a validator built without one still runs inline checks.
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

    async fn run_one(&self, check: &Check, plan: &CheckPlan, deadline: &Deadline) -> CheckOutcome {
        let label = check.kind.label();
        let work = async {
            match (&check.kind, plan) {
                (_, CheckPlan::Passed) => CheckFinding {
                    passed: true,
                    evidence: Evidence(vec![PASSED_EARLIER.into()]),
                    reasons: Vec::new(),
                },
                (CheckKind::Alarms(a), CheckPlan::BakeFor(left)) => {
                    let rest = AlarmsCheck {
                        bake: *left,
                        ..a.clone()
                    };
                    run_alarms(&self.ports.alarms, &rest, deadline).await
                }
                (CheckKind::Alarms(a), CheckPlan::LookOnce) => {
                    let look = AlarmsCheck {
                        bake: Duration::ZERO,
                        ..a.clone()
                    };
                    run_alarms(&self.ports.alarms, &look, deadline).await
                }
                (CheckKind::Http(h), _) => match self.headers(h, deadline).await {
                    Ok(headers) => run_http(&self.ports.probe, h, headers, deadline).await,
                    Err(why) => CheckFinding::failed(why),
                },
                (CheckKind::Alarms(a), _) => run_alarms(&self.ports.alarms, a, deadline).await,
            }
        };
        let finding = match guarded(deadline, work).await {
            Guarded::Finished(f) => f,
            Guarded::Panicked => CheckFinding::failed("the check panicked; see the function's log"),
            Guarded::OutOfTime => CheckFinding::failed(OUT_OF_TIME),
        };
        let mut outcome = CheckOutcome::from_finding(&check.name, label, finding);
        if matches!(plan, CheckPlan::LookOnce) && outcome.state == CheckState::Passed {
            outcome.state = CheckState::Baking;
        }
        outcome
    }

    /// All checks at once; the first failure decides the verdict, so the rest are stopped
    /// rather than holding the deployment (and its rollback) for the rest of a bake.
    pub(crate) async fn run_checks(
        &self,
        checks: &[Check],
        plans: &[CheckPlan],
        deadline: &Deadline,
    ) -> Vec<CheckOutcome> {
        let deadline = deadline.less(CHECK_SLACK);
        let mut done: Vec<Option<CheckOutcome>> = vec![None; checks.len()];
        {
            let mut running: FuturesUnordered<_> = checks
                .iter()
                .enumerate()
                .zip(plans)
                .map(|((i, check), plan)| {
                    let deadline = &deadline;
                    async move { (i, self.run_one(check, plan, deadline).await) }
                })
                .collect();
            while let Some((i, outcome)) = running.next().await {
                let failed = outcome.state == CheckState::Failed;
                done[i] = Some(outcome);
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
            .map(|(outcome, check)| {
                outcome.unwrap_or_else(|| CheckOutcome {
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
