//! What is known about one execution, built from its events in whatever order they come.
//!
//! Each pipeline, stage and action keeps the newest state reported for it, "newest" meaning
//! a later event `time`, and at the same second the stronger state: a terminal state beats
//! STOPPING, which beats RESUMED, which beats STARTED. So a STARTED delivered after its
//! SUCCEEDED changes nothing, and a stage retried later (RESUMED, a later time) does.
//! [`merge`] is pure: the store runs it again whenever another container wrote first.

use serde::{Deserialize, Serialize};
use shared::slack::Posted;

use crate::event::{Level, PipelineEvent, State};
use crate::lookup::Revision;
use crate::render::epoch;

/// Bounds on what one execution's document holds, whatever the events say: CodePipeline's
/// quotas (50 stages, 50 actions a stage), and summaries cut so the document stays far below
/// DynamoDB's 400 KB item limit.
const MOST_STAGES: usize = 50;
const MOST_ACTIONS: usize = 50;
const LONGEST_NAME: usize = 200;
const LONGEST_SUMMARY: usize = 300;

/// A state as of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub state: State,
    /// The event's `time` in epoch seconds; 0 when the event had none.
    pub at: i64,
}

impl Mark {
    fn rank(self) -> u8 {
        match self.state {
            State::Started => 0,
            State::Resumed => 1,
            State::Stopping => 2,
            _ => 3,
        }
    }

    /// Whether this mark replaces `old`: later, or as late and stronger.
    fn supersedes(self, old: Mark) -> bool {
        (self.at, self.rank()) > (old.at, old.rank())
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 3
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionView {
    pub name: String,
    pub mark: Mark,
    pub approval: bool,
    pub provider: Option<String>,
    pub error_code: Option<String>,
    pub summary: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageView {
    pub name: String,
    pub mark: Option<Mark>,
    /// When the stage was first heard of: stages are shown in the order they ran.
    pub first_at: i64,
    pub actions: Vec<ActionView>,
}

/// One execution, as stored (one document per pipeline and execution id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Execution {
    pub pipeline: String,
    pub execution_id: String,
    pub region: String,
    pub account: Option<String>,
    pub pipeline_mark: Option<Mark>,
    pub stages: Vec<StageView>,
    /// Epoch seconds: `detail.start-time`, or the earliest event seen.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub revisions: Vec<StoredRevision>,
    /// Whether the revisions were looked up (found or not): once per execution.
    pub looked_up: bool,
    /// The live message, once posted.
    pub message: Option<Posted>,
    /// Bumped by every change to what the message shows.
    pub content: u64,
    /// The `content` the message showed when last updated.
    pub shown: u64,
    /// The event whose failure reply is broadcast to the channel: the first failure of each
    /// attempt (a stage or pipeline started again later begins a new one).
    pub broadcast_by: Option<String>,
    pub broadcast_at: i64,
    /// The invocation editing the message now, and until when (epoch ms) it may.
    pub editor: Option<String>,
    pub editor_until_ms: u64,
}

/// A source revision as the message shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRevision {
    pub artifact: Option<String>,
    pub id: Option<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    pub url: Option<String>,
}

impl From<&Revision> for StoredRevision {
    fn from(r: &Revision) -> Self {
        Self {
            artifact: r.artifact.as_deref().map(|s| cut(s, LONGEST_NAME)),
            id: r.id.as_deref().map(|s| cut(s, LONGEST_NAME)),
            // Only the headline is shown.
            message: r.headline().map(|s| cut(s, LONGEST_NAME)),
            author: r.author.as_deref().map(|s| cut(s, LONGEST_NAME)),
            url: r.url.as_deref().map(|s| cut(s, 2 * LONGEST_NAME)),
        }
    }
}

impl From<&StoredRevision> for Revision {
    fn from(r: &StoredRevision) -> Self {
        Self {
            artifact: r.artifact.clone(),
            id: r.id.clone(),
            message: r.message.clone(),
            author: r.author.clone(),
            url: r.url.clone(),
        }
    }
}

fn cut(text: &str, most: usize) -> String {
    text.chars().take(most).collect()
}

/// What the whole execution is doing, for the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    WaitingForApproval,
    Stopping,
    Ended(State),
}

impl Execution {
    pub fn phase(&self) -> Phase {
        if let Some(m) = self.pipeline_mark {
            // A stage retried after the execution failed (RESUMED is not always delivered):
            // newer activity than the end means it is running again.
            let newer_activity = self
                .stages
                .iter()
                .flat_map(|s| s.mark.iter().chain(s.actions.iter().map(|a| &a.mark)))
                .any(|mark| mark.at > m.at && !mark.is_terminal());
            if m.is_terminal() && !newer_activity {
                return Phase::Ended(m.state);
            }
            if m.state == State::Stopping {
                return Phase::Stopping;
            }
        }
        if self.waiting_approval().is_some() {
            return Phase::WaitingForApproval;
        }
        Phase::Running
    }

