//! One request to the endpoint, from the bytes to the answer: read it, check Slack's
//! signature, read the click, check the clicker is an approver of that pipeline, look up where
//! the approval stands, claim its current token (a double click or a replay answers it at most
//! once; a retried stage has a new token), answer CodePipeline, and tell the person through
//! `response_url` (and in the message's thread, with a bot token).
//!
//! Nothing is believed before the signature verifies, and nothing reaches CodePipeline for a
//! request that is not a signed click from an approver.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use shared::idempotency::Claim;
use shared::invocation::once::Key;
use shared::metrics::{self, Metric};
use shared::secrets::Secret;
use shared::slack::signature::{self, Refused};
use shared::slack::{Message, Respond, WebPost};
use shared::{Deadline, Error};

use crate::app::PipelineApprovals;
use crate::approvers::{Approvers, Principal};
use crate::config::Config;
use crate::pipelines::{Outcome, Pipelines, Standing};
use crate::reply::{self, HttpReply};
use crate::request::{Click, Interaction, http_request, interaction};

/// Slack waits 3 seconds for the answer from the moment it sent the request: the work keeps
/// within this much of that moment (the Function URL's `timeEpoch`), a cold start included.
pub const SLACK_WAITS: Duration = Duration::from_millis(2_700);

/// The claim: the wait for a click that holds it is not waited out (Slack would give up
/// first), but the write itself gets a budget of its own.
const CLAIM_BUDGET: Duration = Duration::from_millis(900);

/// Kept back from the work for telling the person: a slow CodePipeline must not leave the
/// clicker without a word.
const RESPOND_RESERVE: Duration = Duration::from_millis(700);

/// `Requests` {Outcome}: what each request came to.
const REQUESTS: Metric = Metric::count("Requests");
/// `RefusedRequests`: requests refused before anything was done (unsigned, forged, stale,
/// malformed). An alarm's metric: a burst means someone is probing, or the signing secret was
/// regenerated in Slack and not stored here.
const REFUSED: Metric = Metric::count("RefusedRequests");
/// `UnansweredClicks`: an approver's click that could not be answered (CodePipeline failing or
/// refusing, the configuration unreadable). An alarm's metric: the invocation itself succeeds
/// (Slack gets its 200), so Lambda's error count never sees these.
const UNANSWERED: Metric = Metric::count("UnansweredClicks");

/// A broken configuration is logged at ERROR once per container, not once per request a
/// stranger sends.
static MISCONFIGURATION_LOGGED: AtomicBool = AtomicBool::new(false);

fn count(outcome: &str) {
    metrics::count(&REQUESTS, &[("Outcome", outcome)]);
}

