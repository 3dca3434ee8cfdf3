//! The message a person gets: Block Kit for Slack, the same facts as text for SNS.
//! Everything from the event or the API goes through `Mrkdwn::plain` (escaped); only the
//! operator's `FAILURE_MENTION` and our own markup are passed as they are.

use std::time::Duration;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use shared::approval::{self, ApprovalRef};
use shared::console;
use shared::notifier::{Attributes, Notification, Tone};
use shared::slack::{Block, Button, Choice, Message, Mrkdwn};
use shared::text::human_duration;

use crate::event::{Level, PipelineEvent, State};
use crate::lookup::{ExecutionInfo, Revision};

/// What the message is about, beyond its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    Normal,
    WaitingForApproval,
    Approved,
    /// A reviewer rejected (or the approval expired): the pipeline stops by design, so this
    /// is news, not an incident, and gets no failure mention.
    ApprovalRejected,
    /// A real failure: the mention goes here.
    Failure,
    /// A pipeline failure whose failing action has its own message: kept short and
    /// without a second mention.
    FailureAlreadyReported,
}

pub struct RenderOptions<'a> {
    pub failure_mention: Option<&'a str>,
    /// Whether `action:FAILED` is posted, so a pipeline failure need not repeat it.
    pub action_failures_posted: bool,
    /// `SLACK_APPROVALS=on`: a waiting approval gets Approve and Reject buttons, which
    /// `pipeline-approvals` answers.
    pub approvals: bool,
}

fn story(e: &PipelineEvent, opts: &RenderOptions) -> Story {
    match (e.is_approval(), e.state) {
        (true, State::Started) => Story::WaitingForApproval,
        (true, State::Succeeded) => Story::Approved,
        (true, State::Failed) => Story::ApprovalRejected,
        (false, State::Failed) if e.level == Level::Pipeline && opts.action_failures_posted => {
            Story::FailureAlreadyReported
        }
        (false, State::Failed) => Story::Failure,
        _ => Story::Normal,
    }
}

/// Each state's emoji: the one table, for the per-event message and the live message alike.
pub(crate) fn state_icon(state: State) -> &'static str {
    match state {
        State::Started => "🚀",
        State::Succeeded => "✅",
        State::Resumed => "🔁",
        State::Failed => "❌",
        State::Canceled => "🚫",
        State::Stopped => "⏹️",
        State::Stopping => "⏳",
        State::Superseded => "⏭️",
        State::Abandoned => "🗑️",
    }
}

/// An approval waiting for a reviewer, wherever it shows.
pub(crate) const WAITING_ICON: &str = "✋";

/// What a stage is doing rather than what happened to it (the live message's stage lines):
/// started or resumed alike, it is running.
pub(crate) const RUNNING_ICON: &str = "🔄";

fn emoji(story: Story, state: State) -> &'static str {
    match story {
        Story::WaitingForApproval => WAITING_ICON,
        Story::Approved => "👍",
        Story::ApprovalRejected => "🙅",
        Story::Failure | Story::FailureAlreadyReported => state_icon(State::Failed),
        Story::Normal => state_icon(state),
    }
}

fn verb(state: State) -> &'static str {
    match state {
        State::Started => "started",
        State::Succeeded => "succeeded",
        State::Resumed => "resumed",
        State::Failed => "failed",
        State::Canceled => "was canceled",
        State::Stopped => "stopped",
        State::Stopping => "is stopping",
        State::Superseded => "was superseded by a newer execution",
        State::Abandoned => "was abandoned",
    }
}

/// The one-line title, plain text (escaped later where it goes to Slack).
fn title(e: &PipelineEvent, story: Story) -> String {
    let action = e.action.as_deref().unwrap_or("approval");
    match story {
        Story::WaitingForApproval => format!("{}: waiting for approval ({action})", e.pipeline),
        Story::Approved => format!("{}: approved ({action})", e.pipeline),
        Story::ApprovalRejected => format!("{}: approval rejected ({action})", e.pipeline),
        _ => match e.level {
            Level::Pipeline => format!("{} {}", e.pipeline, verb(e.state)),
            Level::Stage => format!(
                "{}: stage {} {}",
                e.pipeline,
                e.stage.as_deref().unwrap_or("?"),
                verb(e.state)
            ),
            Level::Action => format!("{}: {} {}", e.pipeline, action, verb(e.state)),
        },
    }
}

pub(crate) fn short_execution(id: &str) -> String {
    id.chars().take(8).collect()
}

pub fn epoch(ts: &str) -> Option<i64> {
    DateTime::from_str(ts, Format::DateTime)
        .ok()
        .map(|d| d.secs())
}

fn provider_label(e: &PipelineEvent) -> &'static str {
    label_for_provider(e.action_type.as_ref().and_then(|t| t.provider.as_deref()))
}

