//! One TLS set-up and one HTTP stack per process, for Slack, the AWS SDK and any other client.
//!
//! The SDK's own HTTPS client is a second hyper/rustls stack beside reqwest's, which reads
//! and parses the trust store at init on its own. Measured with `make bench` (docs/performance.md), dropping it cut the notifier's init from 6.5 to 4.5 ms and its peak memory
//! by about 1 MiB. So the SDK is built without its default client
//! (`default-https-client` is off in the workspace's Cargo.toml) and is handed
//! [`for_sdk`], a reqwest client sending its requests. Every client here is built on one
//! rustls configuration, and so on one set of roots (see [`TrustRoots`]).
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

/// Where the roots every client trusts come from.
///
/// Lambda sets neither `SSL_CERT_FILE` nor `SSL_CERT_DIR`, and there the roots are Mozilla's,
/// compiled in (`webpki-roots`), the same program Amazon Linux's `ca-certificates` follows.
/// Reading and PEM-decoding the image's 220 KB bundle instead was 62% of the instructions
/// a function spent before its first Runtime API request (docs/performance.md), about 1.2 ms
/// of every cold start. A person who needs other roots (a TLS-inspecting proxy's CA, a
/// private CA in front of a service the canary validator probes) sets either variable, and
/// then the platform's verifier reads them, as the SDK's and reqwest's own clients would:
/// only what they name is trusted, so the file holds the public roots too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    CompiledIn,
    Platform,
}

impl TrustRoots {
    /// The choice for a process whose variables are read by `var`; an empty value counts as
    /// unset, as it names no file.
    pub fn chosen_by(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Self {
        let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
        if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
            Self::Platform
        } else {
            Self::CompiledIn
        }
    }

    /// This process's choice, made once with the TLS set-up.
    pub fn in_use() -> Self {
        Self::chosen_by(|name| std::env::var_os(name))
    }
}

/// The rustls configuration every client shares, built at first use with the roots
/// [`TrustRoots::in_use`] names.
fn shared_tls() -> Result<&'static rustls::ClientConfig, crate::Error> {
    static TLS: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        use rustls_platform_verifier::BuilderVerifierExt;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let compiled_in = || rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = match TrustRoots::in_use() {
            TrustRoots::CompiledIn => builder.with_root_certificates(compiled_in()),
            TrustRoots::Platform => match builder.clone().with_platform_verifier() {
                Ok(config) => config,
                // A trust store named but missing or empty (a typo in SSL_CERT_FILE, a layer
                // not attached) would otherwise stop the function at init: every event would
                // fail, retry and end in the dead-letter queue, and no hook would be answered.
                // Mozilla's roots still reach AWS and Slack; only the private CA is missing.
                Err(e) => {
                    tracing::error!(error = %e, "the trust store SSL_CERT_FILE/SSL_CERT_DIR names holds no usable certificate; trusting the compiled-in public roots instead (a private or proxy CA will not be trusted)");
                    builder.with_root_certificates(compiled_in())
                }
            },
        };
        Ok(config.with_no_client_auth())
    })
    .as_ref()
    .map_err(|e| crate::Error::bad_input(e.clone()))
}

fn tls_offering(protocols: &[&[u8]]) -> Result<rustls::ClientConfig, crate::Error> {
    // A clone shares the verifier, and with it the roots.
    let mut config = shared_tls()?.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn chosen(vars: &[(&str, &str)]) -> TrustRoots {
        TrustRoots::chosen_by(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn the_roots_are_compiled_in_unless_a_trust_store_variable_names_a_file_or_directory() {
        assert_eq!(chosen(&[]), TrustRoots::CompiledIn);
        assert_eq!(chosen(&[("SSL_CERT_FILE", "")]), TrustRoots::CompiledIn);
        assert_eq!(
            chosen(&[("SSL_CERT_FILE", "/opt/proxy-ca.pem")]),
            TrustRoots::Platform
        );
        assert_eq!(
            chosen(&[("SSL_CERT_DIR", "/etc/pki/tls/certs")]),
            TrustRoots::Platform
        );
    }
}
