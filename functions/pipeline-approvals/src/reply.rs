//! What the endpoint answers: the HTTP response Slack's request gets (a Function URL turns the
//! function's return value into one), and the Slack messages a click is answered with through
//! its `response_url`. Everything from CodePipeline or the payload is escaped; a user is
//! mentioned by an id already checked to be one.

use serde_json::{Value, json};
use shared::approval::ApprovalRef;
use shared::slack::{Block, Message, Mrkdwn};

/// The HTTP response for the Function URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: &'static str,
    /// What the request came to (`approved`, `not-approver`, `refused`, …), also in the
    /// `x-approvals-outcome` header: Slack ignores it; the tests and the bench read it, and
    /// it says nothing the status does not to someone without the signing secret.
    pub outcome: &'static str,
}

impl HttpReply {
    /// Slack counts the interaction delivered on a 200 with an empty body; the answer a
    /// person sees goes through `response_url`.
    pub fn acknowledged(outcome: &'static str) -> Self {
        Self {
            status: 200,
            body: "",
            outcome,
        }
    }

    pub fn refused(status: u16, body: &'static str, outcome: &'static str) -> Self {
        Self {
            status,
            body,
            outcome,
        }
    }

    /// The payload format 2.0 response object.
    pub fn to_value(&self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": {"content-type": "text/plain; charset=utf-8", "cache-control": "no-store",
                        "x-approvals-outcome": self.outcome},
            "body": self.body,
            "isBase64Encoded": false
        })
    }
}

fn who(user: &str) -> String {
    format!("<@{user}>")
}

fn short(execution: &str) -> String {
    execution.chars().take(8).collect()
}

/// The approval message once answered: who answered, and when, with no buttons left.
pub fn answered(a: &ApprovalRef, approve: bool, user: &str, at: i64) -> Message {
    let (icon, verb) = if approve {
        ("👍", "approved")
    } else {
        ("🙅", "rejected")
    };
    let title = format!("{icon} {}: {verb} ({})", a.pipeline, a.action);
    Message::new(Mrkdwn::new().plain(&title))
        .block(Block::Header(title.clone()))
        .block(Block::section(
            Mrkdwn::new()
                .plain(if approve {
                    "Approved by "
                } else {
                    "Rejected by "
                })
                .markup(&who(user))
                .plain(" ")
                .date(
                    at,
                    "{date_short_pretty} {time_secs}",
                    &shared::telemetry::rfc3339(u64::try_from(at).unwrap_or(0) * 1000),
                )
                .plain(" in Slack."),
        ))
        .block(Block::Context(vec![Mrkdwn::new().plain(&format!(
            "stage {} · execution {}",
            a.stage,
            short(&a.execution)
        ))]))
}

/// The approval message when the approval no longer waits: answered elsewhere, superseded,
/// expired or gone. `summary` is CodePipeline's (who answered, when it says).
pub fn no_longer_waiting(a: &ApprovalRef, why: &str, summary: Option<&str>) -> Message {
    let title = format!(
        "⏭️ {}: no longer waiting for approval ({})",
        a.pipeline, a.action
    );
    let mut body = Mrkdwn::new().plain(why);
    if let Some(s) = summary.filter(|s| !s.trim().is_empty()) {
        body = body.newline().markup("> ").plain(s);
    }
    Message::new(Mrkdwn::new().plain(&title))
        .block(Block::Header(title.clone()))
        .block(Block::section(body))
        .block(Block::Context(vec![Mrkdwn::new().plain(&format!(
            "stage {} · execution {} · nothing was changed",
            a.stage,
            short(&a.execution)
        ))]))
}

/// A message only the person who clicked sees.
pub fn only_you(text: &str) -> Message {
    Message::new(Mrkdwn::new().plain(text)).block(Block::section(Mrkdwn::new().plain(text)))
}
