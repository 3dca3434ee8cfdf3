//! A moto server on a loopback port it picks itself, for as long as the handle lives.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

/// The project's virtualenv, which `make venv` creates; `MOTO_SERVER` overrides it.
fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    crate::workspace_root().join(".venv/bin/moto_server")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Unique per process and per server, so parallel test binaries never share a log.
fn unique_log_path() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("moto-{}-{n}.log", std::process::id()))
}

/// The port in werkzeug's ` * Running on http://127.0.0.1:<port>` line, if printed yet.
fn announced_port(log: &str) -> Option<u16> {
    let after = log.split("Running on http://127.0.0.1:").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    // A line still being written may end mid-number.
    after[digits.len()..].chars().next()?;
    digits.parse().ok()
}

impl Moto {
    /// Starts moto and waits until it accepts connections. Panics with a how-to-fix
    /// message when the virtualenv is missing: these tests must not pass by skipping.
    ///
    /// moto binds port 0 itself and the port is read from the line it prints once bound.
    /// Picking a free port here and handing it over raced: between our probe and moto's
    /// bind, another server in the same test binary could take the port (both tests then
    /// talk to one moto, and the survivor's calls are refused once the other test ends),
    /// and polling a port nobody listens on yet can self-connect on Linux loopback.
    pub fn start() -> Self {
        let bin = moto_binary();
        assert!(
            bin.exists(),
            "moto server not found at {}: run `make venv` (make test does it) or set MOTO_SERVER",
            bin.display()
        );
        let log = unique_log_path();
        let log_file = std::fs::File::create(&log).expect("cannot create the moto log file");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut moto = Self {
            child,
            endpoint: String::new(),
            log,
        };
        let port = moto.wait_for_announced_port();
        moto.endpoint = format!("http://127.0.0.1:{port}");
        moto
    }

