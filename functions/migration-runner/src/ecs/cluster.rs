//! The Cluster port over the real ECS API, kept apart from the ports so that the decisions
//! and their tests never see an SDK type: here the SDK's shapes become the runner's own.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    KeyValuePair, LaunchType, NetworkConfiguration, PropagateTags, Tag, TaskField, TaskOverride,
};
use shared::{Deadline, Error};

use super::{Cluster, Launch, LaunchFailure, RunOutcome, bounded};
use crate::task::{ContainerDef, ContainerRun, Task, TaskDefinition};

pub struct Ecs {
    client: aws_sdk_ecs::Client,
}

impl Ecs {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecs::Client::new(sdk),
        }
    }
}

fn text(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

fn from_sdk_task(t: &aws_sdk_ecs::types::Task) -> Task {
    Task {
        task_arn: t.task_arn().unwrap_or_default().to_owned(),
        task_definition_arn: t.task_definition_arn().unwrap_or_default().to_owned(),
        cluster_arn: text(t.cluster_arn()),
        last_status: t.last_status().unwrap_or_default().to_owned(),
        desired_status: text(t.desired_status()),
        stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
        stopped_reason: text(t.stopped_reason()),
        started_by: text(t.started_by()),
        containers: t
            .containers()
            .iter()
            .map(|c| ContainerRun {
                name: c.name().unwrap_or_default().to_owned(),
                exit_code: c.exit_code().map(i64::from),
                reason: text(c.reason()),
                last_status: text(c.last_status()),
            })
            .collect(),
        tags: t
            .tags()
            .iter()
            .filter_map(|tag| {
                Some((
                    tag.key()?.to_owned(),
                    tag.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
        version: t.version(),
        created_at: t.created_at().and_then(|d| d.to_millis().ok()),
        stopped_at: t.stopped_at().and_then(|d| d.to_millis().ok()),
    }
}

fn from_sdk_definition(d: &aws_sdk_ecs::types::TaskDefinition) -> TaskDefinition {
    TaskDefinition {
        arn: d.task_definition_arn.clone().unwrap_or_default(),
        family: d.family.clone().unwrap_or_default(),
        containers: d
            .container_definitions
            .iter()
            .flatten()
            .map(|c| ContainerDef {
                name: c.name.clone().unwrap_or_default(),
                image: c.image.clone().unwrap_or_default(),
                essential: c.essential.unwrap_or(true),
                log_driver: c
                    .log_configuration()
                    .map(|l| l.log_driver().as_str().to_owned()),
                log_options: c
                    .log_configuration()
                    .and_then(|l| l.options())
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

impl Ecs {
    async fn describe_definition(
        &self,
        reference: &str,
    ) -> Result<aws_sdk_ecs::types::TaskDefinition, Error> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(reference)
            .send()
            .await
            .map_err(|e| Error::from_sdk("ECS", "DescribeTaskDefinition", e))?;
        out.task_definition.ok_or_else(|| {
            Error::bad_input(format!("ECS returned no task definition for {reference}"))
        })
    }
}

impl Cluster for Ecs {
    async fn task_definition(
        &self,
        reference: &str,
        deadline: &Deadline,
    ) -> Result<TaskDefinition, Error> {
        bounded(deadline, "reading the task definition", async {
            Ok(from_sdk_definition(
                &self.describe_definition(reference).await?,
            ))
        })
        .await
    }

    async fn pin_image(
        &self,
        base: &TaskDefinition,
        container: &str,
        image: &str,
        deadline: &Deadline,
    ) -> Result<TaskDefinition, Error> {
        bounded(deadline, "registering the pinned task definition", async {
            let latest = self.describe_definition(&base.family).await?;
            let latest_runs_it =
                latest.container_definitions.iter().flatten().any(|c| {
                    c.name.as_deref() == Some(container) && c.image.as_deref() == Some(image)
                });
            if latest_runs_it {
                return Ok(from_sdk_definition(&latest));
            }
            let source = self.describe_definition(&base.arn).await?;
            let containers: Vec<_> = source
                .container_definitions
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    if c.name.as_deref() == Some(container) {
                        c.image = Some(image.to_owned());
                    }
                    c
                })
                .collect();
            let out = self
                .client
                .register_task_definition()
                .family(base.family.clone())
                .set_container_definitions(Some(containers))
                .set_task_role_arn(source.task_role_arn)
                .set_execution_role_arn(source.execution_role_arn)
                .set_network_mode(source.network_mode)
                .set_volumes(source.volumes)
                .set_placement_constraints(source.placement_constraints)
                .set_requires_compatibilities(source.requires_compatibilities)
                .set_cpu(source.cpu)
                .set_memory(source.memory)
                .set_pid_mode(source.pid_mode)
                .set_ipc_mode(source.ipc_mode)
                .set_proxy_configuration(source.proxy_configuration)
                .set_ephemeral_storage(source.ephemeral_storage)
                .set_runtime_platform(source.runtime_platform)
                .set_enable_fault_injection(source.enable_fault_injection)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ECS", "RegisterTaskDefinition", e))?;
            out.task_definition
                .as_ref()
                .map(from_sdk_definition)
                .ok_or_else(|| Error::bad_input("ECS registered no task definition"))
        })
        .await
    }

    async fn active_tasks(
        &self,
        cluster: &str,
        started_by: &str,
        deadline: &Deadline,
    ) -> Result<Vec<Task>, Error> {
        bounded(deadline, "listing running migrations", async {
            // startedBy must be the only filter (ECS API reference, ListTasks); the default
            // desired status RUNNING covers PENDING tasks too.
            let mut arns = Vec::new();
            let mut pages = self
                .client
                .list_tasks()
                .cluster(cluster)
                .started_by(started_by)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| Error::from_sdk("ECS", "ListTasks", e))?;
                arns.extend(page.task_arns.unwrap_or_default());
            }
            let mut tasks = Vec::new();
            // DescribeTasks takes up to 100 tasks per call.
            for chunk in arns.chunks(100) {
                let out = self
                    .client
                    .describe_tasks()
                    .cluster(cluster)
                    .set_tasks(Some(chunk.to_vec()))
                    .include(TaskField::Tags)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("ECS", "DescribeTasks", e))?;
                tasks.extend(out.tasks().iter().map(from_sdk_task));
            }
            tasks.retain(|t| !t.is_stopped());
            Ok(tasks)
        })
        .await
    }

    async fn run(&self, launch: &Launch, deadline: &Deadline) -> Result<RunOutcome, Error> {
        bounded(deadline, "launching the migration task", async {
            let mut container = ContainerOverride::builder().name(&launch.container);
            if let Some(command) = &launch.command {
                container = container.set_command(Some(command.clone()));
            }
            for (name, value) in &launch.environment {
                container =
                    container.environment(KeyValuePair::builder().name(name).value(value).build());
            }
            let mut request = self
                .client
                .run_task()
                .cluster(&launch.cluster)
                .task_definition(&launch.task_definition)
                .count(1)
                .started_by(&launch.started_by)
                .client_token(&launch.client_token)
                .overrides(
                    TaskOverride::builder()
                        .container_overrides(container.build())
                        .build(),
                )
                .propagate_tags(PropagateTags::TaskDefinition)
                .set_tags(Some(
                    launch
                        .tags
                        .iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build())
                        .collect(),
                ));
            if !launch.subnets.is_empty() {
                let vpc = AwsVpcConfiguration::builder()
                    .set_subnets(Some(launch.subnets.clone()))
                    .set_security_groups(
                        (!launch.security_groups.is_empty())
                            .then(|| launch.security_groups.clone()),
                    )
                    .assign_public_ip(if launch.assign_public_ip {
                        AssignPublicIp::Enabled
                    } else {
                        AssignPublicIp::Disabled
                    })
                    .build()
                    .map_err(|e| Error::bad_input(format!("network configuration: {e}")))?;
                request = request.network_configuration(
                    NetworkConfiguration::builder()
                        .awsvpc_configuration(vpc)
                        .build(),
                );
            }
            if let Some(t) = &launch.launch_type {
                request = request.launch_type(LaunchType::from(t.as_str()));
            }
            if let Some(p) = &launch.capacity_provider {
                let item = CapacityProviderStrategyItem::builder()
                    .capacity_provider(p)
                    .weight(1)
                    .build()
                    .map_err(|e| Error::bad_input(format!("capacity provider: {e}")))?;
                request = request.capacity_provider_strategy(item);
            }
            let out = request
                .send()
                .await
                .map_err(|e| Error::from_sdk("ECS", "RunTask", e))?;
            if let Some(task) = out.tasks().first() {
                return Ok(RunOutcome::Started(Box::new(from_sdk_task(task))));
            }
            let failures: Vec<LaunchFailure> = out
                .failures()
                .iter()
                .map(|f| LaunchFailure {
                    reason: f.reason().unwrap_or("(no reason given)").to_owned(),
                    detail: text(f.detail()),
                })
                .collect();
            Ok(RunOutcome::NotPlaced(if failures.is_empty() {
                vec![LaunchFailure {
                    reason: "ECS started no task and gave no failure".into(),
                    detail: None,
                }]
            } else {
                failures
            }))
        })
        .await
    }

    async fn describe(
        &self,
        cluster: &str,
        task_arn: &str,
        deadline: &Deadline,
    ) -> Result<Option<Task>, Error> {
        bounded(deadline, "describing the migration task", async {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .tasks(task_arn)
                .include(TaskField::Tags)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ECS", "DescribeTasks", e))?;
            // An unknown task comes back in failures[] as MISSING, not as an error.
            Ok(out
                .tasks()
                .iter()
                .find(|t| t.task_arn() == Some(task_arn))
                .map(from_sdk_task))
        })
        .await
    }

    async fn stop(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        bounded(deadline, "stopping the migration task", async {
            self.client
                .stop_task()
                .cluster(cluster)
                .task(task_arn)
                // StopTask's reason is at most 255 characters (ECS API reference).
                .reason(shared::text::truncate_plain(reason, 255))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| Error::from_sdk("ECS", "StopTask", e))
        })
        .await
    }
}
