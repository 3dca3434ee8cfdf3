//! A recording stand-in for the AWS JSON (awsJson1_1) calls moto lacks: CodeDeploy
//! `PutLifecycleEventHookExecutionStatus`, CodePipeline `PutJobSuccessResult` /
//! `PutJobFailureResult`, and CodePipeline's manual approvals (`GetPipelineState`,
//! `PutApprovalResult`, [`crate::approvals`]), routed by `X-Amz-Target`.
//!
//! A service's endpoint is one URL, so the stub also answers that service's other calls:
//! from fixtures a test registers, else by forwarding to an upstream (moto), else with
//! `UnknownOperationException`.
//!
//! In front of moto's ECS it enforces what the ECS API reference says and moto does not: a
//! RunTask `clientToken` replayed with the same parameters returns the first answer and
//! starts nothing (with other parameters: `ConflictException`), the token's and
//! `startedBy`'s formats, and ListTasks' "startedBy must be the only filter".
//!
//! It also bridges Smithy RPC v2 CBOR (`/service/<Service>/operation/<Op>`, which the current
//! CloudWatch SDK speaks) to the AWS JSON protocol of the upstream moto, so CloudWatch calls
//! reach moto's state: point `AWS_ENDPOINT_URL_CLOUDWATCH` at the stub.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Call {
    /// e.g. `CodePipeline_20150709`
    pub service: String,
    /// e.g. `PutJobSuccessResult`
    pub operation: String,
    pub body: Value,
    /// The HTTP status the stub answered with.
    pub status: u16,
}

#[derive(Clone)]
enum StubAnswer {
    Ok(Value),
    Error { code: String, message: String },
}

struct Fixture {
    operation: String,
    when: Value,
    answer: StubAnswer,
    /// Answers only from this moment: what a service shows later than it was asked (Amazon
    /// Inspector's findings reach the findings API after the scan event).
    from: Option<std::time::Instant>,
}

impl Fixture {
    fn answers(&self, operation: &str, request: &Value) -> bool {
        self.operation == operation
            && contains(request, &self.when)
            && self.from.is_none_or(|t| std::time::Instant::now() >= t)
    }
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    finished_jobs: HashSet<String>,
    completed_hooks: HashSet<String>,
    throttle: HashMap<String, u32>,
    /// Operations whose next answers are HTTP 500 `InternalFailure`: how many more.
    server_errors: HashMap<String, u32>,
    /// Operations whose next answers are held back: (delay, how many more).
    slow: HashMap<String, (std::time::Duration, u32)>,
    fixtures: Vec<Fixture>,
    upstream: Option<String>,
    /// ECS RunTask answers by (cluster, clientToken): the request and what it was answered.
    run_tokens: HashMap<(String, String), (Value, Bytes)>,
    /// CodePipeline's manual approvals, for the pipelines a test made wait.
    approvals: crate::approvals::Approvals,
}

#[derive(Clone)]
pub struct RecordingStub {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl RecordingStub {
    /// Starts on a free loopback port, on the current tokio runtime.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let addr = crate::serve(app).await;
        Self { addr, inner }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls the stub does not answer itself go to `upstream` (a moto endpoint).
    pub fn forward_unknown_to(&self, upstream: &str) {
        self.lock().upstream = Some(upstream.to_owned());
    }

    /// The next `times` calls of `operation` answer `ThrottlingException`.
    pub fn throttle(&self, operation: &str, times: u32) {
        self.lock().throttle.insert(operation.to_owned(), times);
    }

    /// The next `times` calls of `operation` answer HTTP 500 `InternalFailure`, as an AWS
    /// service does when it fails on its side; nothing takes effect.
    pub fn server_error(&self, operation: &str, times: u32) {
        self.lock()
            .server_errors
            .insert(operation.to_owned(), times);
    }

    /// The next `times` calls of `operation` take effect at once but are answered only after
    /// `delay`: a response lost to the caller's attempt timeout, after which the SDK retries
    /// a call that already landed (the "already reported" answer to one's own report).
    pub fn delay_answers(&self, operation: &str, delay: std::time::Duration, times: u32) {
        self.lock()
            .slow
            .insert(operation.to_owned(), (delay, times));
    }

