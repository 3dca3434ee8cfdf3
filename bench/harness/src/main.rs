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
//! Usage: bench [--quick] [--cold N] [--warm N] [--out DIR] [--platform-roots] [--env NAME=VALUE]...
//! `--quick` (in `make test`): one cold start and a few warm invocations each, so the harness
//! cannot rot; its numbers mean nothing. `--env` adds a variable to every subject.
//!
//! The environment is Lambda's, where neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` is set, so
//! the functions trust their compiled-in roots (shared::http::TrustRoots). `--platform-roots`
//! measures the other case, a person's own trust store: `SSL_CERT_FILE` names this machine's
//! bundle, as it would a file holding a proxy's CA, and the platform verifier parses it at
//! init (about 1.2 ms here, README, "Performance").

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
    out.push_str(
        "| subject | init p50 | first response min / p50 / p90 | warm p50 / p99 | peak RSS | binary | zip |\n|---|---|---|---|---|---|---|\n",
    );
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
            s.peak_rss_kib
                .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                .unwrap_or_else(|| "–".into()),
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

/// Each function's p50 of `measure` over the floor's, on one line (empty without a floor).
fn ratio_line(rows: &[Row], label: &str, measure: fn(&Samples) -> &[Duration]) -> String {
    let p50 = |r: &Row| percentile(measure(&r.samples), 50.0);
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
            line.push_str(&format!(
                " {} {:.1}×;",
                r.name,
                v.as_secs_f64() / floor.as_secs_f64()
            ));
        }
    }
    line.push('\n');
    line
}

/// Two bar charts side by side: cold start (first response p50) and peak memory.
fn chart(rows: &[Row]) -> String {
    let bar_h = 22.0;
    let label_w = 300.0;
    let bar_w = 260.0;
    let height = 60.0 + bar_h * 1.4 * rows.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        label_w + 2.0 * (bar_w + 90.0)
    );
    type Measure = Box<dyn Fn(&Row) -> Option<f64>>;
    let panels: [(&str, Measure, &str); 2] = [
        (
            "cold start, first response p50 (ms)",
            Box::new(|r: &Row| {
                percentile(&r.samples.first_response, 50.0).map(|d| d.as_secs_f64() * 1e3)
            }),
            "ms",
        ),
        (
            "peak RSS (MiB)",
            Box::new(|r: &Row| r.samples.peak_rss_kib.map(|k| k as f64 / 1024.0)),
            "MiB",
        ),
    ];
    for (i, (title, value, unit)) in panels.iter().enumerate() {
        let x0 = label_w + i as f64 * (bar_w + 90.0);
        let max = rows
            .iter()
            .filter_map(value)
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        svg.push_str(&format!(
            "<text x=\"{x0}\" y=\"20\" font-weight=\"bold\">{title}</text>\n"
        ));
        for (j, r) in rows.iter().enumerate() {
            let y = 36.0 + j as f64 * bar_h * 1.4;
            if i == 0 {
                svg.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                    label_w - 10.0,
                    y + bar_h * 0.7,
                    r.name.replace('&', "&amp;").replace('<', "&lt;")
                ));
            }
            if let Some(v) = value(r) {
                let w = (v / max * bar_w).max(1.0);
                let fill = if r.name.starts_with("Python") {
                    "#c0504d"
                } else if r.name.starts_with("floor") {
                    "#9e9e9e"
                } else {
                    "#4f81bd"
                };
                svg.push_str(&format!(
                    "<rect x=\"{x0}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{fill}\"/>\n<text x=\"{:.1}\" y=\"{}\">{v:.1} {unit}</text>\n",
                    x0 + w + 4.0,
                    y + bar_h * 0.7
                ));
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The README shows the latest full run: the block between the bench markers is replaced.
fn update_readme(readme: &Path, report: &str) -> Fallible<()> {
    update_readme_block(readme, "bench results", "latest.md", report)
}

/// Rewrites the README between `<!-- {name}: bench/results/{file} -->` and `<!-- /{name} -->`.
fn update_readme_block(readme: &Path, name: &str, file: &str, report: &str) -> Fallible<()> {
    let start = format!("<!-- {name}: bench/results/{file} -->\n");
    let end = format!("<!-- /{name} -->");
    let text = std::fs::read_to_string(readme)?;
    let (Some(a), Some(b)) = (text.find(&start), text.find(&end)) else {
        return Err(format!("README.md has no {name} block").into());
    };
    let updated = format!("{}{start}{}\n{}", &text[..a], report.trim(), &text[b..]);
    std::fs::write(readme, updated)?;
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
        if out_dir == root.join("bench/results") && count >= 10_000 {
            update_readme_block(&root.join("README.md"), "soak results", "soak.md", &report)?;
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
    let report = table(&rows, cold, warm, latency, roots);
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("latest.md"), &report)?;
    std::fs::write(out_dir.join("latest.svg"), chart(&rows))?;
    if !quick && out_dir == root.join("bench/results") {
        update_readme(&root.join("README.md"), &report)?;
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
