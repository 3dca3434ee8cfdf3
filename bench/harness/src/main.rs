//! `make bench`: every function's release bootstrap, the runtime's floor (an echo function
//! built the same way) and a Python peer of pipeline-notifier, each started as Lambda starts
//! it (a loopback Runtime API, the usual environment, endpoints on the local stand-ins) and
//! handed a representative event that takes its real path.
//!
//! Measured, subjects interleaved round-robin so machine noise hits all alike:
//! - cold start: spawn → first `GET /next` (init) and spawn → first response;
//! - warm: invocations of the same event on one process, each the function's own work plus
//!   the stand-ins' latency (reported beside it);
//! - peak memory: `VmHWM` from `/proc/<pid>/status` after the warm run, before exit;
//! - size: the bootstrap and its deflated size (what the deployment zip holds).
//!
//! Then, after the functions, the policy case: `bench-policy` (bench/policy, built with the
//! same release profile) times ecr-scan-gate's policy engine in-process, a 20-rule `POLICY`
//! over 1,000 enhanced findings (target: judged in under 5 ms); its line goes under the table.
//!
//! Usage: bench [--quick] [--cold N] [--warm N] [--out DIR] [--platform-roots] [--env NAME=VALUE]...
//! `--quick` (in `make test`): one cold start and a few warm invocations each, so the harness
//! cannot rot; its numbers mean nothing. `--env` adds a variable to every subject.
//! `bench --soak N` (`make soak`): N invocations of each function on one process.
//!
//! Writes latest.md (the table) and latest.svg (the chart) to DIR (default bench/results); a
//! full run into bench/results also rewrites the table's block in docs/performance.md (as
//! `--soak` of 10,000 or more does soak.md's), and fails, before measuring, if that page lacks
//! the block's markers. `bench --chart-only [--out DIR]` (`make bench-chart`) measures
//! nothing: it redraws DIR/latest.svg from DIR/latest.md.
//!
//! The environment is Lambda's, where neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` is set, so
//! the functions trust their compiled-in roots (shared::http::TrustRoots). `--platform-roots`
//! measures the other case, a person's own trust store: `SSL_CERT_FILE` names this machine's
//! bundle, as it would a file holding a proxy's CA, and the platform verifier parses it at
//! init (about 1.2 ms here, docs/performance.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use standins::ecs::EcsWorld;
use standins::{FunctionProcess, Moto, Outcome, RecordingStub, Rig, RuntimeApi, SlackSink, Target};
use tokio::process::Command;

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);

enum Runtime {
    Binary(PathBuf),
    /// `python -m awslambdaric <handler>` in `dir`.
    Python {
        python: PathBuf,
        dir: PathBuf,
    },
}

struct Subject {
    name: &'static str,
    runtime: Runtime,
    env: Vec<(String, String)>,
    /// The event for invocation `n` (ids vary, so no invocation is a duplicate of another).
    event: Box<dyn Fn(u64) -> Value>,
    /// Size on disk and deflated, when it ships as one file.
    size: Option<(u64, u64)>,
    /// Each invocation launches an ECS task, stopped after it (untimed) so the next launch is
    /// not refused as "still running".
    launches_tasks: bool,
    /// One of the suite's functions, soaked by `make soak` (not a reference subject).
    soaks: bool,
    /// Whether an answer shows the real path was taken: the functions answer a refusal or a
    /// skipped duplicate normally, and a cheap path must not pass for a measurement.
    expect: fn(&Value) -> bool,
}

fn outcome_is(v: &Value, outcome: &str) -> bool {
    v["outcome"] == outcome
}

#[derive(Default)]
struct Samples {
    init: Vec<Duration>,
    first_response: Vec<Duration>,
    warm: Vec<Duration>,
    peak_rss_kib: Option<u64>,
    failures: Vec<String>,
}

fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) if d < Duration::from_millis(10) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        None => "–".into(),
    }
}

/// Peak RSS as the table prints it (and the chart reads it back).
fn peak_rss_text(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "–".into())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The bootstrap's size and its deflated size (level 6, as `zip` stores it, plus the
/// archive's few hundred bytes of headers, which are left out).
fn sizes(path: &Path) -> Option<(u64, u64)> {
    let bytes = std::fs::read(path).ok()?;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(&bytes).ok()?;
    let deflated = encoder.finish().ok()?;
    Some((bytes.len() as u64, deflated.len() as u64))
}

fn spawn(subject: &Subject, api: &RuntimeApi) -> FunctionProcess {
    match &subject.runtime {
        Runtime::Binary(path) => FunctionProcess::spawn(path, api, &subject.env),
        Runtime::Python { python, dir } => {
            let mut cmd = Command::new(python);
            cmd.args(["-m", "awslambdaric", "notifier.handler"])
                .current_dir(dir);
            FunctionProcess::spawn_command(cmd, subject.name, api, &subject.env)
        }
    }
}

fn answered<'a>(subject: &Subject, outcome: &'a Outcome) -> Result<&'a Value, String> {
    match outcome {
        Outcome::Response(v) if (subject.expect)(v) => Ok(v),
        Outcome::Response(v) => Err(format!("not the measured path: {v}")),
        other => Err(format!("{other:?}")),
    }
}

/// One cold start: a new process, its first event.
async fn cold_start(subject: &Subject, n: u64, moto: &Moto, samples: &mut Samples) {
    let api = RuntimeApi::start().await;
    let mut process = spawn(subject, &api);
    let spawned = process.spawned_at();
    let invocation = api
        .invoke(&mut process, &(subject.event)(n), INVOCATION_TIMEOUT)
        .await;
    let done = Instant::now();
    if subject.launches_tasks {
        stop_tasks(moto).await;
    }
    match answered(subject, &invocation.outcome) {
        Ok(_) => {
            samples.first_response.push(done - spawned);
            if let Some(polled) = api.first_poll_at() {
                samples.init.push(polled - spawned);
            }
        }
        Err(e) => samples.failures.push(format!("cold start {n}: {e}")),
    }
    let failed_now = samples.failures.len() == 1 && samples.first_response.is_empty();
    let logs = process.stop().await;
    if failed_now {
        for line in logs.iter().rev().take(5) {
            eprintln!("  {} log: {line}", subject.name);
        }
    }
}

/// `count` invocations on one warm process (after one that warms it), then its peak memory.
async fn warm_run(subject: &Subject, first: u64, count: u64, moto: &Moto, samples: &mut Samples) {
    let api = RuntimeApi::start().await;
    let mut process = spawn(subject, &api);
    // Invocation 0 warms the process and is not counted.
    for n in 0..=count {
        let invocation = api
            .invoke(
                &mut process,
                &(subject.event)(first + n),
                INVOCATION_TIMEOUT,
            )
            .await;
        if subject.launches_tasks {
            stop_tasks(moto).await;
        }
        match answered(subject, &invocation.outcome) {
            Ok(_) if n > 0 => samples.warm.push(invocation.took),
            Ok(_) => {}
            Err(e) => samples.failures.push(format!("warm {n}: {e}")),
        }
    }
    samples.peak_rss_kib = process.peak_rss_kib();
    process.stop().await;
}

/// What a soak saw of one function: its peak memory and open descriptors once warm (after
/// the first tenth of the invocations) and at the end.
struct Soaked {
    name: &'static str,
    invocations: u64,
    rss_kib: (Option<u64>, Option<u64>),
    fds: (Option<usize>, Option<usize>),
    failures: Vec<String>,
}