    /// The stage and approval action waiting for a reviewer, if one is.
    pub fn waiting_approval(&self) -> Option<(&StageView, &ActionView)> {
        self.stages.iter().find_map(|s| {
            s.actions
                .iter()
                .find(|a| a.approval && a.mark.state == State::Started)
                .map(|a| (s, a))
        })
    }
}

/// `state` with `e` folded in, or `None` when `e` changes nothing (a duplicate, or older
/// than what is known). `broadcast` says `e` is a failure whose thread reply should be
/// broadcast if no earlier one was.
pub fn merge(state: Option<&Execution>, e: &PipelineEvent, broadcast: bool) -> Option<Execution> {
    let mut next = state.cloned().unwrap_or_else(|| Execution {
        pipeline: cut(&e.pipeline, LONGEST_NAME),
        execution_id: cut(&e.execution_id, LONGEST_NAME),
        region: cut(&e.region, LONGEST_NAME),
        account: e.account.as_deref().map(|a| cut(a, LONGEST_NAME)),
        ..Execution::default()
    });
    let at = e.time.as_deref().and_then(epoch).unwrap_or(0);
    let mark = Mark { state: e.state, at };
    let mut changed = state.is_none();

    let start = e
        .start_time
        .as_deref()
        .and_then(epoch)
        .or((at > 0).then_some(at));
    if let Some(start) = start
        && next.started_at.is_none_or(|s| start < s)
    {
        next.started_at = Some(start);
        changed = true;
    }

    match e.level {
        Level::Pipeline => {
            if next.pipeline_mark.is_none_or(|old| mark.supersedes(old)) {
                next.pipeline_mark = Some(mark);
                next.finished_at = (mark.is_terminal() && at > 0).then_some(at);
                changed = true;
            }
        }
        Level::Stage | Level::Action => {
            let Some(stage_name) = e.stage.as_deref() else {
                return changed.then(|| bump(next));
            };
            let stage_name = cut(stage_name, LONGEST_NAME);
            let index = match next.stages.iter().position(|s| s.name == stage_name) {
                Some(i) => i,
                None if next.stages.len() < MOST_STAGES => {
                    next.stages.push(StageView {
                        name: stage_name,
                        mark: None,
                        first_at: at,
                        actions: Vec::new(),
                    });
                    changed = true;
                    next.stages.len() - 1
                }
                None => return changed.then(|| bump(next)),
            };
            let stage = &mut next.stages[index];
            if at > 0 && (stage.first_at == 0 || at < stage.first_at) {
                stage.first_at = at;
                changed = true;
            }
            if e.level == Level::Stage {
                if stage.mark.is_none_or(|old| mark.supersedes(old)) {
                    stage.mark = Some(mark);
                    changed = true;
                }
            } else if let Some(action_name) = e.action.as_deref() {
                changed |= merge_action(stage, cut(action_name, LONGEST_NAME), mark, e);
            }
        }
    }
    // A stage or the pipeline starting again after the broadcast failure is a new attempt,
    // whose first failure the channel should see too.
    if matches!(e.state, State::Started | State::Resumed)
        && e.level != Level::Action
        && next.broadcast_by.is_some()
        && at > next.broadcast_at
    {
        next.broadcast_by = None;
        changed = true;
    }
    if broadcast && next.broadcast_by.is_none() {
        next.broadcast_by = Some(e.id.clone());
        next.broadcast_at = at;
        changed = true;
    }
    next.stages.sort_by_key(|s| (s.first_at == 0, s.first_at));
    changed.then(|| bump(next))
}

fn merge_action(stage: &mut StageView, name: String, mark: Mark, e: &PipelineEvent) -> bool {
    let result = e.result.as_ref();
    let view = ActionView {
        name,
        mark,
        approval: e.is_approval(),
        provider: e
            .action_type
            .as_ref()
            .and_then(|t| t.provider.as_deref())
            .map(|p| cut(p, LONGEST_NAME)),
        error_code: result
            .and_then(|r| r.error_code.as_deref())
            .map(|c| cut(c, LONGEST_NAME)),
        summary: result
            .and_then(|r| r.summary.as_deref())
            .map(|s| cut(s, LONGEST_SUMMARY)),
        url: result
            .and_then(|r| r.url.as_deref())
            .map(|u| cut(u, 2 * LONGEST_NAME)),
    };
    match stage.actions.iter().position(|a| a.name == view.name) {
        Some(i) if view.mark.supersedes(stage.actions[i].mark) => {
            stage.actions[i] = view;
            true
        }
        Some(_) => false,
        None if stage.actions.len() < MOST_ACTIONS => {
            stage.actions.push(view);
            true
        }
        None => false,
    }
}

