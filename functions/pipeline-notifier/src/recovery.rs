//! "Back to green": a pipeline (or an ECS service) that succeeds after failing is told once,
//! wherever its failures go, even where successes are muted.
//!
//! Each pipeline's and service's recent outcomes are one document in the idempotency table
//! (`outcomes/pipeline/<name>`, `outcomes/service/<cluster>/<service>`), merged under a
//! version check ([`shared::versioned`]) so that events from several containers all land,
//! and ordered by event time so that a failure delivered after the success that fixed it
//! still makes that success a recovery. A recovery is due while the newest outcome is a
//! success, the one before it a failure, and it has not been announced: that is the pending
//! marker, so a post that fails is retried (by Lambda, or by the next event) and one that
//! is posted is marked announced. The post itself is claimed on the fixing run, so two
//! containers that both see it due post it once.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::console;
use shared::idempotency::STORE_FAULTS;
use shared::invocation::once::Key;
use shared::metrics;
use shared::notifier::{Attributes, Notification, Notify, Tone};
use shared::{Deadline, Error};

use crate::app::PipelineNotifier;
use crate::config::Config;
use shared::slack::{Block, Button, Message, Mrkdwn};
use shared::text::human_duration;

/// Outcomes kept per subject: enough to place a late event and to measure a red streak.
const KEPT_OUTCOMES: usize = 50;
/// Recoveries remembered as announced.
const KEPT_ANNOUNCED: usize = 20;
/// Rollbacks remembered, so their success is not taken for a fix.
const KEPT_ROLLBACKS: usize = 20;
/// Failure causes kept (one per failed run).
const KEPT_CAUSES: usize = 10;
const LONGEST_CAUSE: usize = 300;

/// The documents outlive a slow fix: a pipeline red for a month is still told when it is fixed.
pub const KEPT_FOR: Duration = Duration::from_secs(90 * 24 * 3600);

/// What the outcomes are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    Pipeline(&'a str),
    /// `cluster/service`.
    Service(&'a str),
}

impl Subject<'_> {
    pub fn key(self) -> String {
        match self {
            Self::Pipeline(p) => format!("outcomes/pipeline/{p}"),
            Self::Service(s) => format!("outcomes/service/{s}"),
        }
    }
}

/// A terminal outcome of one run (a pipeline execution, an ECS deployment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub run: String,
    pub failed: bool,
    /// Epoch seconds of the event.
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub run: String,
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcomes {
    /// Oldest first.
    pub history: Vec<Outcome>,
    /// Recoveries told, by [`Recovery::key`].
    pub announced: Vec<String>,
    /// What broke, per failed run, when an event said.
    pub causes: Vec<Cause>,
    /// Runs that roll a release back (an ECS rollback deployment, a CodePipeline rollback
    /// execution), from when: their success is not a recovery.
    pub rollbacks: Vec<Outcome>,
}

/// A recovery to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The run that succeeded.
    pub fixed_by: String,
    pub fixed_at: i64,
    /// The first failed run of the streak, and when.
    pub first_failed: String,
    pub broken_since: i64,
    pub failed_runs: usize,
    pub cause: Option<String>,
}

/// What an event tells the outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Ended(Outcome),
    /// Why a run failed (a failing action, a deployment's reason).
    Cause(Cause),
    /// A run that rolls a release back, from `at`: its success is not a fix.
    Rollback {
        run: String,
        at: i64,
    },
}

fn cut(s: &str) -> String {
    s.chars().take(LONGEST_CAUSE).collect()
}

fn keep_last<T>(v: &mut Vec<T>, most: usize) {
    if v.len() > most {
        v.drain(..v.len() - most);
    }
}

/// The pure merge the store runs (again, when another container wrote first). `None`: the
/// change is already there.
pub fn merge(current: Option<&Outcomes>, change: &Change) -> Option<Outcomes> {
    let mut next = current.cloned().unwrap_or_default();
    match change {
        Change::Ended(o) => {
            if !o.failed
                && next
                    .rollbacks
                    .iter()
                    .any(|r| r.run == o.run && o.at >= r.at)
            {
                return None;
            }
            // A redelivery is the same run, outcome and time. A run may end more than once: a
            // failed execution whose stage is retried and then succeeds fixed itself.
            if next.history.contains(o) {
                return None;
            }
            next.history.push(o.clone());
            // Stable: equal times keep the order they arrived in.
            next.history.sort_by_key(|h| h.at);
            keep_last(&mut next.history, KEPT_OUTCOMES);
        }
        Change::Cause(c) => {
            if next.causes.iter().any(|k| k.run == c.run) {
                return None;
            }
            next.causes.push(Cause {
                run: c.run.clone(),
                what: cut(&c.what),
            });
            keep_last(&mut next.causes, KEPT_CAUSES);
        }
        Change::Rollback { run, at } => {
            if next.rollbacks.iter().any(|r| &r.run == run) {
                return None;
            }
            next.rollbacks.push(Outcome {
                run: run.clone(),
                failed: false,
                at: *at,
            });
            keep_last(&mut next.rollbacks, KEPT_ROLLBACKS);
            // Its success heard before the rollback itself: it was never a fix. A success of
            // the same run from before the rollback (a deployment id reused) stays.
            next.history
                .retain(|h| &h.run != run || h.failed || h.at < *at);
        }
    }
    // A late outcome trimmed at once leaves the document as it was.
    (current != Some(&next)).then_some(next)
}

