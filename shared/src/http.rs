//! One TLS set-up and one HTTP stack per process, for Slack, the AWS SDK and any other client.
//!
//! The SDK's own HTTPS client is a second hyper/rustls stack beside reqwest's, and it reads
//! and parses the trust store at init on its own: measured with `make bench` and strace
//! (README, Performance), that second parse was about 1.5 ms of every cold start, and the
//! second stack about 1 MiB of peak memory. So the SDK is built without its default client
//! (`default-https-client` is off in the workspace's Cargo.toml) and is handed
//! [`for_sdk`], a reqwest client sending its requests. Every client here is built on one
//! rustls configuration, and so on one verifier holding the platform's roots, read once.
//!
//! The clients differ where their peers do:
//! - AWS ([`for_sdk`]): never through a proxy named by `HTTPS_PROXY` (the SDK's own client
//!   ignores those too, and a VPC reaches AWS through its endpoints, not the Slack proxy), and
//!   HTTP/1.1 only, so a failed attempt never shares a connection with its retry;
//! - Slack ([`for_slack`]): through the proxy the environment names, as before;
//! - others ([`builder`]): a starting point with the same TLS, to be adjusted.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// How long a TCP and TLS connection may take, to AWS and to Slack alike. The SDK's own
/// `connect_timeout` setting is not seen by the adapter (reqwest sets it per client), so
/// shared::aws sets the SDK's from this constant too.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The rustls configuration every client shares, built at first use: the platform verifier
/// reads the roots (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the system store) when it is made.
fn platform_tls() -> Result<&'static rustls::ClientConfig, crate::Error> {
    static TLS: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        use rustls_platform_verifier::BuilderVerifierExt;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(|e| format!("cannot set up TLS (the trust store): {e}"))?;
        Ok(config.with_no_client_auth())
    })
    .as_ref()
    .map_err(|e| crate::Error::bad_input(e.clone()))
}

fn tls_offering(protocols: &[&[u8]]) -> Result<rustls::ClientConfig, crate::Error> {
    // A clone shares the verifier, and with it the parsed roots.
    let mut config = platform_tls()?.clone();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The common starting point: the shared TLS (offering HTTP/2 and HTTP/1.1), the connect
/// timeout, no redirects. A client that needs otherwise overrides it before `build`.
pub fn builder() -> Result<reqwest::ClientBuilder, crate::Error> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls_offering(&[b"h2", b"http/1.1"])?)
        .connect_timeout(CONNECT_TIMEOUT)
        // Neither a webhook nor an AWS API answers with a redirect to follow; following one
        // could carry a message, or a signed request, elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "container-delivery-ops/",
            env!("CARGO_PKG_VERSION")
        )))
}

/// The client that posts to Slack. Build it once, in the composition root, and clone it:
/// clones share the pool.
pub fn for_slack() -> Result<reqwest::Client, crate::Error> {
    build(builder()?)
}

/// The SDK's HTTP client: give it to the SDK configuration once per process.
pub fn for_sdk() -> Result<SharedHttpClient, crate::Error> {
    let http = build(
        builder()?
            .use_preconfigured_tls(tls_offering(&[b"http/1.1"])?)
            .http1_only()
            .no_proxy(),
    )?;
    Ok(SharedHttpClient::new(SdkHttp { http }))
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, crate::Error> {
    builder.build().map_err(|e| {
        crate::Error::bad_input(format!("cannot build the HTTP client: {}", e.without_url()))
    })
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
        // Refused or reset connections, TLS failures and cut-off answers. The SDK's own
        // client reports these as transient too (some as `other` with that kind), so both
        // retry them; over HTTP/1.1 only, a retry never rides the failed connection.
        ConnectorError::io(error)
    }
}
