use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use pipeline_notifier::lookup::CodePipelineLookup;
use pipeline_notifier::{Config, Handler};
use serde_json::Value;
use shared::config::ProcessEnv;
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
    let notifier = Notifier::new(config.notifier.clone(), &sdk, SlackClient::new()?, secrets);
    let handler = Handler::new(config, CodePipelineLookup::new(&sdk), notifier);
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = Deadline::from_context(&event.context);
        settle(
            handler
                .handle(&event.payload, deadline)
                .await
                .map(|o| o.to_json()),
        )
        .map(|v| {
            if v.is_null() {
                serde_json::json!({"outcome": "failed-permanently"})
            } else {
                v
            }
        })
    }))
    .await
}
