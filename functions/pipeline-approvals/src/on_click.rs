//! One request to the endpoint, from the bytes to the answer: read it, check Slack's
//! signature, read the click, check the clicker is an approver of that pipeline, claim the
//! approval (a double click or a replay answers it at most once), look up its current token,
//! answer CodePipeline, and tell the person through `response_url`.
//!
//! Nothing is believed before the signature verifies, and nothing reaches CodePipeline for a
//! request that is not a signed click from an approver.

use std::time::Duration;

use serde_json::Value;
use shared::idempotency::Claim;
use shared::metrics::{self, Metric};
use shared::secrets::Secret;
use shared::slack::signature::{self, Refused};
use shared::slack::{Message, Respond};
use shared::{Deadline, Error};

use crate::app::PipelineApprovals;
use crate::approvers::{Approvers, Principal};
use crate::config::Config;
use crate::pipelines::{Outcome, Pipelines, Standing};
use crate::reply::{self, HttpReply};
use crate::request::{Click, Interaction, http_request, interaction};

/// Slack waits 3 seconds for the answer, a cold start included: the work keeps within this,
/// whatever the Lambda timeout.
pub const SLACK_WAITS: Duration = Duration::from_millis(2_700);

/// A claim held by another click is not waited for: Slack would give up first.
const CLAIM_WAIT: Duration = Duration::from_millis(400);

/// Kept back from the work for telling the person: a slow CodePipeline must not leave the
/// clicker without a word.
const RESPOND_RESERVE: Duration = Duration::from_millis(700);

/// `Requests` {Outcome}: what each request came to.
const REQUESTS: Metric = Metric::count("Requests");
/// `RefusedRequests`: requests refused before anything was done (unsigned, forged, stale,
/// malformed). The alarm's metric: a burst means someone is trying.
const REFUSED: Metric = Metric::count("RefusedRequests");

fn count(outcome: &str) {
    metrics::count(&REQUESTS, &[("Outcome", outcome)]);
}

fn refuse(reason: &str, status: u16, body: &'static str) -> HttpReply {
    // One line, never the body or the headers.
    tracing::warn!(reason, status, "request refused");
    metrics::count(&REFUSED, &[]);
    count(&format!("refused-{reason}"));
    HttpReply::refused(status, body, "refused")
}

