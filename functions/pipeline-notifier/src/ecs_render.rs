//! The message a person gets about an ECS service: what happened to its deployment (or why
//! its tasks do not run), the revisions before and after, and whether ECS rolled back.
//! Everything from the event or the API is escaped (`Mrkdwn::plain`); only the operator's
//! `FAILURE_MENTION` and our own markup pass as they are.

use shared::console;
use shared::notifier::{Attributes, Notification, Tone};
use shared::slack::{Block, Button, Mrkdwn};

use crate::ecs_event::{EcsEvent, EcsState};
use crate::ecs_lookup::{DeploymentInfo, Rollback, ServiceRevisionView};
use crate::render::{headed, time_field};

fn icon(e: &EcsEvent, rollback: Rollback) -> &'static str {
    match (e.state, rollback) {
        (EcsState::InProgress, _) => "🚀",
        (EcsState::RollingBack, _) | (EcsState::Completed, Rollback::Done) => "↩️",
        (EcsState::Completed, _) => "✅",
        (EcsState::Failed, _) => "❌",
        _ => "⚠️",
    }
}

fn title(e: &EcsEvent, rollback: Rollback) -> String {
    let what = match (e.state, rollback) {
        (EcsState::InProgress, _) => "deployment started",
        (EcsState::RollingBack, _) | (EcsState::Failed, Rollback::Underway) => {
            "deployment failed, rolling back"
        }
        (EcsState::Completed, Rollback::Done) => "rolled back to the previous revision",
        (EcsState::Completed, _) => "deployed",
        (EcsState::Failed, Rollback::Done) => "deployment failed and was rolled back",
        (EcsState::Failed, Rollback::Failed) => "deployment failed, and so did its rollback",
        (EcsState::Failed, Rollback::None) => "deployment failed",
        (EcsState::TaskStartImpaired, _) => "tasks keep failing to start",
        (EcsState::TaskPlacementFailure, _) => "tasks cannot be placed",
        (EcsState::TaskConfigurationFailure, _) => "task configuration rejected",
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
    // What ECS says of the rollback; without its word, only the event's own.
    let rollback = match (info.map(DeploymentInfo::rollback), e.state) {
        (Some(r), _) if r != Rollback::None => r,
        (_, EcsState::RollingBack) => Rollback::Underway,
        _ => Rollback::None,
    };
    let icon = icon(e, rollback);
    let title = title(e, rollback);
    let cluster = e.cluster.as_deref().unwrap_or("default");
    let deployments_url = console::ecs_service_deployments(&e.region, cluster, &e.service);
    let mention = opts.failure_mention.filter(|_| e.state.is_failure());

    let mut lead = Mrkdwn::new();
    if let Some(m) = mention {
        lead = lead.markup(m).newline();
    }
    lead = lead.plain(match (e.state, rollback) {
        (EcsState::InProgress, _) => "A new deployment of the service started.",
        (EcsState::RollingBack, _) => "The deployment failed and ECS is rolling the service back.",
        (EcsState::Completed, Rollback::Done) => {
            "The service is back on its previous revision after a failed deployment: the new release is not running."
        }
        (EcsState::Completed, _) => "The deployment reached a steady state.",
        (EcsState::Failed, Rollback::Underway) => {
            "The deployment did not reach a steady state. ECS is rolling it back."
        }
        (EcsState::Failed, Rollback::Done) => {
            "The deployment did not reach a steady state. ECS rolled it back."
        }
        (EcsState::Failed, Rollback::Failed) => {
            "The deployment did not reach a steady state, and ECS could not roll it back: the service may be running neither revision as it should."
        }
        (EcsState::Failed, Rollback::None) => "The deployment did not reach a steady state.",
        (EcsState::TaskStartImpaired, _) => "ECS cannot keep the service's tasks running.",
        (EcsState::TaskPlacementFailure, _) => {
            "ECS cannot place the service's tasks (capacity, or an agent that is disconnected)."
        }
        (EcsState::TaskConfigurationFailure, _) => {
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
        fields.push(time_field(time));
    }

    let mut message = headed(icon, &title, mention, lead, fields);

    if let Some(info) = info {
        // Once rolled back, the release's revision is not what runs: say so where it shows.
        let to_label = if rollback == Rollback::Done {
            "To (undone)"
        } else {
            "To"
        };
        match (&info.source, &info.target) {
            (Some(from), Some(to)) => {
                message = message.block(Block::section(
                    revision_block("From", from)
                        .newline()
                        .append(&revision_block(to_label, to)),
                ));
            }
            (None, Some(to)) => {
                message = message.block(Block::section(revision_block(to_label, to)));
            }
            _ => {}
        }
        if let Some(back) = &info.rolled_back_to {
            let label = match rollback {
                Rollback::Underway => "Rolling back to",
                Rollback::Failed => "Could not roll back to",
                _ => "Rolled back to",
            };
            let mut m = Mrkdwn::new()
                .bold(label)
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
        EcsState::Completed if rollback == Rollback::Done => Tone::Info,
        EcsState::Completed => Tone::Success,
        _ => Tone::Info,
    };
    Notification::new(format!("[ECS {}] {title}", e.state.name()), message).tagged(
        Attributes::new(crate::app::FUNCTION, tone)
            .outcome(e.state.name())
            .about("service", e.qualified_service()),
    )
}
