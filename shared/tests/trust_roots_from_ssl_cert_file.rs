//! A person who needs other roots than Mozilla's (a TLS-inspecting proxy's CA, a private CA
//! in front of a service the canary validator probes) sets `SSL_CERT_FILE` on the function,
//! as for any program on Linux; the clients then trust what that file holds, through the
//! platform's verifier, instead of the compiled-in roots.
//! One binary of its own, because it sets process-wide variables before the TLS set-up
//! (made once per process) reads them.

use shared::http::TrustRoots;
use standins::SelfSignedTls;

#[tokio::test]
async fn a_ca_given_through_ssl_cert_file_is_trusted() {
    let server = SelfSignedTls::start().await;
    let bundle = std::env::temp_dir().join(format!("trust-roots-{}.pem", std::process::id()));
    std::fs::write(&bundle, server.certificate_pem()).unwrap();
    // SAFETY: the only test in this binary, run before any thread reads the environment.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &bundle);
        std::env::remove_var("SSL_CERT_DIR");
    }
    assert_eq!(TrustRoots::in_use(), TrustRoots::Platform);

    let client = shared::http::builder().unwrap().build().unwrap();
    let answer = client.get(server.url("/health")).send().await;
    let _ = std::fs::remove_file(&bundle);
    assert_eq!(answer.unwrap().status(), 200);
}
