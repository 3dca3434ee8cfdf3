//! Layer 5, the life of one invocation, owned in one place: start-up (telemetry, clients,
//! metrics), the invocation itself (its request id, deadline and clock), and one flow per
//! kind of input the suite answers — a CodePipeline job ([`job`]), a CodeDeploy hook
//! ([`hook`]), an ECS-native lifecycle hook ([`ecs_hook`], answered by return value), an
//! event handled once across containers ([`once`]); the reserves of its budget are named
//! in [`crate::budget`]. Each flow does parse → claim → guard → decide → report → notify →
//! reply; a function supplies only the "decide" part, through a small trait, and gets a
//! typed reply back.
pub mod ecs_hook;
pub mod hook;
pub mod job;
pub mod once;

use std::future::Future;
use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::clients::Clients;
use crate::config::ProcessEnv;
use crate::deadline::Deadline;
use crate::error::{Error, settle};

/// One invocation: what the Lambda context says, and the time it started (seconds since the
/// epoch; a value rather than a clock read, so tests can move it).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub deadline: Deadline,
    pub now: i64,
}

impl Invocation {
    fn from_event(event: &LambdaEvent<Value>) -> Self {
        Self {
            request_id: event.context.request_id.clone(),
            deadline: Deadline::from_context(&event.context),
            now: crate::budget::now_secs(),
        }
    }

    /// For tests and the demo: `budget` from now, at `now`.
    pub fn after(budget: Duration, now: i64) -> Self {
        Self {
            request_id: String::new(),
            deadline: Deadline::after(budget),
            now,
        }
    }
}

/// A function as Lambda runs it: what it answers an event with. An `Err` is settled by
/// [`serve`]: retried by Lambda when a retry can help, acknowledged otherwise.
pub trait Function: Sync {
    fn answer(
        &self,
        event: &Value,
        invocation: Invocation,
    ) -> impl Future<Output = Result<Value, Error>> + Send;
}

/// Every `main.rs`: telemetry, the clients and `build`'s composition root, the metrics of each
/// invocation, and each answer settled (a permanent error acknowledged, a retryable one
/// returned for Lambda's retry). `function` names the crate (the metrics' `Function`).
pub async fn serve<F, B>(function: &'static str, build: B) -> Result<(), lambda_runtime::Error>
where
    F: Function,
    B: FnOnce(&ProcessEnv, &Clients) -> Result<F, Error>,
{
    crate::telemetry::init_tracing();
    let clients = Clients::for_lambda().await?;
    let app = build(&ProcessEnv, &clients)?;
    let metrics = clients.metrics(&ProcessEnv, function);
    let (app, metrics) = (&app, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_event(&event);
        // Boxed: the answer's future is deep, and the runtime wraps it again; unboxed, a
        // clean (non-incremental) build overflows the compiler's layout query depth.
        let answered = metrics
            .around(Box::pin(app.answer(&event.payload, invocation)))
            .await;
        // A permanent error is acknowledged; the reply says so, and why, for a caller that
        // invoked the function directly and reads it (Lambda drops it for an event).
        let permanent = match &answered {
            Err(e) if !e.is_retryable() => Some(e.to_string()),
            _ => None,
        };
        settle(answered).map(|v| match permanent {
            Some(reason) => serde_json::json!({"outcome": "failed-permanently", "reason": reason}),
            None => v,
        })
    }))
    .await
}
