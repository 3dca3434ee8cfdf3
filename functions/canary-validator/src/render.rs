//! The notification: hook, application / deployment group, deployment with a console link,
//! the verdict and a line per check with its evidence.

use shared::console;
use shared::hooks::HookStatus;
use shared::notifier::Notification;
use shared::slack::{Block, Button, Message, Mrkdwn};

use crate::config::Hook;
use crate::report::{CheckState, Run};

pub fn render(
    hook: Option<Hook>,
    deployment_id: &str,
    run: &Run,
    status: HookStatus,
    region: &str,
) -> Notification {
    let hook_name = hook.map(Hook::name).unwrap_or("Lifecycle hook");
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
    let mut message = Message::new(Mrkdwn::from_untrusted(&title))
        .block(Block::Header(title.clone()))
        .block(Block::fields(fields));

    if let Some(problem) = &run.problem {
        message = message.block(Block::section(
            Mrkdwn::new().bold("Why").newline().plain(problem),
        ));
    }
    if !run.checks.is_empty() {
        let mut lines = Mrkdwn::new().bold("Checks");
        for c in &run.checks {
            let mark = match c.state {
                CheckState::Passed => "✅",
                CheckState::Failed => "❌",
                CheckState::Cancelled => "⏹️",
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
        message = message.block(Block::section(lines));
    }
    if status == HookStatus::Failed {
        let consequence = hook
            .map(Hook::consequence_of_failure)
            .unwrap_or("CodeDeploy stops the deployment");
        message = message.block(Block::Context(vec![Mrkdwn::new().plain(consequence)]));
    }
    message = message.block(Block::Buttons(vec![Button {
        label: "Open deployment".into(),
        url: link.clone(),
    }]));
    Notification::new(format!("{hook_name} {word}: {target}"), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckReport, Deployment, Evidence};

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
                CheckReport {
                    name: "health <script>".into(),
                    kind: "http",
                    state: CheckState::Failed,
                    evidence: Evidence(vec!["1/3 passed (needed 3/3)".into()]),
                    reasons: vec!["attempt 2: HTTP 500, expected 200".into()],
                },
                CheckReport {
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
            Some(Hook::AfterAllowTraffic),
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
