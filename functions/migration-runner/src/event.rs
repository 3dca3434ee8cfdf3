//! What comes in, parsed strictly: the four ways in, told apart by payload — a CodePipeline
//! job, an ECR push, an ECS task state change, or a direct invocation (`{}`,
//! `{"command": […]}`, `{"wait": true}`).

use serde_json::Value;
pub use shared::error::NotForUs;

use crate::config::parse_command;
use crate::task::Task;

/// What asked for a launch: the task's `ops:trigger` tag and the source of its RunTask
/// `clientToken`, so a redelivered request finds the task it already started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The first job id of a pipeline action: CodePipeline gives each continuation a new
    /// job id, so the first one travels in the continuation token.
    Job(String),
    /// The pushed image's digest: the same image pushed under two tags is one migration.
    Push(String),
    Invocation(String),
}

impl Trigger {
    /// `codepipeline-job/<id>`, `push/sha256:<hex>`, `invoke/<request id>`.
    pub fn tag(&self) -> String {
        let (kind, id) = match self {
            Self::Job(id) => ("codepipeline-job", id),
            Self::Push(digest) => ("push", digest),
            Self::Invocation(id) => ("invoke", id),
        };
        // Tag values allow letters, digits, spaces and _ . : / = + - @ (ECS Tag reference).
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_.:/=+-@".contains(*c))
            .take(200)
            .collect();
        format!("{kind}/{id}")
    }

    /// At most 64 ASCII characters 33–126 (ECS RunTask `clientToken`), filtered to that
    /// alphabet and cut, never rejected. `attempt` counts the launches this request tried
    /// that ECS answered with `failures[]` and no task: each later one gets its own token, in
    /// case ECS keeps a completed request's answer (failures included) for the token's life.
    pub fn client_token(&self, attempt: u32) -> String {
        let tag = self.tag();
        let base = tag.chars().filter(|c| (33..=126).contains(&(*c as u32)));
        if attempt <= 1 {
            return base.take(64).collect();
        }
        let suffix = format!("#{attempt}");
        let mut token: String = base.take(64 - suffix.len()).collect();
        token.push_str(&suffix);
        token
    }

    pub fn is_job(tag: &str) -> bool {
        tag.starts_with("codepipeline-job/")
    }
}

/// A pipeline job; its parameters are the command override, if `UserParameters` give one.
pub type JobRequest = shared::jobs::JobRequest<Option<Vec<String>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub repository: String,
    pub digest: String,
    pub tag: Option<String>,
    pub action: String,
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    pub command: Result<Option<Vec<String>>, String>,
    pub wait: bool,
}

/// What the runner is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Job(JobRequest),
    Push(Push),
    TaskChange { event_id: String, task: Box<Task> },
    Direct(Direct),
}