impl Soaked {
    /// Peak RSS may grow by 10%; descriptors by 10% or two (a pooled connection opened late).
    fn grew(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some(a), Some(b)) = self.rss_kib
            && b * 10 > a * 11
        {
            out.push(format!("{}: peak RSS grew {a} → {b} KiB", self.name));
        }
        if let (Some(a), Some(b)) = self.fds
            && b > a + (a / 10).max(2)
        {
            out.push(format!("{}: open descriptors grew {a} → {b}", self.name));
        }
        out
    }
}

/// `make soak`: `count` invocations of the subject's event on one process.
async fn soak(subject: &Subject, first: u64, count: u64, moto: &Moto) -> Soaked {
    let api = RuntimeApi::start().await;
    let mut process = spawn(subject, &api);
    let checkpoint = (count / 10).max(1);
    let mut soaked = Soaked {
        name: subject.name,
        invocations: count,
        rss_kib: (None, None),
        fds: (None, None),
        failures: Vec::new(),
    };
    for n in 1..=count {
        let invocation = api
            .invoke(
                &mut process,
                &(subject.event)(first + n),
                INVOCATION_TIMEOUT,
            )
            .await;
        if subject.launches_tasks {
            stop_tasks(moto).await;
        }
        if let Err(e) = answered(subject, &invocation.outcome) {
            soaked.failures.push(format!("invocation {n}: {e}"));
        }
        if n == checkpoint {
            soaked.rss_kib.0 = process.peak_rss_kib();
            soaked.fds.0 = process.open_fds();
        }
        if n % 1000 == 0 {
            println!("soak: {} {n}/{count}", subject.name);
        }
    }
    soaked.rss_kib.1 = process.peak_rss_kib();
    soaked.fds.1 = process.open_fds();
    process.stop().await;
    soaked
}

fn soak_table(rows: &[Soaked]) -> String {
    let kib = |v: Option<u64>| v.map(|k| mib(k * 1024)).unwrap_or_else(|| "n/a".into());
    let fds = |v: Option<usize>| v.map(|n| n.to_string()).unwrap_or_else(|| "n/a".into());
    let mut out = String::from(
        "| function | invocations | peak RSS after the first tenth → at the end | open descriptors → at the end | verdict |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let verdict = if !r.failures.is_empty() {
            format!("{} invocation(s) failed", r.failures.len())
        } else if r.grew().is_empty() {
            "flat".into()
        } else {
            r.grew().join("; ")
        };
        out.push_str(&format!(
            "| {} | {} | {} → {} | {} → {} | {verdict} |\n",
            r.name,
            r.invocations,
            kib(r.rss_kib.0),
            kib(r.rss_kib.1),
            fds(r.fds.0),
            fds(r.fds.1)
        ));
    }
    out.push_str("\nPeak RSS is the process's `VmHWM`; growth past 10% (descriptors: past 10% or two) fails the soak.\n");
    out
}

/// Round trips to the stand-ins themselves, so warm numbers can be read net of them.
async fn standin_latency(sink: &SlackSink, moto: &Moto) -> (Option<Duration>, Option<Duration>) {
    let client = reqwest::Client::new();
    let mut slack = Vec::new();
    let mut aws = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        if client
            .post(sink.webhook_url("bench-probe"))
            .json(&json!({"text": "probe"}))
            .send()
            .await
            .is_ok()
        {
            slack.push(t.elapsed());
        }
        let t = Instant::now();
        if client
            .post(moto.endpoint())
            .header("x-amz-target", "AmazonSSM.DescribeParameters")
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body("{}")
            .send()
            .await
            .is_ok()
        {
            aws.push(t.elapsed());
        }
    }
    (percentile(&slack, 50.0), percentile(&aws, 50.0))
}

struct Paths {
    root: PathBuf,
}

impl Paths {
    fn bootstrap(&self, name: &str) -> PathBuf {
        self.root.join("target/lambda").join(name).join("bootstrap")
    }
}

/// The signing secret of the bench's Slack app.
const BENCH_SIGNING_SECRET: &str = "bench-signing-secret-0123456789ab";

