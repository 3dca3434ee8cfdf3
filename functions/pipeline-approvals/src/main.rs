//! The Lambda entry point: one call into the shared invocation layer with `app::build`.

use pipeline_approvals::app;

// One request at a time, as the other functions: Slack waits 3 seconds for the answer, and a
// current-thread runtime starts sooner.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::invocation::serve(app::FUNCTION, |env, clients| Ok(app::build(env, clients))).await
}
