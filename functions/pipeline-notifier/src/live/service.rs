//! Web API mode for ECS services: one live message per deployment, edited from in progress to
//! deployed, failed, or rolled back. The release and the rollback that undoes it are two ECS
//! deployments (two `deploymentId`s) and one story, so the document is per service
//! (`live-ecs/<cluster>/<service>`) and holds the current deployment and its rollback; a newer
//! release starts a new message. Merged under a version check like an execution's, so
//! duplicates and events out of order land once, and edited by the same machinery.

use serde::{Deserialize, Serialize};
use shared::idempotency::{Idempotency, STORE_FAULTS};
use shared::metrics;
use shared::notifier::ChannelOutcome;
use shared::secrets::Secret;
use shared::slack::{Block, Button, Message, Mrkdwn, Posted, WebPost};
use shared::{Deadline, Error, console};

use super::Live;
use super::edit::LiveDocument;
use crate::ecs_event::{EcsEvent, EcsState};
use crate::ecs_lookup::{DeploymentInfo, Rollback, ServiceRevisionView};
use crate::render::epoch;

const LONGEST: usize = 300;
/// A release and its rollback, and room for a deployment ECS starts in between.
const MOST_DEPLOYMENTS: usize = 4;

fn cut(text: &str) -> String {
    text.chars().take(LONGEST).collect()
}

/// One ECS deployment at its newest state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentMark {
    pub id: String,
    pub state: EcsState,
    /// The event's `time` in epoch seconds; 0 when it had none.
    pub at: i64,
    pub reason: Option<String>,
    /// This deployment rolls the release back.
    pub rollback: bool,
}

fn rank(state: EcsState) -> u8 {
    match state {
        EcsState::Completed | EcsState::Failed => 1,
        _ => 0,
    }
}

/// What ECS said of the release, as the message shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Details {
    /// Where ECS's rollback of the release stands, when it is rolled back without an event
    /// of its own.
    pub rollback: Option<RollbackWord>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub images: Vec<String>,
    pub rolled_back_to: Option<String>,
    pub circuit_breaker: Option<(i32, i32)>,
    pub alarms: Vec<String>,
}

fn revision(r: &ServiceRevisionView) -> String {
    cut(r
        .task_definition
        .as_deref()
        .unwrap_or_else(|| r.arn.rsplit('/').next().unwrap_or(&r.arn)))
}

/// [`Rollback`], as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollbackWord {
    Underway,
    Done,
    Failed,
}

impl From<&DeploymentInfo> for Details {
    fn from(info: &DeploymentInfo) -> Self {
        Self {
            rollback: match info.rollback() {
                Rollback::None => None,
                Rollback::Underway => Some(RollbackWord::Underway),
                Rollback::Done => Some(RollbackWord::Done),
                Rollback::Failed => Some(RollbackWord::Failed),
            },
            from: info.source.as_ref().map(revision),
            to: info.target.as_ref().map(revision),
            images: info
                .target
                .iter()
                .flat_map(|t| t.images.iter().take(3).map(|i| cut(i)))
                .collect(),
            rolled_back_to: info.rolled_back_to.as_ref().map(revision),
            circuit_breaker: info.circuit_breaker,
            alarms: info
                .triggered_alarms
                .iter()
                .take(5)
                .map(|a| cut(a))
                .collect(),
        }
    }
}

/// One service's current deployment, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceDeployment {
    pub service: String,
    pub cluster: String,
    pub region: String,
    pub account: Option<String>,
    /// What the message's post is claimed by: the first deployment heard of, and when.
    pub episode: String,
    /// The deployment the message is about (empty while only its rollback was heard of).
    pub release: String,
    pub started_at: i64,
    /// The release and its rollback.
    pub deployments: Vec<DeploymentMark>,
    /// Deployments heard of that started before the message's: kept in case the message's
    /// release turns out to be their rollback.
    pub earlier: Vec<DeploymentMark>,
    pub details: Option<Details>,
    pub message: Option<Posted>,
    pub content: u64,
    pub shown: u64,
    pub editor: Option<String>,
    pub editor_until_ms: u64,
}