    /// `execution_id` of `pipeline` waits at the manual approval `stage`/`action`: from now
    /// on `GetPipelineState` and `PutApprovalResult` for that pipeline follow CodePipeline's
    /// approval rules ([`crate::approvals`]). Returns the approval's token.
    pub fn approval_waits(
        &self,
        pipeline: &str,
        stage: &str,
        action: &str,
        execution_id: &str,
    ) -> String {
        self.lock().approvals.wait(
            pipeline,
            stage,
            action,
            execution_id,
            crate::rig::now_secs(),
        )
    }

    /// The approval waiting at `stage`/`action` of `pipeline` expires.
    pub fn approval_expires(&self, pipeline: &str, stage: &str, action: &str) {
        self.lock()
            .approvals
            .expire(pipeline, stage, action, crate::rig::now_secs());
    }

    /// What each approval of `pipeline` came to, oldest first: (execution id, status).
    pub fn approval_outcomes(&self, pipeline: &str) -> Vec<(String, crate::approvals::Status)> {
        self.lock().approvals.outcomes(pipeline)
    }

    /// Answers `operation` with `response` when the request contains every field of `when`.
    /// Fixtures come first, also for the operations the stub answers itself, so a test can
    /// make those refuse (`AccessDeniedException` for a role without the grant).
    pub fn fixture(&self, operation: &str, when: Value, response: Value) {
        crate::call_log::log_fixture(operation, &when, &response);
        self.lock().fixtures.push(Fixture {
            operation: operation.into(),
            when,
            answer: StubAnswer::Ok(response),
            from: None,
        });
    }

    /// [`RecordingStub::fixture`], answered only once `delay` has passed: until then the
    /// fixtures registered before it (or the upstream) answer. How a stand-in shows what a
    /// service makes visible late, such as findings that reach ECR's findings API after the
    /// scan event (ECR user guide on enhanced scanning; aws/aws-for-fluent-bit#1105).
    pub fn fixture_after(
        &self,
        delay: std::time::Duration,
        operation: &str,
        when: Value,
        response: Value,
    ) {
        crate::call_log::log_fixture(operation, &when, &response);
        self.lock().fixtures.push(Fixture {
            operation: operation.into(),
            when,
            answer: StubAnswer::Ok(response),
            from: Some(std::time::Instant::now() + delay),
        });
    }

    /// Answers `operation` with the AWS error `code` when the request contains `when`.
    pub fn fixture_error(&self, operation: &str, when: Value, code: &str, message: &str) {
        self.lock().fixtures.push(Fixture {
            operation: operation.into(),
            when,
            answer: StubAnswer::Error {
                code: code.into(),
                message: message.into(),
            },
            from: None,
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Calls of `operation` that the stub accepted (2xx).
    pub fn accepted(&self, operation: &str) -> Vec<Value> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation && (200..300).contains(&c.status))
            .map(|c| c.body.clone())
            .collect()
    }

    /// Every CodePipeline job result the stub accepted, success or failure, in order.
    pub fn job_results(&self) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| {
                matches!(
                    c.operation.as_str(),
                    "PutJobSuccessResult" | "PutJobFailureResult"
                ) && c.status == 200
            })
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amzn-errortype", code),
        ],
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response()
}