/// The button for an action's own page, named for where it leads.
pub(crate) fn label_for_provider(provider: Option<&str>) -> &'static str {
    match provider {
        Some("CodeBuild") => "Open build logs",
        Some("CodeDeploy" | "CodeDeployToECS") => "Open deployment",
        Some("ECS") => "Open ECS service",
        Some("CloudFormation") => "Open stack",
        _ => "Open details",
    }
}

pub fn render(
    e: &PipelineEvent,
    info: Option<&ExecutionInfo>,
    opts: &RenderOptions,
) -> Notification {
    let story = story(e, opts);
    let title = title(e, story);
    let icon = emoji(story, e.state);
    let execution_url = console::codepipeline_execution(&e.region, &e.pipeline, &e.execution_id);
    let mention = match story {
        Story::Failure => opts.failure_mention,
        _ => None,
    };

    let mut lead = Mrkdwn::new();
    if let Some(m) = mention {
        lead = lead.markup(m).newline();
    }
    lead = match story {
        Story::WaitingForApproval => lead
            .plain("Manual approval ")
            .bold(e.action.as_deref().unwrap_or_default())
            .plain(" in stage ")
            .bold(e.stage.as_deref().unwrap_or_default())
            .plain(" is waiting for a reviewer."),
        Story::ApprovalRejected => lead
            .plain("A reviewer rejected ")
            .bold(e.action.as_deref().unwrap_or_default())
            .plain(" (or it expired): the execution stops here by design."),
        Story::FailureAlreadyReported => {
            lead.plain("The execution failed. The failing action is reported in its own message.")
        }
        _ => match e.level {
            Level::Pipeline => lead
                .plain("Execution ")
                .code(&short_execution(&e.execution_id))
                .plain(" ")
                .plain(verb(e.state))
                .plain("."),
            Level::Stage => lead
                .plain("Stage ")
                .bold(e.stage.as_deref().unwrap_or_default())
                .plain(" ")
                .plain(verb(e.state))
                .plain("."),
            Level::Action => {
                let kind = e.action_type.as_ref().map(|t| {
                    [t.category.as_deref(), t.provider.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · ")
                });
                let lead = lead
                    .plain("Action ")
                    .bold(e.action.as_deref().unwrap_or_default())
                    .plain(" in stage ")
                    .bold(e.stage.as_deref().unwrap_or_default())
                    .plain(" ")
                    .plain(verb(e.state));
                match kind.filter(|k| !k.is_empty()) {
                    Some(k) => lead.plain(" (").plain(&k).plain(")."),
                    None => lead.plain("."),
                }
            }
        },
    };

    let mut fields = vec![
        Mrkdwn::new().bold("Pipeline").newline().plain(&e.pipeline),
        Mrkdwn::new()
            .bold("Execution")
            .newline()
            .link(&execution_url, &short_execution(&e.execution_id)),
    ];
    if let Some(stage) = &e.stage {
        fields.push(Mrkdwn::new().bold("Stage").newline().plain(stage));
    }
    if let Some(action) = &e.action {
        fields.push(Mrkdwn::new().bold("Action").newline().plain(action));
    }
    let place = match &e.account {
        Some(a) => format!("{} · {a}", e.region),
        None => e.region.clone(),
    };
    fields.push(
        Mrkdwn::new()
            .bold("Region · account")
            .newline()
            .plain(&place),
    );
    if let Some(time) = &e.time {
        let mut f = time_field(time);
        if let (Some(start), Some(now)) = (e.start_time.as_deref().and_then(epoch), epoch(time)) {
            f = f.plain(&format!(
                " (running for {})",
                human_duration(Duration::from_secs(u64::try_from(now - start).unwrap_or(0)))
            ));
        }
        fields.push(f);
    }

    let mut message = headed(icon, &title, mention, lead, fields);

    if let Some(result) = e
        .result
        .as_ref()
        .filter(|_| matches!(story, Story::Failure | Story::ApprovalRejected))
    {
        let mut block = Mrkdwn::new();
        if story == Story::ApprovalRejected {
            block = block.bold("Reviewer's comment");
        } else {
            block = block.bold("Error");
            if let Some(code) = &result.error_code {
                block = block.plain(" ").code(code);
            }
        }
        if let Some(summary) = result.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            for line in summary.lines().take(40) {
                block = block.newline().markup("> ").plain(line);
            }
        }
        if let Some(url) = &result.url {
            block = block.newline().link(url, provider_label(e));
        }
        message = message.block(Block::section(block));
    }

    if let Some(info) = info {
        if let Some(summary) = info
            .status_summary
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            && e.level == Level::Pipeline
            && !matches!(e.state, State::Started | State::Succeeded)
        {
            message = message.block(Block::section(
                Mrkdwn::new().bold("Status").newline().plain(summary),
            ));
        }
        for r in info.revisions.iter().take(3) {
            message = message.block(Block::section(revision_line(r)));
        }
        if info.revisions.is_empty()
            && let Some(who) = &info.trigger_detail
            && e.level == Level::Pipeline
            && e.state == State::Started
        {
            message = message.block(Block::Context(vec![
                Mrkdwn::new().plain("Started by ").plain(who),
            ]));
        }
    }

    if story == Story::WaitingForApproval
        && opts.approvals
        && let (Some(stage), Some(action)) = (&e.stage, &e.action)
    {
        let value = ApprovalRef {
            pipeline: e.pipeline.clone(),
            stage: stage.clone(),
            action: action.clone(),
            execution: e.execution_id.clone(),
        }
        .to_value();
        let choice = |label: &str, action_id: &str, style| Choice {
            label: label.into(),
            action_id: action_id.into(),
            value: value.clone(),
            style: Some(style),
        };
        message = message.block(Block::Choices {
            block_id: approval::BLOCK_ID.into(),
            choices: vec![
                choice("Approve", approval::APPROVE, "primary"),
                choice("Reject", approval::REJECT, "danger"),
            ],
        });
    }

    let mut buttons = vec![Button {
        label: "Open execution".into(),
        url: execution_url.clone(),
    }];
    if story == Story::WaitingForApproval {
        buttons.insert(
            0,
            Button {
                // With the buttons above, the console is where to look closer.
                label: if opts.approvals {
                    "Review in the console".into()
                } else {
                    "Review and approve".into()
                },
                url: console::codepipeline_pipeline(&e.region, &e.pipeline),
            },
        );
    }
    if let Some(url) = e
        .result
        .as_ref()
        .and_then(|r| r.url.clone())
        .filter(|_| story == Story::Failure)
    {
        buttons.push(Button {
            label: provider_label(e).into(),
            url,
        });
    }
    message = message
        .block(Block::Buttons(buttons))
        .block(Block::Context(vec![Mrkdwn::new().plain(&format!(
            "{} event {}",
            e.level.name(),
            e.id
        ))]));

    let subject = format!("[{}] {title}", e.state.name());
    let tone = match story {
        Story::Failure | Story::FailureAlreadyReported => Tone::Failure,
        Story::Normal if e.state == State::Succeeded => Tone::Success,
        _ => Tone::Info,
    };
    Notification::new(subject, message).tagged(
        Attributes::new(crate::app::FUNCTION, tone)
            .outcome(e.state.name())
            .about("pipeline", &e.pipeline),
    )
}