fn unanswered(outcome: &'static str) -> &'static str {
    metrics::count(&UNANSWERED, &[]);
    count(outcome);
    outcome
}

fn refuse(reason: &'static str, status: u16, body: &'static str) -> HttpReply {
    refuse_because(reason, "", status, body)
}

/// `reason` is the metric's word; `detail` what the log line adds.
fn refuse_because(
    reason: &'static str,
    detail: &str,
    status: u16,
    body: &'static str,
) -> HttpReply {
    // One line, never the body or the headers.
    tracing::warn!(reason, detail, status, "request refused");
    metrics::count(&REFUSED, &[]);
    count(&format!("refused-{reason}"));
    HttpReply::refused(status, body, "refused")
}

/// The time left until Slack stops waiting: `SLACK_WAITS` from when the Function URL received
/// the request (`received_ms`, epoch ms), or from now when that is unknown or implausible.
fn slack_budget(received_ms: Option<i64>, now_ms: i64) -> Duration {
    let waits = SLACK_WAITS.as_millis() as i64;
    // Less than this left and the click could not be answered at all: it gets the time a
    // fresh one would, Slack's answer being late either way.
    let least = (RESPOND_RESERVE + Duration::from_secs(1)).as_millis() as i64;
    match received_ms.map(|at| now_ms - at) {
        Some(age) if (0..=waits - least).contains(&age) => {
            Duration::from_millis((waits - age) as u64)
        }
        // Slack has stopped waiting (or the clocks disagree): the click is still answered, and
        // told through response_url, in the time a fresh one would have.
        _ => SLACK_WAITS,
    }
}

impl<P: Pipelines + Sync> PipelineApprovals<P> {
    /// One request, as its HTTP answer. `now` is epoch seconds (the signature's clock).
    pub async fn handle(&self, event: &Value, deadline: &Deadline, now: i64) -> HttpReply {
        let request = match http_request(event) {
            Ok(r) => r,
            Err(why) => return refuse_because("unreadable", why.0, 400, "bad request"),
        };
        let deadline = deadline.capped(slack_budget(
            request.received_ms,
            shared::budget::now_millis() as i64,
        ));
        if request.method != "POST" {
            return refuse("not-a-post", 405, "only Slack's POST is answered");
        }
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => {
                if !MISCONFIGURATION_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::error!(reason = %why, "configuration error: no request is answered until it is fixed");
                }
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
                // A person must act only when a retry cannot help (denied, missing); a
                // passing fault shows as the 503 and the log. Nothing is known of the request
                // yet, so it is not counted as an approver's click.
                if !e.is_retryable() {
                    metrics::count(&metrics::CONFIG_ERRORS, &[]);
                }
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
            Err(why) => return refuse_because("malformed", why.0, 400, "not an approval click"),
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
        let only_you = |text: &str| (reply::only_you(text), Respond::OnlyYou);
        let (outcome, (message, how)) = match self
            .is_approver(config, &a.pipeline, &click.user, deadline)
            .await
        {
            Ok(true) => match self.decide(click, deadline, now).await {
                Ok(decided) => decided,
                Err(e) => {
                    tracing::error!(error = %e, pipeline = %a.pipeline, "CodePipeline did not answer");
                    (
                        unanswered("failed"),
                        only_you(
                            "CodePipeline did not answer in time, so the answer may not have been recorded. Click again to see where it stands.",
                        ),
                    )
                }
            },
            Ok(false) => {
                tracing::warn!(user = %click.user, pipeline = %a.pipeline, "not an approver of this pipeline: nothing sent to CodePipeline");
                count("not-approver");
                let text = format!(
                    "Only the approvers of {} can answer this approval (APPROVERS). Nothing was sent to CodePipeline.",
                    a.pipeline
                );
                ("not-approver", only_you(&text))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot tell who may approve: nothing sent to CodePipeline");
                if !e.is_retryable() {
                    metrics::count(&metrics::CONFIG_ERRORS, &[]);
                }
                (
                    unanswered("failed"),
                    only_you(
                        "The approvers could not be read, so nothing was sent to CodePipeline. Try again in a moment; the operators have the reason in the function's log.",
                    ),
                )
            }
        };
        self.respond(click, &message, how, told_by).await;
        if matches!(outcome, "approved" | "rejected") {
            self.reply_in_thread(config, click, now, told_by).await;
        }
        outcome
    }

    /// Where the approval stands; if it waits, the answer under a claim on its current token.
    /// Returns the outcome and what the person is told.
    async fn decide(
        &self,
        click: &Click,
        deadline: &Deadline,
        now: i64,
    ) -> Result<(&'static str, (Message, Respond)), Error> {
        let a = &click.approval;
        // The claim is marked done or given back after the answer, in time kept for that: a
        // claim left held would tell the next click "already answered" for nothing.
        let (record_by, deadline) = (deadline, &deadline.less(shared::budget::RECORD_RESERVE));
        let gone = |why: &str, summary: Option<&str>| {
            (reply::no_longer_waiting(a, why, summary), Respond::Replace)
        };
        let superseded = "A newer execution has reached this stage, or the approval expired: this one no longer waits.";
        let token = match self.ports.pipelines.standing(a, deadline).await? {
            Standing::Waiting { token } => token,
            Standing::Answered { approved, summary } => {
                let why = if approved {
                    "It was already approved."
                } else {
                    "It was already rejected, or it expired, or the execution was stopped."
                };
                count("already-answered");
                return Ok(("already-answered", gone(why, summary.as_deref())));
            }
            Standing::Superseded => {
                count("superseded");
                return Ok(("superseded", gone(superseded, None)));
            }
            Standing::Gone => {
                count("gone");
                return Ok((
                    "gone",
                    gone(
                        "The pipeline, its stage or its approval action no longer exists.",
                        None,
                    ),
                ));
            }
            Standing::Denied => return Ok(denied(a)),
        };
        // One answer per token: a double click and a replay find it claimed; a stage retried
        // after a rejection waits with a new token, and is answered afresh.
        let fact = format!("{}/{}/{}/{token}", a.pipeline, a.stage, a.action);
        let key = Key::Fact("approval", &fact).to_string();
        let ticket = match self
            .ports
            .claims
            .claim(&key, &deadline.capped(CLAIM_BUDGET))
            .await
        {
            Claim::Won(ticket) => ticket,
            Claim::Done | Claim::Held { .. } => {
                tracing::info!(pipeline = %a.pipeline, "this approval was already answered from Slack, or is being answered now");
                count("duplicate");
                return Ok((
                    "duplicate",
                    (
                        reply::only_you(
                            "This approval was already answered from Slack, or is being answered now.",
                        ),
                        Respond::OnlyYou,
                    ),
                ));
            }
        };
        let verb = if click.approve {
            "Approved"
        } else {
            "Rejected"
        };
        let summary = format!("{verb} in Slack by {} (pipeline-approvals)", click.user);
        let answered = self
            .ports
            .pipelines
            .answer(a, &token, click.approve, &summary, deadline)
            .await;
        let decided = match answered {
            Ok(Outcome::Recorded) => {
                tracing::info!(user = %click.user, pipeline = %a.pipeline, approve = click.approve, "answer recorded in CodePipeline");
                let outcome = if click.approve {
                    "approved"
                } else {
                    "rejected"
                };
                count(outcome);
                (
                    outcome,
                    (
                        reply::answered(a, click.approve, &click.user, now),
                        Respond::Replace,
                    ),
                )
            }
            Ok(Outcome::Stale) => {
                count("superseded");
                ("superseded", gone(superseded, None))
            }
            Ok(Outcome::AlreadyAnswered) => {
                // Someone else's answer, or this very one landing on the SDK's retry: what
                // CodePipeline now says (its summary names who) is told to this clicker only,
                // so a winner's "approved by" replacement is never overwritten.
                count("already-answered");
                let summary = match self.ports.pipelines.standing(a, record_by).await {
                    Ok(Standing::Answered { summary, .. }) => summary,
                    _ => None,
                };
                let mut text = "This approval was already answered.".to_owned();
                if let Some(s) = summary.filter(|s| !s.trim().is_empty()) {
                    text.push_str(&format!(" CodePipeline says: {s}"));
                }
                (
                    "already-answered",
                    (reply::only_you(&text), Respond::OnlyYou),
                )
            }
            Ok(Outcome::Denied) => {
                // Nothing was recorded: a grant added later lets the next click through.
                self.ports.claims.release(ticket, record_by).await;
                return Ok(denied(a));
            }
            Err(e) => {
                self.ports.claims.release(ticket, record_by).await;
                return Err(e);
            }
        };
        self.ports.claims.done(ticket, record_by).await;
        Ok(decided)
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
                    let members = self.members(config, group, deadline).await?;
                    if members.iter().any(|m| m == user) {
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
        let (Some(url), Ok(config)) = (&click.response_url, &self.config) else {
            return;
        };
        let sent = self
            .ports
            .slack
            .respond(url, message, how, config.api.origin().as_deref(), deadline)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not update the Slack message through response_url");
        }
    }

    /// Who answered, in the message's thread too: in Web API mode the notifier edits its live
    /// message again with the next event, and that edit would take the replacement away.
    /// Only with a bot token; a failure is logged.
    async fn reply_in_thread(&self, config: &Config, click: &Click, now: i64, deadline: &Deadline) {
        let (Some(token), Some(at)) = (&config.bot_token, &click.message) else {
            return;
        };
        let token = match self.ports.secrets.resolve(token, deadline).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the bot token for the thread reply");
                return;
            }
        };
        let message = reply::answered(&click.approval, click.approve, &click.user, now);
        let posted = self
            .ports
            .slack
            .post_message(
                &config.api,
                &token,
                &WebPost {
                    channel: &at.channel,
                    message: &message,
                    thread_ts: Some(&at.ts),
                    reply_broadcast: false,
                },
                deadline,
            )
            .await;
        if let Err(e) = posted {
            tracing::warn!(error = %e, "could not reply in the approval message's thread");
        }
    }
}

