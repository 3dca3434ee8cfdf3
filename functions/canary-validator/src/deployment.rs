//! `codedeploy:GetDeployment`: which application and group the hook serves.

use std::future::Future;

use shared::{Deadline, Error};

/// The deployment as CodeDeploy describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub application: String,
    pub group: String,
    pub status: String,
    pub creator: String,
    pub compute_platform: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Deployment),
    /// CodeDeploy does not know the id: the event is not from a real deployment.
    Unknown(String),
}

/// The port; [`CodeDeployDeployments`] is the real one.
pub trait Deployments {
    fn lookup(
        &self,
        deployment_id: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Lookup, Error>> + Send;
}

pub struct CodeDeployDeployments {
    client: aws_sdk_codedeploy::Client,
}

impl CodeDeployDeployments {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_codedeploy::Client::new(sdk),
        }
    }
}

impl Deployments for CodeDeployDeployments {
    async fn lookup(&self, deployment_id: &str, deadline: &Deadline) -> Result<Lookup, Error> {
        let call = self
            .client
            .get_deployment()
            .deployment_id(deployment_id)
            .send();
        let answer = deadline
            .run(call)
            .await
            .map_err(|_| Error::OutOfTime("looking up the deployment"))?
            .map_err(|e| Error::from_sdk("CodeDeploy", "GetDeployment", e));
        let out = match answer {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.aws_code(),
                    Some(
                        "DeploymentDoesNotExistException"
                            | "InvalidDeploymentIdException"
                            | "DeploymentIdRequiredException"
                    )
                ) =>
            {
                return Ok(Lookup::Unknown(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let Some(info) = out.deployment_info() else {
            return Ok(Lookup::Unknown(
                "CodeDeploy returned no deployment information".into(),
            ));
        };
        Ok(Lookup::Found(Deployment {
            application: info.application_name().unwrap_or_default().to_owned(),
            group: info.deployment_group_name().unwrap_or_default().to_owned(),
            status: info
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            creator: info
                .creator()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            compute_platform: info
                .compute_platform()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
        }))
    }
}
