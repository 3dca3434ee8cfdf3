//! What an ECS-native answer tells people, and the key each piece of news is posted once
//! under: the service deployment, the stage and the step, never `executionId`, which may
//! change on every callback.

use std::time::Duration;

use shared::invocation::ecs_hook::EcsStatus;

use crate::event::EcsHookEvent;
use crate::render::EcsNews;

/// What is news in this answer, and the key it is posted once under.
pub fn news(
    hook: &EcsHookEvent,
    status: EcsStatus,
    rollback: bool,
    bake_started: bool,
    notify_all: bool,
    next_look: Duration,
) -> Option<(String, EcsNews)> {
    // Linear and canary deployments run the production-shift hooks at every step: the
    // weight tells the steps apart.
    let step = hook
        .production_weight()
        .map(|w| format!("/{w}"))
        .unwrap_or_default();
    // News is keyed on the deployment, never on `executionId` (which may change on every
    // callback and would post again each time). Without a usable resourceArn the service
    // and its target revision stand in: such an invocation is never called back, so the
    // only cost of the weaker key is a repeated verdict for the same revision, stage and
    // step going unposted while the idempotency store remembers the first.
    let deployment = hook.service_deployment().map_or_else(
        || format!("{}/{}", hook.service_arn, hook.target_revision),
        str::to_owned,
    );
    let base = format!("{deployment}/{}{step}", hook.stage);
    if rollback {
        // One post per rollback, though ECS calls both traffic-shift hooks for it.
        return Some((format!("{deployment}/rollback"), EcsNews::Rollback));
    }
    match status {
        // The verdict is in the key: a different answer for the same hook (only a
        // replayed or forged invocation gets one) is news, the same one is not.
        EcsStatus::Failed | EcsStatus::Succeeded if status == EcsStatus::Failed || notify_all => {
            Some((
                format!("{base}/{}", status.wire()),
                EcsNews::Verdict(status),
            ))
        }
        EcsStatus::InProgress if bake_started && notify_all => {
            Some((format!("{base}/bake"), EcsNews::BakeStarted { next_look }))
        }
        _ => None,
    }
}