/// The role may not answer this pipeline: nothing recorded, said to the clicker, counted.
fn denied(a: &shared::approval::ApprovalRef) -> (&'static str, (Message, Respond)) {
    tracing::error!(pipeline = %a.pipeline, "the function's role may not answer this pipeline (ApprovalPipelines)");
    (
        unanswered("denied"),
        (
            reply::only_you(&format!(
                "CodePipeline refused: this function may not answer approvals of {} (the stack's ApprovalPipelines). Nothing was recorded; answer it in the console.",
                a.pipeline
            )),
            Respond::OnlyYou,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_three_seconds_count_from_when_the_url_received_the_request() {
        assert_eq!(
            slack_budget(Some(1_000), 1_500),
            Duration::from_millis(2_200)
        );
        assert_eq!(
            slack_budget(Some(1_000), 9_000),
            SLACK_WAITS,
            "Slack gave up; the click is still answered"
        );
        assert_eq!(slack_budget(None, 1_500), SLACK_WAITS);
        assert_eq!(
            slack_budget(Some(1_000), 3_300),
            SLACK_WAITS,
            "too little left to answer at all: the time a fresh click gets"
        );
        assert_eq!(
            slack_budget(Some(9_000), 1_000),
            SLACK_WAITS,
            "a clock ahead: ignored"
        );
    }
}
