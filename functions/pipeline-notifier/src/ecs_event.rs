//! Amazon ECS service events, as the ECS developer guide publishes them: `ECS Deployment State
//! Change` (a deployment in progress, completed or failed) and the `ECS Service Action` events
//! that say a service cannot run its tasks. Read leniently, checked for what a message needs.
//!
//! Which service actions are told, and why: `SERVICE_TASK_START_IMPAIRED` (tasks keep failing
//! to start: the usual face of a bad release without a circuit breaker),
//! `SERVICE_TASK_PLACEMENT_FAILURE` (no capacity: the service is short of tasks) and
//! `SERVICE_TASK_CONFIGURATION_FAILURE` (a role or setting ECS cannot use). The others are
//! steady states, throttling and service discovery, which are not news a person acts on; and
//! `SERVICE_DEPLOYMENT_*` under `ECS Service Action` repeats the deployment events, so it is
//! ignored here and not delivered by the template's rule.

use serde::Deserialize;
use serde_json::Value;
use shared::error::NotForUs;

use crate::event::{Envelope, non_empty};

/// What happened to a service, as `NOTIFY_ON`'s `ecs:` items name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EcsState {
    /// A deployment started (`SERVICE_DEPLOYMENT_IN_PROGRESS`).
    InProgress,
    /// The circuit breaker (or an alarm) rolls a failed deployment back: an in-progress event
    /// whose reason says "rolling back", as the developer guide's example shows.
    RollingBack,
    Completed,
    Failed,
    TaskStartImpaired,
    TaskPlacementFailure,
    TaskConfigurationFailure,
}

pub const ALL_ECS_STATES: [EcsState; 7] = [
    EcsState::InProgress,
    EcsState::RollingBack,
    EcsState::Completed,
    EcsState::Failed,
    EcsState::TaskStartImpaired,
    EcsState::TaskPlacementFailure,
    EcsState::TaskConfigurationFailure,
];

impl EcsState {
    pub fn parse(text: &str) -> Option<Self> {
        ALL_ECS_STATES.into_iter().find(|s| s.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::RollingBack => "ROLLING_BACK",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::TaskStartImpaired => "TASK_START_IMPAIRED",
            Self::TaskPlacementFailure => "TASK_PLACEMENT_FAILURE",
            Self::TaskConfigurationFailure => "TASK_CONFIGURATION_FAILURE",
        }
    }

    /// A deployment's own state, rather than the service's health.
    pub fn is_deployment(self) -> bool {
        matches!(
            self,
            Self::InProgress | Self::RollingBack | Self::Completed | Self::Failed
        )
    }

    /// Something a person must look at: the on-call mention, severity `failure`.
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::InProgress | Self::Completed)
    }
}

/// A notifiable ECS event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsEvent {
    pub id: String,
    pub state: EcsState,
    /// AWS's own name for it (`SERVICE_DEPLOYMENT_FAILED`), for the log and the message.
    pub event_name: String,
    pub service: String,
    /// Absent only for a service ARN in the old format (`service/<name>`) on an event that
    /// does not name its cluster.
    pub cluster: Option<String>,
    pub region: String,
    pub account: Option<String>,
    pub time: Option<String>,
    /// `ecs-svc/…`: the deployment, on deployment events.
    pub deployment_id: Option<String>,
    pub reason: Option<String>,
}

impl EcsEvent {
    /// `cluster/service`, what routes and the per-service documents go by.
    pub fn qualified_service(&self) -> String {
        format!(
            "{}/{}",
            self.cluster.as_deref().unwrap_or("default"),
            self.service
        )
    }
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(rename = "deploymentId")]
    deployment_id: Option<String>,
    #[serde(rename = "clusterArn")]
    cluster_arn: Option<String>,
    reason: Option<String>,
}

pub const DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";
pub const SERVICE_ACTION: &str = "ECS Service Action";

fn quoted(s: &str) -> String {
    format!("{:?}", s.chars().take(80).collect::<String>())
}

/// The part after `kind/` of an ECS ARN (`arn:aws:ecs:<region>:<account>:<kind>/…`).
fn arn_path<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:")?;
    let resource = rest.splitn(5, ':').nth(4)?;
    resource.strip_prefix(kind)?.strip_prefix('/')
}

