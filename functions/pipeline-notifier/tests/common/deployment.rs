//! What ECS says of the sample ECS events' deployment, for the tests that render it (not in
//! `common`: the other test crates would not use it).

use pipeline_notifier::ecs_lookup::{DeploymentInfo, ServiceRevisionView};

/// What DescribeServiceDeployments and DescribeServiceRevisions say of the sample ECS events'
/// deployment: task definition :41 to :42, rolled back by the circuit breaker when
/// `rolled_back`.
pub fn ecs_deployment(rolled_back: bool) -> DeploymentInfo {
    let revision = |n: u32, digest: &str| ServiceRevisionView {
        arn: format!(
            "arn:aws:ecs:us-east-1:123456789012:service-revision/default/servicetest/49803064663735{n}"
        ),
        task_definition: Some(format!("servicetest:{n}")),
        images: vec![format!(
            "web: 123456789012.dkr.ecr.us-east-1.amazonaws.com/servicetest:1.{n}.0@sha256:{digest}"
        )],
    };
    let moving = DeploymentInfo {
        status: Some("IN_PROGRESS".into()),
        source: Some(revision(41, "0b6f1c0e4a1d")),
        target: Some(revision(42, "9f8e7d6c5b4a")),
        ..Default::default()
    };
    if !rolled_back {
        return moving;
    }
    DeploymentInfo {
        status: Some("ROLLBACK_SUCCESSFUL".into()),
        rolled_back_to: Some(revision(41, "0b6f1c0e4a1d")),
        rollback_reason: Some(
            "Service deployment rolled back because the circuit breaker threshold was exceeded."
                .into(),
        ),
        circuit_breaker: Some((3, 3)),
        ..moving
    }
}
