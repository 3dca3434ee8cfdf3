//! The message a person gets about an ECS service: what happened to its deployment (or why
//! its tasks do not run), the revisions before and after, and whether ECS rolled back.
//! Everything from the event or the API is escaped (`Mrkdwn::plain`); only the operator's
//! `FAILURE_MENTION` and our own markup pass as they are.

use shared::console;
use shared::notifier::{Attributes, Notification, Tone};
use shared::slack::{Block, Button, Message, Mrkdwn};

use crate::ecs_event::{EcsEvent, EcsState};
use crate::ecs_lookup::{DeploymentInfo, ServiceRevisionView};
use crate::render::epoch;

fn icon(e: &EcsEvent, rolled_back: bool) -> &'static str {
    match e.state {
        EcsState::InProgress => "🚀",
        EcsState::RollingBack => "↩️",
        EcsState::Completed if rolled_back => "↩️",
        EcsState::Completed => "✅",
        EcsState::Failed => "❌",
        EcsState::TaskStartImpaired
        | EcsState::TaskPlacementFailure
        | EcsState::TaskConfigurationFailure => "⚠️",
    }
}

fn title(e: &EcsEvent, rolled_back: bool) -> String {
    let what = match e.state {
        EcsState::InProgress => "deployment started",
        EcsState::RollingBack => "deployment failed, rolling back",
        EcsState::Completed if rolled_back => "rolled back to the previous revision",
        EcsState::Completed => "deployed",
        EcsState::Failed if rolled_back => "deployment failed and was rolled back",
        EcsState::Failed => "deployment failed",
        EcsState::TaskStartImpaired => "tasks keep failing to start",
        EcsState::TaskPlacementFailure => "tasks cannot be placed",
        EcsState::TaskConfigurationFailure => "task configuration rejected",
    };
    format!("{}: {what}", e.service)
}

fn revision_text(r: &ServiceRevisionView) -> String {
    r.task_definition
        .clone()
        .unwrap_or_else(|| r.arn.rsplit('/').next().unwrap_or(&r.arn).to_owned())
}

fn revision_block(label: &str, r: &ServiceRevisionView) -> Mrkdwn {
    let mut m = Mrkdwn::new().bold(label).plain(" ").code(&revision_text(r));
    for image in &r.images {
        m = m.newline().markup("• ").code(image);
    }
    m
}

pub struct EcsRenderOptions<'a> {
    pub failure_mention: Option<&'a str>,
}

pub fn render_ecs(
    e: &EcsEvent,
    info: Option<&DeploymentInfo>,
    opts: &EcsRenderOptions,
) -> Notification {
    let rolled_back =
        e.state == EcsState::RollingBack || info.is_some_and(DeploymentInfo::rolled_back);
    let icon = icon(e, rolled_back);
    let title = title(e, rolled_back);
    let cluster = e.cluster.as_deref().unwrap_or("default");
    let deployments_url = console::ecs_service_deployments(&e.region, cluster, &e.service);
    let mention = opts.failure_mention.filter(|_| e.state.is_failure());

    let mut lead = Mrkdwn::new();
    if let Some(m) = mention {
        lead = lead.markup(m).newline();
    }
    lead = lead.plain(match e.state {
        EcsState::InProgress => "A new deployment of the service started.",
        EcsState::RollingBack => "The deployment failed and ECS is rolling the service back.",
        EcsState::Completed if rolled_back => {
            "The service is back on its previous revision after a failed deployment: the new release is not running."
        }
        EcsState::Completed => "The deployment reached a steady state.",
        EcsState::Failed if rolled_back => {
            "The deployment did not reach a steady state. ECS rolled it back."
        }
        EcsState::Failed => "The deployment did not reach a steady state.",
        EcsState::TaskStartImpaired => "ECS cannot keep the service's tasks running.",
        EcsState::TaskPlacementFailure => {
            "ECS cannot place the service's tasks (capacity, or an agent that is disconnected)."
        }
        EcsState::TaskConfigurationFailure => {
            "ECS cannot start the service's tasks because of their configuration (a role it cannot assume, tags, a setting)."
        }
    });
    if let Some(reason) = &e.reason {
        lead = lead.newline().markup("> ").plain(reason);
    }

    let mut fields = vec![
        Mrkdwn::new().bold("Service").newline().plain(&e.service),
        Mrkdwn::new().bold("Cluster").newline().plain(cluster),
    ];
    if let Some(id) = &e.deployment_id {
        fields.push(
            Mrkdwn::new()
                .bold("Deployment")
                .newline()
                .link(&deployments_url, id),
        );
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
        let f = Mrkdwn::new().bold("Time").newline();
        fields.push(match epoch(time) {
            Some(secs) => f
                .markup(&format!(
                    "<!date^{secs}^{{date_short_pretty}} {{time_secs}}|"
                ))
                .plain(time)
                .markup(">"),
            None => f.plain(time),
        });
    }

    let mut message = Message::new(
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
    .block(Block::fields(fields));

    if let Some(info) = info {
        match (&info.source, &info.target) {
            (Some(from), Some(to)) => {
                message = message.block(Block::section(
                    revision_block("From", from)
                        .newline()
                        .append(&revision_block("To", to)),
                ));
            }
            (None, Some(to)) => message = message.block(Block::section(revision_block("To", to))),
            _ => {}
        }
        if let Some(back) = &info.rolled_back_to {
            let mut m = Mrkdwn::new()
                .bold("Rolled back to")
                .plain(" ")
                .code(&revision_text(back));
            if let Some(why) = &info.rollback_reason {
                m = m.newline().markup("> ").plain(why);
            }
            message = message.block(Block::section(m));
        }
        let mut watch = Vec::new();
        if let Some((failed, threshold)) = info.circuit_breaker.filter(|(f, _)| *f > 0) {
            watch.push(Mrkdwn::new().plain(&format!(
                "Circuit breaker: {failed} failed tasks (threshold {threshold})"
            )));
        }
        if !info.triggered_alarms.is_empty() {
            watch.push(
                Mrkdwn::new()
                    .plain("Alarms in ALARM: ")
                    .plain(&info.triggered_alarms.join(", ")),
            );
        }
        if !watch.is_empty() {
            message = message.block(Block::Context(watch));
        }
    }

    message = message
        .block(Block::Buttons(vec![Button {
            label: "Open deployments".into(),
            url: deployments_url,
        }]))
        .block(Block::Context(vec![
            Mrkdwn::new().plain(&format!("ecs {} event {}", e.event_name, e.id)),
        ]));

    let tone = match e.state {
        s if s.is_failure() => Tone::Failure,
        EcsState::Completed if rolled_back => Tone::Info,
        EcsState::Completed => Tone::Success,
        _ => Tone::Info,
    };
    Notification::new(format!("[ECS {}] {title}", e.state.name()), message).tagged(
        Attributes::new(crate::app::FUNCTION, tone)
            .outcome(e.state.name())
            .about("service", e.qualified_service()),
    )
}
