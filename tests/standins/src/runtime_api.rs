//! A local Lambda Runtime API: runs a built function binary the way Lambda does (the
//! binary polls `/runtime/invocation/next` and posts a response or an error) so tests and
//! the demo exercise the real `main`, config loading and runtime loop.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    /// The function reported an invocation error (`errorType`, `errorMessage`).
    Error(Value),
    /// No answer before the invocation's timeout.
    TimedOut,
    /// The process exited without answering.
    Crashed,
}

#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    pub took: Duration,
}

struct Queued {
    id: String,
    event: Bytes,
    deadline_ms: u64,
}

#[derive(Default)]
struct Inner {
    /// When the function first asked for an event: the end of its init (for `make bench`).
    first_poll: Mutex<Option<Instant>>,
    queue: Mutex<VecDeque<Queued>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    arrived: Notify,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
    counter: Mutex<u64>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let addr = crate::serve(app).await;
        Self {
            addr,
            inner,
            counter: Mutex::new(0),
        }
    }

    /// When a function first asked this server for an event, if it has.
    pub fn first_poll_at(&self) -> Option<Instant> {
        *self
            .inner
            .first_poll
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Hands `event` to the function with a `timeout` deadline and waits for its answer.
    pub async fn invoke(
        &self,
        function: &mut FunctionProcess,
        event: &Value,
        timeout: Duration,
    ) -> Invocation {
        self.invoke_raw(function, event.to_string().into_bytes(), timeout)
            .await
    }

    /// [`RuntimeApi::invoke`] with the body as bytes, which need not be JSON at all.
    pub async fn invoke_raw(
        &self,
        function: &mut FunctionProcess,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Invocation {
        let id = {
            let mut n = self.counter.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("00000000-0000-4000-8000-{:012}", *n)
        };
        let deadline_ms = SystemTime::now()
            .checked_add(timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let (tx, rx) = oneshot::channel();
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), tx);
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Queued {
                id: id.clone(),
                event: Bytes::from(body),
                deadline_ms,
            });
        self.inner.arrived.notify_waiters();
        self.inner.arrived.notify_one();
        let started = Instant::now();
        // A little grace past the deadline: Lambda, too, kills the sandbox only then.
        let outcome = tokio::select! {
            answer = rx => answer.unwrap_or(Outcome::Crashed),
            _ = tokio::time::sleep(timeout + Duration::from_millis(500)) => Outcome::TimedOut,
            _ = function.child.wait() => Outcome::Crashed,
        };
        Invocation {
            request_id: id,
            outcome,
            took: started.elapsed(),
        }
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    inner
        .first_poll
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Instant::now);
    loop {
        let notified = inner.arrived.notified();
        if let Some(q) = inner
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
        {
            let mut headers = HeaderMap::new();
            let put = |h: &mut HeaderMap, k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            put(&mut headers, "lambda-runtime-aws-request-id", q.id);
            put(
                &mut headers,
                "lambda-runtime-deadline-ms",
                q.deadline_ms.to_string(),
            );
            put(
                &mut headers,
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:local".into(),
            );
            put(
                &mut headers,
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
            );
            put(&mut headers, "content-type", "application/json".into());
            return (StatusCode::OK, headers, q.event).into_response();
        }
        notified.await;
    }
}

fn finish(inner: &Inner, id: &str, outcome: Outcome) -> StatusCode {
    match inner
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id)
    {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(inner): State<Arc<Inner>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&inner, &id, Outcome::Response(value))
}

async fn error(
    State(inner): State<Arc<Inner>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(&inner, &id, Outcome::Error(value))
}

/// Lambda records an init error and ends the sandbox; here the process exits by itself and
/// its log says why, so the report needs only an acknowledgement.
async fn init_error() -> StatusCode {
    StatusCode::ACCEPTED
}

/// The function binary a test runs: the one the variable `override_var` names (the release
/// bootstrap, say), else `built`, the test build's own (`env!("CARGO_BIN_EXE_<name>")`).
pub fn binary_under_test(override_var: &str, built: &str) -> std::path::PathBuf {
    std::env::var_os(override_var)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(built))
}

