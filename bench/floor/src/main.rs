//! The floor every function is measured against: the Lambda runtime and nothing else.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

// The same runtime flavor as the functions, so the floor compares like with like.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