/// What an announced recovery is remembered by: the fixing run and when it succeeded (a run
/// can fail and be fixed by a retry more than once).
fn announcement(run: &str, at: i64) -> String {
    format!("{run}@{at}")
}

impl Recovery {
    /// The key its announcement is claimed and remembered by.
    pub fn key(&self) -> String {
        announcement(&self.fixed_by, self.fixed_at)
    }
}

/// Marks the recovery `key` told. `None`: it already was.
pub fn announced(current: Option<&Outcomes>, key: &str) -> Option<Outcomes> {
    let current = current?;
    if current.announced.iter().any(|a| a == key) {
        return None;
    }
    let mut next = current.clone();
    next.announced.push(key.to_owned());
    keep_last(&mut next.announced, KEPT_ANNOUNCED);
    Some(next)
}

impl Outcomes {
    /// The recovery to announce now, if one is due: the first success after the newest
    /// failures, when nothing failed since and it was not told. (Not only the newest outcome:
    /// a recovery whose post kept failing is still told when a later success comes.)
    pub fn due(&self) -> Option<Recovery> {
        let last_failure = self.history.iter().rposition(|o| o.failed)?;
        let newest = self.history.get(last_failure + 1)?;
        // Told once per streak: by whichever success was told (a late success placed before
        // the one already told is the same recovery).
        if self.history[last_failure + 1..]
            .iter()
            .any(|o| self.announced.contains(&announcement(&o.run, o.at)))
        {
            return None;
        }
        let before = &self.history[..=last_failure];
        let streak: Vec<&Outcome> = before.iter().rev().take_while(|o| o.failed).collect();
        let first = *streak.last()?;
        let cause = streak
            .iter()
            .rev()
            .find_map(|o| self.causes.iter().find(|c| c.run == o.run))
            .map(|c| c.what.clone());
        Some(Recovery {
            fixed_by: newest.run.clone(),
            fixed_at: newest.at,
            first_failed: first.run.clone(),
            broken_since: first.at,
            failed_runs: streak.len(),
            cause,
        })
    }
}

/// Where the subject lives, for the message's links.
pub struct Place<'a> {
    pub region: &'a str,
    pub account: Option<&'a str>,
}

