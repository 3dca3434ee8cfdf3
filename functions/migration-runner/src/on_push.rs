//! An ECR push of `TRIGGER_REPOSITORY`: a tagged, successful push launches one migration of
//! the pushed image, claimed under the event's id so a redelivery on any container launches
//! nothing; a push refused while another migration runs is told to a person.

use serde::Serialize;
use shared::invocation::Invocation;
use shared::invocation::once::{self, Handled, Key};
use shared::notifier::Notify;
use shared::{Deadline, Error};

use crate::app::Runner;
use crate::config::{Config, NotifyOn};
use crate::ecs::Cluster;
use crate::event::{Push, Trigger};
use crate::launch::Launched;
use crate::render::{render_problem, render_started};

/// What a push came to, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PushReply {
    /// `new`: false when the task was found already running for this push (a redelivery).
    Launched {
        #[serde(rename = "taskArn")]
        task_arn: String,
        new: bool,
    },
    /// Nothing launched: another migration runs, or ECS or the configuration refused.
    Refused {
        reason: String,
    },
    /// Not a push that asks for a migration.
    Ignored {
        reason: &'static str,
    },
    NotConfigured {
        reason: String,
    },
}

impl<C, L, J, N> Runner<C, L, J, N>
where
    C: Cluster + Sync,
    N: Notify + Sync,
{
    pub(crate) async fn on_push(
        &self,
        push: Push,
        invocation: Invocation,
    ) -> Result<Handled<PushReply>, Error> {
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                let reason = self.unconfigured(why, &invocation.deadline).await?;
                return Ok(Handled::Done(PushReply::NotConfigured { reason }));
            }
        };
        let ignored = |reason: &'static str| {
            tracing::info!(repository = %push.repository, reason, "push ignored; nothing launched");
            Ok(Handled::Done(PushReply::Ignored { reason }))
        };
        if config.trigger_repository.as_deref() != Some(push.repository.as_str()) {
            return ignored("not the TRIGGER_REPOSITORY");
        }
        if push.action != "PUSH" || push.result != "SUCCESS" {
            return ignored("not a successful push");
        }
        // Multi-platform builds push each platform's image and their attestations by digest,
        // untagged, before the tagged index: only a tagged push is a release.
        if push.tag.is_none() {
            return ignored("an untagged push (a platform image or attestation pushed by digest)");
        }
        if let Some(glob) = &config.trigger_tag
            && !push.tag.as_deref().is_some_and(|t| glob.matches(t))
        {
            return ignored("the tag does not match TRIGGER_TAG");
        }
        let key = (!push.event_id.is_empty()).then(|| Key::Event(&push.event_id));
        let push = &push;
        once::handle(
            self.ports.answerer.idempotency(),
            key,
            &invocation.deadline,
            |by| async move { self.launch_for_push(config, push, &by).await },
        )
        .await
    }

    /// `deadline` is the invocation's, less what recording the claim needs.
    async fn launch_for_push(
        &self,
        config: &Config,
        push: &Push,
        deadline: &Deadline,
    ) -> Result<PushReply, Error> {
        let image = config.pin_image_digest.then(|| image_by_digest(push));
        let trigger = Trigger::Push(push.digest.clone());
        let notify_by = *deadline;
        let deadline = deadline.less(self.margin());
        let what = format!(
            "{}{}",
            push.repository,
            push.tag
                .as_deref()
                .map(|t| format!(":{t}"))
                .unwrap_or_default()
        );
        let cluster_at = self.cluster_at(Some(config));
        let launched = self
            .launch(config, &trigger, None, image.as_deref(), 0, &deadline)
            .await?;
        let (reply, notice) = match launched {
            Launched::Running { task, family, new } => {
                let n = (new && config.notify_on == NotifyOn::All)
                    .then(|| render_started(&family, &task.task_arn, &trigger.tag(), &cluster_at));
                (
                    PushReply::Launched {
                        task_arn: task.task_arn,
                        new,
                    },
                    n,
                )
            }
            Launched::Busy { other, family, .. } => {
                let why = format!(
                    "The push of {what} did not start a migration: task {} of {family} is still running. Start this one when it has finished (invoke the function with {{}}).",
                    other.id()
                );
                let n = render_problem(
                    &format!("Migration not started: {family}"),
                    &why,
                    Some(&other.task_arn),
                    &cluster_at,
                );
                (PushReply::Refused { reason: why }, Some(n))
            }
            Launched::Refused(why) => {
                let n = render_problem(
                    &format!("Migration not started for {what}"),
                    &why,
                    None,
                    &cluster_at,
                );
                (PushReply::Refused { reason: why }, Some(n))
            }
            // Lambda retries the event; its client token keeps a retry from starting a
            // second task, and the dead-letter queue's alarm tells people if all fail.
            Launched::NoCapacity { why, .. } => {
                return Err(Error::Aws {
                    service: "ECS",
                    operation: "RunTask",
                    code: None,
                    message: format!("no capacity for the migration task: {why}"),
                    retryable: true,
                });
            }
        };
        if let Some(n) = notice {
            self.ports
                .answerer
                .notifier()
                .notify(&n, &notify_by)
                .await
                .into_result()?;
        }
        Ok(reply)
    }
}

/// The pushed image by digest: `<account>.dkr.ecr.<region>.<domain>/<repository>@sha256:…`.
pub fn image_by_digest(push: &Push) -> String {
    let domain = if push.region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!(
        "{}.dkr.ecr.{}.{domain}/{}@{}",
        push.account, push.region, push.repository, push.digest
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_keep_their_published_shape() {
        let cases = [
            (
                Handled::Done(PushReply::Launched {
                    task_arn: "arn:t".into(),
                    new: true,
                }),
                json!({"outcome": "launched", "taskArn": "arn:t", "new": true}),
            ),
            (
                Handled::Done(PushReply::Refused {
                    reason: "busy".into(),
                }),
                json!({"outcome": "refused", "reason": "busy"}),
            ),
            (
                Handled::Done(PushReply::Ignored {
                    reason: "not a successful push",
                }),
                json!({"outcome": "ignored", "reason": "not a successful push"}),
            ),
            (
                Handled::Done(PushReply::NotConfigured {
                    reason: "configuration error: x".into(),
                }),
                json!({"outcome": "not-configured", "reason": "configuration error: x"}),
            ),
        ];
        for (reply, json) in cases {
            assert_eq!(serde_json::to_value(reply).unwrap(), json);
        }
    }

    #[test]
    fn the_pinned_image_is_the_pushed_digest_in_its_partition() {
        let push = Push {
            event_id: "e".into(),
            account: "123456789012".into(),
            region: "cn-north-1".into(),
            repository: "team/api".into(),
            digest: "sha256:abc".into(),
            tag: None,
            action: "PUSH".into(),
            result: "SUCCESS".into(),
        };
        assert_eq!(
            image_by_digest(&push),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/api@sha256:abc"
        );
    }
}
