//! A stand-in for the new version of a service behind CodeDeploy's test listener: each path
//! behaves one way (healthy, failing, slow, wrong body, flapping, redirecting, oversized,
//! hanging), and every request is counted with the headers it carried.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// How long `/slow` takes to answer.
pub const SLOW: Duration = Duration::from_millis(800);
/// How much `/big` sends: far more than a check reads.
pub const BIG_BODY: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Inner {
    hits: HashMap<String, u32>,
    headers: Vec<(String, HeaderMap)>,
}

#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Target {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let addr = crate::serve(app).await;
        Self { addr, inner }
    }

    /// `/healthy`, `/error`, `/slow`, `/wrong-body`, `/flapping`, `/redirect`, `/big`, `/hang`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// The value of `header` on each request to `path`.
    pub fn header_values(&self, path: &str, header: &str) -> Vec<String> {
        self.lock()
            .headers
            .iter()
            .filter(|(p, _)| p == path)
            .filter_map(|(_, h)| h.get(header)?.to_str().ok().map(str::to_owned))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const HEALTHY: &str = r#"{"status":"UP","version":"1.43.0"}"#;

fn json(status: StatusCode, body: &'static str) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let hit = {
        let mut state = inner.lock().unwrap_or_else(|p| p.into_inner());
        state.headers.push((path.clone(), headers));
        let n = state.hits.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    match path.as_str() {
        "/healthy" => json(StatusCode::OK, HEALTHY),
        "/error" => json(StatusCode::INTERNAL_SERVER_ERROR, r#"{"status":"ERROR"}"#),
        "/slow" => {
            tokio::time::sleep(SLOW).await;
            json(StatusCode::OK, HEALTHY)
        }
        "/wrong-body" => json(StatusCode::OK, r#"{"status":"DOWN","version":"1.43.0"}"#),
        "/flapping" if hit % 2 == 1 => json(StatusCode::OK, HEALTHY),
        "/flapping" => json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"DOWN"}"#),
        "/redirect" => (
            StatusCode::FOUND,
            [("location", "https://login.example.com/?next=/health")],
        )
            .into_response(),
        "/big" => {
            // Healthy-looking start, then padding; streamed so the server never holds it.
            let head = br#"{"status":"UP","padding":""#.to_vec();
            let pad = (0..BIG_BODY / 65_536).map(|_| vec![b'x'; 65_536]);
            let tail = br#""}"#.to_vec();
            let chunks = std::iter::once(head)
                .chain(pad)
                .chain(std::iter::once(tail))
                .map(Ok::<_, std::io::Error>);
            let stream = futures_util::stream::iter(chunks);
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A TLS endpoint with a self-signed certificate. A client that verifies certificates refuses
/// the handshake; one that does not gets `200 {"status":"UP"}`, so a check that passes against
/// it proves verification is off.
pub struct SelfSignedTls {
    port: u16,
    certificate_pem: String,
}

impl SelfSignedTls {
    pub async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_rustls::rustls;

        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a self-signed certificate");
        let key =
            rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key.into())
        .expect("TLS server configuration");
        let certificate_pem = certified.cert.pem();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = [0u8; 4096];
                    let _ = tls.read(&mut request).await;
                    let body = HEALTHY.as_bytes();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            port,
            certificate_pem,
        }
    }

    /// The certificate as PEM: a trust store holding it makes the endpoint trusted (what a
    /// private or a TLS-inspecting proxy's CA given through `SSL_CERT_FILE` does).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// An https URL whose name matches the certificate, so only the issuer is wrong.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}
