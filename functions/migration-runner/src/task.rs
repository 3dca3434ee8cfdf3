//! What the runner knows of a task and its task definition, in ECS's published JSON shape
//! (the `detail` of an "ECS Task State Change" event and a DescribeTasks task are the same
//! object), so events and API answers are read by one parser.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(default)]
    pub task_arn: String,
    #[serde(default)]
    pub task_definition_arn: String,
    #[serde(default)]
    pub cluster_arn: Option<String>,
    #[serde(default)]
    pub last_status: String,
    #[serde(default)]
    pub desired_status: Option<String>,
    #[serde(default)]
    pub stop_code: Option<String>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerRun>,
    /// Only in DescribeTasks answers asked to include TAGS; never in events.
    #[serde(default, deserialize_with = "tags")]
    pub tags: BTreeMap<String, String>,
    /// Grows with each change of the task; duplicates of an event share it.
    #[serde(default)]
    pub version: i64,
    /// Milliseconds since the epoch: an ISO-8601 string in events, seconds in API answers.
    #[serde(default, deserialize_with = "timestamp")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "timestamp")]
    pub stopped_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRun {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub last_status: Option<String>,
}

fn tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    struct Tag {
        key: Option<String>,
        value: Option<String>,
    }
    let list: Option<Vec<Tag>> = Option::deserialize(d)?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect())
}

fn timestamp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_f64().map(|s| (s * 1000.0) as i64),
        Some(serde_json::Value::String(s)) => DateTime::from_str(&s, Format::DateTime)
            .ok()
            .and_then(|t| t.to_millis().ok()),
        _ => None,
    })
}

impl Task {
    /// Which of two tasks started first: the earlier creation, then the smaller ARN, so two
    /// runners that raced each pick the same winner.
    pub fn started_before(&self, other: &Task) -> bool {
        let key = |t: &Task| (t.created_at.unwrap_or(i64::MAX), t.task_arn.clone());
        key(self) < key(other)
    }

    pub fn is_stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// The task id: the last part of its ARN.
    pub fn id(&self) -> &str {
        task_id(&self.task_arn)
    }

    pub fn family(&self) -> &str {
        family_of(&self.task_definition_arn)
    }
}

/// `arn:aws:ecs:…:cluster/prod` or `prod` → `prod`.
pub fn cluster_name(cluster: &str) -> &str {
    cluster.rsplit('/').next().unwrap_or(cluster)
}

pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `arn:aws:ecs:…:task-definition/api-migrate:7` or `api-migrate:7` → `api-migrate`.
pub fn family_of(task_definition: &str) -> &str {
    let name = task_definition
        .rsplit_once(":task-definition/")
        .map(|(_, n)| n)
        .unwrap_or(task_definition);
    name.rsplit_once(':').map(|(f, _)| f).unwrap_or(name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinition {
    pub arn: String,
    pub family: String,
    pub containers: Vec<ContainerDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDef {
    pub name: String,
    pub image: String,
    /// ECS's default when the definition leaves it out is `true`.
    pub essential: bool,
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
}

/// Where a container's output went, or why it cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogStream {
    CloudWatch { group: String, stream: String },
    Unavailable(String),
}

impl TaskDefinition {
    pub fn container(&self, name: &str) -> Option<&ContainerDef> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The awslogs driver writes to `<awslogs-stream-prefix>/<container>/<task id>` in
    /// `awslogs-group` (ECS developer guide, "Using the awslogs log driver").
    pub fn log_stream(&self, container: &str, task_arn: &str) -> LogStream {
        let Some(c) = self.container(container) else {
            return LogStream::Unavailable(format!(
                "the task definition has no container named {container}"
            ));
        };
        if c.log_driver.as_deref() != Some("awslogs") {
            return LogStream::Unavailable(format!(
                "container {container} does not log to CloudWatch Logs (log driver: {})",
                c.log_driver.as_deref().unwrap_or("none")
            ));
        }
        let group = c.log_options.get("awslogs-group");
        let prefix = c.log_options.get("awslogs-stream-prefix");
        match (group, prefix) {
            (Some(g), Some(p)) => LogStream::CloudWatch {
                group: g.clone(),
                stream: format!("{p}/{container}/{}", task_id(task_arn)),
            },
            (None, _) => {
                LogStream::Unavailable(format!("container {container} has no awslogs-group option"))
            }
            (Some(_), None) => LogStream::Unavailable(format!(
                "container {container} has no awslogs-stream-prefix, so its stream is named by the Docker container id"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn families_come_from_arns_and_short_forms() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:1:task-definition/api-migrate:7"),
            "api-migrate"
        );
        assert_eq!(family_of("api-migrate:7"), "api-migrate");
        assert_eq!(family_of("api-migrate"), "api-migrate");
    }

    #[test]
    fn tags_and_unknown_fields_are_read_leniently() {
        let t: Task = serde_json::from_value(json!({
            "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/abc",
            "lastStatus": "STOPPED",
            "tags": [{"key": "ops:trigger", "value": "event/1"}, {"value": "no key"}],
            "somethingNew": {"a": 1}
        }))
        .unwrap();
        assert_eq!(t.tags["ops:trigger"], "event/1");
        let iso: Task =
            serde_json::from_value(json!({"createdAt": "2026-11-20T01:55:02.112Z"})).unwrap();
        let secs: Task = serde_json::from_value(json!({"createdAt": 1795139702.5})).unwrap();
        assert_eq!(iso.created_at, Some(1_795_139_702_112));
        assert_eq!(secs.created_at, Some(1_795_139_702_500));
        assert_eq!(t.id(), "abc");
        assert!(t.is_stopped());
    }

    #[test]
    fn the_log_stream_follows_the_awslogs_naming_and_says_when_it_cannot() {
        let def = |driver: Option<&str>, options: &[(&str, &str)]| TaskDefinition {
            arn: "td".into(),
            family: "f".into(),
            containers: vec![ContainerDef {
                name: "migrate".into(),
                image: "i".into(),
                essential: true,
                log_driver: driver.map(str::to_owned),
                log_options: options
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            }],
        };
        let task = "arn:aws:ecs:us-east-1:1:task/prod/0123";
        assert_eq!(
            def(
                Some("awslogs"),
                &[
                    ("awslogs-group", "/ecs/api"),
                    ("awslogs-stream-prefix", "ecs")
                ]
            )
            .log_stream("migrate", task),
            LogStream::CloudWatch {
                group: "/ecs/api".into(),
                stream: "ecs/migrate/0123".into()
            }
        );
        assert!(matches!(
            def(Some("awsfirelens"), &[]).log_stream("migrate", task),
            LogStream::Unavailable(why) if why.contains("awsfirelens")
        ));
        assert!(matches!(
            def(Some("awslogs"), &[("awslogs-group", "/ecs/api")]).log_stream("migrate", task),
            LogStream::Unavailable(why) if why.contains("stream-prefix")
        ));
        assert!(matches!(
            def(None, &[]).log_stream("other", task),
            LogStream::Unavailable(why) if why.contains("no container named other")
        ));
    }
}