async fn subjects(
    paths: &Paths,
    moto: &Moto,
    stub: &RecordingStub,
    sink: &SlackSink,
    target: &Target,
) -> Fallible<Vec<Subject>> {
    let base = |own: &[(&str, String)]| -> Vec<(String, String)> {
        let mut env = moto.env();
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
        env.extend(own.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    };
    let webhook = sink.webhook_url("bench");
    let topic = moto.create_topic("bench-alerts").await;

    // pipeline-notifier and its Python peer: a failed pipeline, looked up in moto's
    // CodePipeline, posted to the sink and published to SNS.
    let execution = moto.pipeline_with_execution("bench-api").await;
    let mut failed = standins::sample_event("pipeline-notifier", "pipeline-failed.json");
    failed["detail"]["pipeline"] = json!("bench-api");
    failed["detail"]["execution-id"] = json!(execution);
    failed["resources"] = json!(["arn:aws:codepipeline:us-east-1:123456789012:bench-api"]);
    let notifier_event = move |n: u64| {
        let mut e = failed.clone();
        e["id"] = json!(format!("6d2f4c0b-1a7e-4f3b-8c51-{n:012}"));
        e
    };
    let notifier_env = base(&[
        ("SLACK_WEBHOOK_URL", webhook.clone()),
        ("SNS_TOPIC_ARN", topic.clone()),
    ]);

    // ecr-scan-gate: a CodePipeline job on a scanned image in moto, reported to the stub.
    use standins::ecr::{basic_finding, create_repository, push_image, scan_result};
    create_repository(moto, "bench-api", false).await;
    push_image(moto, "bench-api", "1.0.0", "bench-build").await;
    scan_result(
        moto,
        "bench-api",
        json!({"imageTag": "1.0.0"}),
        "COMPLETE",
        vec![basic_finding("CVE-2024-0003", "LOW")],
        false,
    )
    .await;
    let mut job = standins::sample_event("ecr-scan-gate", "codepipeline-job.json");
    job["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!(json!({"repository": "bench-api", "tag": "1.0.0"}).to_string());
    let gate_event = move |n: u64| {
        let mut e = job.clone();
        e["CodePipeline.job"]["id"] = json!(format!("bench-gate-job-{n}"));
        e
    };

    // canary-validator: a CodeDeploy hook with an http check on a local target and one look
    // at an alarm in moto, reported to the stub.
    moto.put_alarm("bench-api-5xx").await;
    let answer = standins::sample_event("canary-validator", "api/get-deployment.json");
    stub.fixture(
        "GetDeployment",
        json!({"deploymentId": "d-BENCH0001"}),
        answer,
    );
    let checks = json!([
        {"type": "http", "name": "health", "url": target.url("/healthy"), "attempts": 1},
        {"type": "alarms", "alarms": ["bench-api-5xx"]}
    ]);
    let canary_event = |n: u64| json!({"DeploymentId": "d-BENCH0001", "LifecycleEventHookExecutionId": format!("bench-hook-{n}")});

    // migration-runner: a direct launch of the migration task in moto's ECS. Each launch is
    // stopped right after (untimed) so the next is not refused as "still running".
    let world = EcsWorld::create(moto, "bench").await;
    let world_env = world.env();
    let mut runner_env: Vec<(&str, String)> = world_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    runner_env.push(("AWS_ENDPOINT_URL_CODEPIPELINE", stub.endpoint()));
    // Through the stub, which applies ECS's ListTasks default (RUNNING) that moto lacks:
    // otherwise every launch lists every task stopped before it, and the runner's cost
    // grows with the run.
    runner_env.push(("AWS_ENDPOINT_URL_ECS", stub.endpoint()));

    // pipeline-approvals: an approver's click, signed as Slack signs it (the signing secret
    // read from moto's SSM), on an approval the stub's CodePipeline holds: verify, look up the
    // token, approve, answer through response_url. Each click is on an approval of its own.
    moto.aws_json(
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/bench/slack/signing-secret", "Value": BENCH_SIGNING_SECRET, "Type": "SecureString"}),
    )
    .await;
    let approvals_stub = stub.clone();
    let response_url = sink.response_url("bench");
    let approval_click = move |n: u64| {
        let execution = format!("3f2a0c1e-7b4d-4c55-9a7e-{n:012x}");
        approvals_stub.approval_waits("bench-api", "Approve", "ProductionGate", &execution);
        let value = shared::approval::ApprovalRef {
            pipeline: "bench-api".into(),
            stage: "Approve".into(),
            action: "ProductionGate".into(),
            execution,
        }
        .to_value();
        let payload = standins::slack_signer::block_actions(
            "U012AB3CD",
            shared::approval::APPROVE,
            &value,
            &response_url,
            standins::slack_sink::CHANNEL,
            "1795000000.000100",
        );
        standins::slack_signer::function_url_event(
            &standins::slack_signer::form_body(&payload),
            standins::slack_signer::Delivery {
                secret: Some(BENCH_SIGNING_SECRET),
                at: standins::rig::now_secs(),
                base64: false,
            },
        )
    };

    let mut list = vec![
        Subject {
            name: "floor (lambda_runtime echo)",
            runtime: Runtime::Binary(paths.bootstrap("bench-floor")),
            env: base(&[]),
            event: Box::new(notifier_event.clone()),
            size: sizes(&paths.bootstrap("bench-floor")),
            expect: |v| v.is_object(),
            launches_tasks: false,
            soaks: false,
        },
        Subject {
            name: "pipeline-notifier",
            runtime: Runtime::Binary(paths.bootstrap("pipeline-notifier")),
            env: notifier_env.clone(),
            event: Box::new(notifier_event.clone()),
            size: sizes(&paths.bootstrap("pipeline-notifier")),
            expect: |v| outcome_is(v, "notified"),
            launches_tasks: false,
            soaks: true,
        },
        Subject {
            name: "ecr-scan-gate",
            runtime: Runtime::Binary(paths.bootstrap("ecr-scan-gate")),
            env: base(&[
                ("AWS_ENDPOINT_URL_CODEPIPELINE", stub.endpoint()),
                ("SLACK_WEBHOOK_URL", webhook.clone()),
            ]),
            event: Box::new(gate_event),
            size: sizes(&paths.bootstrap("ecr-scan-gate")),
            expect: |v| outcome_is(v, "reported") && v["verdict"] == "PASS",
            launches_tasks: false,
            soaks: true,
        },
        Subject {
            name: "canary-validator",
            runtime: Runtime::Binary(paths.bootstrap("canary-validator")),
            env: base(&[
                ("AWS_ENDPOINT_URL_CODEDEPLOY", stub.endpoint()),
                ("AWS_ENDPOINT_URL_CLOUDWATCH", stub.endpoint()),
                ("HOOK", "AfterAllowTraffic".into()),
                ("CHECKS", checks.to_string()),
                ("REPORT_MARGIN", "2s".into()),
                ("SLACK_WEBHOOK_URL", webhook.clone()),
            ]),
            event: Box::new(canary_event),
            size: sizes(&paths.bootstrap("canary-validator")),
            expect: |v| outcome_is(v, "reported") && v["status"] == "Succeeded",
            launches_tasks: false,
            soaks: true,
        },
        Subject {
            name: "pipeline-approvals",
            runtime: Runtime::Binary(paths.bootstrap("pipeline-approvals")),
            env: base(&[
                ("AWS_ENDPOINT_URL_CODEPIPELINE", stub.endpoint()),
                (
                    "SLACK_SIGNING_SECRET",
                    "ssm:/bench/slack/signing-secret".into(),
                ),
                ("APPROVERS", json!({"bench-*": ["U012AB3CD"]}).to_string()),
                ("SLACK_API_URL", sink.api_url()),
            ]),
            event: Box::new(approval_click),
            size: sizes(&paths.bootstrap("pipeline-approvals")),
            // Not just a 200: a non-approver or a duplicate answers 200 too, on a cheaper path.
            expect: |v| v["headers"]["x-approvals-outcome"] == "approved",
            launches_tasks: false,
            soaks: true,
        },
        Subject {
            name: "migration-runner",
            runtime: Runtime::Binary(paths.bootstrap("migration-runner")),
            env: base(&runner_env),
            event: Box::new(|_| json!({})),
            size: sizes(&paths.bootstrap("migration-runner")),
            expect: |v| outcome_is(v, "launched"),
            launches_tasks: true,
            soaks: true,
        },
    ];
    let python = paths.root.join("bench/.venv/bin/python");
    if python.exists() {
        list.push(Subject {
            name: "Python peer (awslambdaric + boto3 + urllib)",
            runtime: Runtime::Python {
                python,
                dir: paths.root.join("bench/python"),
            },
            env: notifier_env,
            event: Box::new(notifier_event),
            size: std::fs::metadata(paths.root.join("bench/python/notifier.py"))
                .ok()
                .map(|m| (m.len(), m.len())),
            expect: |v| v["posted"] == true,
            launches_tasks: false,
            soaks: false,
        });
    } else {
        return Err("no bench/.venv for the Python peer: run make bench (it creates it)".into());
    }
    Ok(list)
}

/// Stops every task the runner launched, so its next launch is not refused as busy.
async fn stop_tasks(moto: &Moto) {
    let listed = moto
        .aws_json(
            "ecs",
            "AmazonEC2ContainerServiceV20141113.ListTasks",
            &json!({"cluster": "bench", "desiredStatus": "RUNNING"}),
        )
        .await;
    for task in listed["taskArns"].as_array().into_iter().flatten() {
        moto.aws_json(
            "ecs",
            "AmazonEC2ContainerServiceV20141113.StopTask",
            &json!({"cluster": "bench", "task": task, "reason": "bench"}),
        )
        .await;
    }
}

struct Row {
    name: &'static str,
    samples: Samples,
    size: Option<(u64, u64)>,
}

fn table(
    rows: &[Row],
    cold: usize,
    warm: usize,
    latency: (Option<Duration>, Option<Duration>),
    roots: &str,
) -> String {
    let mut out = String::new();
    out.push_str(TABLE_HEADER);
    out.push_str("\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        let s = &r.samples;
        let (binary, zip) = match r.size {
            Some((b, z)) if r.name.starts_with("Python") => {
                (format!("{b} B (script)"), format!("{z} B"))
            }
            Some((b, z)) => (mib(b), mib(z)),
            None => ("–".into(), "–".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {} / {} / {} | {} / {} | {} | {} | {} |\n",
            r.name,
            ms(percentile(&s.init, 50.0)),
            ms(s.first_response.iter().min().copied()),
            ms(percentile(&s.first_response, 50.0)),
            ms(percentile(&s.first_response, 90.0)),
            ms(percentile(&s.warm, 50.0)),
            ms(percentile(&s.warm, 99.0)),
            peak_rss_text(s.peak_rss_kib),
            binary,
            zip,
        ));
    }
    let p50 = |name: &str| {
        rows.iter()
            .find(|r| r.name.starts_with(name))
            .and_then(|r| percentile(&r.samples.first_response, 50.0))
    };
    let rss = |name: &str| {
        rows.iter()
            .find(|r| r.name.starts_with(name))
            .and_then(|r| r.samples.peak_rss_kib)
    };
    out.push_str(&format!(
        "\n{cold} cold starts per subject, interleaved round-robin; then {warm} warm invocations on one process each. Stand-in round trips (p50): Slack sink {}, moto {}; first-response and warm times include each subject's own calls to them. {roots}\n",
        ms(latency.0),
        ms(latency.1)
    ));
    out.push_str(&ratio_line(rows, "\nInit p50 ÷ floor:", |s| &s.init));
    out.push_str(&ratio_line(
        rows,
        "First response p50 ÷ floor (includes each function's own calls):",
        |s| &s.first_response,
    ));
    if let (Some(py), Some(rust)) = (p50("Python"), p50("pipeline-notifier")) {
        out.push_str(&format!(
            "Python peer ÷ pipeline-notifier: cold start {:.1}×",
            py.as_secs_f64() / rust.as_secs_f64()
        ));
        if let (Some(a), Some(b)) = (rss("Python"), rss("pipeline-notifier")) {
            out.push_str(&format!(", peak memory {:.1}×", a as f64 / b as f64));
        }
        out.push('\n');
    }
    if let Some(approvals) = rows.iter().find(|r| r.name == "pipeline-approvals") {
        out.push_str(&approvals_line(approvals));
    }
    for r in rows.iter().filter(|r| !r.samples.failures.is_empty()) {
        out.push_str(&format!(
            "\n{}: {} failed invocation(s), e.g. {}\n",
            r.name,
            r.samples.failures.len(),
            r.samples.failures[0]
        ));
    }
    out
}

/// Each function's p50 of `measure` over the floor's, on one line (empty without a floor): of
/// the p50s as printed, so the ratios are those of the table's numbers (and the chart's).
fn ratio_line(rows: &[Row], label: &str, measure: fn(&Samples) -> &[Duration]) -> String {
    let p50 = |r: &Row| {
        printed(&ms(percentile(measure(&r.samples), 50.0)), "ms")
            .ok()
            .flatten()
            .filter(|v| *v > 0.0)
    };
    let Some(floor) = rows
        .iter()
        .find(|r| r.name.starts_with("floor"))
        .and_then(p50)
    else {
        return String::new();
    };
    let mut line = label.to_owned();
    for r in rows
        .iter()
        .filter(|r| !r.name.starts_with("floor") && !r.name.starts_with("Python"))
    {
        if let Some(v) = p50(r) {
            line.push_str(&format!(" {} {:.1}×;", r.name, v / floor));
        }
    }
    line.push('\n');
    line
}

/// The table's header; `--chart-only` finds the table in a latest.md by it.
const TABLE_HEADER: &str = "| subject | init p50 | first response min / p50 / p90 | warm p50 / p99 | peak RSS | binary | zip |";

/// Where a full run's table goes (and a long soak's): the performance page, between markers
/// `<!-- {name}: bench/results/{file} -->` and `<!-- /{name} -->`.
const PERFORMANCE_DOC: &str = "docs/performance.md";

/// What the chart draws of one subject: the numbers the table prints (init p50, first
/// response p50, peak RSS), read back from their printed form, so the chart a run draws and
/// the one `--chart-only` redraws from its latest.md are the same file.
#[derive(Debug, Clone, PartialEq)]
struct ChartRow {
    name: String,
    init_ms: Option<f64>,
    first_response_ms: Option<f64>,
    peak_rss_mib: Option<f64>,
}

/// "2.52 ms" → 2.52, "47.9 MiB" → 47.9, "–" → none; anything else is an error.
fn printed(cell: &str, unit: &str) -> Result<Option<f64>, String> {
    let cell = cell.trim();
    if cell == "–" {
        return Ok(None);
    }
    cell.strip_suffix(unit)
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Some)
        .ok_or_else(|| format!("`{cell}` is not a number of {unit}"))
}

fn chart_rows(rows: &[Row]) -> Vec<ChartRow> {
    rows.iter()
        .map(|r| {
            let s = &r.samples;
            let ms_p50 = |v: &[Duration]| printed(&ms(percentile(v, 50.0)), "ms").ok().flatten();
            ChartRow {
                name: r.name.to_owned(),
                init_ms: ms_p50(&s.init),
                first_response_ms: ms_p50(&s.first_response),
                peak_rss_mib: printed(&peak_rss_text(s.peak_rss_kib), "MiB")
                    .ok()
                    .flatten(),
            }
        })
        .collect()
}

/// The table in a latest.md, as chart rows (`--chart-only`).
fn parse_table(md: &str) -> Result<Vec<ChartRow>, String> {
    let mut lines = md.lines().skip_while(|l| l.trim() != TABLE_HEADER);
    if lines.next().is_none() {
        return Err(format!("no results table (its header is `{TABLE_HEADER}`)"));
    }
    if !lines.next().is_some_and(|l| l.starts_with("|---")) {
        return Err("the results table's header is not followed by |---|".into());
    }
    let mut rows = Vec::new();
    for line in lines.take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let [name, init, first, _warm, peak, ..] = cells[..] else {
            return Err(format!("a row with fewer than five cells: {line}"));
        };
        let Some(first_p50) = first.split(" / ").nth(1) else {
            return Err(format!("{name}: no p50 in `{first}`"));
        };
        let cell = |text: &str, unit: &str| printed(text, unit).map_err(|e| format!("{name}: {e}"));
        rows.push(ChartRow {
            name: name.to_owned(),
            init_ms: cell(init, "ms")?,
            first_response_ms: cell(first_p50, "ms")?,
            peak_rss_mib: cell(peak, "MiB")?,
        });
    }
    if rows.is_empty() {
        return Err("the results table has no rows".into());
    }
    Ok(rows)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Floor,
    Function,
    Peer,
}

