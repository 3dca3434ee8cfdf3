//! ECS's answers to the notifier's service-deployment calls, served by the recording stub
//! (for the test crates that reach ECS through it).

use serde_json::json;

/// The ECS service-deployment calls answered as ECS answers them (shapes from the ECS API
/// reference, in `events/pipeline-notifier/api/`): the deployment of `default/servicetest`
/// that the circuit breaker rolled back from task definition :42 to :41.
pub fn describe_the_rolled_back_deployment(stub: &standins::RecordingStub) {
    let api = |name: &str| super::common::sample(&format!("api/{name}"));
    stub.fixture(
        "ListServiceDeployments",
        json!({"cluster": "default", "service": "servicetest"}),
        api("list-service-deployments.json"),
    );
    stub.fixture(
        "DescribeServiceDeployments",
        json!({}),
        api("describe-service-deployments.json"),
    );
    stub.fixture(
        "DescribeServiceRevisions",
        json!({}),
        api("describe-service-revisions.json"),
    );
}
