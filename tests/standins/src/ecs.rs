//! ECS set-up in moto for the migration runner's tests and the demo: a Fargate-ready network
//! (moto answers RunTask for awsvpc tasks only when the subnets and security groups exist and
//! the VPC has DNS hostnames), a cluster, a task definition logging through awslogs, and the
//! log stream a task's container would have written.

use serde_json::{Value, json};

use crate::Moto;
use crate::moto::{ACCOUNT, REGION};

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const LOGS: &str = "Logs_20140328";

/// What a migration test runs against.
#[derive(Debug, Clone)]
pub struct EcsWorld {
    pub cluster: String,
    pub subnet: String,
    pub security_group: String,
    pub family: String,
    pub container: String,
    pub log_group: String,
    pub task_role: String,
    pub execution_role: String,
}

pub async fn call(moto: &Moto, operation: &str, body: Value) -> Value {
    moto.aws_json("ecs", &format!("{ECS}.{operation}"), &body)
        .await
}

async fn logs(moto: &Moto, operation: &str, body: Value) -> Value {
    moto.aws_json("logs", &format!("{LOGS}.{operation}"), &body)
        .await
}

/// One EC2 query-API call; returns the text of the first `<tag>` in the XML answer.
async fn ec2(moto: &Moto, params: &[(&str, &str)], tag: &str) -> String {
    let mut form = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let r = reqwest::Client::new()
        .post(format!("{}/", moto.endpoint()))
        .header("authorization", format!("AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0"))
        .form(&form)
        .send()
        .await
        .expect("EC2 call");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "EC2 {params:?}: {status} {text}");
    let open = format!("<{tag}>");
    text.split(&open)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

/// A task definition of `family` with an essential migration container `migrate` (and,
/// with `sidecar`, a second container that is not essential), logging to `log_group`.
pub fn task_definition(world: &EcsWorld, image: &str, sidecar: bool) -> Value {
    let log = json!({"logDriver": "awslogs", "options": {
        "awslogs-group": world.log_group, "awslogs-region": REGION, "awslogs-stream-prefix": "ecs"}});
    let mut containers = vec![json!({
        "name": world.container, "image": image, "memory": 512, "essential": true,
        "command": ["./migrate", "up"], "logConfiguration": log})];
    if sidecar {
        containers.push(json!({"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", "memory": 128, "essential": false}));
    }
    json!({
        "family": world.family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "1024",
        "taskRoleArn": world.task_role,
        "executionRoleArn": world.execution_role,
        "containerDefinitions": containers,
    })
}