fn kind(name: &str) -> Kind {
    if name.starts_with("floor") {
        Kind::Floor
    } else if name.starts_with("Python") {
        Kind::Peer
    } else {
        Kind::Function
    }
}

/// "floor (lambda_runtime echo)" → ("floor", Some("lambda_runtime echo")).
fn short_name(name: &str) -> (&str, Option<&str>) {
    match name.split_once(" (") {
        Some((short, rest)) => (short, Some(rest.strip_suffix(')').unwrap_or(rest))),
        None => (name, None),
    }
}

/// A value as the table prints it: milliseconds under 10 to two decimals, the rest to one.
fn value_text(v: f64, unit: &str) -> String {
    if unit == "ms" && v < 10.0 {
        format!("{v:.2} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

fn times(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1}×")
    } else {
        format!("{x:.0}×")
    }
}

struct Measure {
    title: &'static str,
    unit: &'static str,
    value: fn(&ChartRow) -> Option<f64>,
}

const MEASURES: [Measure; 3] = [
    Measure {
        title: "Init p50: spawn to the first GET /next",
        unit: "ms",
        value: |r| r.init_ms,
    },
    Measure {
        title: "First response p50: spawn to the first answer, the function's own calls included",
        unit: "ms",
        value: |r| r.first_response_ms,
    },
    Measure {
        title: "Peak memory: VmHWM after the warm run",
        unit: "MiB",
        value: |r| r.peak_rss_mib,
    },
];

/// A bar as drawn: its row, its length along the panel's axis, the text beside it.
#[derive(Debug)]
struct Bar {
    row: usize,
    width: f64,
    fill: &'static str,
    label: String,
}

#[derive(Debug)]
struct Panel {
    caption: &'static str,
    x0: f64,
    width: f64,
    /// Gridlines with a label (x from the panel's left), then gridlines without.
    ticks: Vec<(f64, String)>,
    minor: Vec<f64>,
    axis_label: String,
    bars: Vec<Bar>,
    /// Text in a row where no bar is drawn: off this panel's scale, or no value.
    notes: Vec<(usize, String)>,
}

const CHART_W: f64 = 900.0;
const NAME_END: f64 = 130.0;
const RUST_X: f64 = 140.0;
const RUST_W: f64 = 280.0;
const LOG_X: f64 = 570.0;
const LOG_W: f64 = 200.0;
const ROW_H: f64 = 22.0;

fn fill(kind: Kind) -> &'static str {
    match kind {
        Kind::Floor => "#8c8c8c",
        Kind::Function => "#3e6fb0",
        Kind::Peer => "#c0504d",
    }
}