/// `UserParameters`: empty, or a JSON object whose only field is `command`.
pub fn parse_user_parameters(text: Option<&str>) -> Result<Option<Vec<String>>, String> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "UserParameters is not JSON (line {} column {}); expected empty or {{\"command\": [\"…\"]}}",
            e.line(),
            e.column()
        )
    })?;
    let Some(fields) = value.as_object() else {
        return Err("UserParameters must be a JSON object such as {\"command\": [\"…\"]}".into());
    };
    if let Some(unknown) = fields.keys().find(|k| *k != "command") {
        return Err(format!(
            "UserParameters has an unknown field {unknown:?}; only \"command\" is accepted"
        ));
    }
    fields.get("command").map(parse_command).transpose()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub fn parse(event: &Value) -> Result<Input, NotForUs> {
    if let Some(job) = shared::jobs::job_invocation(event) {
        return Ok(Input::Job(job?.with_parameters(parse_user_parameters)));
    }
    let source = event.get("source").and_then(Value::as_str);
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    let detail = event.get("detail").cloned().unwrap_or(Value::Null);
    let event_id = text(event, "id").unwrap_or_default();
    match (source, detail_type) {
        (Some("aws.ecr"), Some("ECR Image Action")) => {
            let (Some(repository), Some(digest)) =
                (text(&detail, "repository-name"), text(&detail, "image-digest"))
            else {
                return Err(NotForUs(
                    "ECR Image Action event without repository-name or image-digest".into(),
                ));
            };
            Ok(Input::Push(Push {
                event_id,
                account: text(event, "account").unwrap_or_default(),
                region: text(event, "region").unwrap_or_default(),
                repository,
                digest,
                tag: text(&detail, "image-tag"),
                action: text(&detail, "action-type").unwrap_or_default(),
                result: text(&detail, "result").unwrap_or_default(),
            }))
        }
        (Some("aws.ecs"), Some("ECS Task State Change")) => {
            let task: Task = serde_json::from_value(detail).map_err(|e| {
                NotForUs(format!(
                    "malformed ECS Task State Change event (line {} column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            if task.task_arn.is_empty() {
                return Err(NotForUs("ECS Task State Change event without taskArn".into()));
            }
            Ok(Input::TaskChange {
                event_id,
                task: Box::new(task),
            })
        }
        (Some(_), _) | (_, Some(_)) => Err(NotForUs(
            "an event this function does not handle (it takes ECR Image Action and ECS Task State Change events)"
                .into(),
        )),
        (None, None) => direct(event),
    }
}

/// A direct invocation: a JSON object with at most `command` and `wait`.
fn direct(event: &Value) -> Result<Input, NotForUs> {
    let Some(fields) = event.as_object() else {
        return Err(NotForUs(
            "not a request: a direct invocation takes a JSON object such as {} or {\"wait\": true}"
                .into(),
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "command" | "wait"))
    {
        return Err(NotForUs(format!(
            "not a request: unknown field {unknown:?} (a direct invocation takes \"command\" and \"wait\")"
        )));
    }
    let wait = match fields.get("wait") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(NotForUs("\"wait\" must be true or false".into())),
    };
    Ok(Input::Direct(Direct {
        command: fields.get("command").map(parse_command).transpose(),
        wait,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_parameters_are_empty_or_a_command() {
        assert_eq!(parse_user_parameters(None), Ok(None));
        assert_eq!(parse_user_parameters(Some("  ")), Ok(None));
        assert_eq!(
            parse_user_parameters(Some(r#"{"command":["./migrate","up"]}"#)),
            Ok(Some(vec!["./migrate".into(), "up".into()]))
        );
        for bad in [
            "migrate up",
            r#"["./migrate"]"#,
            r#"{"command":"./migrate up"}"#,
            r#"{"command":["x"],"image":"evil"}"#,
        ] {
            assert!(parse_user_parameters(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_tokens_fit_ecs_limits_whatever_the_id() {
        let long = Trigger::Push("é".repeat(10) + &"x".repeat(100));
        for attempt in [1, 2, 1000] {
            let token = long.client_token(attempt);
            assert!(token.len() <= 64 && token.chars().all(|c| (33..=126).contains(&(c as u32))));
        }
        let job = Trigger::Job("5c1f0e2a-1111-2222-3333-444455556666".into());
        assert_eq!(
            job.client_token(1),
            "codepipeline-job/5c1f0e2a-1111-2222-3333-444455556666"
        );
        assert_eq!(
            job.client_token(3),
            "codepipeline-job/5c1f0e2a-1111-2222-3333-444455556666#3"
        );
    }

    #[test]
    fn direct_payloads_are_objects_with_known_fields_only() {
        assert!(matches!(
            parse(&json!({})),
            Ok(Input::Direct(Direct {
                wait: false,
                command: Ok(None)
            }))
        ));
        assert!(matches!(
            parse(&json!({"wait": true})),
            Ok(Input::Direct(Direct { wait: true, .. }))
        ));
        assert!(matches!(
            parse(&json!({"command": "rm -rf /"})),
            Ok(Input::Direct(Direct {
                command: Err(_),
                ..
            }))
        ));
        for not_a_request in [
            json!([]),
            json!(null),
            json!("go"),
            json!({"migrate": true}),
            json!({"wait": "yes"}),
        ] {
            assert!(parse(&not_a_request).is_err(), "{not_a_request}");
        }
    }

    #[test]
    fn other_events_are_not_mistaken_for_direct_requests() {
        let e = json!({"source": "aws.codepipeline", "detail-type": "CodePipeline Pipeline Execution State Change", "detail": {}});
        assert!(parse(&e).is_err());
    }
}
