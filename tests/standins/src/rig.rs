//! The rig the functions' tests share, so it is written once (design.md: test rigs live in
//! one place and are reused, not copied per file): moto, the recording stub in front of it,
//! the Slack sink and the idempotency table, and what a function under test is built from —
//! its SDK configuration, `Clients`, its variables, an invocation's budget and the clock.
//! A function whose tests need more (an ECS world, a topic, a target) composes this rig with
//! that in its own test file, so only the difference is written there.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use shared::Deadline;
use shared::clients::Clients;
use shared::retry::Backoff;
use shared::slack::SlackClient;

use crate::{Moto, RecordingStub, SlackSink};

/// The idempotency store, as the template creates it: every side effect is claimed there.
pub const TABLE: &str = crate::moto::IDEMPOTENCY_TABLE;

/// Where the stack as tested keeps the webhook (`SlackWebhookParameterName`).
pub const WEBHOOK_PARAMETER: &str = "/ops/slack/webhook";

pub struct Rig {
    /// The AWS services moto plays, the idempotency table among them.
    pub moto: Moto,
    /// The front door for every AWS call a function makes: it answers its fixtures, forwards
    /// the rest to moto, and records each call (what the IAM check reads).
    pub stub: RecordingStub,
    pub sink: SlackSink,
    /// An SDK configuration aimed at the stub, with fake credentials.
    pub sdk: SdkConfig,
}

impl Rig {
    /// Starts moto, the stub forwarding to it and the sink, and creates the idempotency table.
    pub async fn start() -> Self {
        let moto = Moto::start();
        let stub = RecordingStub::start().await;
        stub.forward_unknown_to(moto.endpoint());
        let sdk = crate::moto::sdk_config_for(&stub.endpoint()).await;
        moto.create_idempotency_table().await;
        Self {
            moto,
            stub,
            sink: SlackSink::start().await,
            sdk,
        }
    }

    /// What every function reads from the rig: `SLACK_WEBHOOK_URL` (the sink, under
    /// `channel`) and `IDEMPOTENCY_TABLE`.
    pub fn variables(&self, channel: &str) -> Vec<(String, String)> {
        vec![
            ("SLACK_WEBHOOK_URL".into(), self.sink.webhook_url(channel)),
            ("IDEMPOTENCY_TABLE".into(), TABLE.into()),
        ]
    }

    /// [`Rig::variables`] with `extra` on top (see [`env`]).
    pub fn env(&self, channel: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
        env(self.variables(channel), extra)
    }

    /// The clients a function is built from, every AWS call through the stub.
    pub fn clients(&self) -> Clients {
        self.clients_with(SlackClient::new().expect("a Slack client"))
    }

    /// [`Rig::clients`] with Slack through `slack` (e.g. [`quick_slack`]).
    pub fn clients_with(&self, slack: SlackClient) -> Clients {
        Clients::new(self.sdk.clone(), slack)
    }
}

/// A function's variables: `base`, then `extra` on top. A blank value stays blank, as SAM sets
/// an empty template parameter, and the functions read it as not configured: that is how a
/// test takes a variable away (`("IDEMPOTENCY_TABLE", "")`).
pub fn env<K: Into<String>, V: Into<String>>(
    base: impl IntoIterator<Item = (K, V)>,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = base
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// Keeps the sink's webhook for `channel` where the stack as tested does (an SSM
/// SecureString, [`WEBHOOK_PARAMETER`]); returns the reference `SLACK_WEBHOOK_URL` names it by.
pub async fn webhook_in_ssm(moto: &Moto, sink: &SlackSink, channel: &str) -> String {
    moto.put_parameter(
        WEBHOOK_PARAMETER,
        &sink.webhook_url(channel),
        "SecureString",
    )
    .await;
    format!("ssm:{WEBHOOK_PARAMETER}")
}

/// A Slack client with the production policy's shape and test-sized waits.
pub fn quick_slack() -> SlackClient {
    SlackClient::with_policy(
        Backoff {
            first: Duration::from_millis(50),
            max: Duration::from_millis(200),
            max_attempts: 4,
        },
        Duration::from_secs(2),
    )
    .expect("a Slack client")
}

/// An invocation's deadline, `secs` from now.
pub fn budget(secs: u64) -> Deadline {
    Deadline::after(Duration::from_secs(secs))
}

/// Now, in seconds since the epoch: the `now` a function is handed.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
