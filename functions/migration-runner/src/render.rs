//! What people read: the outcome of a migration with every container's exit and the log
//! tail, and the problems that stopped one from running. Built once as a [`Notification`]
//! (Slack blocks and the SNS text) and as the CodePipeline failure message.

use shared::console;
use shared::notifier::{Attributes, Notification, Tone};
use shared::slack::{Block, Button, MAX_SECTION_TEXT, Message, Mrkdwn};
use shared::text::slack_len;

use crate::judge::{Judgement, LogEvidence, TaskOutcome};

pub struct ClusterLocation<'a> {
    pub region: &'a str,
    pub cluster: &'a str,
}

/// Keys whose value is a credential, lower-case, matched anywhere in a line (so
/// `PGPASSWORD=` and `db_password=` are caught by `password=`); the value runs to the next
/// space, quote, `&` or `;`.
const VALUE_AFTER: &[&str] = &[
    "password=",
    "passwd=",
    "pwd=",
    "secret=",
    "secret_access_key=",
    "token=",
    "api_key=",
    "apikey=",
    "bearer ",
];

/// Credentials replaced by `****`: a URL's password (`postgres://app:s3cret@db/…`), the
/// value after a credential-named key (libpq's `password=…`, `PGPASSWORD=…`, `?password=…`,
/// `AWS_SECRET_ACCESS_KEY=…`, `AWS_SESSION_TOKEN=…`, `client_secret=…`, `api_key=…`) and a
/// bearer token (`Authorization: Bearer …`). Migration tools print connection strings and,
/// in debug, their environment; the tail goes to Slack, SNS and the pipeline's failure
/// message.
pub fn redact_credentials(line: &str) -> std::borrow::Cow<'_, str> {
    let lower = line.to_ascii_lowercase();
    if !lower.contains("://") && !VALUE_AFTER.iter().any(|key| lower.contains(key)) {
        return std::borrow::Cow::Borrowed(line);
    }
    // Byte ranges to blank out; every bound is at an ASCII delimiter, so on a char boundary.
    let mut secrets: Vec<(usize, usize)> = Vec::new();
    let ends_value = |c: char| c.is_whitespace() || "\"'`".contains(c);
    let mut from = 0;
    while let Some(found) = lower[from..].find("://") {
        let start = from + found + 3;
        let segment_end = line[start..]
            .find(ends_value)
            .map_or(line.len(), |e| start + e);
        let segment = &line[start..segment_end];
        // user:password@host — the password may itself hold '/' or ':'.
        if let Some(at) = segment.find('@')
            && let Some(colon) = segment[..at].find(':')
        {
            secrets.push((start + colon + 1, start + at));
        }
        from = segment_end.max(start);
    }
    for key in VALUE_AFTER {
        let mut from = 0;
        while let Some(found) = lower[from..].find(key) {
            let start = from + found + key.len();
            let end = line[start..]
                .find(|c: char| ends_value(c) || c == '&' || c == ';')
                .map_or(line.len(), |e| start + e);
            if end > start {
                secrets.push((start, end));
            }
            from = end.max(start);
        }
    }
    secrets.sort_unstable();
    // Overlapping ranges (`password=` inside `db_password=`) merge into the widest.
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(secrets.len());
    for (start, end) in secrets {
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let secrets = merged;
    let mut out = String::with_capacity(line.len());
    let mut kept_to = 0;
    for (start, end) in secrets {
        if start < kept_to {
            continue;
        }
        out.push_str(&line[kept_to..start]);
        out.push_str("****");
        kept_to = end;
    }
    out.push_str(&line[kept_to..]);
    std::borrow::Cow::Owned(out)
}

/// What a character costs against Slack's limits once escaped (`&amp;`, `&lt;`, `&gt;`).
pub fn slack_cost(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        c => c.len_utf16(),
    }
}

/// What a character costs in plain text (UTF-16 units, as the limits count).
pub fn plain_cost(c: char) -> usize {
    c.len_utf16()
}