fn contains(request: &Value, when: &Value) -> bool {
    match when {
        Value::Object(fields) => fields
            .iter()
            .all(|(k, v)| request.get(k).is_some_and(|r| contains(r, v))),
        other => request == other,
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(rest) = uri.path().strip_prefix("/service/") {
        return rpc_v2_cbor(&inner, rest, &headers, body).await;
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (service, operation) = target
        .split_once('.')
        .map(|(s, o)| (s.to_owned(), o.to_owned()))
        .unwrap_or_default();
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    // The query protocol (SNS) names its operation in the form's Action field.
    let (request, operation) = if is_form {
        let fields: serde_json::Map<String, Value> =
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
        let action = fields
            .get("Action")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        (Value::Object(fields), action)
    } else {
        (
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            operation,
        )
    };

    let (response, status, upstream, delay, fixture_answer) = {
        let mut state = inner.lock().unwrap_or_else(|p| p.into_inner());
        let (response, status) = answer(&mut state, &operation, &request);
        let fixture_answer = state
            .fixtures
            .iter()
            .rev()
            .find(|f| f.answers(&operation, &request))
            .map(|f| match &f.answer {
                StubAnswer::Ok(v) => v.clone(),
                StubAnswer::Error { code, .. } => json!({"__type": code}),
            });
        let delay = match state.slow.get_mut(&operation) {
            Some((delay, left)) if *left > 0 => {
                *left -= 1;
                Some(*delay)
            }
            _ => None,
        };
        (
            response,
            status,
            state.upstream.clone(),
            delay,
            fixture_answer,
        )
    };
    let (response, status, logged) = match (response, upstream) {
        (Some(r), _) => (r, status, fixture_answer.unwrap_or(Value::Null)),
        (None, Some(upstream))
            if scans_an_index(&upstream, &headers, &operation, &request).await =>
        {
            // ECR scans image manifests; an image index (manifest list) has no layers to
            // scan, and StartImageScan refuses it (ECR API reference, StartImageScan:
            // UnsupportedImageTypeException). moto would start one.
            (
                aws_error(
                    StatusCode::BAD_REQUEST,
                    "UnsupportedImageTypeException",
                    "The image is of a type that cannot be scanned.",
                ),
                400,
                Value::Null,
            )
        }
        (None, Some(upstream)) => {
            let body = ecs_defaults(&operation, &request).unwrap_or(body);
            let (status, content_type, bytes) = forward(&upstream, &headers, body).await;
            if operation == "RunTask" && status == 200 {
                remember_run_token(&inner, &request, &bytes);
            }
            let logged = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (
                (code, [("content-type", content_type)], bytes).into_response(),
                status,
                logged,
            )
        }
        (None, None) => (
            aws_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                &format!("the stub does not answer {target}"),
            ),
            400,
            Value::Null,
        ),
    };
    crate::call_log::log_call(&headers, &operation, &request, &logged);
    record(
        &inner,
        Call {
            service,
            operation,
            body: request,
            status,
        },
    );
    // Recorded first: the call took effect; only its answer is late.
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

/// The stub's own answer, or `None` to forward the call.
fn answer(state: &mut Inner, operation: &str, request: &Value) -> (Option<Response>, u16) {
    if let Some(left) = state.throttle.get_mut(operation).filter(|n| **n > 0) {
        *left -= 1;
        return (
            Some(aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            )),
            400,
        );
    }
    if let Some(left) = state.server_errors.get_mut(operation).filter(|n| **n > 0) {
        *left -= 1;
        return (
            Some(aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "The request processing has failed because of an unknown error",
            )),
            500,
        );
    }
    let hit = state
        .fixtures
        .iter()
        .rev()
        .find(|f| f.answers(operation, request));
    match hit.map(|f| f.answer.clone()) {
        Some(StubAnswer::Ok(v)) => {
            return (Some((StatusCode::OK, v.to_string()).into_response()), 200);
        }
        Some(StubAnswer::Error { code, message }) => {
            return (
                Some(aws_error(StatusCode::BAD_REQUEST, &code, &message)),
                400,
            );
        }
        None => {}
    }
    if let Some(refusal) = ecs_rules(state, operation, request) {
        return (Some(refusal), 400);
    }
    if operation == "RunTask"
        && let Some((earlier, answer)) =
            run_token_key(request).and_then(|k| state.run_tokens.get(&k))
    {
        // Same token, same parameters: the first answer again, no new task (ECS API
        // reference, RunTask `clientToken`, and "Ensuring idempotency").
        if earlier == request {
            return (Some((StatusCode::OK, answer.clone()).into_response()), 200);
        }
    }
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match operation {
        "PutJobSuccessResult" | "PutJobFailureResult" => {
            let job = field("jobId");
            // A continuation keeps the job open; only a final answer closes it.
            let is_final =
                operation == "PutJobFailureResult" || request.get("continuationToken").is_none();
            if state.finished_jobs.contains(&job) {
                return (
                    Some(aws_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidJobStateException",
                        "job is not in a state to accept a result",
                    )),
                    400,
                );
            }
            if is_final {
                state.finished_jobs.insert(job);
            }
            (Some((StatusCode::OK, "{}").into_response()), 200)
        }
        "GetPipelineState" if state.approvals.knows(&field("name")) => {
            let body = state
                .approvals
                .state(&field("name"))
                .unwrap_or_default()
                .to_string();
            (Some((StatusCode::OK, body).into_response()), 200)
        }
        "PutApprovalResult" if state.approvals.knows(&field("pipelineName")) => {
            match state.approvals.put_result(request, crate::rig::now_secs()) {
                Ok(answer) => (
                    Some((StatusCode::OK, answer.to_string()).into_response()),
                    200,
                ),
                Err(refusal) => (
                    Some(aws_error(
                        StatusCode::BAD_REQUEST,
                        refusal.code,
                        &refusal.message,
                    )),
                    400,
                ),
            }
        }
        "PutLifecycleEventHookExecutionStatus" => {
            let id = field("lifecycleEventHookExecutionId");
            if !state.completed_hooks.insert(id.clone()) {
                return (
                    Some(aws_error(
                        StatusCode::BAD_REQUEST,
                        "LifecycleEventAlreadyCompletedException",
                        "already completed",
                    )),
                    400,
                );
            }
            let body = json!({"lifecycleEventHookExecutionId": id}).to_string();
            (Some((StatusCode::OK, body).into_response()), 200)
        }
        _ => (None, 0),
    }
}