impl ServiceDeployment {
    fn new(e: &EcsEvent, at: i64) -> Self {
        Self {
            service: cut(&e.service),
            cluster: cut(e.cluster.as_deref().unwrap_or("default")),
            region: cut(&e.region),
            account: e.account.as_deref().map(cut),
            episode: format!(
                "{}@{at}",
                cut(e.deployment_id.as_deref().unwrap_or_default())
            ),
            started_at: at,
            ..Self::default()
        }
    }

    fn mark(&self, id: &str) -> Option<&DeploymentMark> {
        self.deployments.iter().find(|d| d.id == id)
    }

    /// The release the message is about; absent while only its rollback was heard of.
    pub fn release_mark(&self) -> Option<&DeploymentMark> {
        self.mark(&self.release).filter(|m| !m.rollback)
    }

    pub fn rollback_mark(&self) -> Option<&DeploymentMark> {
        self.deployments.iter().find(|d| d.rollback)
    }
}

/// The document with `e` (and what ECS said of it) folded in; `None` when nothing changes (a
/// duplicate, an older state, an event of a release the message has moved past).
pub fn merge(
    current: Option<&ServiceDeployment>,
    e: &EcsEvent,
    info: Option<&DeploymentInfo>,
) -> Option<ServiceDeployment> {
    let id = e.deployment_id.as_deref()?;
    let at = e.time.as_deref().and_then(epoch).unwrap_or(0);
    // ECS's word on a completion, when it gave one: a rollback's, or a release's.
    let ecs_says_rollback = info
        .filter(|i| i.status.is_some())
        .map(DeploymentInfo::rolled_back);
    let mark = DeploymentMark {
        id: cut(id),
        state: e.state,
        at,
        reason: e.reason.as_deref().map(cut),
        rollback: e.state == EcsState::RollingBack
            || (e.state == EcsState::Completed && ecs_says_rollback == Some(true)),
    };
    let mut next = current
        .cloned()
        .unwrap_or_else(|| ServiceDeployment::new(e, at));
    let changed = if let Some(old) = next.deployments.iter_mut().find(|d| d.id == id) {
        let newer = (mark.at, rank(mark.state)) > (old.at, rank(old.state));
        let now_rollback = mark.rollback && !old.rollback;
        if newer {
            old.state = mark.state;
            old.at = mark.at;
            old.reason = mark.reason.clone().or(old.reason.take());
        }
        old.rollback |= mark.rollback;
        if now_rollback && next.release == id {
            // Heard as a release first: it rolls back the newest earlier deployment.
            next.release.clear();
            if let Some(undone) = next.earlier.iter().max_by_key(|d| d.at).cloned() {
                next.earlier.retain(|d| d.id != undone.id);
                next.release = undone.id.clone();
                next.started_at = next.started_at.min(undone.at);
                next.deployments.push(undone);
            }
        }
        newer || now_rollback
    } else {
        let release = next.release_mark().cloned();
        let rollback = next.rollback_mark().cloned();
        let newer = at >= next.started_at;
        match release {
            // ECS never rolls a completed deployment back: a rollback now is another
            // release's, whose own events have not come yet. A story of its own.
            Some(r) if r.state == EcsState::Completed && mark.rollback && newer => {
                next = ServiceDeployment::new(e, at);
                attach(&mut next, mark, true)?;
            }
            Some(r)
                if rollback.is_none()
                    && r.state != EcsState::Completed
                    && (mark.rollback
                        || (e.state == EcsState::Completed
                            && ecs_says_rollback.unwrap_or(r.state == EcsState::Failed))) =>
            {
                attach(&mut next, mark, true)?;
            }
            // The release a rollback undoes, heard after it.
            None if !mark.rollback && rollback.as_ref().is_none_or(|b| at <= b.at) => {
                next.release = cut(id);
                next.started_at = if next.deployments.is_empty() {
                    at
                } else {
                    next.started_at.min(at)
                };
                attach(&mut next, mark, false)?;
            }
            None if mark.rollback && rollback.is_none() => attach(&mut next, mark, true)?,
            // A newer release: a new message. Its start, or an end ECS says is a release's, or
            // anything once this message's story is over.
            _ if newer
                && (e.state == EcsState::InProgress
                    || ecs_says_rollback == Some(false)
                    || settled(&next)) =>
            {
                next = ServiceDeployment::new(e, at);
                next.release = cut(id);
                attach(&mut next, mark, false)?;
            }
            // Older, or not yet known to be a release or a rollback: kept aside, unshown, in
            // case the message's release turns out to be its rollback (or it its rollback).
            _ => {
                match next.earlier.iter_mut().find(|d| d.id == id) {
                    Some(old) if (mark.at, rank(mark.state)) > (old.at, rank(old.state)) => {
                        *old = mark;
                    }
                    Some(_) => return None,
                    None => {
                        next.earlier.push(mark);
                        next.earlier.sort_by_key(|d| std::cmp::Reverse(d.at));
                        next.earlier.truncate(MOST_DEPLOYMENTS);
                    }
                }
                return (current != Some(&next)).then_some(next);
            }
        }
        true
    };
    let before = next.details.clone();
    let mut next = with_details(next, info);
    if !changed && next.details == before && current.is_some() {
        return None;
    }
    next.content += 1;
    Some(next)
}

