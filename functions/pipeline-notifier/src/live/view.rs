//! The live message: the whole execution at a glance, rendered from its stored state, never
//! from the last event alone. Event text goes through `Mrkdwn::plain` (escaped) as elsewhere.
//! It carries no mention: Slack does not notify anyone of a mention added by an edit, so the
//! failure mention goes in the thread reply.

use std::time::Duration;

use shared::console;
use shared::slack::{Block, Button, Message, Mrkdwn};
use shared::text::human_duration;

use super::state::{ActionView, Execution, Phase, StageView};
use crate::event::State;
use crate::lookup::Revision;
use crate::render::{
    RUNNING_ICON, WAITING_ICON, label_for_provider, revision_line, short_execution, state_icon,
};

/// A stage's emoji in the live message: running while it is started or resumed.
fn stage_icon(state: State) -> &'static str {
    match state {
        State::Started | State::Resumed => RUNNING_ICON,
        other => state_icon(other),
    }
}

fn headline(x: &Execution) -> (&'static str, String) {
    let p = &x.pipeline;
    match x.phase() {
        // A running execution is shown as its start was told.
        Phase::Running => (state_icon(State::Started), format!("{p} is running")),
        Phase::WaitingForApproval => (WAITING_ICON, format!("{p} is waiting for approval")),
        Phase::Stopping => (state_icon(State::Stopping), format!("{p} is stopping")),
        Phase::Ended(state) => {
            let title = match state {
                State::Succeeded => format!("{p} succeeded"),
                State::Failed => format!("{p} failed"),
                State::Stopped => format!("{p} stopped"),
                State::Superseded => format!("{p} was superseded by a newer execution"),
                State::Canceled => format!("{p} was canceled"),
                other => format!("{p} ended: {}", other.name()),
            };
            (state_icon(state), title)
        }
    }
}

/// The top message for `x` as it stands.
pub fn render_live(x: &Execution) -> Message {
    let (icon, title) = headline(x);
    let execution_url = console::codepipeline_execution(&x.region, &x.pipeline, &x.execution_id);

    let mut summary = Mrkdwn::new()
        .plain("Execution ")
        .link(&execution_url, &short_execution(&x.execution_id));
    if let Some(start) = x.started_at {
        summary =
            summary
                .plain(" · started ")
                .date(start, "{date_short_pretty} {time}", &utc(start));
        if let Some(end) = x
            .finished_at
            .filter(|end| *end >= start && matches!(x.phase(), Phase::Ended(_)))
        {
            let took = Duration::from_secs(u64::try_from(end - start).unwrap_or(0));
            summary = summary.plain(" · took ").plain(&human_duration(took));
        }
    }

    let mut message = Message::new(Mrkdwn::new().plain(&format!("{icon} {title}")))
        .block(Block::Header(format!("{icon} {title}")))
        .block(Block::section(summary));

    if !x.stages.is_empty() {
        let mut lines = Mrkdwn::new();
        for (i, stage) in x.stages.iter().enumerate() {
            if i > 0 {
                lines = lines.newline();
            }
            lines = lines.append(&stage_line(stage));
        }
        message = message.block(Block::section(lines));
    }

    for r in x.revisions.iter().take(3) {
        message = message.block(Block::section(revision_line(&Revision::from(r))));
    }

    let mut buttons = Vec::new();
    if x.phase() == Phase::WaitingForApproval {
        buttons.push(Button {
            label: "Review and approve".into(),
            url: console::codepipeline_pipeline(&x.region, &x.pipeline),
        });
    }
    buttons.push(Button {
        label: "Open execution".into(),
        url: execution_url,
    });
    if let Some((provider, url)) = first_failure(x) {
        buttons.push(Button {
            label: label_for_provider(provider).into(),
            url: url.to_owned(),
        });
    }
    let place = match &x.account {
        Some(a) => format!("{} · {a}", x.region),
        None => x.region.clone(),
    };
    message
        .block(Block::Buttons(buttons))
        .block(Block::Context(vec![Mrkdwn::new().plain(&format!(
            "{place} · details of failures and approvals are in the thread"
        ))]))
}

fn stage_line(stage: &StageView) -> Mrkdwn {
    // An action newer than the stage's own mark (a retried stage whose RESUMED the rule did
    // not deliver) says what the stage is doing now.
    let newest_action = stage.actions.iter().map(|a| a.mark).max_by_key(|m| m.at);
    let mark = match (stage.mark, newest_action) {
        (Some(s), Some(a)) if a.at > s.at && !a.is_terminal() => Some(a),
        (Some(s), _) => Some(s),
        (None, a) => a,
    };
    let state = mark.map(|m| m.state).unwrap_or(State::Started);
    let settled = mark.is_some_and(|m| m.is_terminal());
    let waiting = stage
        .actions
        .iter()
        .find(|a| a.approval && a.mark.state == State::Started);
    let any_failed = stage.actions.iter().any(|a| a.mark.state == State::Failed);
    // A failed action makes the stage red before its own FAILED event arrives.
    let icon = if waiting.is_some() {
        WAITING_ICON
    } else if any_failed && !settled {
        state_icon(State::Failed)
    } else {
        stage_icon(state)
    };
    let mut line = Mrkdwn::new().plain(icon).plain(" ").bold(&stage.name);
    if let Some(a) = waiting {
        return line.plain(" — waiting for approval: ").plain(&a.name);
    }
    let failed: Vec<&ActionView> = stage
        .actions
        .iter()
        .filter(|a| a.mark.state == State::Failed)
        .collect();
    if let Some(a) = failed.first() {
        line = line.plain(" — ").plain(&a.name);
        line = if a.approval {
            line.plain(" rejected")
        } else {
            line.plain(" failed")
        };
        if let Some(code) = &a.error_code {
            line = line.plain(" ").code(code);
        }
        if failed.len() > 1 {
            line = line.plain(&format!(" (+{} more)", failed.len() - 1));
        }
        return line;
    }
    let running: Vec<&str> = stage
        .actions
        .iter()
        .filter(|a| matches!(a.mark.state, State::Started | State::Resumed))
        .map(|a| a.name.as_str())
        .collect();
    if !running.is_empty() && !settled {
        line = line
            .plain(" — ")
            .plain(&running.join(", "))
            .plain(" running");
    }
    line
}

fn first_failure(x: &Execution) -> Option<(Option<&str>, &str)> {
    x.stages.iter().flat_map(|s| &s.actions).find_map(|a| {
        (a.mark.state == State::Failed && !a.approval)
            .then_some(())
            .and_then(|()| a.url.as_deref().map(|u| (a.provider.as_deref(), u)))
    })
}

fn utc(epoch: i64) -> String {
    aws_smithy_types::DateTime::from_secs(epoch)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| epoch.to_string())
}