/// `service/<cluster>/<service>`, or the old `service/<service>`.
fn service_of(arn: &str) -> Option<(Option<String>, String)> {
    let path = arn_path(arn, "service")?;
    let mut parts = path.split('/');
    let (first, second) = (parts.next()?, parts.next());
    if parts.next().is_some() {
        return None;
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match second {
        Some(service) if valid(first) && valid(service) => {
            Some((Some(first.to_owned()), service.to_owned()))
        }
        None if valid(first) => Some((None, first.to_owned())),
        _ => None,
    }
}

fn state_of(detail_type: &str, event_name: &str, reason: Option<&str>) -> Option<EcsState> {
    let rolling_back = reason.is_some_and(|r| r.to_ascii_lowercase().contains("rolling back"));
    match (detail_type, event_name) {
        (DEPLOYMENT_STATE_CHANGE, "SERVICE_DEPLOYMENT_IN_PROGRESS") if rolling_back => {
            Some(EcsState::RollingBack)
        }
        (DEPLOYMENT_STATE_CHANGE, "SERVICE_DEPLOYMENT_IN_PROGRESS") => Some(EcsState::InProgress),
        (DEPLOYMENT_STATE_CHANGE, "SERVICE_DEPLOYMENT_COMPLETED") => Some(EcsState::Completed),
        (DEPLOYMENT_STATE_CHANGE, "SERVICE_DEPLOYMENT_FAILED") => Some(EcsState::Failed),
        (SERVICE_ACTION, "SERVICE_TASK_START_IMPAIRED") => Some(EcsState::TaskStartImpaired),
        (SERVICE_ACTION, "SERVICE_TASK_PLACEMENT_FAILURE") => Some(EcsState::TaskPlacementFailure),
        (SERVICE_ACTION, "SERVICE_TASK_CONFIGURATION_FAILURE") => {
            Some(EcsState::TaskConfigurationFailure)
        }
        _ => None,
    }
}

/// Whether `event` is one of ECS's, so [`parse`] should read it.
pub fn is_ecs(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.ecs")
}

pub fn parse(event: &Value) -> Result<EcsEvent, NotForUs> {
    let envelope: Envelope = serde_json::from_value(event.clone())
        .map_err(|_| NotForUs("not an EventBridge event (a field has the wrong type)".into()))?;
    if envelope.source.as_deref() != Some("aws.ecs") {
        return Err(NotForUs("source is not aws.ecs".into()));
    }
    let detail_type =
        non_empty(envelope.detail_type).ok_or_else(|| NotForUs("detail-type is missing".into()))?;
    if detail_type != DEPLOYMENT_STATE_CHANGE && detail_type != SERVICE_ACTION {
        return Err(NotForUs(format!(
            "ECS event {} is not one the notifier tells",
            quoted(&detail_type)
        )));
    }
    let detail: Detail = serde_json::from_value(envelope.detail.unwrap_or(Value::Null))
        .map_err(|_| NotForUs("malformed detail (a field has the wrong type)".into()))?;
    let event_name = non_empty(detail.event_name)
        .ok_or_else(|| NotForUs("detail.eventName is missing".into()))?;
    let reason = non_empty(detail.reason);
    let state = state_of(&detail_type, &event_name, reason.as_deref()).ok_or_else(|| {
        NotForUs(format!(
            "{detail_type} {} is not one the notifier tells",
            quoted(&event_name)
        ))
    })?;
    let (cluster_in_arn, service) = envelope
        .resources
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(service_of)
        .ok_or_else(|| NotForUs("no service ARN in resources".into()))?;
    let cluster = cluster_in_arn.or_else(|| {
        non_empty(detail.cluster_arn)
            .and_then(|a| arn_path(&a, "cluster").map(str::to_owned))
            .filter(|c| !c.is_empty() && !c.contains('/'))
    });
    let region =
        non_empty(envelope.region).ok_or_else(|| NotForUs("no region in the event".into()))?;
    let deployment_id = non_empty(detail.deployment_id);
    if state.is_deployment() && deployment_id.is_none() {
        return Err(NotForUs(
            "deployment event without detail.deploymentId".into(),
        ));
    }
    let id = non_empty(envelope.id).unwrap_or_else(|| {
        format!(
            "{}/{}/{event_name}/{}",
            cluster.as_deref().unwrap_or("default"),
            service,
            deployment_id.as_deref().unwrap_or("")
        )
    });
    Ok(EcsEvent {
        id,
        state,
        event_name,
        service,
        cluster,
        region,
        account: non_empty(envelope.account),
        time: non_empty(envelope.time),
        deployment_id,
        reason: reason.map(|r| r.chars().take(2000).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed() -> Value {
        json!({
            "version": "0", "id": "ddca6449-b258-46c0-8653-e0e3aEXAMPLE",
            "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
            "account": "111122223333", "time": "2020-05-23T12:31:14Z", "region": "us-west-2",
            "resources": ["arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"],
            "detail": {"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED",
                "deploymentId": "ecs-svc/123", "updatedAt": "2020-05-23T11:11:11Z",
                "reason": "ECS deployment circuit breaker: task failed to start."}
        })
    }

    #[test]
    fn a_deployment_event_names_its_service_cluster_and_deployment() {
        let e = parse(&failed()).unwrap();
        assert_eq!(e.state, EcsState::Failed);
        assert_eq!(e.service, "servicetest");
        assert_eq!(e.cluster.as_deref(), Some("default"));
        assert_eq!(e.deployment_id.as_deref(), Some("ecs-svc/123"));
        assert_eq!(e.qualified_service(), "default/servicetest");
    }

    #[test]
    fn an_in_progress_event_that_rolls_back_is_a_rollback() {
        let mut v = failed();
        v["detail"]["eventName"] = json!("SERVICE_DEPLOYMENT_IN_PROGRESS");
        v["detail"]["reason"] =
            json!("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/122.");
        assert_eq!(parse(&v).unwrap().state, EcsState::RollingBack);
        v["detail"]["reason"] = json!("ECS deployment ecs-svc/123 in progress.");
        assert_eq!(parse(&v).unwrap().state, EcsState::InProgress);
    }

    #[test]
    fn service_actions_outside_the_chosen_three_are_not_for_us() {
        let mut v = failed();
        v["detail-type"] = json!("ECS Service Action");
        v["detail"]["eventName"] = json!("SERVICE_STEADY_STATE");
        assert!(parse(&v).unwrap_err().0.contains("SERVICE_STEADY_STATE"));
        // ECS Service Action repeats the deployment events; only the deployment's own count.
        v["detail"]["eventName"] = json!("SERVICE_DEPLOYMENT_FAILED");
        assert!(parse(&v).is_err());
        v["detail"]["eventName"] = json!("SERVICE_TASK_PLACEMENT_FAILURE");
        v["detail"]["clusterArn"] = json!("arn:aws:ecs:us-west-2:111122223333:cluster/default");
        assert_eq!(parse(&v).unwrap().state, EcsState::TaskPlacementFailure);
    }

    #[test]
    fn an_old_format_service_arn_takes_its_cluster_from_the_detail() {
        let mut v = failed();
        v["detail-type"] = json!("ECS Service Action");
        v["detail"]["eventName"] = json!("SERVICE_TASK_START_IMPAIRED");
        v["resources"] = json!(["arn:aws:ecs:us-west-2:111122223333:service/servicetest"]);
        v["detail"]["clusterArn"] = json!("arn:aws:ecs:us-west-2:111122223333:cluster/prod");
        let e = parse(&v).unwrap();
        assert_eq!(
            (e.cluster.as_deref(), e.service.as_str()),
            (Some("prod"), "servicetest")
        );
    }

    #[test]
    fn malformed_ecs_events_are_refused_without_quoting_their_values() {
        let mut v = failed();
        v["resources"] = json!(["arn:aws:ecs:us-west-2:1:service/a/b/c"]);
        assert_eq!(parse(&v).unwrap_err().0, "no service ARN in resources");
        let mut v = failed();
        v["detail"]["deploymentId"] = json!({"secret": "hunter2"});
        let why = parse(&v).unwrap_err().0;
        assert!(!why.contains("hunter2"), "{why}");
        let mut v = failed();
        v["detail"].as_object_mut().unwrap().remove("deploymentId");
        assert!(parse(&v).unwrap_err().0.contains("deploymentId"));
        assert!(parse(&json!(null)).is_err());
    }
}