impl<P: Pipelines + Sync> PipelineApprovals<P> {
    /// One request, as its HTTP answer. `now` is epoch seconds (the signature's clock).
    pub async fn handle(&self, event: &Value, deadline: &Deadline, now: i64) -> HttpReply {
        let deadline = deadline.capped(SLACK_WAITS);
        let request = match http_request(event) {
            Ok(r) => r,
            Err(why) => return refuse(why.0, 400, "bad request"),
        };
        if request.method != "POST" {
            return refuse("not-a-post", 405, "only Slack's POST is answered");
        }
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                tracing::error!(reason = %why, "configuration error: request not answered");
                metrics::count(&metrics::CONFIG_ERRORS, &[]);
                count("misconfigured");
                return HttpReply::refused(503, "misconfigured", "misconfigured");
            }
        };
        let secret = match self
            .ports
            .secrets
            .resolve(&config.signing_secret, &deadline)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(from = %config.signing_secret.describe(), error = %e, "cannot read the signing secret: no request can be verified");
                count("failed");
                return HttpReply::refused(503, "cannot verify requests now", "failed");
            }
        };
        let verified = signature::verify(
            secret.expose().as_bytes(),
            request.header("x-slack-request-timestamp"),
            request.header("x-slack-signature"),
            &request.body,
            now,
        );
        if let Err(refused) = verified {
            let status = if refused == Refused::Malformed {
                400
            } else {
                401
            };
            return refuse(refused.name(), status, "not a request signed by Slack");
        }
        let click = match interaction(&request.body) {
            Ok(Interaction::Click(c)) => c,
            Ok(Interaction::NotOurs(why)) => {
                tracing::info!(
                    reason = why,
                    "signed interaction acknowledged; nothing to do"
                );
                count("ignored");
                return HttpReply::acknowledged("ignored");
            }
            Err(why) => return refuse(why.0, 400, "not an approval click"),
        };
        let outcome = Box::pin(self.on_click(config, &click, &deadline, now)).await;
        HttpReply::acknowledged(outcome)
    }

    /// What the click came to, as the `Requests` metric's outcome.
    async fn on_click(
        &self,
        config: &Config,
        click: &Click,
        deadline: &Deadline,
        now: i64,
    ) -> &'static str {
        let a = &click.approval;
        let (told_by, deadline) = (deadline, &deadline.less(RESPOND_RESERVE));
        tracing::info!(user = %click.user, pipeline = %a.pipeline, stage = %a.stage, action = %a.action, execution = %a.execution, approve = click.approve, "approval click");
        match self
            .is_approver(config, &a.pipeline, &click.user, deadline)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                count("not-approver");
                tracing::warn!(user = %click.user, pipeline = %a.pipeline, "not an approver of this pipeline: nothing sent to CodePipeline");
                let text = format!(
                    "Only the approvers of {} can answer this approval (APPROVERS). Nothing was sent to CodePipeline.",
                    a.pipeline
                );
                self.respond(click, &reply::only_you(&text), Respond::OnlyYou, told_by)
                    .await;
                return "not-approver";
            }
            Err(e) => {
                count("failed");
                tracing::error!(error = %e, "cannot tell who may approve: nothing sent to CodePipeline");
                let text = "The approvers could not be read, so nothing was sent to CodePipeline. Try again in a moment; the operators have the reason in the function's log.";
                self.respond(click, &reply::only_you(text), Respond::OnlyYou, told_by)
                    .await;
                return "failed";
            }
        }
        let key = format!(
            "approval/{}/{}/{}/{}",
            a.pipeline, a.stage, a.action, a.execution
        );
        let ticket = match self
            .ports
            .claims
            .claim(&key, &deadline.capped(CLAIM_WAIT))
            .await
        {
            Claim::Won(ticket) => ticket,
            Claim::Done | Claim::Held { .. } => {
                count("duplicate");
                tracing::info!(pipeline = %a.pipeline, "this approval was already answered from Slack, or is being answered now");
                let text =
                    "This approval was already answered from Slack, or is being answered now.";
                self.respond(click, &reply::only_you(text), Respond::OnlyYou, told_by)
                    .await;
                return "duplicate";
            }
        };
        match self.decide(click, deadline, now).await {
            Ok((outcome, message, how)) => {
                self.ports.claims.done(ticket, told_by).await;
                count(outcome);
                self.respond(click, &message, how, told_by).await;
                outcome
            }
            Err(e) => {
                // Nothing was recorded: a click may try again.
                self.ports.claims.release(ticket, told_by).await;
                count("failed");
                tracing::error!(error = %e, pipeline = %a.pipeline, "CodePipeline did not take the answer");
                let text = "CodePipeline did not answer in time, so nothing was recorded. Click again in a moment.";
                self.respond(click, &reply::only_you(text), Respond::OnlyYou, told_by)
                    .await;
                "failed"
            }
        }
    }

    /// The approval's token, then the answer; what the person is told about it.
    async fn decide(
        &self,
        click: &Click,
        deadline: &Deadline,
        now: i64,
    ) -> Result<(&'static str, Message, Respond), Error> {
        let a = &click.approval;
        let gone = |why: &str, summary: Option<&str>| reply::no_longer_waiting(a, why, summary);
        let token = match self.ports.pipelines.standing(a, deadline).await? {
            Standing::Waiting { token } => token,
            Standing::Answered { approved, summary } => {
                let why = if approved {
                    "It was already approved."
                } else {
                    "It was already rejected, or it expired."
                };
                return Ok((
                    "already-answered",
                    gone(why, summary.as_deref()),
                    Respond::Replace,
                ));
            }
            Standing::Superseded => {
                return Ok((
                    "superseded",
                    gone(
                        "A newer execution has reached this stage, or the approval expired: this one no longer waits.",
                        None,
                    ),
                    Respond::Replace,
                ));
            }
            Standing::Gone => {
                return Ok((
                    "gone",
                    gone(
                        "The pipeline, its stage or its approval action no longer exists.",
                        None,
                    ),
                    Respond::Replace,
                ));
            }
        };
        let verb = if click.approve {
            "Approved"
        } else {
            "Rejected"
        };
        let summary = format!("{verb} in Slack by {} (pipeline-approvals)", click.user);
        Ok(
            match self
                .ports
                .pipelines
                .answer(a, &token, click.approve, &summary, deadline)
                .await?
            {
                Outcome::Recorded => {
                    tracing::info!(user = %click.user, pipeline = %a.pipeline, approve = click.approve, "answer recorded in CodePipeline");
                    let outcome = if click.approve {
                        "approved"
                    } else {
                        "rejected"
                    };
                    (
                        outcome,
                        reply::answered(a, click.approve, &click.user, now),
                        Respond::Replace,
                    )
                }
                Outcome::Stale => (
                    "superseded",
                    gone(
                        "A newer execution has reached this stage, or the approval expired: this one no longer waits.",
                        None,
                    ),
                    Respond::Replace,
                ),
                Outcome::AlreadyAnswered => (
                    "already-answered",
                    gone("Someone answered it first.", None),
                    Respond::Replace,
                ),
                Outcome::Denied => {
                    tracing::error!(pipeline = %a.pipeline, "the function's role may not approve this pipeline (ApprovalPipelines)");
                    (
                        "denied",
                        reply::only_you(&format!(
                            "CodePipeline refused: this function may not approve {} (the stack's ApprovalPipelines). Nothing was recorded; approve it in the console.",
                            a.pipeline
                        )),
                        Respond::OnlyYou,
                    )
                }
            },
        )
    }

    async fn is_approver(
        &self,
        config: &Config,
        pipeline: &str,
        user: &str,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        let approvers = config
            .approvers
            .load(Some(&self.ports.secrets), deadline, Approvers::parse)
            .await
            .map_err(|e| e.into_error("APPROVERS"))?;
        for principal in approvers.for_pipeline(pipeline) {
            match principal {
                Principal::User(id) if id == user => return Ok(true),
                Principal::User(_) => {}
                Principal::Group(group) => {
                    if self
                        .members(config, group, deadline)
                        .await?
                        .iter()
                        .any(|m| m == user)
                    {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    async fn members(
        &self,
        config: &Config,
        group: &str,
        deadline: &Deadline,
    ) -> Result<Vec<String>, Error> {
        if let Some(members) = self.ports.groups.get(group) {
            return Ok(members);
        }
        let Some(token) = &config.bot_token else {
            return Err(Error::bad_input(
                "APPROVERS names a user group but SLACK_BOT_TOKEN is not set",
            ));
        };
        let token: Secret = self.ports.secrets.resolve(token, deadline).await?;
        let members = self
            .ports
            .slack
            .group_members(&config.api, &token, group, deadline)
            .await?;
        self.ports.groups.keep(group, members.clone());
        Ok(members)
    }

    /// Tells the person through the click's `response_url`; a failure is logged, not more:
    /// what CodePipeline recorded stands either way, and the notifier's messages follow it.
    async fn respond(&self, click: &Click, message: &Message, how: Respond, deadline: &Deadline) {
        let Some(url) = &click.response_url else {
            return;
        };
        let url = Secret::new(url.clone());
        if let Err(e) = self.ports.slack.respond(&url, message, how, deadline).await {
            tracing::warn!(error = %e, "could not update the Slack message through response_url");
        }
    }
}