/// Whether `request` is a StartImageScan of an image index, asked of the upstream.
async fn scans_an_index(
    upstream: &str,
    headers: &HeaderMap,
    operation: &str,
    request: &Value,
) -> bool {
    if operation != "StartImageScan" {
        return false;
    }
    let describe = json!({
        "repositoryName": request.get("repositoryName").cloned().unwrap_or(Value::Null),
        "imageIds": [request.get("imageId").cloned().unwrap_or(Value::Null)],
    });
    let mut asking = headers.clone();
    asking.insert(
        "x-amz-target",
        axum::http::HeaderValue::from_static("AmazonEC2ContainerRegistry_V20150921.DescribeImages"),
    );
    let (status, _, bytes) = forward(upstream, &asking, Bytes::from(describe.to_string())).await;
    if status != 200 {
        return false;
    }
    let described: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    described["imageDetails"][0]["imageManifestMediaType"]
        .as_str()
        .is_some_and(|t| {
            t == "application/vnd.oci.image.index.v1+json"
                || t == "application/vnd.docker.distribution.manifest.list.v2+json"
        })
}

/// Defaults ECS applies that moto does not, as the request to forward. ListTasks: "The
/// default status filter is RUNNING" (ECS API reference, ListTasks `desiredStatus`); moto lists
/// stopped tasks too, so a caller that lists by `startedBy` would see every task it ever ran.
fn ecs_defaults(operation: &str, request: &Value) -> Option<Bytes> {
    if operation != "ListTasks" || request.get("desiredStatus").is_some() {
        return None;
    }
    let mut request = request.clone();
    request
        .as_object_mut()?
        .insert("desiredStatus".into(), json!("RUNNING"));
    Some(Bytes::from(request.to_string()))
}

