//! The standard endpoint variables reach clients built from `shared::aws::load_sdk_config`:
//! `AWS_ENDPOINT_URL` for every service, `AWS_ENDPOINT_URL_<SERVICE>` overriding it for one.
//! One test in its own binary, because it sets process-wide variables.

use std::time::Duration;

use shared::Deadline;
use shared::jobs::{JobOutcome, JobReporter, ReportJob};
use shared::secrets::{SecretRef, Secrets};
use standins::{Moto, RecordingStub};

#[tokio::test]
async fn generic_and_service_specific_endpoint_variables_reach_every_client() {
    let moto = Moto::start();
    let stub = RecordingStub::start().await;
    // SAFETY: the only test in this binary, so no other thread reads the environment.
    unsafe {
        for (k, v) in moto.env() {
            std::env::set_var(k, v);
        }
        std::env::set_var("AWS_ENDPOINT_URL_CODEPIPELINE", stub.endpoint());
    }
    let sdk = shared::aws::load_sdk_config().await.unwrap();

    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name("/env/check")
        .value("via-moto")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let secrets = Secrets::new(&sdk);
    let read = secrets
        .resolve(
            &SecretRef::parse("ssm:/env/check").unwrap(),
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(read.expose(), "via-moto");

    let outcome = JobOutcome::Failed {
        kind: shared::jobs::FailureKind::JobFailed,
        message: "routed".into(),
    };
    JobReporter::new(&sdk)
        .report(
            "job-env",
            outcome,
            &Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(stub.accepted("PutJobFailureResult").len(), 1);
}
