//! The notification: hook, application / deployment group, deployment with a console link,
//! the verdict and a line per check with its evidence. ECS-native hooks say service,
//! revision and stage instead, and a long bake's progress.

use std::time::Duration;

use shared::console;
use shared::hooks::HookStatus;
use shared::invocation::ecs_hook::EcsStatus;
use shared::notifier::{Attributes, Notification, Tone};
use shared::slack::{Block, Button, Message, Mrkdwn};
use shared::text::human_duration;

use crate::config::CodeDeployHook;
use crate::event::EcsHookEvent;
use crate::outcome::{CheckState, Run};

/// How far a bake across ECS-native invocations has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BakeProgress {
    pub watched: Duration,
    /// The longest bake window in the set.
    pub window: Duration,
    pub invocations: u32,
}

impl BakeProgress {
    fn line(&self) -> String {
        format!(
            "watched {} of {} over {} invocation{}",
            human_duration(self.watched),
            human_duration(self.window),
            self.invocations,
            if self.invocations == 1 { "" } else { "s" }
        )
    }
}

/// What an ECS-native notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcsNews {
    Verdict(EcsStatus),
    /// A bake that continues across invocations has begun; `next_look` is the callback delay.
    BakeStarted {
        next_look: Duration,
    },
    /// ECS is rolling back; the hook answered SUCCEEDED so as not to block it.
    Rollback,
}

fn check_lines(run: &Run) -> Option<Block> {
    if run.checks.is_empty() {
        return None;
    }
    let mut lines = Mrkdwn::new().bold("Checks");
    for c in &run.checks {
        let mark = match c.state {
            CheckState::Passed => "✅",
            CheckState::Failed => "❌",
            CheckState::Cancelled => "⏹️",
            CheckState::Baking => "⏳",
        };
        lines = lines
            .newline()
            .literal(mark)
            .literal(" ")
            .bold(&c.name)
            .plain(" (")
            .plain(c.kind)
            .plain(")");
        if !c.evidence.0.is_empty() {
            lines = lines.plain(" — ").plain(&c.evidence.line());
        }
        for r in &c.reasons {
            lines = lines.newline().literal("      ↳ ").plain(r);
        }
    }
    Some(Block::section(lines))
}

/// Title, facts, why it failed and a line per check: what every hook message starts with.
fn head(title: &str, fields: Vec<Mrkdwn>, run: &Run) -> Message {
    let mut message = Message::new(Mrkdwn::from_untrusted(title))
        .block(Block::Header(title.to_owned()))
        .block(Block::fields(fields));
    if let Some(problem) = &run.problem {
        message = message.block(Block::section(
            Mrkdwn::new().bold("Why").newline().plain(problem),
        ));
    }
    if let Some(block) = check_lines(run) {
        message = message.block(block);
    }
    message
}

/// An ECS-native hook's verdict, bake start or rollback.
pub fn render_ecs(
    hook: &EcsHookEvent,
    run: &Run,
    news: EcsNews,
    bake: Option<BakeProgress>,
    region: &str,
) -> Notification {
    let target = format!("{}/{}", hook.cluster, hook.service);
    let (icon, word) = match news {
        EcsNews::Verdict(EcsStatus::Succeeded) => ("✅", "passed"),
        EcsNews::Verdict(EcsStatus::Failed) => ("❌", "FAILED"),
        EcsNews::Verdict(EcsStatus::InProgress) | EcsNews::BakeStarted { .. } => ("⏳", "baking"),
        EcsNews::Rollback => ("↩️", "rollback in progress"),
    };
    let title = format!("{icon} {} {word}: {target}", hook.stage);
    let link = console::ecs_service_deployments(region, &hook.cluster, &hook.service);
    let mut fields = vec![
        Mrkdwn::new().bold("Service").newline().link(&link, &target),
        Mrkdwn::new()
            .bold("Revision")
            .newline()
            .code(hook.revision_id()),
        Mrkdwn::new().bold("Stage").newline().plain(&hook.stage),
        // The deployment, not the execution: `executionId` may differ on every callback, so
        // it would name only the invocation that happened to post.
        match hook.deployment_id() {
            Some(id) => Mrkdwn::new().bold("Deployment").newline().code(id),
            None => Mrkdwn::new()
                .bold("Execution")
                .newline()
                .code(&hook.execution_id),
        },
    ];
    if let Some(weight) = hook.production_weight() {
        fields.push(
            Mrkdwn::new()
                .bold("Production traffic on it")
                .newline()
                .plain(&format!("{weight}%")),
        );
    }
    if let Some(b) = bake {
        fields.push(Mrkdwn::new().bold("Bake").newline().plain(&b.line()));
    }
    let mut message = head(&title, fields, run);
    let consequence = match news {
        EcsNews::Verdict(EcsStatus::Failed) => {
            Some("ECS rolls the deployment back to the last successful service revision".to_owned())
        }
        EcsNews::BakeStarted { next_look } => Some(format!(
            "The hook answers IN_PROGRESS and ECS calls it again every {} until the bake ends; the verdict is posted then",
            human_duration(next_look)
        )),
        EcsNews::Rollback => Some(
            "The hook answered SUCCEEDED at once so the rollback is not held up; no checks ran"
                .to_owned(),
        ),
        EcsNews::Verdict(_) => None,
    };
    if let Some(text) = consequence {
        message = message.block(Block::Context(vec![Mrkdwn::new().plain(&text)]));
    }
    message = message.block(Block::Buttons(vec![Button {
        label: "Open service deployments".into(),
        url: link,
    }]));
    let tone = match word {
        "passed" => Tone::Success,
        "baking" => Tone::Info,
        // A verdict of FAILED, or a rollback under way: a deployment did not go through.
        _ => Tone::Failure,
    };
    Notification::new(format!("{} {word}: {target}", hook.stage), message).tagged(
        Attributes::new(crate::app::FUNCTION, tone)
            .outcome(word)
            .about("service", &target),
    )
}