/// Whether the message's story is over: the release deployed, or failed and its rollback (if
/// any) ended.
fn settled(x: &ServiceDeployment) -> bool {
    let ended = |m: &DeploymentMark| matches!(m.state, EcsState::Completed | EcsState::Failed);
    match (x.release_mark(), x.rollback_mark()) {
        (Some(r), None) => r.state == EcsState::Completed,
        (_, Some(b)) => ended(b),
        (None, None) => false,
    }
}

/// Adds `mark` to the story, with what was heard of it while it was kept aside. `None` when
/// the story is full (a bound on what the document holds, whatever the events say).
fn attach(x: &mut ServiceDeployment, mark: DeploymentMark, rollback: bool) -> Option<()> {
    if x.deployments.len() >= MOST_DEPLOYMENTS {
        return None;
    }
    let mut mark = DeploymentMark { rollback, ..mark };
    if let Some(pos) = x.earlier.iter().position(|d| d.id == mark.id) {
        let heard = x.earlier.remove(pos);
        if (heard.at, rank(heard.state)) > (mark.at, rank(mark.state)) {
            mark = DeploymentMark {
                rollback,
                reason: heard.reason.or(mark.reason),
                ..heard
            };
        }
    }
    x.deployments.push(mark);
    Some(())
}

/// ECS's description of the release: the newest look-up wins, since ECS's state only moves on.
/// Two containers' look-ups may land in either order: a rollback's word never goes back
/// (rolled back does not become rolling back again).
fn with_details(mut x: ServiceDeployment, info: Option<&DeploymentInfo>) -> ServiceDeployment {
    if let Some(info) = info.filter(|i| i.target.is_some() || i.source.is_some()) {
        let mut details = Details::from(info);
        let stage = |w: Option<RollbackWord>| match w {
            None => 0,
            Some(RollbackWord::Underway) => 1,
            Some(RollbackWord::Done | RollbackWord::Failed) => 2,
        };
        if let Some(old) = &x.details
            && stage(old.rollback) > stage(details.rollback)
        {
            details.rollback = old.rollback;
            details.rolled_back_to = details.rolled_back_to.or(old.rolled_back_to.clone());
        }
        x.details = Some(details);
    }
    x
}

impl LiveDocument for ServiceDeployment {
    fn message(&self) -> Option<&Posted> {
        self.message.as_ref()
    }
    fn set_message(&mut self, message: Option<Posted>) {
        self.message = message;
    }
    fn content(&self) -> u64 {
        self.content
    }
    fn shown(&self) -> u64 {
        self.shown
    }
    fn set_shown(&mut self, shown: u64) {
        self.shown = shown;
    }
    fn editor(&self) -> (Option<&str>, u64) {
        (self.editor.as_deref(), self.editor_until_ms)
    }
    fn set_editor(&mut self, editor: Option<String>, until_ms: u64) {
        self.editor = editor;
        self.editor_until_ms = until_ms;
    }
    fn render(&self) -> Message {
        render_service(self)
    }
    fn episode(&self) -> &str {
        &self.episode
    }
}