/// The "recovered" message. Never a mention: nobody needs waking for good news.
pub fn render_recovery(subject: Subject<'_>, r: &Recovery, place: &Place<'_>) -> Notification {
    let (name, kind, fixed_label, url) = match subject {
        Subject::Pipeline(p) => (
            p.to_owned(),
            "pipeline",
            "Fixed by execution",
            console::codepipeline_execution(place.region, p, &r.fixed_by),
        ),
        Subject::Service(s) => {
            let (cluster, service) = s.split_once('/').unwrap_or(("default", s));
            (
                service.to_owned(),
                "service",
                "Fixed by deployment",
                console::ecs_service_deployments(place.region, cluster, service),
            )
        }
    };
    let red_for = human_duration(Duration::from_secs(
        u64::try_from(r.fixed_at - r.broken_since).unwrap_or(0),
    ));
    let title = format!("💚 {name} is green again");
    let runs = if r.failed_runs == 1 {
        "1 failed run".to_owned()
    } else {
        format!("{} failed runs", r.failed_runs)
    };
    let mut lead = Mrkdwn::new().plain(&format!(
        "{name} succeeded after failing for {red_for} ({runs})."
    ));
    if let Some(cause) = &r.cause {
        lead = lead
            .newline()
            .bold("What broke")
            .newline()
            .markup("> ")
            .plain(cause);
    }
    // An execution id is shown as the pipeline messages show it; a deployment id whole.
    let short = |run: &str| match subject {
        Subject::Pipeline(_) => crate::render::short_execution(run),
        Subject::Service(_) => run.to_owned(),
    };
    let first_url = match subject {
        Subject::Pipeline(p) => console::codepipeline_execution(place.region, p, &r.first_failed),
        Subject::Service(_) => url.clone(),
    };
    let mut fields = vec![
        Mrkdwn::new()
            .bold(if kind == "pipeline" {
                "Pipeline"
            } else {
                "Service"
            })
            .newline()
            .plain(&name),
        Mrkdwn::new()
            .bold(fixed_label)
            .newline()
            .link(&url, &short(&r.fixed_by)),
        Mrkdwn::new()
            .bold("First failure")
            .newline()
            .link(&first_url, &short(&r.first_failed)),
        Mrkdwn::new().bold("Red for").newline().plain(&red_for),
    ];
    if let Some(account) = place.account {
        fields.push(
            Mrkdwn::new()
                .bold("Region · account")
                .newline()
                .plain(&format!("{} · {account}", place.region)),
        );
    }
    let message = Message::new(Mrkdwn::new().plain(&title))
        .block(Block::Header(title.clone()))
        .block(Block::section(lead))
        .block(Block::fields(fields))
        .block(Block::Buttons(vec![Button {
            label: if kind == "pipeline" {
                "Open execution".into()
            } else {
                "Open deployments".into()
            },
            url,
        }]));
    let about = match subject {
        Subject::Pipeline(p) => p,
        Subject::Service(s) => s,
    };
    Notification::new(format!("[RECOVERED] {name} is green again"), message).tagged(
        Attributes::new(crate::app::FUNCTION, Tone::Recovery)
            .outcome("RECOVERED")
            .about(kind, about),
    )
}

/// `Recoveries`: recovery messages told.
const RECOVERIES: metrics::Metric = metrics::Metric::count("Recoveries");