/// The upstream's answer: status, content type and body.
/// Rules ECS enforces that moto does not, from the ECS API reference.
fn ecs_rules(state: &Inner, operation: &str, request: &Value) -> Option<Response> {
    let invalid = |message: &str| {
        Some(aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message,
        ))
    };
    match operation {
        // ListTasks: "When you specify startedBy as the filter, it must be the only filter
        // that you use."
        "ListTasks"
            if request.get("startedBy").is_some()
                && [
                    "family",
                    "containerInstance",
                    "serviceName",
                    "desiredStatus",
                    "launchType",
                ]
                .iter()
                .any(|f| request.get(*f).is_some()) =>
        {
            invalid("startedBy must be the only filter")
        }
        "RunTask" => {
            let token = request.get("clientToken").and_then(Value::as_str);
            // clientToken: up to 64 ASCII characters 33-126.
            if token.is_some_and(|t| {
                t.is_empty() || t.len() > 64 || !t.bytes().all(|b| (33..=126).contains(&b))
            }) {
                return invalid("clientToken must be 1 to 64 ASCII characters 33-126");
            }
            // startedBy: up to 36 letters, numbers, hyphens, forward slashes, underscores.
            let started_by = request.get("startedBy").and_then(Value::as_str);
            if started_by.is_some_and(|s| {
                s.len() > 36
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_'))
            }) {
                return invalid(
                    "startedBy must be up to 36 letters, numbers, hyphens, forward slashes and underscores",
                );
            }
            // The same token with other parameters is a conflict, not a second task.
            match run_token_key(request).and_then(|k| state.run_tokens.get(&k)) {
                Some((earlier, _)) if earlier != request => Some(aws_error(
                    StatusCode::BAD_REQUEST,
                    "ConflictException",
                    "The specified client token has already been used with different parameters",
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

/// One client for every forwarded call: building one reads the trust store each time, which
/// `make bench` would otherwise count against the functions that call through the stub.
fn upstream_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

async fn forward(upstream: &str, headers: &HeaderMap, body: Bytes) -> (u16, String, Bytes) {
    let mut request = upstream_client().post(upstream).body(body);
    request = with_headers(request, headers, &["x-amz-target", "content-type"]);
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/x-amz-json-1.1")
                .to_owned();
            (status, content_type, r.bytes().await.unwrap_or_default())
        }
        Err(e) => (
            502,
            "application/x-amz-json-1.1".into(),
            Bytes::from(
                json!({"__type": "ServiceUnavailableException", "message": e.to_string()})
                    .to_string(),
            ),
        ),
    }
}

fn run_token_key(request: &Value) -> Option<(String, String)> {
    let token = request.get("clientToken")?.as_str()?.to_owned();
    let cluster = request
        .get("cluster")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let cluster = cluster.rsplit('/').next().unwrap_or(cluster).to_owned();
    Some((cluster, token))
}

fn remember_run_token(inner: &Mutex<Inner>, request: &Value, answer: &Bytes) {
    if let Some(key) = run_token_key(request) {
        inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .run_tokens
            .entry(key)
            .or_insert_with(|| (request.clone(), answer.clone()));
    }
}

/// One rpcv2Cbor call: recorded, forwarded to the upstream as awsJson1_0, answered in CBOR.
async fn rpc_v2_cbor(
    inner: &Arc<Mutex<Inner>>,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let (service, operation) = match path.split_once("/operation/") {
        Some((s, o)) => (s.to_owned(), o.to_owned()),
        None => (path.to_owned(), String::new()),
    };
    let request = crate::cbor::decode(&body);
    crate::call_log::log_call(headers, &operation, &request, &Value::Null);
    let upstream = inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .upstream
        .clone();
    let (status, answer) = match upstream {
        Some(upstream) => {
            let mut call = upstream_client()
                .post(upstream)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", format!("{service}.{operation}"))
                .body(request.to_string());
            call = with_headers(call, headers, &[]);
            match call.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    (
                        status,
                        serde_json::from_str(&text).unwrap_or_else(|_| json!({})),
                    )
                }
                Err(e) => (
                    502,
                    json!({"__type": "ServiceUnavailableException", "message": e.to_string()}),
                ),
            }
        }
        None => (
            400,
            json!({"__type": "UnknownOperationException", "message": "the stub has no upstream for rpcv2Cbor calls"}),
        ),
    };
    record(
        inner,
        Call {
            service,
            operation,
            body: request,
            status,
        },
    );
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    (
        code,
        [
            ("content-type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
        crate::cbor::encode(&answer),
    )
        .into_response()
}

fn record(inner: &Mutex<Inner>, call: Call) {
    inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .calls
        .push(call);
}

/// Copies the request's signature headers (moto reads region and service from them) and the
/// `extra` ones onto a forwarded request.
fn with_headers(
    mut request: reqwest::RequestBuilder,
    headers: &HeaderMap,
    extra: &[&str],
) -> reqwest::RequestBuilder {
    for name in ["authorization", "x-amz-date", "x-amz-security-token"]
        .iter()
        .chain(extra)
    {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            request = request.header(*name, v);
        }
    }
    request
}