fn headline(x: &ServiceDeployment) -> (&'static str, String) {
    let s = &x.service;
    let to = x
        .details
        .as_ref()
        .and_then(|d| d.to.clone())
        .map(|t| format!(" {t}"))
        .unwrap_or_default();
    let release = x.release_mark().map(|m| m.state);
    // A rollback heard of by its own event, or else by ECS's word on the release.
    let ecs_word = x
        .details
        .as_ref()
        .and_then(|d| d.rollback)
        .map(|w| match w {
            RollbackWord::Underway => EcsState::RollingBack,
            RollbackWord::Done => EcsState::Completed,
            RollbackWord::Failed => EcsState::Failed,
        });
    // Whichever has the rollback further along: its event, or ECS's word.
    let rollback = match (x.rollback_mark().map(|m| m.state), ecs_word) {
        (Some(EcsState::RollingBack), Some(word)) => Some(word),
        (Some(state), _) => Some(state),
        (None, word) => word,
    };
    match (release, rollback) {
        (_, Some(EcsState::Completed)) => {
            let back = x
                .details
                .as_ref()
                .and_then(|d| d.rolled_back_to.clone())
                .map(|b| format!(" to {b}"))
                .unwrap_or_else(|| " to the previous revision".into());
            ("↩️", format!("{s}: deployment failed, rolled back{back}"))
        }
        (_, Some(EcsState::Failed)) => (
            "❌",
            format!("{s}: deployment failed, and so did its rollback"),
        ),
        (_, Some(_)) => ("↩️", format!("{s}: deployment failed, rolling back")),
        (Some(EcsState::Completed), None) => ("✅", format!("{s}: deployed{to}")),
        (Some(EcsState::Failed), None) => ("❌", format!("{s}: deployment failed")),
        _ => ("🚀", format!("{s}: deploying{to}")),
    }
}

fn mark_line(m: &DeploymentMark) -> Mrkdwn {
    let icon = match m.state {
        EcsState::Completed => "✅",
        EcsState::Failed => "❌",
        EcsState::RollingBack => "↩️",
        _ => "🔄",
    };
    let what = if m.rollback { "Rollback" } else { "Release" };
    let state = match m.state {
        EcsState::Completed => "completed",
        EcsState::Failed => "failed",
        _ => "in progress",
    };
    let mut line = Mrkdwn::new()
        .plain(icon)
        .plain(" ")
        .bold(what)
        .plain(" ")
        .code(&m.id)
        .plain(" ")
        .plain(state);
    if let Some(reason) = &m.reason {
        line = line.plain(": ").plain(reason);
    }
    line
}

/// The service's live message as it stands. No mention: an edit notifies nobody; a failure's
/// details and the mention go in the thread.
pub fn render_service(x: &ServiceDeployment) -> Message {
    let (icon, title) = headline(x);
    let url = console::ecs_service_deployments(&x.region, &x.cluster, &x.service);
    let mut body = Mrkdwn::new()
        .plain("Service ")
        .bold(&x.service)
        .plain(" in cluster ")
        .bold(&x.cluster);
    let mut deployments: Vec<&DeploymentMark> = x.deployments.iter().collect();
    deployments.sort_by_key(|d| d.rollback);
    for d in deployments {
        body = body.newline().append(&mark_line(d));
    }
    let mut message = Message::new(Mrkdwn::new().plain(&format!("{icon} {title}")))
        .block(Block::Header(format!("{icon} {title}")))
        .block(Block::section(body));
    if let Some(d) = &x.details {
        let mut m = Mrkdwn::new();
        if let Some(from) = &d.from {
            m = m.bold("From").plain(" ").code(from).plain("  ");
        }
        if let Some(to) = &d.to {
            m = m.bold("To").plain(" ").code(to);
        }
        for image in &d.images {
            m = m.newline().markup("• ").code(image);
        }
        if let Some(back) = &d.rolled_back_to {
            m = m.newline().bold("Rolled back to").plain(" ").code(back);
        }
        if !m.is_empty() {
            message = message.block(Block::section(m));
        }
        let mut watch = Vec::new();
        if let Some((failed, threshold)) = d.circuit_breaker.filter(|(f, _)| *f > 0) {
            watch.push(Mrkdwn::new().plain(&format!(
                "Circuit breaker: {failed} failed tasks (threshold {threshold})"
            )));
        }
        if !d.alarms.is_empty() {
            watch.push(
                Mrkdwn::new()
                    .plain("Alarms in ALARM: ")
                    .plain(&d.alarms.join(", ")),
            );
        }
        if !watch.is_empty() {
            message = message.block(Block::Context(watch));
        }
    }
    let place = match &x.account {
        Some(a) => format!("{} · {a}", x.region),
        None => x.region.clone(),
    };
    message
        .block(Block::Buttons(vec![Button {
            label: "Open deployments".into(),
            url,
        }]))
        .block(Block::Context(vec![Mrkdwn::new().plain(&format!(
            "{place} · a failure's details are in the thread"
        ))]))
}