/// An ECS-native invocation whose payload cannot be read: it fails, so people must hear why.
pub fn render_unreadable_ecs(why: &str) -> Notification {
    let title = "❌ ECS lifecycle hook FAILED: the invocation could not be read";
    let message = Message::new(Mrkdwn::from_untrusted(title))
        .block(Block::Header(title.to_owned()))
        .block(Block::section(Mrkdwn::new().bold("Why").newline().plain(why)))
        .block(Block::Context(vec![Mrkdwn::new().plain(
            "The hook answered FAILED, so ECS rolls the deployment back; the function's log has the invocation's request id",
        )]));
    Notification::new("ECS lifecycle hook FAILED: unreadable invocation", message)
        .tagged(Attributes::new(crate::app::FUNCTION, Tone::Failure).outcome("FAILED"))
}

pub fn render(
    hook: Option<CodeDeployHook>,
    deployment_id: &str,
    run: &Run,
    status: HookStatus,
    region: &str,
) -> Notification {
    let hook_name = hook.map(CodeDeployHook::name).unwrap_or("Lifecycle hook");
    let target = match &run.deployment {
        Some(d) => format!("{} / {}", d.application, d.group),
        None => deployment_id.to_owned(),
    };
    let (icon, word) = match status {
        HookStatus::Succeeded => ("✅", "passed"),
        HookStatus::Failed => ("❌", "FAILED"),
    };
    let title = format!("{icon} {hook_name} {word}: {target}");
    let link = console::codedeploy_deployment(region, deployment_id);
    let mut fields = vec![
        Mrkdwn::new()
            .bold("Deployment")
            .newline()
            .link(&link, deployment_id),
        Mrkdwn::new().bold("Reported").newline().code(status.name()),
    ];
    if let Some(d) = &run.deployment {
        fields.push(
            Mrkdwn::new()
                .bold("Application / group")
                .newline()
                .plain(&d.application)
                .plain(" / ")
                .plain(&d.group),
        );
        if !d.creator.is_empty() {
            fields.push(Mrkdwn::new().bold("Started by").newline().plain(&d.creator));
        }
    }
    let mut message = head(&title, fields, run);
    if status == HookStatus::Failed {
        let consequence = hook
            .map(CodeDeployHook::consequence_of_failure)
            .unwrap_or("CodeDeploy stops the deployment");
        message = message.block(Block::Context(vec![Mrkdwn::new().plain(consequence)]));
    }
    message = message.block(Block::Buttons(vec![Button {
        label: "Open deployment".into(),
        url: link.clone(),
    }]));
    let tone = match status {
        HookStatus::Succeeded => Tone::Success,
        HookStatus::Failed => Tone::Failure,
    };
    let about = match &run.deployment {
        Some(d) => ("application", d.application.clone()),
        None => ("deployment", deployment_id.to_owned()),
    };
    Notification::new(format!("{hook_name} {word}: {target}"), message).tagged(
        Attributes::new(crate::app::FUNCTION, tone)
            .outcome(status.name())
            .about(about.0, about.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::Deployment;
    use crate::outcome::{CheckOutcome, Evidence};

    fn run() -> Run {
        Run {
            deployment: Some(Deployment {
                application: "prod-api".into(),
                group: "prod-api-dg".into(),
                status: "InProgress".into(),
                creator: "user".into(),
                compute_platform: "ECS".into(),
            }),
            checks: vec![
                CheckOutcome {
                    name: "health <script>".into(),
                    kind: "http",
                    state: CheckState::Failed,
                    evidence: Evidence(vec!["1/3 passed (needed 3/3)".into()]),
                    reasons: vec!["attempt 2: HTTP 500, expected 200".into()],
                },
                CheckOutcome {
                    name: "2 alarms".into(),
                    kind: "alarms",
                    state: CheckState::Cancelled,
                    evidence: Evidence::default(),
                    reasons: vec!["stopped: health had already failed".into()],
                },
            ],
            problem: None,
        }
    }

    #[test]
    fn a_failed_hook_names_the_target_checks_and_consequence() {
        let n = render(
            Some(CodeDeployHook::AfterAllowTraffic),
            "d-ABCDEF123",
            &run(),
            HookStatus::Failed,
            "eu-west-1",
        );
        assert_eq!(
            n.subject,
            "AfterAllowTraffic FAILED: prod-api / prod-api-dg"
        );
        let payload = n.slack.to_payload().to_string();
        assert!(payload.contains("health &lt;script&gt;"), "{payload}");
        assert!(payload.contains("HTTP 500, expected 200"));
        assert!(payload.contains("codedeploy/deployments/d-ABCDEF123?region=eu-west-1"));
        assert!(payload.contains("shifts traffic back"));
        assert!(n.body().contains("⏹️ 2 alarms (alarms)"), "{}", n.body());
    }

    #[test]
    fn a_broken_run_says_why_without_a_deployment() {
        let n = render(
            None,
            "d-XYZ",
            &Run::broken(None, "configuration error: CHECKS is not set"),
            HookStatus::Failed,
            "us-east-1",
        );
        assert_eq!(n.subject, "Lifecycle hook FAILED: d-XYZ");
        assert!(
            n.body()
                .contains("Why\nconfiguration error: CHECKS is not set")
        );
    }
}
