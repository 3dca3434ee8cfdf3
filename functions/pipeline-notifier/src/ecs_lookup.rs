//! What an ECS event does not say: the deployment's revisions (task definition and images,
//! before and after), its rollback, circuit breaker and alarms, from `ListServiceDeployments`,
//! `DescribeServiceDeployments` and `DescribeServiceRevisions`.
//!
//! The event's `deploymentId` (`ecs-svc/…`) is not a service deployment's ARN and no call
//! takes it, so the deployment is the service's newest one created by the event's time. A
//! message goes out without these details when the calls fail or run out of time, as a
//! pipeline message goes without its commit.

use std::future::Future;

use aws_sdk_ecs::types::{CreatedAt, ServiceDeployment, ServiceRevision};
use aws_smithy_types::DateTime;
use shared::{Deadline, Error};

use crate::ecs_event::{EcsEvent, EcsState};
use crate::render::epoch;

/// A service revision as a message shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRevisionView {
    pub arn: String,
    /// `family:revision`.
    pub task_definition: Option<String>,
    /// `container: image` (the digest when the image was given by tag).
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentInfo {
    /// `ServiceDeploymentStatus`: SUCCESSFUL, ROLLBACK_SUCCESSFUL, …
    pub status: Option<String>,
    pub status_reason: Option<String>,
    pub source: Option<ServiceRevisionView>,
    pub target: Option<ServiceRevisionView>,
    /// The revision a rollback went back to, when there was one.
    pub rolled_back_to: Option<ServiceRevisionView>,
    pub rollback_reason: Option<String>,
    /// `failureCount/threshold` when the circuit breaker watched the deployment.
    pub circuit_breaker: Option<(i32, i32)>,
    pub triggered_alarms: Vec<String>,
}

/// Where a rollback of the deployment stands, from its `ServiceDeploymentStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollback {
    None,
    /// `ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`: the release is being undone.
    Underway,
    /// `ROLLBACK_SUCCESSFUL`: the service runs its previous revision again.
    Done,
    /// `ROLLBACK_FAILED`: neither the release nor the previous revision runs as it should.
    Failed,
}

impl DeploymentInfo {
    pub fn rollback(&self) -> Rollback {
        match self.status.as_deref() {
            Some("ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS") => Rollback::Underway,
            Some("ROLLBACK_SUCCESSFUL") => Rollback::Done,
            Some("ROLLBACK_FAILED") => Rollback::Failed,
            _ => Rollback::None,
        }
    }

    /// The previous revision runs again: the release was undone.
    pub fn rolled_back(&self) -> bool {
        self.rollback() == Rollback::Done
    }
}

/// Whether a service deployment in `status` can be the one an event in `state` is about: a
/// deployment created just after the event (a late delivery, a redrive) must not lend its
/// details to it.
fn fits(state: EcsState, status: Option<&str>) -> bool {
    let Some(status) = status else {
        return true;
    };
    match state {
        EcsState::Completed => matches!(status, "SUCCESSFUL" | "ROLLBACK_SUCCESSFUL"),
        EcsState::Failed => status != "SUCCESSFUL" && status != "PENDING",
        _ => true,
    }
}

/// The port the notifier reads a deployment's details through.
pub trait DeploymentLookup {
    fn deployment(
        &self,
        e: &EcsEvent,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<DeploymentInfo, Error>> + Send;
}

pub struct EcsLookup {
    client: aws_sdk_ecs::Client,
}

/// The event's `time` is whole seconds, and a deployment is created before its first event:
/// one created up to this long after the event's time still counts. Short, so that the next
/// deployment (started right after a failure) is not taken for it.
const CLOCK_SLACK_SECS: i64 = 5;

impl EcsLookup {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecs::Client::new(sdk),
        }
    }

    async fn newest_deployment(
        &self,
        e: &EcsEvent,
        deadline: &Deadline,
    ) -> Result<Option<String>, Error> {
        let mut call = self
            .client
            .list_service_deployments()
            .service(&e.service)
            .max_results(20);
        if let Some(cluster) = &e.cluster {
            call = call.cluster(cluster);
        }
        if let Some(at) = e.time.as_deref().and_then(epoch) {
            call = call.created_at(
                CreatedAt::builder()
                    .before(DateTime::from_secs(at + CLOCK_SLACK_SECS))
                    .build(),
            );
        }
        let out = deadline
            .run(call.send())
            .await
            .map_err(|_| Error::OutOfTime("ListServiceDeployments"))?
            .map_err(|err| Error::from_sdk("ECS", "ListServiceDeployments", err))?;
        Ok(out
            .service_deployments
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d.service_deployment_arn.is_some())
            .max_by_key(|d| d.created_at.map(|t| (t.secs(), t.subsec_nanos())))
            .and_then(|d| d.service_deployment_arn))
    }

    async fn describe(
        &self,
        arn: String,
        deadline: &Deadline,
    ) -> Result<Option<ServiceDeployment>, Error> {
        let call = self
            .client
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send();
        let out = deadline
            .run(call)
            .await
            .map_err(|_| Error::OutOfTime("DescribeServiceDeployments"))?
            .map_err(|err| Error::from_sdk("ECS", "DescribeServiceDeployments", err))?;
        Ok(out
            .service_deployments
            .unwrap_or_default()
            .into_iter()
            .next())
    }

    async fn revisions(
        &self,
        arns: Vec<String>,
        deadline: &Deadline,
    ) -> Result<Vec<ServiceRevision>, Error> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let call = self
            .client
            .describe_service_revisions()
            .set_service_revision_arns(Some(arns))
            .send();
        let out = deadline
            .run(call)
            .await
            .map_err(|_| Error::OutOfTime("DescribeServiceRevisions"))?
            .map_err(|err| Error::from_sdk("ECS", "DescribeServiceRevisions", err))?;
        Ok(out.service_revisions.unwrap_or_default())
    }
}

