use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ecr_scan_gate::registry::Ecr;
use ecr_scan_gate::{Config, Handler};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::config::ProcessEnv;
use shared::jobs::JobReporter;
use shared::notifier::Notifier;
use shared::secrets::Secrets;
use shared::slack::SlackClient;
use shared::{Deadline, settle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = shared::aws::load_sdk_config().await;
    let secrets = Arc::new(Secrets::new(&sdk));
    let notifier = Notifier::new(
        config.notifier.clone(),
        &sdk,
        SlackClient::new()?,
        secrets.clone(),
    );
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let handler = Handler::new(
        config,
        Ecr::new(&sdk),
        JobReporter::new(&sdk),
        notifier,
        Some(secrets),
        region,
    );
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        settle(
            handler
                .handle(&event.payload, Deadline::from_context(&event.context), now)
                .await,
        )
    }))
    .await
}