/// A linear axis from 0 with 3 to 12 steps of 1, 2 or 5 × 10ⁿ, the tightest over `max`.
fn linear_axis(max: f64) -> (f64, usize) {
    let mut best: Option<(f64, usize)> = None;
    for exp in -3..=6 {
        for m in [1.0, 2.0, 5.0] {
            let step = m * 10f64.powi(exp);
            let n = (max / step - 1e-9).ceil().max(1.0) as usize;
            if (3..=12).contains(&n)
                && best.is_none_or(|(s, k)| (n as f64 * step) < s * k as f64 - 1e-12)
            {
                best = Some((step, n));
            }
        }
    }
    best.unwrap_or((max.max(1e-9), 1))
}

fn tick_text(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// The floor and the functions on a linear axis from 0, each bar with its value and its
/// multiple of the floor; the peer's value written in its row, off this scale.
fn rust_panel(rows: &[ChartRow], m: &Measure) -> Panel {
    let floor = rows
        .iter()
        .find(|r| kind(&r.name) == Kind::Floor)
        .and_then(m.value);
    let max = rows
        .iter()
        .filter(|r| kind(&r.name) != Kind::Peer)
        .filter_map(m.value)
        .fold(0.0_f64, f64::max);
    let (step, n) = linear_axis(max);
    let top = step * n as f64;
    let mut panel = Panel {
        caption: "floor and functions · linear scale from 0",
        x0: RUST_X,
        width: RUST_W,
        ticks: (0..=n)
            .map(|i| {
                let v = step * i as f64;
                (v / top * RUST_W, tick_text(v, step))
            })
            .collect(),
        minor: Vec::new(),
        axis_label: m.unit.to_owned(),
        bars: Vec::new(),
        notes: Vec::new(),
    };
    for (row, r) in rows.iter().enumerate() {
        let k = kind(&r.name);
        match (m.value)(r) {
            None => panel.notes.push((row, "no value".into())),
            Some(v) if k == Kind::Peer => panel
                .notes
                .push((row, format!("{}, off this scale →", value_text(v, m.unit)))),
            Some(v) => {
                let label = match floor {
                    Some(f) if k != Kind::Floor && f > 0.0 => {
                        format!("{} · {}", value_text(v, m.unit), times(v / f))
                    }
                    _ => value_text(v, m.unit),
                };
                panel.bars.push(Bar {
                    row,
                    width: (v / top * RUST_W).max(1.0),
                    fill: fill(k),
                    label,
                });
            }
        }
    }
    panel
}

/// Every subject, the peer included, on a log axis of whole decades; bars start at the
/// lowest decade. The peer's bar also says its multiple of the floor.
fn log_panel(rows: &[ChartRow], m: &Measure) -> Panel {
    let floor = rows
        .iter()
        .find(|r| kind(&r.name) == Kind::Floor)
        .and_then(m.value);
    let values: Vec<f64> = rows
        .iter()
        .filter_map(m.value)
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .fold(f64::INFINITY, |a, v| a.min(v.log10()))
        .floor();
    let hi = values
        .iter()
        .fold(f64::NEG_INFINITY, |a, v| a.max(v.log10()))
        .ceil();
    let (lo, hi) = if values.is_empty() {
        (0.0, 1.0)
    } else {
        (lo, hi.max(lo + 1.0))
    };
    let x = |v: f64| (v.log10() - lo) / (hi - lo) * LOG_W;
    let decades = (lo as i32)..=(hi as i32);
    let mut panel = Panel {
        caption: "with the Python peer · log scale",
        x0: LOG_X,
        width: LOG_W,
        ticks: decades
            .clone()
            .map(|e| {
                let v = 10f64.powi(e);
                (x(v), tick_text(v, v))
            })
            .collect(),
        minor: decades
            .filter(|e| *e < hi as i32)
            .flat_map(|e| (2..=9).map(move |k| f64::from(k) * 10f64.powi(e)))
            .map(x)
            .collect(),
        axis_label: format!("{} (log)", m.unit),
        bars: Vec::new(),
        notes: Vec::new(),
    };
    for (row, r) in rows.iter().enumerate() {
        let k = kind(&r.name);
        match (m.value)(r) {
            Some(v) if v > 0.0 => {
                let label = match floor {
                    Some(f) if k == Kind::Peer && f > 0.0 => {
                        format!("{} · {}", value_text(v, m.unit), times(v / f))
                    }
                    _ => value_text(v, m.unit),
                };
                panel.bars.push(Bar {
                    row,
                    width: x(v).max(1.0),
                    fill: fill(k),
                    label,
                });
            }
            Some(v) => panel.notes.push((row, value_text(v, m.unit))),
            None => panel.notes.push((row, "no value".into())),
        }
    }
    panel
}

/// Per measure, the Rust-only panel and the one with the peer.
fn chart_layout(rows: &[ChartRow]) -> Vec<(&'static Measure, Panel, Panel)> {
    MEASURES
        .iter()
        .map(|m| (m, rust_panel(rows, m), log_panel(rows, m)))
        .collect()
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `make bench`'s chart (bench/results/latest.svg): for init, first response and peak
/// memory, the floor and the four functions on a linear scale of their own (each bar with its
/// value and its multiple of the floor), beside every subject with the Python peer on a log
/// scale. A function of the rows alone: the same rows draw the same bytes.
fn chart(rows: &[ChartRow]) -> String {
    let layout = chart_layout(rows);
    let block_h = 42.0 + ROW_H * rows.len() as f64 + 36.0;
    let top = 99.0;
    let height = top + block_h * layout.len() as f64 + 10.0;
    let details: Vec<String> = rows
        .iter()
        .filter_map(|r| match short_name(&r.name) {
            (short, Some(detail)) => Some(format!("{short}: {detail}")),
            _ => None,
        })
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_W}\" height=\"{height:.0}\" viewBox=\"0 0 {CHART_W} {height:.0}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\" fill=\"#222\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let title = "Cold start and memory: each function against the floor";
    svg.push_str(&format!(
        "<title>{title}</title>\n<text x=\"20\" y=\"28\" font-size=\"16\" font-weight=\"bold\">{title}</text>\n"
    ));
    let lines = [
        "Left: the floor (the lambda_runtime minimum) and the four functions, linear from 0; each bar says its value and its multiple of the floor.".to_owned(),
        "Right: the same beside the Python peer, on a log scale (each labelled gridline 10× the last).".to_owned(),
        format!("{}.", details.join("; ")),
    ];
    for (i, line) in lines.iter().enumerate() {
        svg.push_str(&format!(
            "<text x=\"20\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>\n",
            48 + 15 * i,
            esc(line)
        ));
    }
    for (b, (measure, rust, log)) in layout.iter().enumerate() {
        let y0 = top + b as f64 * block_h;
        let rows_top = y0 + 42.0;
        let rows_bottom = rows_top + ROW_H * rows.len() as f64;
        svg.push_str(&format!(
            "<text x=\"20\" y=\"{:.1}\" font-size=\"13\" font-weight=\"bold\">{} ({})</text>\n",
            y0 + 16.0,
            esc(measure.title),
            measure.unit
        ));
        for (row, r) in rows.iter().enumerate() {
            svg.push_str(&format!(
                "<text x=\"{NAME_END}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                rows_top + row as f64 * ROW_H + 15.0,
                esc(short_name(&r.name).0)
            ));
        }
        for panel in [rust, log] {
            let x0 = panel.x0;
            svg.push_str(&format!(
                "<text x=\"{x0}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\">{}</text>\n",
                y0 + 34.0,
                panel.caption
            ));
            for x in &panel.minor {
                svg.push_str(&format!(
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{rows_top:.1}\" y2=\"{rows_bottom:.1}\" stroke=\"#f0f0f0\"/>\n",
                    x0 + x
                ));
            }
            for (x, _) in &panel.ticks {
                svg.push_str(&format!(
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{rows_top:.1}\" y2=\"{1:.1}\" stroke=\"#d0d0d0\"/>\n",
                    x0 + x,
                    rows_bottom + 4.0
                ));
            }
            svg.push_str(&format!(
                "<line x1=\"{x0}\" x2=\"{:.1}\" y1=\"{rows_bottom:.1}\" y2=\"{rows_bottom:.1}\" stroke=\"#888\"/>\n",
                x0 + panel.width
            ));
            for (x, text) in &panel.ticks {
                svg.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\" text-anchor=\"middle\">{text}</text>\n",
                    x0 + x,
                    rows_bottom + 15.0
                ));
            }
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\">{}</text>\n",
                x0 + panel.width + 18.0,
                rows_bottom + 15.0,
                panel.axis_label
            ));
            for bar in &panel.bars {
                let y = rows_top + bar.row as f64 * ROW_H + 3.0;
                svg.push_str(&format!(
                    "<rect x=\"{x0}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
                    bar.width,
                    bar.fill,
                    x0 + bar.width + 5.0,
                    y + 12.0,
                    esc(&bar.label)
                ));
            }
            for (row, text) in &panel.notes {
                svg.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-style=\"italic\" fill=\"#777\">{}</text>\n",
                    x0 + 5.0,
                    rows_top + *row as f64 * ROW_H + 15.0,
                    esc(text)
                ));
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// What `bench-policy` prints: one JSON line, times in microseconds.
#[derive(Debug, Clone, PartialEq)]
struct PolicyCase {
    rules: u64,
    findings: u64,
    parse_us_p50: f64,
    evaluate_us_p50: f64,
    evaluate_us_p99: f64,
}