impl DeploymentLookup for EcsLookup {
    async fn deployment(&self, e: &EcsEvent, deadline: &Deadline) -> Result<DeploymentInfo, Error> {
        let Some(arn) = self.newest_deployment(e, deadline).await? else {
            return Ok(DeploymentInfo::default());
        };
        let Some(d) = self.describe(arn, deadline).await? else {
            return Ok(DeploymentInfo::default());
        };
        let status = d.status.as_ref().map(|s| s.as_str().to_owned());
        if !fits(e.state, status.as_deref()) {
            tracing::warn!(
                state = e.state.name(),
                status = status.as_deref().unwrap_or("?"),
                "the service's newest deployment does not match the event; posting without its details"
            );
            return Err(Error::bad_input(
                "the newest service deployment does not match the event",
            ));
        }
        let source_arn = d
            .source_service_revisions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find_map(|r| r.arn.clone());
        let target_arn = d
            .target_service_revision
            .as_ref()
            .and_then(|r| r.arn.clone());
        let rollback_arn = d
            .rollback
            .as_ref()
            .and_then(|r| r.service_revision_arn.clone());
        let mut wanted: Vec<String> = [&source_arn, &target_arn, &rollback_arn]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        // A rollback goes back to the source revision: ask for each once.
        wanted.sort();
        wanted.dedup();
        // The revisions only add the images: without them the message still has the rest.
        let revisions = match self.revisions(wanted, deadline).await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(error = %err, "DescribeServiceRevisions failed; posting without the images");
                Vec::new()
            }
        };
        let view = |arn: &Option<String>| {
            arn.as_ref().map(|arn| {
                revisions
                    .iter()
                    .find(|r| r.service_revision_arn.as_deref() == Some(arn))
                    .map(revision_view)
                    .unwrap_or_else(|| ServiceRevisionView {
                        arn: arn.clone(),
                        ..Default::default()
                    })
            })
        };
        Ok(DeploymentInfo {
            status,
            status_reason: d.status_reason.clone(),
            source: view(&source_arn),
            target: view(&target_arn),
            rolled_back_to: view(&rollback_arn),
            rollback_reason: d.rollback.as_ref().and_then(|r| r.reason.clone()),
            circuit_breaker: d
                .deployment_circuit_breaker
                .as_ref()
                .filter(|c| c.status.as_ref().is_some_and(|s| s.as_str() != "DISABLED"))
                .map(|c| (c.failure_count, c.threshold)),
            triggered_alarms: d
                .alarms
                .as_ref()
                .and_then(|a| a.triggered_alarm_names.clone())
                .unwrap_or_default(),
        })
    }
}

fn revision_view(r: &ServiceRevision) -> ServiceRevisionView {
    ServiceRevisionView {
        arn: r.service_revision_arn.clone().unwrap_or_default(),
        task_definition: r
            .task_definition
            .as_deref()
            .map(|t| t.rsplit('/').next().unwrap_or(t).to_owned()),
        images: r
            .container_images
            .as_deref()
            .unwrap_or_default()
            .iter()
            .take(5)
            .map(|c| {
                let image = c.image.as_deref().unwrap_or("?");
                let pinned = match (&c.image_digest, image.contains('@')) {
                    (Some(d), false) => format!("{image}@{}", short_digest(d)),
                    _ => image.to_owned(),
                };
                match &c.container_name {
                    Some(name) => format!("{name}: {pinned}"),
                    None => pinned,
                }
            })
            .collect(),
    }
}

/// `sha256:` and the first 12 hex digits, as the ECR console shortens a digest.
fn short_digest(digest: &str) -> String {
    match digest.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}", hex.chars().take(12).collect::<String>()),
        None => digest.chars().take(24).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_whose_status_contradicts_the_event_is_not_its_own() {
        assert!(fits(EcsState::Completed, Some("ROLLBACK_SUCCESSFUL")));
        assert!(
            !fits(EcsState::Completed, Some("IN_PROGRESS")),
            "a newer deployment, still rolling out"
        );
        assert!(!fits(EcsState::Failed, Some("SUCCESSFUL")));
        assert!(fits(EcsState::Failed, Some("ROLLBACK_IN_PROGRESS")));
        assert!(
            fits(EcsState::InProgress, Some("SUCCESSFUL")),
            "told late, finished since"
        );
    }

    #[test]
    fn only_a_rollback_that_succeeded_is_rolled_back() {
        let with = |status: &str| DeploymentInfo {
            status: Some(status.into()),
            ..Default::default()
        };
        assert_eq!(with("ROLLBACK_IN_PROGRESS").rollback(), Rollback::Underway);
        assert!(!with("ROLLBACK_FAILED").rolled_back());
        assert!(with("ROLLBACK_SUCCESSFUL").rolled_back());
    }
}
