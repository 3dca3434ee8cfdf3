use std::sync::Arc;

use canary_validator::alarms::CloudWatchAlarms;
use canary_validator::deployment::CodeDeployDeployments;
use canary_validator::http::HttpProbe;
use canary_validator::{Config, Handler, Hook, Ports};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::config::ProcessEnv;
use shared::hooks::HookReporter;
use shared::notifier::{Notifier, NotifierConfig};
use shared::secrets::Secrets;
use shared::slack::SlackClient;
use shared::{Deadline, settle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    // A configuration error does not stop init: CodeDeploy would wait an hour for a hook
    // that never reports. Each invocation reports Failed with the reason instead.
    let config = Config::from_env(&ProcessEnv).map_err(|e| e.to_string());
    let hook = std::env::var("HOOK").ok().as_deref().and_then(Hook::parse);
    let sdk = shared::aws::load_sdk_config().await;
    let secrets = Arc::new(Secrets::new(&sdk));
    let (probe, slack) = match (HttpProbe::new(), SlackClient::new()) {
        (Ok(p), Ok(s)) => (p, s),
        (Err(why), _) => return Err(why.into()),
        (_, Err(e)) => return Err(e.into()),
    };
    let notifier_config = config
        .as_ref()
        .map(|c| c.notifier.clone())
        .unwrap_or_else(|_| NotifierConfig::default());
    let notifier = Notifier::new(notifier_config, &sdk, slack, secrets.clone());
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let handler = Handler::new(
        config,
        hook,
        Ports {
            deployments: CodeDeployDeployments::new(&sdk),
            alarms: CloudWatchAlarms::new(&sdk),
            probe,
            hooks: HookReporter::new(&sdk),
            notifier,
            secrets: Some(secrets),
        },
        region,
    );
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        settle(
            handler
                .handle(&event.payload, Deadline::from_context(&event.context))
                .await,
        )
    }))
    .await
}