    /// werkzeug prints ` * Running on http://127.0.0.1:<port>` after the socket is bound
    /// and listening, so once the line is there the port is this child's.
    fn wait_for_announced_port(&mut self) -> u16 {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(port) = announced_port(&log)
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto server exited early ({status}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("moto server did not announce a port within 60 s:\n{log}");
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An SDK configuration aimed at this server with fake credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }

    /// Environment for a child process (a function binary) so that its SDK reaches moto.
    pub fn env(&self) -> Vec<(String, String)> {
        aws_env(&self.endpoint)
    }

    /// Creates an IAM role in moto (CodePipeline and ECS check that roles exist) through
    /// IAM's query API, and returns its ARN.
    pub async fn create_role(&self, name: &str) -> String {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codepipeline.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let r = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
            .form(&[("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", name), ("AssumeRolePolicyDocument", trust)])
            .send()
            .await
            .expect("IAM CreateRole");
        assert!(r.status().is_success(), "IAM CreateRole: {}", r.status());
        format!("arn:aws:iam::{ACCOUNT}:role/{name}")
    }

    /// Creates an SNS topic through SNS's query API and returns its ARN.
    pub async fn create_topic(&self, name: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header("authorization", format!("AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/sns/aws4_request, SignedHeaders=host, Signature=0"))
            .form(&[("Action", "CreateTopic"), ("Name", name)])
            .send()
            .await
            .expect("SNS CreateTopic");
        assert!(r.status().is_success(), "SNS CreateTopic: {}", r.status());
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
    }

    /// An SSM parameter (`kind`: `String` or `SecureString`), where a stack keeps configuration
    /// and secrets; an existing one is overwritten.
    pub async fn put_parameter(&self, name: &str, value: &str, kind: &str) {
        self.aws_json(
            "ssm",
            "AmazonSSM.PutParameter",
            &serde_json::json!({"Name": name, "Value": value, "Type": kind, "Overwrite": true}),
        )
        .await;
    }

    /// The idempotency table as `template.yaml` declares it (partition key `id`, on-demand,
    /// TTL on `expires_at`); returns its name. moto enforces the conditional writes the store
    /// relies on; it does not expire items, which the store's own reads account for.
    pub async fn create_idempotency_table(&self) -> String {
        let name = IDEMPOTENCY_TABLE;
        self.aws_json(
            "dynamodb",
            "DynamoDB_20120810.CreateTable",
            &serde_json::json!({
                "TableName": name,
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        )
        .await;
        self.aws_json(
            "dynamodb",
            "DynamoDB_20120810.UpdateTimeToLive",
            &serde_json::json!({
                "TableName": name,
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": true},
            }),
        )
        .await;
        name.to_owned()
    }

    /// Every item of a DynamoDB table (a scan), for tests to read what the functions stored.
    pub async fn dynamodb_items(&self, table: &str) -> Vec<serde_json::Value> {
        let out = self
            .aws_json(
                "dynamodb",
                "DynamoDB_20120810.Scan",
                &serde_json::json!({"TableName": table, "ConsistentRead": true}),
            )
            .await;
        out["Items"].as_array().cloned().unwrap_or_default()
    }

    /// One awsJson1_1 call for test set-up, where building the request through an SDK crate
    /// would add little. `service` is the signing name moto routes by (`ssm`,
    /// `codepipeline`); `target` the operation (`CodePipeline_20150709.CreatePipeline`).
    pub async fn aws_json(
        &self,
        service: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let r = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "{target}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// A two-stage pipeline in moto with one execution started; returns the execution id.
    pub async fn pipeline_with_execution(&self, name: &str) -> String {
        let role = self.create_role(&format!("{name}-role")).await;
        let action = |name: &str,
                      category: &str,
                      owner: &str,
                      provider: &str,
                      config: serde_json::Value,
                      out: bool| {
            let mut a = serde_json::json!({
                "name": name,
                "actionTypeId": {"category": category, "owner": owner, "provider": provider, "version": "1"},
                "configuration": config,
                "runOrder": 1
            });
            if out {
                a["outputArtifacts"] = serde_json::json!([{"name": "SourceArtifact"}]);
            } else {
                a["inputArtifacts"] = serde_json::json!([{"name": "SourceArtifact"}]);
            }
            a
        };
        let pipeline = serde_json::json!({"pipeline": {
            "name": name,
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": "artifacts-bucket"},
            "stages": [
                {"name": "Source", "actions": [action("Source", "Source", "AWS", "S3", serde_json::json!({"S3Bucket": "src", "S3ObjectKey": "app.zip"}), true)]},
                {"name": "Build", "actions": [action("Build", "Build", "AWS", "CodeBuild", serde_json::json!({"ProjectName": "build"}), false)]}
            ]
        }});
        self.aws_json(
            "codepipeline",
            "CodePipeline_20150709.CreatePipeline",
            &pipeline,
        )
        .await;
        let started = self
            .aws_json(
                "codepipeline",
                "CodePipeline_20150709.StartPipelineExecution",
                &serde_json::json!({"name": name}),
            )
            .await;
        started["pipelineExecutionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A CloudWatch alarm on a metric nobody publishes, for checks to watch. moto starts
    /// it in OK; [`Moto::set_alarm_state`] moves it.
    pub async fn put_alarm(&self, name: &str) {
        self.cloudwatch(
            "PutMetricAlarm",
            &serde_json::json!({
                "AlarmName": name,
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Statistic": "Sum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": 5.0,
                "ComparisonOperator": "GreaterThanThreshold"
            }),
        )
        .await;
    }

    /// `state` is `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub async fn set_alarm_state(&self, name: &str, state: &str, reason: &str) {
        self.cloudwatch(
            "SetAlarmState",
            &serde_json::json!({"AlarmName": name, "StateValue": state, "StateReason": reason}),
        )
        .await;
    }

    /// CloudWatch in moto speaks AWS JSON 1.0 (the current SDK's CBOR goes through the
    /// recording stub's bridge; set-up calls need no bridge).
    async fn cloudwatch(&self, operation: &str, body: &serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("GraniteServiceVersion20100801.{operation}"))
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/monitoring/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("CloudWatch {operation}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "CloudWatch {operation}: {status} {text}"
        );
    }

    /// Posts to moto's own control API (`/moto-api/…`), e.g. to configure scan findings.
    pub async fn post_moto_api(&self, path: &str, body: &serde_json::Value) {
        let url = format!("{}{path}", self.endpoint);
        let r = reqwest::Client::new()
            .post(&url)
            .json(body)
            .send()
            .await
            .expect("moto-api request");
        assert!(r.status().is_success(), "moto-api {path}: {}", r.status());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The idempotency table's name as CloudFormation generates it for a stack named `ops`
/// (`<stack>-<logical id>-<suffix>`): what `scripts/iam-check` resolves the template's
/// `IdempotencyTable` to, so the calls the tests record match the roles.
pub const IDEMPOTENCY_TABLE: &str = "ops-IdempotencyTable-1A2B3C4D5E6F";

pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(shared::aws::behavior_version())
        .http_client(shared::http::for_sdk().expect("the SDK's HTTP client"))
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "standins",
        ))
        .load()
        .await
}

/// The variables that point an SDK in another process at `endpoint` with fake credentials.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// An SQS queue (`<topic>-inbox`) subscribed to the topic `topic_arn`, so a test can read
/// back what SNS delivered ([`received`]); returns the queue's URL.
pub async fn inbox_for(sdk: &SdkConfig, topic_arn: &str) -> String {
    subscribed_inbox(sdk, topic_arn, "inbox", None).await
}

/// An SQS queue (`<topic>-<name>`) subscribed to `topic_arn` with `filter_policy` on the
/// message attributes: moto delivers only what the policy matches, as SNS does ("Amazon SNS
/// message filtering").
pub async fn filtered_inbox_for(
    sdk: &SdkConfig,
    topic_arn: &str,
    name: &str,
    filter_policy: &serde_json::Value,
) -> String {
    subscribed_inbox(sdk, topic_arn, name, Some(filter_policy)).await
}

async fn subscribed_inbox(
    sdk: &SdkConfig,
    topic_arn: &str,
    suffix: &str,
    filter_policy: Option<&serde_json::Value>,
) -> String {
    let name = format!(
        "{}-{suffix}",
        topic_arn.rsplit(':').next().unwrap_or("topic")
    );
    let queue_url = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SQS CreateQueue {name}: {e}"))
        .queue_url
        .expect("a queue URL");
    aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
        .set_attributes(
            filter_policy.map(|p| {
                std::collections::HashMap::from([("FilterPolicy".to_owned(), p.to_string())])
            }),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("SNS Subscribe {name}: {e}"));
    queue_url
}

/// What SNS delivered to the inbox `queue_url` since it was last read: each message's SNS
/// envelope (`Subject`, `Message`, ...), at most ten.
pub async fn received(sdk: &SdkConfig, queue_url: &str) -> Vec<serde_json::Value> {
    let out = aws_sdk_sqs::Client::new(sdk)
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SQS ReceiveMessage: {e}"));
    out.messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("an SNS envelope"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::announced_port;

    #[test]
    fn the_port_is_read_only_from_a_complete_announcement() {
        let banner = "\x1b[31mWARNING: This is a development server.\x1b[0m\n * Running on http://127.0.0.1:36515\n";
        assert_eq!(announced_port(banner), Some(36515));
        assert_eq!(announced_port(" * Running on http://127.0.0.1:365"), None);
        assert_eq!(
            announced_port("WARNING: This is a development server."),
            None
        );
    }
}
