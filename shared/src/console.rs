//! Links into the AWS console, so a message can offer one click to the thing it is about.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but unreserved characters is encoded: names come from events.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(part: &str) -> String {
    utf8_percent_encode(part, SEGMENT).to_string()
}

/// The console host for a region's partition.
fn host(region: &str) -> String {
    let region = enc(region);
    if region.starts_with("cn-") {
        format!("https://{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        format!("https://{region}.console.amazonaws-us-gov.com")
    } else {
        format!("https://{region}.console.aws.amazon.com")
    }
}

pub fn codepipeline_execution(region: &str, pipeline: &str, execution_id: &str) -> String {
    format!(
        "{}/codesuite/codepipeline/pipelines/{}/executions/{}/timeline?region={}",
        host(region),
        enc(pipeline),
        enc(execution_id),
        enc(region)
    )
}

pub fn codepipeline_pipeline(region: &str, pipeline: &str) -> String {
    format!(
        "{}/codesuite/codepipeline/pipelines/{}/view?region={}",
        host(region),
        enc(pipeline),
        enc(region)
    )
}

/// `repository` may contain slashes (`team/app`); they are part of the name and encoded.
pub fn ecr_image(region: &str, account: &str, repository: &str, digest: &str) -> String {
    format!(
        "{}/ecr/repositories/private/{}/{}/_/image/{}/details?region={}",
        host(region),
        enc(account),
        enc(repository),
        enc(digest),
        enc(region)
    )
}

/// `task` may be a task ARN or a bare task id.
pub fn ecs_task(region: &str, cluster: &str, task: &str) -> String {
    let task_id = task.rsplit('/').next().unwrap_or(task);
    let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
    format!(
        "{}/ecs/v2/clusters/{}/tasks/{}/configuration?region={}",
        host(region),
        enc(cluster),
        enc(task_id),
        enc(region)
    )
}

/// The service's deployments tab, where an ECS-native deployment and its rollback show.
pub fn ecs_service_deployments(region: &str, cluster: &str, service: &str) -> String {
    format!(
        "{}/ecs/v2/clusters/{}/services/{}/deployments?region={}",
        host(region),
        enc(cluster),
        enc(service),
        enc(region)
    )
}

pub fn codedeploy_deployment(region: &str, deployment_id: &str) -> String {
    format!(
        "{}/codesuite/codedeploy/deployments/{}?region={}",
        host(region),
        enc(deployment_id),
        enc(region)
    )
}

pub fn cloudwatch_alarm(region: &str, alarm_name: &str) -> String {
    format!(
        "{}/cloudwatch/home?region={}#alarmsV2:alarm/{}",
        host(region),
        enc(region),
        enc(alarm_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codepipeline_execution_link() {
        assert_eq!(
            codepipeline_execution(
                "eu-west-1",
                "prod-api",
                "3f2a0c1e-1111-2222-3333-444455556666"
            ),
            "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/prod-api/executions/3f2a0c1e-1111-2222-3333-444455556666/timeline?region=eu-west-1"
        );
    }

    #[test]
    fn ecr_image_link_encodes_namespaced_repositories_and_digests() {
        assert_eq!(
            ecr_image("us-east-1", "123456789012", "team/app", "sha256:abc"),
            "https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/team%2Fapp/_/image/sha256%3Aabc/details?region=us-east-1"
        );
    }

    #[test]
    fn ecs_task_link_accepts_arns() {
        assert_eq!(
            ecs_task(
                "us-east-1",
                "arn:aws:ecs:us-east-1:1:cluster/prod",
                "arn:aws:ecs:us-east-1:1:task/prod/0123abcd"
            ),
            "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/tasks/0123abcd/configuration?region=us-east-1"
        );
    }

    #[test]
    fn codedeploy_and_alarm_links() {
        assert_eq!(
            codedeploy_deployment("us-west-2", "d-ABC123"),
            "https://us-west-2.console.aws.amazon.com/codesuite/codedeploy/deployments/d-ABC123?region=us-west-2"
        );
        assert_eq!(
            cloudwatch_alarm("us-west-2", "api 5xx > 1%"),
            "https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2#alarmsV2:alarm/api%205xx%20%3E%201%25"
        );
    }

    #[test]
    fn other_partitions_use_their_own_console() {
        assert!(
            codedeploy_deployment("cn-north-1", "d-1")
                .starts_with("https://cn-north-1.console.amazonaws.cn/")
        );
        assert!(
            codedeploy_deployment("us-gov-west-1", "d-1")
                .starts_with("https://us-gov-west-1.console.amazonaws-us-gov.com/")
        );
    }

    #[test]
    fn hostile_names_cannot_escape_the_path() {
        let link = codepipeline_execution("us-east-1", "../../evil?x=<y>", "id");
        assert!(link.contains("..%2F..%2Fevil%3Fx%3D%3Cy%3E"), "{link}");
    }
}