/// The last lines that fit in `max`, newest kept (the end of a failed migration's log is where
/// its error is), credentials redacted; a newest line longer than all the room is cut from its
/// start rather than dropped.
pub fn fit_tail(lines: &[String], max: usize, cost: fn(char) -> usize) -> String {
    let room = max.saturating_sub(40);
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    for line in lines.iter().rev() {
        let line = redact_credentials(line).into_owned();
        let line_cost: usize = line.chars().map(cost).sum::<usize>() + 1;
        if used + line_cost > room {
            if kept.is_empty() {
                kept.push(keep_end(&line, room, cost));
            }
            break;
        }
        used += line_cost;
        kept.push(line);
    }
    kept.reverse();
    let hidden = lines.len() - kept.len();
    let mut out = String::new();
    if hidden > 0 {
        out.push_str(&format!("… {hidden} earlier line(s) not shown\n"));
    }
    out.push_str(&kept.join("\n"));
    out
}

/// The end of `line` within `room`, marked where it was cut.
fn keep_end(line: &str, room: usize, cost: fn(char) -> usize) -> String {
    let mut used = 1;
    let mut start = line.len();
    for (i, c) in line.char_indices().rev() {
        used += cost(c);
        if used > room {
            break;
        }
        start = i;
    }
    format!("…{}", &line[start..])
}

