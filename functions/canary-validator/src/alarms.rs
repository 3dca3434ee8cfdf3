//! Alarm checks: watch CloudWatch alarms over a bake window; any alarm in ALARM fails the
//! check at once, and an alarm that does not exist fails it too (a typo must not pass).

use std::future::Future;
use std::time::Instant;

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use shared::{Deadline, Error};

use crate::checks::AlarmsCheck;
use crate::outcome::{CheckFinding, Evidence};
use shared::text::human_duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: String,
}

/// The port; [`CloudWatchAlarms`] is the real one.
pub trait Alarms {
    /// The current state of each named alarm that exists (metric or composite).
    fn states(
        &self,
        names: &[String],
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Vec<AlarmState>, Error>> + Send;
}

pub struct CloudWatchAlarms {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarms {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_cloudwatch::Client::new(sdk),
        }
    }
}

fn state_name(s: Option<&StateValue>) -> String {
    s.map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "UNKNOWN".into())
}

impl Alarms for CloudWatchAlarms {
    async fn states(
        &self,
        names: &[String],
        deadline: &Deadline,
    ) -> Result<Vec<AlarmState>, Error> {
        let mut found = Vec::new();
        // A check holds at most 100 names, DescribeAlarms' limit, so one page each way;
        // the token loop is a guard should that ever change.
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let call = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(token.clone())
                .send();
            let out = deadline
                .run(call)
                .await
                .map_err(|_| Error::OutOfTime("reading alarm states"))?
                .map_err(|e| Error::from_sdk("CloudWatch", "DescribeAlarms", e))?;
            for a in out.metric_alarms() {
                found.push(AlarmState {
                    name: a.alarm_name().unwrap_or_default().to_owned(),
                    state: state_name(a.state_value()),
                    reason: a.state_reason().unwrap_or_default().to_owned(),
                });
            }
            for a in out.composite_alarms() {
                found.push(AlarmState {
                    name: a.alarm_name().unwrap_or_default().to_owned(),
                    state: state_name(a.state_value()),
                    reason: a.state_reason().unwrap_or_default().to_owned(),
                });
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(found)
    }
}

/// Watches `check.alarms` for `check.bake`, polling every `check.poll`.
pub async fn run_alarms<A: Alarms>(
    alarms: &A,
    check: &AlarmsCheck,
    deadline: &Deadline,
) -> CheckFinding {
    let left = deadline.remaining();
    if check.bake > left {
        return CheckFinding::failed(format!(
            "the bake window ({}) is longer than the time this invocation has left for checks ({}); raise the function's timeout",
            human_duration(check.bake),
            human_duration(left)
        ));
    }
    let started = Instant::now();
    let mut polls = 0u32;
    loop {
        let states = match alarms.states(&check.alarms, deadline).await {
            Ok(s) => s,
            Err(e) => {
                return CheckFinding {
                    passed: false,
                    evidence: Evidence(vec![format!(
                        "{polls} successful look(s) before the error"
                    )]),
                    reasons: vec![format!("could not read the alarms: {e}")],
                };
            }
        };
        polls += 1;
        let watched = started.elapsed();
        let mut reasons = Vec::new();
        let missing: Vec<&String> = check
            .alarms
            .iter()
            .filter(|n| !states.iter().any(|s| &s.name == *n))
            .collect();
        for name in &missing {
            reasons.push(format!("alarm {name} does not exist"));
        }
        for s in &states {
            let bad = s.state == "ALARM"
                || (check.fail_on_insufficient_data && s.state == "INSUFFICIENT_DATA");
            if bad {
                let why = if s.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.reason)
                };
                reasons.push(format!(
                    "{} is {} after {} of watching{why}",
                    s.name,
                    s.state,
                    human_duration(watched)
                ));
            }
        }
        let mut evidence: Vec<String> = states
            .iter()
            .map(|s| format!("{} {}", s.name, s.state))
            .collect();
        evidence.push(format!(
            "watched {} ({polls} look{})",
            human_duration(watched),
            if polls == 1 { "" } else { "s" }
        ));
        if !reasons.is_empty() {
            return CheckFinding {
                passed: false,
                evidence: Evidence(evidence),
                reasons,
            };
        }
        let elapsed = started.elapsed();
        if elapsed >= check.bake {
            return CheckFinding {
                passed: true,
                evidence: Evidence(evidence),
                reasons,
            };
        }
        let wait = check.poll.min(check.bake - elapsed);
        if deadline.sleep(wait).await.is_err() {
            return CheckFinding {
                passed: false,
                evidence: Evidence(evidence),
                reasons: vec![format!(
                    "ran out of time after watching {} of the {} bake window",
                    human_duration(started.elapsed()),
                    human_duration(check.bake)
                )],
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    struct Scripted(Mutex<Vec<Vec<(&'static str, &'static str)>>>);

    impl Alarms for Scripted {
        async fn states(&self, _: &[String], _: &Deadline) -> Result<Vec<AlarmState>, Error> {
            let mut left = self.0.lock().unwrap();
            let next = if left.len() > 1 {
                left.remove(0)
            } else {
                left[0].clone()
            };
            Ok(next
                .into_iter()
                .map(|(n, s)| AlarmState {
                    name: n.into(),
                    state: s.into(),
                    reason: String::new(),
                })
                .collect())
        }
    }

    fn check(bake_ms: u64) -> AlarmsCheck {
        AlarmsCheck {
            alarms: vec!["api-5xx".into(), "api-p99".into()],
            bake: Duration::from_millis(bake_ms),
            poll: Duration::from_millis(20),
            fail_on_insufficient_data: false,
        }
    }

    #[tokio::test]
    async fn quiet_alarms_pass_after_the_bake() {
        let a = Scripted(Mutex::new(vec![vec![
            ("api-5xx", "OK"),
            ("api-p99", "INSUFFICIENT_DATA"),
        ]]));
        let started = Instant::now();
        let j = run_alarms(&a, &check(100), &Deadline::after(Duration::from_secs(5))).await;
        assert!(j.passed, "{j:?}");
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(
            j.evidence
                .line()
                .starts_with("api-5xx OK · api-p99 INSUFFICIENT_DATA · watched")
        );
    }

    #[tokio::test]
    async fn an_alarm_mid_bake_fails_at_once() {
        let a = Scripted(Mutex::new(vec![
            vec![("api-5xx", "OK"), ("api-p99", "OK")],
            vec![("api-5xx", "ALARM"), ("api-p99", "OK")],
        ]));
        let started = Instant::now();
        let j = run_alarms(
            &a,
            &check(60_000),
            &Deadline::after(Duration::from_secs(120)),
        )
        .await;
        assert!(!j.passed);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(j.reasons[0].starts_with("api-5xx is ALARM after"), "{j:?}");
    }

    #[tokio::test]
    async fn a_missing_alarm_fails() {
        let a = Scripted(Mutex::new(vec![vec![("api-5xx", "OK")]]));
        let j = run_alarms(&a, &check(0), &Deadline::after(Duration::from_secs(5))).await;
        assert_eq!(j.reasons, vec!["alarm api-p99 does not exist".to_owned()]);
    }

    #[tokio::test]
    async fn a_bake_longer_than_the_budget_fails_without_waiting() {
        let a = Scripted(Mutex::new(vec![vec![]]));
        let started = Instant::now();
        let j = run_alarms(
            &a,
            &check(600_000),
            &Deadline::after(Duration::from_secs(30)),
        )
        .await;
        assert!(
            !j.passed && j.reasons[0].contains("raise the function's timeout"),
            "{j:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