/// One ECS deployment event for the service's live message.
pub struct ServiceEvent<'a> {
    pub event: &'a EcsEvent,
    pub channel: &'a str,
    pub info: Option<&'a DeploymentInfo>,
    /// The event's own message when `NOTIFY_ON` selects it: it may create the live message,
    /// and a failure's is the thread reply (with the mention).
    pub message: Option<&'a Message>,
}

impl Live {
    /// Merges the event into its service's document and brings the live message up to date;
    /// a selected failure is also replied in its thread, shown in the channel.
    pub async fn deliver_service(
        &self,
        ev: &ServiceEvent<'_>,
        claims: &Idempotency,
        deadline: &Deadline,
    ) -> ChannelOutcome {
        let token = match self.token(deadline).await {
            Ok(t) => t,
            Err(e) => return ChannelOutcome::Failed(e),
        };
        match Box::pin(self.deliver_service_with(ev, &token, claims, deadline)).await {
            Ok(true) => ChannelOutcome::Delivered,
            Ok(false) => ChannelOutcome::NotConfigured,
            Err(e) => ChannelOutcome::Failed(e),
        }
    }

    async fn deliver_service_with(
        &self,
        ev: &ServiceEvent<'_>,
        token: &Secret,
        claims: &Idempotency,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        let e = ev.event;
        let key = format!("live-ecs/{}", e.qualified_service());
        let merged = self
            .documents
            .update(&key, deadline, |s: Option<&ServiceDeployment>| {
                merge(s, e, ev.info)
            })
            .await;
        let x = match merged {
            Ok(m) => match m.current() {
                Some(v) => v.clone(),
                None => return Ok(false),
            },
            Err(fault) => {
                metrics::count(&STORE_FAULTS, &[]);
                tracing::error!(event_id = %e.id, error = %fault, "cannot merge the event into its service's state; posting it as a message of its own");
                let Some(message) = ev.message else {
                    return if fault.is_retryable() {
                        Err(fault)
                    } else {
                        Ok(false)
                    };
                };
                return match Box::pin(self.post_standalone(ev.channel, message, deadline)).await {
                    ChannelOutcome::Failed(e) => Err(e),
                    _ => Ok(true),
                };
            }
        };
        let mut x = x;
        if x.value.message.is_none() {
            if ev.message.is_none() {
                tracing::info!(event_id = %e.id, "recorded for the service's live message; NOTIFY_ON selects nothing of it yet");
                return Ok(false);
            }
            let claim_key = format!("{key}/{}/post", x.value.episode);
            x = Box::pin(self.post_claimed(
                &claim_key, &key, x, ev.channel, None, token, claims, deadline,
            ))
            .await?;
        }
        let updated =
            Box::pin(self.bring_up_to_date(&key, x.clone(), token, claims, deadline)).await;
        let now = updated.as_ref().unwrap_or(&x);
        let ours = now
            .value
            .deployments
            .iter()
            .any(|d| Some(d.id.as_str()) == e.deployment_id.as_deref());
        let replied = match (ev.message, e.state, &now.value.message) {
            // A late failure of an older release is not this message's: a message of its own.
            (Some(reply), EcsState::Failed, _) if !ours => {
                match Box::pin(self.post_standalone(ev.channel, reply, deadline)).await {
                    ChannelOutcome::Failed(e) => Err(e),
                    _ => Ok(()),
                }
            }
            (Some(reply), EcsState::Failed, Some(top)) => self
                .call(self.slack.post_message(
                    &self.api,
                    token,
                    &WebPost {
                        channel: &top.channel,
                        message: reply,
                        thread_ts: Some(&top.ts),
                        reply_broadcast: true,
                    },
                    deadline,
                ))
                .await
                .map(|_| ()),
            _ => Ok(()),
        };
        updated?;
        replied?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs_event::parse;
    use serde_json::json;

    fn event(name: &str, id: &str, time: &str, reason: &str) -> EcsEvent {
        parse(&json!({
            "id": format!("{id}-{name}"), "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
            "account": "111122223333", "time": time, "region": "us-west-2",
            "resources": ["arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"],
            "detail": {"eventType": "INFO", "eventName": name, "deploymentId": id, "reason": reason}
        }))
        .unwrap()
    }

    fn fold(events: &[EcsEvent]) -> ServiceDeployment {
        events
            .iter()
            .fold(None, |doc: Option<ServiceDeployment>, e| {
                merge(doc.as_ref(), e, None).or(doc)
            })
            .unwrap()
    }

    fn release_then_rollback() -> Vec<EcsEvent> {
        vec![
            event(
                "SERVICE_DEPLOYMENT_IN_PROGRESS",
                "ecs-svc/1",
                "2026-11-20T10:00:00Z",
                "in progress",
            ),
            event(
                "SERVICE_DEPLOYMENT_FAILED",
                "ecs-svc/1",
                "2026-11-20T10:05:00Z",
                "ECS deployment circuit breaker: task failed to start.",
            ),
            event(
                "SERVICE_DEPLOYMENT_IN_PROGRESS",
                "ecs-svc/2",
                "2026-11-20T10:05:01Z",
                "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/0.",
            ),
            event(
                "SERVICE_DEPLOYMENT_COMPLETED",
                "ecs-svc/2",
                "2026-11-20T10:08:00Z",
                "completed",
            ),
        ]
    }

    #[test]
    fn a_release_and_its_rollback_are_one_message_in_any_order() {
        let events = release_then_rollback();
        let in_order = fold(&events);
        assert_eq!(
            headline(&in_order).1,
            "servicetest: deployment failed, rolled back to the previous revision"
        );
        // Every order of the four.
        for n in 0..24usize {
            let mut left: Vec<usize> = (0..4).collect();
            let mut order = Vec::new();
            let mut k = n;
            for radix in (1..=4).rev() {
                order.push(left.remove(k % radix));
                k /= radix;
            }
            let shuffled: Vec<EcsEvent> = order.iter().map(|i| events[*i].clone()).collect();
            let x = fold(&shuffled);
            assert_eq!(headline(&x), headline(&in_order), "{order:?}");
            assert_eq!(x.release, "ecs-svc/1", "{order:?}");
            // One story from its first event: a post is never claimed for a second one.
            let first = fold(&shuffled[..1]);
            assert_eq!(x.episode, first.episode, "{order:?}");
        }
    }

    #[test]
    fn a_rollback_heard_before_its_release_never_reopens_the_release_before_it() {
        // The service's last release deployed; the next one's start was not delivered, and
        // its rollback comes first. ECS never rolls back a completed deployment.
        let deployed = fold(&[
            event(
                "SERVICE_DEPLOYMENT_IN_PROGRESS",
                "ecs-svc/0",
                "2026-11-20T09:00:00Z",
                "in progress",
            ),
            event(
                "SERVICE_DEPLOYMENT_COMPLETED",
                "ecs-svc/0",
                "2026-11-20T09:05:00Z",
                "completed",
            ),
        ]);
        assert_eq!(headline(&deployed).1, "servicetest: deployed");
        let events = release_then_rollback();
        let mut x = deployed.clone();
        for e in [&events[2], &events[1], &events[3]] {
            x = merge(Some(&x), e, None).unwrap_or(x);
        }
        assert_ne!(x.episode, deployed.episode, "a story of its own");
        assert_eq!(x.release, "ecs-svc/1");
        assert_eq!(
            headline(&x).1,
            "servicetest: deployment failed, rolled back to the previous revision"
        );
    }

    #[test]
    fn a_duplicate_changes_nothing_and_a_newer_release_starts_a_new_message() {
        let events = release_then_rollback();
        let x = fold(&events);
        assert_eq!(merge(Some(&x), &events[1], None), None);
        let next = event(
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "ecs-svc/3",
            "2026-11-20T11:00:00Z",
            "in progress",
        );
        let fresh = merge(Some(&x), &next, None).unwrap();
        assert_eq!(
            (fresh.release.as_str(), fresh.message.as_ref()),
            ("ecs-svc/3", None)
        );
        assert_eq!(headline(&fresh).1, "servicetest: deploying");
        // The old release's late event does not bring its message back, nor change it.
        let late = merge(Some(&fresh), &events[0], None).unwrap_or_else(|| fresh.clone());
        assert_eq!(
            (late.content, late.release.as_str()),
            (fresh.content, "ecs-svc/3")
        );
        assert_eq!(headline(&late), headline(&fresh));
    }
}