/// The policy case's target (issue 32): the whole policy judged in under 5 ms.
const POLICY_TARGET: Duration = Duration::from_millis(5);

/// The last line `bench-policy` printed, read as its result; anything else is an error that
/// says what was wrong.
fn parse_policy_case(stdout: &str) -> Result<PolicyCase, String> {
    let Some(line) = stdout.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Err("it printed nothing".into());
    };
    let v: Value = serde_json::from_str(line)
        .map_err(|e| format!("its output is not a JSON line ({e}): {line}"))?;
    let count = |key: &str| {
        v[key]
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("no positive count `{key}` in {line}"))
    };
    let micros = |key: &str| {
        v[key]
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| format!("no time `{key}` in {line}"))
    };
    Ok(PolicyCase {
        rules: count("rules")?,
        findings: count("findings")?,
        parse_us_p50: micros("parse_us_p50")?,
        evaluate_us_p50: micros("evaluate_us_p50")?,
        evaluate_us_p99: micros("evaluate_us_p99")?,
    })
}

/// 1000 → "1,000".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Slack wants the HTTP answer to a click within 3 seconds, a cold start included (issue 30):
/// the approvals function's cold start through a signed click, answered, under 100 ms.
const APPROVALS_TARGET: Duration = Duration::from_millis(100);

/// The approvals line under the table: read, met or missed, not enforced.
fn approvals_line(row: &Row) -> String {
    let first = &row.samples.first_response;
    let (p50, p90) = (percentile(first, 50.0), percentile(first, 90.0));
    let verdict = match p90 {
        Some(t) if t < APPROVALS_TARGET => "target < 100 ms: met",
        Some(_) => "target < 100 ms: missed at p90",
        None => "no answers",
    };
    format!(
        "pipeline-approvals: a Slack-signed click on a cold start (verify, GetPipelineState, PutApprovalResult, response_url) answered in p50 {}, p90 {} ({verdict}; Slack waits 3 s).\n",
        ms(p50),
        ms(p90)
    )
}

/// The policy case's line under the table. A quick run says its numbers mean nothing, and
/// nothing is asserted either way: the target is read, met or missed, not enforced.
fn policy_line(case: &PolicyCase, quick: bool) -> String {
    let us = |t: f64| Duration::from_secs_f64(t / 1e6);
    let (p50, p99) = (us(case.evaluate_us_p50), us(case.evaluate_us_p99));
    let verdict = if quick {
        "quick mode: the numbers mean nothing"
    } else if p99 < POLICY_TARGET {
        "target < 5 ms: met"
    } else if p50 < POLICY_TARGET {
        "target < 5 ms: met at p50, missed at p99"
    } else {
        "target < 5 ms: missed"
    };
    let parse = if case.parse_us_p50 < 10.0 {
        format!("{:.1} µs", case.parse_us_p50)
    } else {
        format!("{:.0} µs", case.parse_us_p50)
    };
    format!(
        "ecr-scan-gate policy (bench/policy, in-process): {} rules over {} enhanced findings: evaluate p50 {}, p99 {} ({verdict}); parse p50 {parse}, once per refresh of POLICY, not per finding.",
        case.rules,
        thousands(case.findings),
        ms(Some(p50)),
        ms(Some(p99)),
    )
}

