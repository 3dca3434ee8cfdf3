//! Helpers for this function's tests: sample events, and a recording stub that knows the
//! sample deployments.
#![allow(dead_code)]

use serde_json::{Value, json};
use standins::RecordingStub;

pub fn sample(name: &str) -> Value {
    standins::sample_event("canary-validator", name)
}

/// The sample `GetDeployment` answer, for `deployment_id` in `group`.
pub fn deployment(deployment_id: &str, group: &str) -> Value {
    let mut answer = sample("api/get-deployment.json");
    answer["deploymentInfo"]["deploymentId"] = json!(deployment_id);
    answer["deploymentInfo"]["deploymentGroupName"] = json!(group);
    answer
}

/// `d-GOOD` in `prod-api-dg`, `d-OTHER` in `other-dg`; `d-UNKNOWN` does not exist.
pub fn known_deployments(stub: &RecordingStub) {
    for (id, group) in [("d-GOOD", "prod-api-dg"), ("d-OTHER", "other-dg")] {
        stub.fixture(
            "GetDeployment",
            json!({"deploymentId": id}),
            deployment(id, group),
        );
    }
    stub.fixture_error(
        "GetDeployment",
        json!({"deploymentId": "d-UNKNOWN"}),
        "DeploymentDoesNotExistException",
        "The deployment d-UNKNOWN could not be found.",
    );
}

pub fn hook_event(deployment_id: &str, hook_execution_id: &str) -> Value {
    json!({"DeploymentId": deployment_id, "LifecycleEventHookExecutionId": hook_execution_id})
}
