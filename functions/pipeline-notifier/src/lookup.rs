//! What the event does not say: the execution's source revisions and status summary, from
//! `codepipeline:GetPipelineExecution`.

use std::future::Future;

use shared::{Deadline, Error};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision {
    pub artifact: Option<String>,
    pub id: Option<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    pub url: Option<String>,
}

impl Revision {
    /// A commit sha shortened the way git shows it; other revision ids (S3 versions,
    /// image digests) shortened enough to read.
    pub fn short_id(&self) -> Option<String> {
        let id = self.id.as_deref()?;
        let is_sha = id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit());
        let keep = if is_sha { 7 } else { 24 };
        Some(id.chars().take(keep).collect())
    }

    /// The commit message's first line.
    pub fn headline(&self) -> Option<&str> {
        self.message
            .as_deref()
            .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionInfo {
    pub status_summary: Option<String>,
    pub revisions: Vec<Revision>,
    pub trigger_detail: Option<String>,
}

/// The port the notifier reads an execution's details through.
pub trait ExecutionLookup {
    fn execution(
        &self,
        pipeline: &str,
        execution_id: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<ExecutionInfo, Error>> + Send;
}

pub struct CodePipelineLookup {
    client: aws_sdk_codepipeline::Client,
}

impl CodePipelineLookup {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_codepipeline::Client::new(sdk),
        }
    }
}

impl ExecutionLookup for CodePipelineLookup {
    async fn execution(
        &self,
        pipeline: &str,
        execution_id: &str,
        deadline: &Deadline,
    ) -> Result<ExecutionInfo, Error> {
        let call = self
            .client
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(execution_id)
            .send();
        let out = deadline
            .run(call)
            .await
            .map_err(|_| Error::OutOfTime("GetPipelineExecution"))?
            .map_err(|e| Error::from_sdk("CodePipeline", "GetPipelineExecution", e))?;
        let Some(execution) = out.pipeline_execution else {
            return Ok(ExecutionInfo::default());
        };
        Ok(ExecutionInfo {
            status_summary: execution.status_summary,
            trigger_detail: execution
                .trigger
                .and_then(|t| t.trigger_detail)
                .filter(|d| !d.is_empty()),
            revisions: execution
                .artifact_revisions
                .unwrap_or_default()
                .into_iter()
                .map(|r| revision(r.name, r.revision_id, r.revision_summary, r.revision_url))
                .collect(),
        })
    }
}

/// Source actions write the summary differently: CodeCommit and GitHub (v1) give the commit
/// message, CodeStar connections a JSON object with `CommitMessage` (and sometimes an
/// author). Both are read; anything else is taken as text.
pub fn revision(
    artifact: Option<String>,
    id: Option<String>,
    summary: Option<String>,
    url: Option<String>,
) -> Revision {
    let (message, author) = match summary.as_deref().map(str::trim) {
        Some(s) if s.starts_with('{') => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(v) => {
                let pick = |keys: &[&str]| {
                    keys.iter()
                        .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_owned))
                };
                (
                    pick(&["CommitMessage", "commitMessage", "message"]),
                    pick(&["AuthorName", "Author", "author", "AuthorDisplayName"]),
                )
            }
            Err(_) => (summary.clone(), None),
        },
        _ => (summary.clone(), None),
    };
    Revision {
        artifact,
        id,
        message,
        author,
        url,
    }
}

/// Both look-ups the notifier makes, as its one `lookup` port.
pub struct AwsLookup {
    pipelines: CodePipelineLookup,
    services: crate::ecs_lookup::EcsLookup,
}

impl AwsLookup {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            pipelines: CodePipelineLookup::new(sdk),
            services: crate::ecs_lookup::EcsLookup::new(sdk),
        }
    }
}

impl ExecutionLookup for AwsLookup {
    fn execution(
        &self,
        pipeline: &str,
        execution_id: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<ExecutionInfo, Error>> + Send {
        self.pipelines.execution(pipeline, execution_id, deadline)
    }
}

impl crate::ecs_lookup::DeploymentLookup for AwsLookup {
    fn deployment(
        &self,
        e: &crate::ecs_event::EcsEvent,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<crate::ecs_lookup::DeploymentInfo, Error>> + Send {
        // Boxed: three SDK calls' futures, nested in the event's, overflow a debug build's
        // 2 MiB test thread when kept on the stack.
        Box::pin(self.services.deployment(e, deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codestar_connection_summaries_are_json() {
        let r = revision(
            Some("SourceArtifact".into()),
            Some("8e0c6fb80e09020556d271d4cf0bacdab3614fbd".into()),
            Some(r#"{"ProviderType":"GitHub","CommitMessage":"Fix the retry loop\n\nLong body","AuthorName":"Ada"}"#.into()),
            None,
        );
        assert_eq!(r.short_id().as_deref(), Some("8e0c6fb"));
        assert_eq!(r.headline(), Some("Fix the retry loop"));
        assert_eq!(r.author.as_deref(), Some("Ada"));
    }

    #[test]
    fn plain_summaries_are_the_message() {
        let r = revision(
            None,
            Some("v3.2.1".into()),
            Some("\nRelease 3.2.1\nmore".into()),
            None,
        );
        assert_eq!(r.headline(), Some("Release 3.2.1"));
        assert_eq!(r.short_id().as_deref(), Some("v3.2.1"));
        assert_eq!(r.author, None);
    }
}