/// Runs the policy case's release binary (`--quick` in quick mode) and reads its line.
async fn policy_case(path: &Path, quick: bool) -> Fallible<PolicyCase> {
    let mut cmd = Command::new(path);
    if quick {
        cmd.arg("--quick");
    }
    let output = cmd
        .output()
        .await
        .map_err(|e| format!("the policy case: cannot run {}: {e}", path.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the policy case: {} failed ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    parse_policy_case(&stdout)
        .map_err(|e| format!("the policy case: {}: {e}", path.display()).into())
}

/// Rewrites `doc` (relative to `root`) between `<!-- {name}: bench/results/{file} -->` and
/// `<!-- /{name} -->`; with `report` none, only checks that the markers are there (before a
/// run, so a long one does not end in this error).
fn update_block(
    root: &Path,
    doc: &str,
    name: &str,
    file: &str,
    report: Option<&str>,
) -> Fallible<()> {
    let start = format!("<!-- {name}: bench/results/{file} -->");
    let end = format!("<!-- /{name} -->");
    let missing = |why: String| -> Box<dyn std::error::Error> {
        format!(
            "{doc} {why}: the harness writes bench/results/{file} there, between the markers `{start}` (on a line of its own) and `{end}`"
        )
        .into()
    };
    let path = root.join(doc);
    let text =
        std::fs::read_to_string(&path).map_err(|e| missing(format!("cannot be read ({e})")))?;
    let start = format!("{start}\n");
    let Some(a) = text.find(&start) else {
        return Err(missing("has no start marker".into()));
    };
    let Some(b) = text[a..].find(&end).map(|b| a + b) else {
        return Err(missing("has no end marker after its start marker".into()));
    };
    if let Some(report) = report {
        let updated = format!("{}{start}{}\n{}", &text[..a], report.trim(), &text[b..]);
        std::fs::write(&path, updated)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Fallible<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let root = standins::workspace_root();
    let out_dir = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("bench/results"));
    let number = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse::<usize>().ok())
    };
    let (cold, warm) = if quick { (1, 3) } else { (30, 500) };
    let (cold, warm) = (
        number("--cold").unwrap_or(cold),
        number("--warm").unwrap_or(warm),
    );
    let extra_env: Vec<(String, String)> = args
        .windows(2)
        .filter(|w| w[0] == "--env")
        .filter_map(|w| w[1].split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if args.iter().any(|a| a == "--chart-only") {
        let md = out_dir.join("latest.md");
        let text = std::fs::read_to_string(&md)
            .map_err(|e| format!("--chart-only: cannot read {}: {e}", md.display()))?;
        let rows = parse_table(&text).map_err(|e| format!("{}: {e}", md.display()))?;
        let svg = out_dir.join("latest.svg");
        std::fs::write(&svg, chart(&rows))?;
        println!("bench: drew {} from {}", svg.display(), md.display());
        return Ok(());
    }
    // A full run (a long soak) rewrites its block in the performance page: the markers are
    // looked for now, not after the run.
    let results = out_dir == root.join("bench/results");
    let soak_doc = results && number("--soak").is_some_and(|n| n >= 10_000);
    let bench_doc = results && !quick && number("--soak").is_none();
    if soak_doc {
        update_block(&root, PERFORMANCE_DOC, "soak results", "soak.md", None)?;
    }
    if bench_doc {
        update_block(&root, PERFORMANCE_DOC, "bench results", "latest.md", None)?;
    }
    let paths = Paths { root: root.clone() };

    let Rig {
        moto, stub, sink, ..
    } = Rig::start().await;
    let target = Target::start().await;
    let mut subjects = subjects(&paths, &moto, &stub, &sink, &target).await?;
    let bundle = [
        ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
        ("SSL_CERT_DIR", "/nonexistent"),
    ];
    let platform_roots = args.iter().any(|a| a == "--platform-roots");
    if platform_roots && !Path::new(bundle[0].1).exists() {
        return Err(format!("--platform-roots: no bundle at {}", bundle[0].1).into());
    }
    for s in &mut subjects {
        if platform_roots {
            s.env
                .extend(bundle.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        }
        s.env.extend(extra_env.iter().cloned());
    }
    for s in &subjects {
        if let Runtime::Binary(p) = &s.runtime
            && !p.exists()
        {
            return Err(format!(
                "{} is missing: run make build and build bench-floor first",
                p.display()
            )
            .into());
        }
    }
    let policy_bin = paths.bootstrap("bench-policy");
    if number("--soak").is_none() && !policy_bin.exists() {
        return Err(format!(
            "{} is missing: the policy case's binary; make bench-subjects builds it (cargo lambda build --release --bin bench-policy)",
            policy_bin.display()
        )
        .into());
    }
    if let Some(count) = number("--soak") {
        // As deployed: every side effect claimed in the idempotency table (the rig's).
        for s in &mut subjects {
            s.env
                .push(("IDEMPOTENCY_TABLE".into(), standins::rig::TABLE.into()));
        }
        let mut rows = Vec::new();
        let mut n = 0u64;
        for subject in subjects.iter().filter(|s| s.soaks) {
            println!("soak: {} for {count} invocations", subject.name);
            rows.push(soak(subject, n, count as u64, &moto).await);
            n += count as u64 + 1;
        }
        let report = soak_table(&rows);
        std::fs::create_dir_all(&out_dir)?;
        std::fs::write(out_dir.join("soak.md"), &report)?;
        if soak_doc {
            update_block(
                &root,
                PERFORMANCE_DOC,
                "soak results",
                "soak.md",
                Some(&report),
            )?;
        }
        println!("\n{report}");
        let problems: Vec<String> = rows
            .iter()
            .flat_map(|r| {
                r.grew()
                    .into_iter()
                    .chain(r.failures.iter().take(3).cloned())
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems.join("\n").into());
        }
        return Ok(());
    }
    println!(
        "bench: {} subjects, {cold} cold start(s) and {warm} warm invocation(s) each{}",
        subjects.len(),
        if quick {
            " (quick mode: the numbers mean nothing)"
        } else {
            ""
        }
    );
    let mut samples: Vec<Samples> = subjects.iter().map(|_| Samples::default()).collect();
    let mut n = 0u64;
    for round in 0..cold {
        for (s, subject) in subjects.iter().enumerate() {
            n += 1;
            cold_start(subject, n, &moto, &mut samples[s]).await;
        }
        if !quick && (round + 1) % 10 == 0 {
            println!("bench: {} cold rounds done", round + 1);
        }
    }
    for (s, subject) in subjects.iter().enumerate() {
        warm_run(subject, n + 1, warm as u64, &moto, &mut samples[s]).await;
        n += warm as u64 + 1;
    }
    let latency = standin_latency(&sink, &moto).await;
    let rows: Vec<Row> = subjects
        .iter()
        .zip(samples)
        .map(|(s, samples)| Row {
            name: s.name,
            samples,
            size: s.size,
        })
        .collect();
    let roots = if platform_roots {
        "Trust store: SSL_CERT_FILE names this machine's bundle, parsed at init (--platform-roots)."
    } else {
        "Trust store: none named, as on Lambda; the functions' compiled-in roots."
    };
    let mut report = table(&rows, cold, warm, latency, roots);
    // After the functions, so its CPU time does not fall on their measurements. If it fails,
    // the functions' table is still printed before the error.
    let policy = match policy_case(&policy_bin, quick).await {
        Ok(policy) => policy,
        Err(e) => {
            println!("\n{report}");
            return Err(e);
        }
    };
    report.push_str(&format!("\n{}\n", policy_line(&policy, quick)));
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("latest.md"), &report)?;
    std::fs::write(out_dir.join("latest.svg"), chart(&chart_rows(&rows)))?;
    if bench_doc {
        update_block(
            &root,
            PERFORMANCE_DOC,
            "bench results",
            "latest.md",
            Some(&report),
        )?;
    }
    println!("\n{report}");
    println!(
        "bench: wrote {} and latest.svg",
        out_dir.join("latest.md").display()
    );
    let failed: usize = rows.iter().map(|r| r.samples.failures.len()).sum();
    if failed > 0 {
        return Err(format!("{failed} invocation(s) did not answer").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows like the latest full run's (bench/results/latest.md).
    fn real_like() -> Vec<ChartRow> {
        let row = |name: &str, init, first, rss| ChartRow {
            name: name.into(),
            init_ms: Some(init),
            first_response_ms: Some(first),
            peak_rss_mib: Some(rss),
        };
        vec![
            row("floor (lambda_runtime echo)", 1.64, 2.02, 3.4),
            row("pipeline-notifier", 2.52, 8.99, 9.6),
            row("ecr-scan-gate", 2.80, 9.64, 9.9),
            row("canary-validator", 2.93, 9.58, 10.2),
            row("migration-runner", 3.16, 15.4, 10.5),
            row(
                "Python peer (awslambdaric + boto3 + urllib)",
                240.0,
                226.6,
                48.0,
            ),
        ]
    }

    #[test]
    fn a_chart_tells_the_rust_functions_apart_from_each_other_and_the_floor() {
        let rows = real_like();
        let svg = chart(&rows);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\""));
        assert!(svg.contains(">Cold start and memory: each function against the floor</text>"));
        let layout = chart_layout(&rows);
        let titles: Vec<&str> = layout.iter().map(|(m, ..)| m.title).collect();
        assert_eq!(
            titles.len(),
            3,
            "init, first response, peak memory: {titles:?}"
        );
        for (measure, rust, log) in &layout {
            let title = measure.title;
            assert!(svg.contains(&format!("{} ({})</text>", esc(title), measure.unit)));
            // The Rust-only panel: the floor and the four functions, no peer.
            let kinds: Vec<Kind> = rust.bars.iter().map(|b| kind(&rows[b.row].name)).collect();
            assert_eq!(
                kinds,
                [
                    Kind::Floor,
                    Kind::Function,
                    Kind::Function,
                    Kind::Function,
                    Kind::Function
                ],
                "{title}"
            );
            let widths: Vec<f64> = rust
                .bars
                .iter()
                .filter(|b| kind(&rows[b.row].name) == Kind::Function)
                .map(|b| b.width)
                .collect();
            let (short, long) = widths
                .iter()
                .fold((f64::MAX, 0.0_f64), |(a, b), w| (a.min(*w), b.max(*w)));
            assert!(
                long - short >= 20.0,
                "{title}: the functions' bars are {widths:?} px, shortest and longest under 20 px apart"
            );
            assert!(
                short - rust.bars[0].width >= 20.0,
                "{title}: the floor's bar ({} px) is within 20 px of the shortest function's ({short} px)",
                rust.bars[0].width
            );
            assert!(long <= RUST_W, "{title}: a bar runs past its axis");
            assert!(rust.caption.contains("linear scale from 0"));
            assert_eq!(rust.ticks[0], (0.0, "0".to_owned()), "{title}: from 0");
            // The panel with the peer: every subject, on a log scale that says so.
            assert_eq!(log.bars.len(), rows.len(), "{title}");
            assert!(log.caption.contains("log scale") && log.axis_label.contains("(log)"));
            assert!(svg.contains(&format!(">{}</text>", log.axis_label)));
            // Every bar is labelled with its value; the functions with their multiple too.
            for bar in rust.bars.iter().chain(&log.bars) {
                let r = &rows[bar.row];
                let value = value_text((measure.value)(r).unwrap(), measure.unit);
                assert!(
                    bar.label.starts_with(&value),
                    "{title}: {} labelled {:?}, not {value}",
                    r.name,
                    bar.label
                );
                assert!(
                    svg.contains(&format!(">{}</text>", esc(&bar.label))),
                    "{title}: {} has no label {:?} in the SVG",
                    r.name,
                    bar.label
                );
            }
            for bar in rust.bars.iter().skip(1) {
                assert!(
                    bar.label.contains(" · ") && bar.label.ends_with('×'),
                    "{:?}",
                    bar.label
                );
            }
        }
        let init = &layout[0].1;
        assert_eq!(init.bars[0].label, "1.64 ms");
        assert_eq!(init.bars[1].label, "2.52 ms · 1.5×");
        assert_eq!(init.bars[4].label, "3.16 ms · 1.9×");
        assert_eq!(layout[0].2.bars[5].label, "240.0 ms · 146×");
        assert_eq!(layout[2].1.bars[4].label, "10.5 MiB · 3.1×");
        assert_eq!(
            layout[2].1.notes,
            [(5, "48.0 MiB, off this scale →".to_owned())]
        );
        assert_eq!(svg, chart(&rows), "the same rows draw the same bytes");
    }

    #[test]
    fn a_chart_redrawn_from_latest_md_is_the_chart_the_run_drew() {
        let ms = |v: &[f64]| -> Vec<Duration> {
            v.iter().map(|m| Duration::from_secs_f64(m / 1e3)).collect()
        };
        let row = |name, init: &[f64], first: &[f64], rss| Row {
            name,
            samples: Samples {
                init: ms(init),
                first_response: ms(first),
                warm: ms(&[0.4, 0.5]),
                peak_rss_kib: rss,
                failures: Vec::new(),
            },
            size: Some((1 << 20, 1 << 19)),
        };
        let rows = vec![
            row(
                "floor (lambda_runtime echo)",
                &[1.6413, 1.7],
                &[2.0149, 2.3],
                Some(3482),
            ),
            row(
                "pipeline-notifier",
                &[2.5151, 2.6],
                &[8.994, 9.1],
                Some(9830),
            ),
            row(
                "migration-runner",
                &[3.1649, 3.3],
                &[9.99951, 15.4],
                Some(10_752),
            ),
            row("canary-validator", &[], &[], None),
            row(
                "Python peer (awslambdaric + boto3 + urllib)",
                &[213.74, 250.0],
                &[226.55, 240.0],
                Some(49_050),
            ),
        ];
        let md = table(&rows, 2, 2, (None, None), "roots");
        let parsed = parse_table(&md).expect("latest.md parses");
        assert_eq!(parsed, chart_rows(&rows));
        assert_eq!(parsed[3].init_ms, None);
        assert_eq!(chart(&parsed), chart(&chart_rows(&rows)));
        assert!(
            parse_table("no table here")
                .unwrap_err()
                .contains(TABLE_HEADER)
        );
    }

    #[test]
    fn the_policy_case_line_reads_the_binary_output_or_says_what_is_wrong() {
        let out = "{\"rules\":20,\"findings\":1000,\"parse_us_p50\":38.2,\"evaluate_us_p50\":412.7,\"evaluate_us_p99\":551.0}\n";
        let case = parse_policy_case(out).expect("the binary's line parses");
        assert_eq!(case.rules, 20);
        assert_eq!(case.findings, 1000);
        assert_eq!(
            policy_line(&case, false),
            "ecr-scan-gate policy (bench/policy, in-process): 20 rules over 1,000 enhanced findings: evaluate p50 0.41 ms, p99 0.55 ms (target < 5 ms: met); parse p50 38 µs, once per refresh of POLICY, not per finding."
        );
        assert!(policy_line(&case, true).contains("(quick mode: the numbers mean nothing)"));
        let slow = PolicyCase {
            evaluate_us_p50: 4200.0,
            evaluate_us_p99: 6100.0,
            ..case.clone()
        };
        assert!(
            policy_line(&slow, false)
                .contains("p99 6.10 ms (target < 5 ms: met at p50, missed at p99)")
        );
        for (bad, why) in [
            ("", "printed nothing"),
            ("\n  \n", "printed nothing"),
            ("thread 'main' panicked", "not a JSON line"),
            ("{\"rules\":20,\"findings\":1000}", "no time `parse_us_p50`"),
            (
                "{\"rules\":0,\"findings\":1000,\"parse_us_p50\":1,\"evaluate_us_p50\":1,\"evaluate_us_p99\":1}",
                "no positive count `rules`",
            ),
            (
                "{\"rules\":20,\"findings\":1000,\"parse_us_p50\":1,\"evaluate_us_p50\":-1,\"evaluate_us_p99\":1}",
                "no time `evaluate_us_p50`",
            ),
        ] {
            let err = parse_policy_case(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn results_go_to_the_performance_page_or_the_run_fails_naming_it() {
        let root = std::env::temp_dir().join(format!("bench-doc-{}", std::process::id()));
        std::fs::create_dir_all(root.join("docs")).unwrap();
        let doc = root.join(PERFORMANCE_DOC);
        let _ = std::fs::remove_file(&doc);
        let err = update_block(&root, PERFORMANCE_DOC, "bench results", "latest.md", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("docs/performance.md cannot be read"),
            "{err}"
        );
        std::fs::write(&doc, "# Performance\n\nno markers\n").unwrap();
        let err = update_block(&root, PERFORMANCE_DOC, "bench results", "latest.md", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("docs/performance.md has no start marker"),
            "{err}"
        );
        assert!(
            err.contains("`<!-- bench results: bench/results/latest.md -->`")
                && err.contains("`<!-- /bench results -->`"),
            "{err}"
        );
        let page = "# Performance\n<!-- bench results: bench/results/latest.md -->\nold\n<!-- /bench results -->\nafter\n";
        std::fs::write(&doc, page).unwrap();
        update_block(
            &root,
            PERFORMANCE_DOC,
            "bench results",
            "latest.md",
            Some("| new |\n"),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&doc).unwrap(),
            "# Performance\n<!-- bench results: bench/results/latest.md -->\n| new |\n<!-- /bench results -->\nafter\n"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
