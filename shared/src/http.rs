//! One TLS set-up and one HTTP stack per process, for Slack, the AWS SDK and any other client.
//!
//! The SDK's own HTTPS client is a second hyper/rustls stack beside reqwest's, which reads
//! and parses the trust store at init on its own. Measured with `make bench` (README,
//! Performance), dropping it cut the notifier's init from 6.5 to 4.5 ms and its peak memory
//! by about 1 MiB. So the SDK is built without its default client
//! (`default-https-client` is off in the workspace's Cargo.toml) and is handed
//! [`for_sdk`], a reqwest client sending its requests. Every client here is built on one
//! rustls configuration, and so on one verifier holding the platform's roots, read once.
//!
//! Every client honours `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`, as the SDK's own client
//! does at the behaviour version used here (2025-08-07 and later). The SDK's client is
//! HTTP/1.1 only (none of the services called needs HTTP/2) and sends every retry on a new
//! connection: the SDK's own client closes a connection after a transient fault (a 5xx, a
//! throttle, a timeout) so the retry may reach another host behind the endpoint, and reqwest
//! cannot close one chosen connection.

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
/// timeout, no redirects. A client may override the connect timeout, redirects, pooling or
/// the user agent before `build`; reqwest ignores its own TLS options (minimum version, extra
/// roots, `http1_only`'s ALPN) on a preconfigured TLS set-up, so those are decided here.
pub fn builder() -> Result<reqwest::ClientBuilder, crate::Error> {
    offering(&[b"h2", b"http/1.1"])
}

fn offering(protocols: &[&[u8]]) -> Result<reqwest::ClientBuilder, crate::Error> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_offering(protocols)?)
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
    Ok(SharedHttpClient::new(SdkHttp {
        pooled: build(sdk_builder()?)?,
        fresh: Arc::new(OnceLock::new()),
    }))
}

fn sdk_builder() -> Result<reqwest::ClientBuilder, crate::Error> {
    Ok(offering(&[b"http/1.1"])?.http1_only())
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, crate::Error> {
    builder.build().map_err(|e| {
        crate::Error::bad_input(format!("cannot build the HTTP client: {}", e.without_url()))
    })
}

#[derive(Debug, Clone)]
struct SdkHttp {
    /// First attempts, on kept-alive connections.
    pooled: reqwest::Client,
    /// Retries: a new connection each, closed after it. Built at the first retry, as most
    /// containers never make one.
    fresh: Arc<OnceLock<reqwest::Client>>,
}

impl SdkHttp {
    fn for_attempt(&self, request: &HttpRequest) -> reqwest::Client {
        if !is_retry(request) {
            return self.pooled.clone();
        }
        self.fresh
            .get_or_init(|| {
                sdk_builder()
                    .and_then(|b| build(b.pool_max_idle_per_host(0)))
                    // Built from the settings the pooled client was built from, so this
                    // cannot fail in practice; if it did, the retry rides the pool.
                    .unwrap_or_else(|_| self.pooled.clone())
            })
            .clone()
    }
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
            http: self.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct SdkConnector {
    http: SdkHttp,
    read_timeout: Option<Duration>,
}

/// The SDK numbers its attempts in this header on every AWS request (`attempt=2; max=4`).
fn is_retry(request: &HttpRequest) -> bool {
    request
        .headers()
        .get("amz-sdk-request")
        .is_some_and(|value| !value.starts_with("attempt=1;"))
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.for_attempt(&request);
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
        // retry them, here on a new connection (is_retry).
        ConnectorError::io(error)
    }
}
