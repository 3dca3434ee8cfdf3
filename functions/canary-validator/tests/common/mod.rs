//! Helpers for the tests through the stand-ins: sample events, and a recording stub that
//! knows the sample deployments. (The tests on fakes of every port use `tests/fakes`.)

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

/// The published ECS-native sample, for `execution_id` at `stage`, with the green revision
/// at `green_weight` percent of production traffic, in a service deployment of its own
/// ([`ecs_deployment_arn`] of `dep-<execution_id>`): a test plays another callback of the same
/// hook by changing `executionId` and keeping `resourceArn`.
pub fn ecs_hook_event(execution_id: &str, stage: &str, service: &str, green_weight: u32) -> Value {
    let mut event = sample("ecs-production-traffic-shift.json");
    let details = &mut event["executionDetails"];
    let green = details["targetServiceRevisionArn"]
        .as_str()
        .unwrap_or_default()
        .replace("prod-api", service);
    let blue = format!(
        "{}/1",
        green.rsplit_once('/').map(|(a, _)| a).unwrap_or_default()
    );
    details["targetServiceRevisionArn"] = json!(green);
    details["serviceArn"] = json!(format!(
        "arn:aws:ecs:us-east-1:123456789012:service/prod/{service}"
    ));
    details["productionTrafficWeights"] =
        json!({green.clone(): green_weight, blue: 100 - green_weight});
    event["resourceArn"] = json!(ecs_deployment_arn(service, &format!("dep-{execution_id}")));
    event["executionId"] = json!(execution_id);
    event["lifecycleStage"] = json!(stage);
    event.as_object_mut().map(|e| e.remove("hookDetails"));
    event
}

/// The `resourceArn` naming service deployment `id` of `prod/<service>`.
pub fn ecs_deployment_arn(service: &str, id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/{service}/{id}")
}
