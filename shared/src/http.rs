//! One HTTP client per process, for Slack and for every AWS SDK client.
//!
//! The SDK's own HTTPS client is a second hyper/rustls stack beside reqwest's, and it reads
//! and parses the trust store at init on its own: measured with `make bench` and strace
//! (README, Performance), that second parse was about 1.5 ms of every cold start, and the
//! second stack about 1 MiB of each binary. So the SDK is built without its default client
//! (`default-https-client` is off in the workspace's Cargo.toml) and is handed
//! [`sdk_http_client`], which sends its requests through the same `reqwest::Client` that posts
//! to Slack: one connection pool, one TLS configuration, the platform's roots read once.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// How long a TCP and TLS connection may take, to AWS and to Slack alike. It is a property of
/// the one client, so the SDK's `connect_timeout` (shared::aws) is set from it too.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The process's HTTP client. Build it once, in the composition root, and clone it: clones
/// share the pool and the TLS configuration.
pub fn client() -> Result<reqwest::Client, crate::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // Neither a webhook nor an AWS API answers with a redirect to follow; following one
        // could carry a message, or a signed request, elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "container-delivery-ops/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| {
            crate::Error::bad_input(format!("cannot build the HTTP client: {}", e.without_url()))
        })
}

/// `http` as the SDK's HTTP client.
pub fn sdk_http_client(http: reqwest::Client) -> SharedHttpClient {
    SharedHttpClient::new(SdkHttp { http })
}

#[derive(Debug, Clone)]
struct SdkHttp {
    http: reqwest::Client,
}

impl HttpClient for SdkHttp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // The connect timeout is the client's (CONNECT_TIMEOUT); a read timeout, when the SDK
        // is given one, bounds the wait for the answer's head here. The SDK's attempt and
        // operation timeouts bound the rest on its side.
        SharedHttpConnector::new(SdkConnector {
            http: self.http.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct SdkConnector {
    http: reqwest::Client,
    read_timeout: Option<Duration>,
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(request)?;
            let sent = http.execute(request);
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| {
                    ConnectorError::timeout(
                        format!("no answer within the read timeout ({limit:?})").into(),
                    )
                })?,
                None => sent.await,
            }
            .map_err(connector_error)?;
            let response: http::Response<reqwest::Body> = response.into();
            let (parts, body) = response.into_parts();
            HttpResponse::try_from(http::Response::from_parts(
                parts,
                SdkBody::from_body_1_x(body),
            ))
            .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    // Almost every SDK request body is already in memory; as bytes, reqwest sends it with
    // its length and could send it again. Only a streaming body goes through as a stream.
    let body = match body.bytes() {
        Some(bytes) => reqwest::Body::from(bytes.to_vec()),
        None => reqwest::Body::wrap(body),
    };
    reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|e| ConnectorError::user(e.without_url().into()))
}

/// The SDK retries timeouts and I/O faults (its standard retry mode) and not the rest, so
/// the kind decides whether a failed call is tried again.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    // The URL names the AWS endpoint only, but the SDK's error may be logged whole.
    let timed_out = error.is_timeout();
    let invalid = error.is_builder();
    let error = Box::new(error.without_url());
    if timed_out {
        ConnectorError::timeout(error)
    } else if invalid {
        ConnectorError::user(error)
    } else {
        // Refused or reset connections, TLS failures and cut-off bodies: as the SDK's own
        // client classes them, transient.
        ConnectorError::io(error)
    }
}
