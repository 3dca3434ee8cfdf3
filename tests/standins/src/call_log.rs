//! Every AWS call a function makes through the recording stub, appended to
//! `$STANDINS_CALL_LOG/<package>.jsonl` when that variable names a directory: what the IAM
//! check (`scripts/iam-check`) compares with each function's role in `template.yaml`. The
//! package is the crate whose tests are running (`CARGO_PKG_NAME`, which cargo sets for them),
//! so the calls of each function's tests are kept apart. Calls made by the tests themselves
//! (setting up moto) go to moto directly and are not here.

use std::io::Write;

use axum::http::HeaderMap;
use serde_json::{Value, json};

/// The IAM service prefix from the SigV4 credential scope (`Credential=AKID/date/region/
/// <signing name>/aws4_request`). CloudWatch signs as `monitoring`; IAM says `cloudwatch`.
fn iam_prefix(headers: &HeaderMap) -> String {
    let signing_name = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| cred.split('/').nth(3))
        .unwrap_or_default();
    match signing_name {
        "monitoring" => "cloudwatch".to_owned(),
        other => other.to_owned(),
    }
}

pub fn log_call(headers: &HeaderMap, operation: &str, request: &Value, response: &Value) {
    let Some(dir) = std::env::var_os("STANDINS_CALL_LOG") else {
        return;
    };
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "unknown".into());
    let line = json!({
        "action": format!("{}:{operation}", iam_prefix(headers)),
        "request": request,
        "response": response,
    });
    append(&dir, &package, &line);
}

/// One write per line, in append mode: lines from tests running in parallel stay whole.
fn append(dir: &std::ffi::OsStr, package: &str, line: &Value) {
    let path = std::path::Path::new(dir).join(format!("{package}.jsonl"));
    let _ = std::fs::create_dir_all(dir);
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// What the stub was told about the account (a fixture), for the IAM check to resolve calls
/// whose resource the request alone does not name (a CodeDeploy deployment's group).
pub fn log_fixture(operation: &str, when: &Value, response: &Value) {
    let Some(dir) = std::env::var_os("STANDINS_CALL_LOG") else {
        return;
    };
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "unknown".into());
    let line = json!({"fixture": operation, "when": when, "response": response});
    append(&dir, &package, &line);
}