/// Registers a revision; returns its ARN.
pub async fn register(moto: &Moto, definition: &Value) -> String {
    let out = call(moto, "RegisterTaskDefinition", definition.clone()).await;
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

impl EcsWorld {
    /// Everything a Fargate migration needs, named after `name`.
    pub async fn create(moto: &Moto, name: &str) -> Self {
        let vpc = ec2(
            moto,
            &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
            "vpcId",
        )
        .await;
        ec2(
            moto,
            &[
                ("Action", "ModifyVpcAttribute"),
                ("VpcId", &vpc),
                ("EnableDnsHostnames.Value", "true"),
            ],
            "return",
        )
        .await;
        let subnet = ec2(
            moto,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", "10.0.1.0/24"),
            ],
            "subnetId",
        )
        .await;
        let security_group = ec2(
            moto,
            &[
                ("Action", "CreateSecurityGroup"),
                ("VpcId", &vpc),
                ("GroupName", &format!("{name}-migrations")),
                ("GroupDescription", "migration tasks"),
            ],
            "groupId",
        )
        .await;
        // moto moves a task one state further (RUNNING → … → STOPPED) on each DescribeTasks
        // unless told otherwise: tasks here stay RUNNING until a test stops them, or gives the
        // stub a stopped task's answer, so no test depends on how often a task is described.
        moto.post_moto_api(
            "/moto-api/state-manager/set-transition",
            &json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000_000u64}}),
        )
        .await;
        call(moto, "CreateCluster", json!({"clusterName": name})).await;
        let log_group = format!("/ecs/{name}-migrate");
        logs(moto, "CreateLogGroup", json!({"logGroupName": log_group})).await;
        let world = Self {
            cluster: name.to_owned(),
            subnet,
            security_group,
            family: format!("{name}-migrate"),
            container: "migrate".into(),
            log_group,
            task_role: moto.create_role(&format!("{name}-migrate-task")).await,
            execution_role: moto.create_role(&format!("{name}-migrate-execution")).await,
        };
        register(moto, &task_definition(&world, &world.image("v1"), false)).await;
        world
    }

    pub fn image(&self, tag: &str) -> String {
        format!(
            "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{}:{tag}",
            self.cluster
        )
    }

    pub fn cluster_arn(&self) -> String {
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}", self.cluster)
    }

    /// The runner's variables for this world (add Slack/SNS and overrides as needed).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("CLUSTER", self.cluster.as_str()),
            ("TASK_FAMILY", self.family.as_str()),
            ("CONTAINER", self.container.as_str()),
            ("SUBNETS", self.subnet.as_str()),
            ("SECURITY_GROUPS", self.security_group.as_str()),
            ("REPORT_MARGIN", "2s"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Writes what the migration container of `task_arn` would have logged, in
    /// `<prefix>/<container>/<task id>` as the awslogs driver names it.
    pub async fn write_log(&self, moto: &Moto, task_arn: &str, lines: &[&str]) {
        let stream = format!(
            "ecs/{}/{}",
            self.container,
            task_arn.rsplit('/').next().unwrap_or(task_arn)
        );
        logs(
            moto,
            "CreateLogStream",
            json!({"logGroupName": self.log_group, "logStreamName": stream}),
        )
        .await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let events: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| json!({"timestamp": now + i as i64, "message": l}))
            .collect();
        logs(
            moto,
            "PutLogEvents",
            json!({"logGroupName": self.log_group, "logStreamName": stream, "logEvents": events}),
        )
        .await;
    }

    /// Tasks in the cluster with this `startedBy`, as moto lists them.
    pub async fn tasks_started_by(&self, moto: &Moto, started_by: &str) -> Vec<String> {
        let out = call(
            moto,
            "ListTasks",
            json!({"cluster": self.cluster, "startedBy": started_by}),
        )
        .await;
        out["taskArns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A task as moto describes it (with tags).
    pub async fn describe(&self, moto: &Moto, task_arn: &str) -> Value {
        let out = call(
            moto,
            "DescribeTasks",
            json!({"cluster": self.cluster, "tasks": [task_arn], "include": ["TAGS"]}),
        )
        .await;
        out["tasks"][0].clone()
    }

    pub async fn stop(&self, moto: &Moto, task_arn: &str) {
        call(
            moto,
            "StopTask",
            json!({"cluster": self.cluster, "task": task_arn, "reason": "test"}),
        )
        .await;
    }
}

/// A stopped task in the DescribeTasks shape (ECS API reference, Task): what ECS reports when
/// the migration ends, which moto does not model. `exits` are (container, exit code).
pub fn stopped_task(
    world: &EcsWorld,
    task_arn: &str,
    task_definition_arn: &str,
    stop_code: &str,
    stopped_reason: &str,
    exits: &[(&str, Option<i64>)],
    tags: &[(&str, &str)],
) -> Value {
    let containers: Vec<Value> = exits
        .iter()
        .map(|(name, code)| {
            let mut c = json!({"name": name, "lastStatus": "STOPPED", "taskArn": task_arn});
            if let Some(code) = code {
                c["exitCode"] = json!(code);
            }
            c
        })
        .collect();
    json!({
        "taskArn": task_arn,
        "clusterArn": world.cluster_arn(),
        "taskDefinitionArn": task_definition_arn,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": stop_code,
        "stoppedReason": stopped_reason,
        "startedBy": "ops-migration",
        "containers": containers,
        "tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "version": 5
    })
}