impl<L, N> PipelineNotifier<L, N>
where
    L: Sync,
    N: Notify + Sync,
{
    /// Records `change` in `subject`'s outcomes and tells the recovery that became due, if
    /// one did. A store that cannot be reached fails the event for a retry (a recovery must
    /// not be missed); one that refuses for good is logged and counted.
    pub(crate) async fn record_outcome(
        &self,
        config: &Config,
        subject: Subject<'_>,
        change: &Change,
        place: &Place<'_>,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let Some(documents) = self
            .ports
            .outcomes
            .as_ref()
            .filter(|_| config.notify_on.tells_recoveries())
        else {
            return Ok(());
        };
        let key = subject.key();
        let merged = documents
            .update(&key, deadline, |d: Option<&Outcomes>| merge(d, change))
            .await;
        let current = match merged {
            Ok(u) => u.current().map(|v| v.value.clone()),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                metrics::count(&STORE_FAULTS, &[]);
                tracing::error!(error = %e, "cannot record the outcome: a recovery may go untold");
                return Ok(());
            }
        };
        let Some(recovery) = current.and_then(|c| c.due()) else {
            return Ok(());
        };
        let told_as = recovery.key();
        let claim = format!("{key}/{told_as}");
        let message = render_recovery(subject, &recovery, place);
        // Boxed: a debug build's test thread has 2 MiB of stack, and this nests deep.
        let told = Box::pin(self.tell_once(
            config,
            subject,
            Key::Fact("recovery", &claim),
            message,
            deadline,
        ))
        .await?;
        if told {
            metrics::count(&RECOVERIES, &[]);
            tracing::info!(subject = %key, fixed_by = %recovery.fixed_by, failed_runs = recovery.failed_runs, "recovery told");
        }
        let marked = documents
            .update(&key, deadline, |d: Option<&Outcomes>| {
                announced(d, &told_as)
            })
            .await;
        match marked {
            Ok(_) => Ok(()),
            // Its claim keeps it from being told twice while Lambda's retry marks it; the
            // claim does not last for ever, the mark does.
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "the recovery was told but could not be marked so");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(run: &str, failed: bool, at: i64) -> Change {
        Change::Ended(Outcome {
            run: run.into(),
            failed,
            at,
        })
    }

    fn apply(changes: &[Change]) -> Outcomes {
        changes.iter().fold(Outcomes::default(), |doc, c| {
            merge(Some(&doc), c).unwrap_or(doc)
        })
    }

    #[test]
    fn a_success_after_failures_is_due_once_with_the_streak_it_ended() {
        let doc = apply(&[
            ended("e1", false, 100),
            ended("e2", true, 200),
            Change::Cause(Cause {
                run: "e2".into(),
                what: "Build failed".into(),
            }),
            ended("e3", true, 300),
            ended("e4", false, 400),
        ]);
        let r = doc.due().unwrap();
        assert_eq!((r.fixed_by.as_str(), r.first_failed.as_str()), ("e4", "e2"));
        assert_eq!((r.broken_since, r.failed_runs), (200, 2));
        assert_eq!(r.cause.as_deref(), Some("Build failed"));
        let told = announced(Some(&doc), &r.key()).unwrap();
        assert_eq!(told.due(), None);
        assert_eq!(announced(Some(&told), &r.key()), None, "told once");
    }

    #[test]
    fn a_failure_delivered_after_the_success_that_fixed_it_still_makes_a_recovery() {
        let doc = apply(&[ended("e1", false, 100), ended("e3", false, 300)]);
        assert_eq!(doc.due(), None);
        let doc = apply(&[
            ended("e1", false, 100),
            ended("e3", false, 300),
            ended("e2", true, 200),
        ]);
        assert_eq!(doc.due().unwrap().fixed_by, "e3");
    }

    #[test]
    fn an_execution_retried_after_failing_fixes_itself() {
        let doc = apply(&[
            ended("e1", false, 100),
            ended("e2", true, 200),
            ended("e2", false, 300),
        ]);
        let r = doc.due().unwrap();
        assert_eq!((r.fixed_by.as_str(), r.first_failed.as_str()), ("e2", "e2"));
    }

    #[test]
    fn a_newer_failure_cancels_a_recovery_not_yet_told() {
        let doc = apply(&[
            ended("e1", true, 100),
            ended("e2", false, 200),
            ended("e3", true, 300),
        ]);
        assert_eq!(doc.due(), None);
    }

    #[test]
    fn a_duplicate_changes_nothing_and_a_first_success_is_no_recovery() {
        let doc = apply(&[ended("e1", false, 100)]);
        assert_eq!(doc.due(), None);
        assert_eq!(merge(Some(&doc), &ended("e1", false, 100)), None);
    }

    #[test]
    fn a_rollback_completing_is_not_a_recovery() {
        let doc = apply(&[
            ended("ecs-svc/1", true, 100),
            Change::Rollback {
                run: "ecs-svc/2".into(),
                at: 150,
            },
            ended("ecs-svc/2", false, 200),
        ]);
        assert_eq!(doc.due(), None);
        // Its completion heard before the rollback itself: taken back.
        let doc = apply(&[
            ended("ecs-svc/1", true, 100),
            ended("ecs-svc/2", false, 200),
            Change::Rollback {
                run: "ecs-svc/2".into(),
                at: 150,
            },
        ]);
        assert_eq!(doc.due(), None);
        let doc = apply(&[
            ended("ecs-svc/1", true, 100),
            Change::Rollback {
                run: "ecs-svc/2".into(),
                at: 150,
            },
            ended("ecs-svc/2", false, 200),
            ended("ecs-svc/3", false, 300),
        ]);
        assert_eq!(doc.due().unwrap().fixed_by, "ecs-svc/3");
    }

    #[test]
    fn a_recovery_whose_post_kept_failing_is_told_when_a_later_success_comes() {
        let doc = apply(&[
            ended("e1", true, 100),
            ended("e2", false, 200),
            ended("e3", false, 300),
        ]);
        let r = doc.due().unwrap();
        assert_eq!((r.fixed_by.as_str(), r.first_failed.as_str()), ("e2", "e1"));
    }

    #[test]
    fn a_late_success_placed_before_the_one_told_is_the_same_recovery() {
        let doc = apply(&[ended("e1", true, 100), ended("e3", false, 300)]);
        let told = announced(Some(&doc), &doc.due().unwrap().key()).unwrap();
        let late = merge(Some(&told), &ended("e2", false, 200)).unwrap();
        assert_eq!(late.due(), None, "told once");
    }

    #[test]
    fn a_rollback_reusing_an_old_deployment_id_keeps_that_deployments_old_success() {
        let doc = apply(&[
            ended("ecs-svc/1", false, 100),
            ended("ecs-svc/2", true, 200),
            Change::Rollback {
                run: "ecs-svc/1".into(),
                at: 210,
            },
            ended("ecs-svc/1", false, 300),
        ]);
        assert_eq!(doc.history.len(), 2, "{doc:?}");
        assert_eq!(doc.due(), None);
    }

    #[test]
    fn the_document_stays_bounded() {
        let changes: Vec<Change> = (0..500)
            .map(|i| ended(&format!("e{i}"), i % 2 == 0, i))
            .collect();
        let doc = apply(&changes);
        assert_eq!(doc.history.len(), KEPT_OUTCOMES);
    }
}