/// An event's time as a field: in each reader's own time zone, UTC where Slack cannot.
pub(crate) fn time_field(time: &str) -> Mrkdwn {
    let f = Mrkdwn::new().bold("Time").newline();
    match epoch(time) {
        Some(secs) => f.date(secs, "{date_short_pretty} {time_secs}", time),
        None => f.plain(time),
    }
}

/// The top of a message of its own: the notification text (with the mention, so Slack
/// notifies), the header, the lead and the fields.
pub(crate) fn headed(
    icon: &str,
    title: &str,
    mention: Option<&str>,
    lead: Mrkdwn,
    fields: Vec<Mrkdwn>,
) -> Message {
    Message::new(
        Mrkdwn::new()
            .markup(
                mention
                    .map(|m| format!("{m} "))
                    .as_deref()
                    .unwrap_or_default(),
            )
            .plain(&format!("{icon} {title}")),
    )
    .block(Block::Header(format!("{icon} {title}")))
    .block(Block::section(lead))
    .block(Block::fields(fields))
}

pub(crate) fn revision_line(r: &Revision) -> Mrkdwn {
    let mut m = Mrkdwn::new().bold("Source").plain(" ");
    if let Some(name) = &r.artifact {
        m = m.plain(name).plain(" ");
    }
    if let Some(short) = r.short_id() {
        m = match &r.url {
            Some(url) => m.link(url, &short),
            None => m.code(&short),
        };
    }
    if let Some(h) = r.headline() {
        m = m.plain(": ").plain(h);
    }
    if let Some(a) = &r.author {
        m = m.plain(" — ").plain(a);
    }
    m
}

/// What a person sees when the notifier cannot work: which setting is wrong, and that
/// pipeline events are not being posted meanwhile.
pub fn render_configuration_error(why: &str) -> Notification {
    let title = "⚠️ pipeline-notifier is misconfigured: pipeline events are not being posted";
    let message = Message::new(Mrkdwn::from_untrusted(title))
        .block(Block::Header(title.into()))
        .block(Block::section(
            Mrkdwn::new()
                .bold("Configuration error")
                .newline()
                .plain(why),
        ))
        .block(Block::Context(vec![Mrkdwn::from_untrusted(
            "Fix the function's environment (see functions/pipeline-notifier/README.md, Configuration); this is posted once per container.",
        )]));
    Notification::new("[CONFIG] pipeline-notifier is misconfigured", message)
        .tagged(Attributes::new(crate::app::FUNCTION, Tone::Failure).outcome("CONFIG"))
}