fn container_lines(j: &Judgement) -> Vec<String> {
    j.containers
        .iter()
        .map(|c| {
            format!(
                "{}{}: {}{}",
                c.name,
                if c.essential { "" } else { " (not essential)" },
                c.exit_code
                    .map(|e| format!("exit {e}"))
                    .unwrap_or_else(|| "no exit code".into()),
                c.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// CodePipeline's failure message: reasons, containers, then as much of the log tail as
/// fits in `max` characters.
pub fn failure_message(o: &TaskOutcome, max: usize) -> String {
    let mut head = format!(
        "Migration task {} ({}) failed: {}",
        crate::task::task_id(&o.task_arn),
        o.family,
        o.reasons().join("; ")
    );
    if let Some(r) = &o.judgement.stopped_reason {
        head.push_str(&format!(". Stopped reason: {r}"));
    }
    head.push_str(&format!(
        ". Containers: {}",
        container_lines(&o.judgement).join(", ")
    ));
    match &o.log {
        LogEvidence::Lines { lines, .. } if !lines.is_empty() => {
            let room = max.saturating_sub(slack_len(&head) + 20);
            format!("{head}\nLog tail:\n{}", fit_tail(lines, room, plain_cost))
        }
        LogEvidence::Lines { .. } => format!("{head}\nLog tail: the log stream is empty"),
        LogEvidence::Unavailable(why) => format!("{head}\nLog tail: {why}"),
    }
}

fn task_button(cluster_at: &ClusterLocation, task_arn: &str) -> Block {
    Block::Buttons(vec![Button {
        label: "Task in the ECS console".into(),
        url: console::ecs_task(cluster_at.region, cluster_at.cluster, task_arn),
    }])
}

/// A code block cannot contain its own fence; a look-alike keeps the text readable.
fn code_block(text: &str) -> Mrkdwn {
    Mrkdwn::new()
        .markup("```\n")
        .plain(&text.replace("```", "ˋˋˋ"))
        .markup("\n```")
}

pub fn render_outcome(
    o: &TaskOutcome,
    trigger: Option<&str>,
    cluster_at: &ClusterLocation,
) -> Notification {
    let task_id = crate::task::task_id(&o.task_arn);
    let title = if o.succeeded() {
        format!("✅ Migration succeeded: {}", o.family)
    } else {
        format!("⛔ Migration failed: {}", o.family)
    };
    let mut message =
        Message::new(Mrkdwn::from_untrusted(&title)).block(Block::Header(title.clone()));
    if !o.succeeded() {
        let mut m = Mrkdwn::new().bold("Why");
        for r in o.reasons() {
            m = m.newline().plain("• ").plain(&r);
        }
        message = message.block(Block::section(m));
    }
    let mut fields = vec![
        Mrkdwn::new().bold("Task").newline().code(task_id),
        Mrkdwn::new()
            .bold("Stop code")
            .newline()
            .plain(o.judgement.stop_code.as_deref().unwrap_or("(none)")),
    ];
    if let Some(r) = &o.judgement.stopped_reason {
        fields.push(Mrkdwn::new().bold("Stopped reason").newline().plain(r));
    }
    if let Some(t) = trigger {
        fields.push(Mrkdwn::new().bold("Started by").newline().plain(t));
    }
    message = message.block(Block::fields(fields));
    let mut containers = Mrkdwn::new().bold("Containers");
    for line in container_lines(&o.judgement) {
        containers = containers.newline().plain("• ").plain(&line);
    }
    message = message.block(Block::section(containers));
    match &o.log {
        LogEvidence::Lines { stream, lines } if !lines.is_empty() => {
            message = message
                .block(Block::Context(vec![
                    Mrkdwn::new().plain("Last lines of ").code(stream),
                ]))
                // Room for the fences; the cost counts the escaping of < > &.
                .block(Block::section(code_block(&fit_tail(
                    lines,
                    MAX_SECTION_TEXT - 10,
                    slack_cost,
                ))));
        }
        LogEvidence::Lines { stream, .. } => {
            message = message.block(Block::Context(vec![
                Mrkdwn::new()
                    .plain("The log stream ")
                    .code(stream)
                    .plain(" is empty."),
            ]));
        }
        LogEvidence::Unavailable(why) => {
            message = message.block(Block::Context(vec![
                Mrkdwn::new().plain("No log tail: ").plain(why),
            ]));
        }
    }
    let (tone, outcome) = if o.succeeded() {
        (Tone::Success, "succeeded")
    } else {
        (Tone::Failure, "failed")
    };
    Notification::new(title, message.block(task_button(cluster_at, &o.task_arn))).tagged(
        Attributes::new(crate::app::FUNCTION, tone)
            .outcome(outcome)
            .about("family", &o.family),
    )
}

/// A migration that did not run, or whose outcome could not be told: the headline, why, and
/// the task when there is one.
pub fn render_problem(
    headline: &str,
    why: &str,
    task_arn: Option<&str>,
    cluster_at: &ClusterLocation,
) -> Notification {
    let title = format!("⛔ {headline}");
    let mut message = Message::new(Mrkdwn::from_untrusted(&title))
        .block(Block::Header(title.clone()))
        .block(Block::section(Mrkdwn::from_untrusted(why)));
    if let Some(arn) = task_arn {
        message = message.block(task_button(cluster_at, arn));
    }
    Notification::new(title, message)
        .tagged(Attributes::new(crate::app::FUNCTION, Tone::Failure).outcome("not-run"))
}

/// `NOTIFY_ON=ALL`: a migration launched by an event or an invocation.
pub fn render_started(
    family: &str,
    task_arn: &str,
    trigger: &str,
    cluster_at: &ClusterLocation,
) -> Notification {
    let title = format!("▶️ Migration started: {family}");
    let message = Message::new(Mrkdwn::from_untrusted(&title))
        .block(Block::Header(title.clone()))
        .block(Block::section(
            Mrkdwn::new()
                .plain("Task ")
                .code(crate::task::task_id(task_arn))
                .plain(", started by ")
                .plain(trigger)
                .plain("."),
        ))
        .block(task_button(cluster_at, task_arn));
    Notification::new(title, message).tagged(
        Attributes::new(crate::app::FUNCTION, Tone::Info)
            .outcome("started")
            .about("family", family),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::ContainerLine;

    fn failed(lines: Vec<String>) -> TaskOutcome {
        TaskOutcome {
            task_arn: "arn:aws:ecs:us-east-1:1:task/prod/abc".into(),
            family: "api-migrate".into(),
            judgement: Judgement {
                succeeded: false,
                reasons: vec!["essential container migrate exited with 1".into()],
                stop_code: Some("EssentialContainerExited".into()),
                stopped_reason: Some("Essential container in task exited".into()),
                containers: vec![ContainerLine {
                    name: "migrate".into(),
                    essential: true,
                    exit_code: Some(1),
                    reason: None,
                }],
                exit_code: Some(1),
            },
            log: LogEvidence::Lines {
                stream: "ecs/migrate/abc".into(),
                lines,
            },
            timed_out: None,
        }
    }

    #[test]
    fn the_tail_keeps_the_newest_lines_and_says_how_many_were_cut() {
        let lines: Vec<String> = (1..=500).map(|i| format!("line {i}")).collect();
        let t = fit_tail(&lines, 300, plain_cost);
        assert!(t.ends_with("line 500"));
        assert!(t.starts_with("… ") && t.contains("earlier line(s) not shown"));
        assert!(slack_len(&t) <= 300);
    }

    #[test]
    fn a_newest_line_longer_than_the_room_keeps_its_end() {
        let lines = vec!["start".to_owned(), format!("{}END", "x".repeat(5000))];
        let t = fit_tail(&lines, 300, plain_cost);
        assert!(t.ends_with("END") && slack_len(&t) <= 300, "{t}");
    }

    #[test]
    fn escaping_is_counted_so_the_newest_lines_survive_slacks_limit() {
        let lines: Vec<String> = (0..200).map(|i| format!("<<<>>> {i}")).collect();
        let n = render_outcome(
            &failed(lines),
            None,
            &ClusterLocation {
                region: "us-east-1",
                cluster: "prod",
            },
        );
        let payload = n.slack.to_payload().to_string();
        assert!(
            payload.contains("199") && !payload.contains("[truncated]"),
            "{payload}"
        );
    }

    #[test]
    fn url_passwords_are_redacted_from_the_tail() {
        assert_eq!(
            redact_credentials("connecting to postgres://app:s3cret@db.internal:5432/orders"),
            "connecting to postgres://app:****@db.internal:5432/orders"
        );
        assert_eq!(
            redact_credentials("see https://example.com/a@b"),
            "see https://example.com/a@b"
        );
        let m = failure_message(&failed(vec!["DSN=mysql://root:hunter2@db/x".into()]), 5000);
        assert!(!m.contains("hunter2"), "{m}");
    }

    #[test]
    fn tokens_keys_and_bearer_credentials_are_redacted_from_the_tail() {
        for (line, secret) in [
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
                "wJalrXUtnFEMI",
            ),
            (
                "export AWS_SESSION_TOKEN=IQoJb3JpZ2luX2Vj",
                "IQoJb3JpZ2luX2Vj",
            ),
            ("oauth client_secret=c2VjcmV0&grant=x", "c2VjcmV0"),
            ("GET /x?api_key=abc123 200", "abc123"),
            ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
            ("DB_PASSWORD=p4ss;host=db", "p4ss"),
        ] {
            let redacted = redact_credentials(line);
            assert!(!redacted.contains(secret), "{line} -> {redacted}");
            assert!(redacted.contains("****"), "{redacted}");
        }
        assert_eq!(
            redact_credentials("applying 0042_add_invoice_index ... ok"),
            "applying 0042_add_invoice_index ... ok"
        );
    }

    #[test]
    fn the_job_message_fits_codepipelines_limit_and_ends_with_the_last_log_line() {
        let lines: Vec<String> = (1..=2000).map(|i| format!("applying step {i}")).collect();
        let m = failure_message(&failed(lines), 5000);
        assert!(slack_len(&m) <= 5000);
        assert!(m.contains("exited with 1") && m.ends_with("applying step 2000"));
    }

    #[test]
    fn hostile_log_lines_are_inert_in_slack_and_cannot_close_the_code_block() {
        let n = render_outcome(
            &failed(vec!["<!channel> ``` <https://evil|click>".into()]),
            None,
            &ClusterLocation {
                region: "us-east-1",
                cluster: "prod",
            },
        );
        let payload = n.slack.to_payload().to_string();
        assert!(!payload.contains("<!channel>") && payload.contains("&lt;!channel&gt;"));
        assert_eq!(payload.matches("```").count(), 2, "{payload}");
    }
}
