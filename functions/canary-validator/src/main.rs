use canary_validator::app;

// One event at a time: worker threads would buy only their stacks and arenas (measured
// with make bench: 0.3-1.0 MiB less peak RSS). `tokio::join!` still runs Slack and SNS at once.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::invocation::serve(app::FUNCTION, app::build).await
}
