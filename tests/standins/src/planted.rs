//! Secrets planted in a function's scenario, and the one check that none of them got out:
//! not in a log line (at DEBUG, every crate's debug output included), an invocation's answer
//! or error, a Slack post, or any request the function sent to AWS (an SNS message, a
//! CodePipeline failure message, a CodeDeploy status).

use crate::{RecordingStub, SlackSink};

/// The function's own AWS credentials, as Lambda hands them over in its environment.
pub const AWS_SECRET_ACCESS_KEY: &str = "PLANTEDawsSECRETaccessKEY0000000000000001";
pub const AWS_SESSION_TOKEN: &str = "PLANTEDawsSESSIONtoken00000000000000000001";

/// The secret halves of `artifactCredentials` in the sample pipeline job events.
pub const ARTIFACT_SECRETS: &[&str] = &["SECRETaccessKEYdoNOTlog/EXAMPLE", "SESSIONtokenDONOTLOG"];

/// [`crate::moto::aws_env`] with the planted credentials, and logs at DEBUG as JSON.
pub fn debug_env(endpoint: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = crate::moto::aws_env(endpoint)
        .into_iter()
        .filter(|(k, _)| k != "AWS_SECRET_ACCESS_KEY" && k != "AWS_SESSION_TOKEN")
        .collect();
    for (k, v) in [
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", AWS_SESSION_TOKEN),
        ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ] {
        env.push((k.to_owned(), v.to_owned()));
    }
    env
}

/// Always planted: the AWS credentials, the Slack webhook's secret path and the bot token.
pub fn always() -> Vec<&'static str> {
    vec![
        AWS_SECRET_ACCESS_KEY,
        AWS_SESSION_TOKEN,
        crate::slack_sink::WEBHOOK_TOKEN,
        crate::slack_sink::BOT_TOKEN,
    ]
}

/// Fails naming the secret and where it was found. `answers` are the invocations' results
/// as the Runtime API received them. Also fails when the logs hold no DEBUG line, which would
/// mean the scenario did not run at DEBUG and proved less than it says.
pub fn assert_none_leaked(
    secrets: &[&str],
    logs: &[String],
    answers: &[String],
    sink: &SlackSink,
    stub: &RecordingStub,
) {
    assert!(
        logs.iter().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "no DEBUG line in the logs: the scenario did not run at DEBUG"
    );
    let posts: Vec<String> = sink.requests().iter().map(|r| r.body.to_string()).collect();
    let calls: Vec<String> = stub
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.operation, c.body))
        .collect();
    for (place, texts) in [
        ("a log line", logs),
        ("an invocation's answer", answers),
        ("a Slack post", &posts[..]),
        ("a request to AWS", &calls[..]),
    ] {
        for text in texts {
            for secret in secrets {
                assert!(
                    !text.contains(secret),
                    "planted secret {secret:?} found in {place}: {text}"
                );
            }
        }
    }
}