fn bump(mut next: Execution) -> Execution {
    next.content += 1;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse;
    use serde_json::json;

    fn event(
        level: &str,
        state: &str,
        time: &str,
        stage: Option<&str>,
        action: Option<&str>,
    ) -> PipelineEvent {
        let detail_type = match level {
            "pipeline" => "CodePipeline Pipeline Execution State Change",
            "stage" => "CodePipeline Stage Execution State Change",
            _ => "CodePipeline Action Execution State Change",
        };
        let mut detail = json!({"pipeline": "prod-api", "execution-id": "0f5a", "state": state,
            "type": {"category": "Build", "provider": "CodeBuild"}});
        if let Some(s) = stage {
            detail["stage"] = json!(s);
        }
        if let Some(a) = action {
            detail["action"] = json!(a);
        }
        parse(&json!({"id": format!("{level}-{state}-{time}-{}", action.unwrap_or_default()), "detail-type": detail_type,
            "source": "aws.codepipeline", "region": "eu-west-1", "time": time, "detail": detail}))
        .unwrap()
    }

    fn fold(events: &[PipelineEvent]) -> Execution {
        events.iter().fold(Execution::default(), |s, e| {
            let current = (s.content > 0).then_some(&s);
            merge(current, e, false).unwrap_or(s)
        })
    }

    #[test]
    fn a_started_event_delivered_after_its_end_does_not_undo_it() {
        let succeeded = event("pipeline", "SUCCEEDED", "2026-11-20T10:05:00Z", None, None);
        let started = event("pipeline", "STARTED", "2026-11-20T10:00:00Z", None, None);
        let s = fold(&[succeeded, started.clone()]);
        assert_eq!(s.phase(), Phase::Ended(State::Succeeded));
        assert_eq!(
            s.started_at,
            epoch("2026-11-20T10:00:00Z"),
            "its time is news"
        );
        assert!(
            merge(Some(&s), &started, false).is_none(),
            "a second copy is not"
        );
    }

    #[test]
    fn in_the_same_second_a_terminal_state_wins_over_started() {
        let t = "2026-11-20T10:00:00Z";
        let a = fold(&[
            event("stage", "SUCCEEDED", t, Some("Build"), None),
            event("stage", "STARTED", t, Some("Build"), None),
        ]);
        let b = fold(&[
            event("stage", "STARTED", t, Some("Build"), None),
            event("stage", "SUCCEEDED", t, Some("Build"), None),
        ]);
        assert_eq!(a.stages[0].mark.unwrap().state, State::Succeeded);
        assert_eq!(a.stages, b.stages);
    }

    #[test]
    fn a_stage_retried_later_is_running_again() {
        let s = fold(&[
            event(
                "stage",
                "FAILED",
                "2026-11-20T10:01:00Z",
                Some("Deploy"),
                None,
            ),
            event(
                "stage",
                "RESUMED",
                "2026-11-20T10:09:00Z",
                Some("Deploy"),
                None,
            ),
        ]);
        assert_eq!(s.stages[0].mark.unwrap().state, State::Resumed);
    }

    #[test]
    fn a_duplicate_is_no_change_and_stages_keep_the_order_they_ran_in() {
        let deploy = event(
            "stage",
            "STARTED",
            "2026-11-20T10:03:00Z",
            Some("Deploy"),
            None,
        );
        let s = fold(&[
            deploy.clone(),
            event(
                "stage",
                "STARTED",
                "2026-11-20T10:00:00Z",
                Some("Source"),
                None,
            ),
        ]);
        assert!(merge(Some(&s), &deploy, false).is_none());
        let names: Vec<&str> = s.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Source", "Deploy"]);
        assert_eq!(s.started_at, epoch("2026-11-20T10:00:00Z"));
    }

    #[test]
    fn only_the_first_failure_is_chosen_for_broadcast() {
        let first = event(
            "action",
            "FAILED",
            "2026-11-20T10:01:00Z",
            Some("Build"),
            Some("Unit"),
        );
        let second = event(
            "action",
            "FAILED",
            "2026-11-20T10:01:00Z",
            Some("Build"),
            Some("Lint"),
        );
        let s = merge(None, &first, true).unwrap();
        let s = merge(Some(&s), &second, true).unwrap();
        assert_eq!(s.broadcast_by.as_deref(), Some(first.id.as_str()));
    }
}