/// A function binary running against a [`RuntimeApi`], with its log lines kept.
pub struct FunctionProcess {
    child: Child,
    spawned_at: Instant,
    logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl FunctionProcess {
    /// Starts `binary` as Lambda would: the runtime API address, function metadata, and
    /// JSON logs unless `env` says otherwise. `env` adds to (and overrides) these.
    pub fn spawn(binary: &Path, api: &RuntimeApi, env: &[(String, String)]) -> Self {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::spawn_command(Command::new(binary), &name, api, env)
    }

    /// Like [`Self::spawn`], for a runtime started by a command (an interpreter and its
    /// arguments): `make bench`'s Python peer under `awslambdaric`.
    pub fn spawn_command(
        mut cmd: Command,
        name: &str,
        api: &RuntimeApi,
        env: &[(String, String)],
    ) -> Self {
        let program = format!("{:?}", cmd.as_std().get_program());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let spawned_at = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(keep_lines(out, logs.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(keep_lines(err, logs.clone())));
        }
        Self {
            child,
            spawned_at,
            logs,
            readers,
        }
    }

    /// When the process was started.
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// The process's peak resident memory so far (`VmHWM` in `/proc/<pid>/status`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// How many file descriptors the process has open now (`/proc/<pid>/fd`).
    pub fn open_fds(&self) -> Option<usize> {
        let dir = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()?)).ok()?;
        Some(dir.count())
    }

    /// Ends the process (if it has not ended by itself) and returns every line it wrote,
    /// stdout and stderr. Lines arrive through pipes, so reading them at a fixed time after
    /// the last invocation races the reader tasks on a busy machine; after the process is
    /// gone and both pipes are drained, nothing more can come.
    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits up to `timeout` for the process to exit (a failed init exits).
    pub async fn exited_within(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .is_ok()
    }
}

async fn keep_lines<R: tokio::io::AsyncRead + Unpin>(pipe: R, logs: Arc<Mutex<Vec<String>>>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        logs.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
}

/// Bodies no function can use, each named: empty, `null`, an array, wrong types, missing
/// fields, an unknown detail-type, a 1 MB string, JSON nested past any parser's limit, an
/// escape that is not valid UTF-16, and bytes that are not UTF-8. Each must end in an
/// acknowledgement or a clean invocation error, never a crash or a hang.
pub fn bad_payloads() -> Vec<(&'static str, Vec<u8>)> {
    let big = format!(
        r#"{{"id": "{}", "source": "aws.codepipeline"}}"#,
        "x".repeat(1 << 20)
    );
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    vec![
        ("empty", Vec::new()),
        ("null", b"null".to_vec()),
        ("an array", b"[1, 2, 3]".to_vec()),
        ("a string", br#""hello""#.to_vec()),
        ("an empty object", b"{}".to_vec()),
        (
            "wrong types",
            br#"{"id": 7, "source": ["aws.ecs"], "detail-type": {}, "detail": "x", "DeploymentId": 1, "LifecycleEventHookExecutionId": [], "executionId": 5, "lifecycleStage": {}, "CodePipeline.job": "job"}"#.to_vec(),
        ),
        (
            "missing fields",
            br#"{"source": "aws.codepipeline", "detail-type": "CodePipeline Action Execution State Change"}"#.to_vec(),
        ),
        (
            "an unknown detail-type",
            br#"{"id": "1", "source": "aws.ecs", "detail-type": "Something New", "detail": {}}"#.to_vec(),
        ),
        ("a 1 MB string", big.into_bytes()),
        ("nested 100,000 deep", nested.into_bytes()),
        ("a lone surrogate escape", br#"{"id": "\ud800", "source": "aws.ecr"}"#.to_vec()),
        ("bytes that are not UTF-8", vec![0x7b, 0xff, 0xfe, 0x7d]),
    ]
}

/// Feeds every [`bad_payloads`] body to `function` and asserts each ended cleanly: an answer
/// or an invocation error, in time, with the process still alive for the next one.
/// `valid` names the bodies that are a real request to this function (`{}` asks the migration
/// runner for a migration).
pub async fn assert_bad_payloads_end_cleanly(
    api: &RuntimeApi,
    function: &mut FunctionProcess,
    valid: &[&str],
) {
    for (name, body) in bad_payloads() {
        if valid.contains(&name) {
            continue;
        }
        let out = api
            .invoke_raw(function, body, Duration::from_secs(10))
            .await;
        assert!(
            matches!(out.outcome, Outcome::Response(_) | Outcome::Error(_)),
            "{name}: {:?}",
            out.outcome
        );
    }
}

/// What must never reach a function's log: the sample CodePipeline jobs' `artifactCredentials`
/// (events/*/codepipeline-job*.json) and the Slack sink's webhook token, plus `more` (a test's
/// own secrets). Panics naming the first one found.
pub fn assert_no_secrets(logs: &str, more: &[&str]) {
    let known = [crate::slack_sink::WEBHOOK_TOKEN, "ASIAEXAMPLEDONOTLOG"];
    for secret in known
        .iter()
        .chain(crate::planted::ARTIFACT_SECRETS)
        .chain(more)
    {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}
