//! A trust store named in `SSL_CERT_FILE` that is missing (a typo, a layer not attached)
//! must not stop the function at init: the platform's verifier refuses an empty store, and
//! then every event would fail into the dead-letter queue. The clients fall back to the
//! compiled-in public roots and say so. One binary of its own, because it sets process-wide
//! variables before the TLS set-up (made once per process) reads them.

use shared::http::TrustRoots;
use standins::SelfSignedTls;

#[tokio::test]
async fn a_missing_trust_store_falls_back_to_the_public_roots_instead_of_failing_init() {
    let server = SelfSignedTls::start().await;
    let missing = std::env::temp_dir().join(format!("no-such-bundle-{}.pem", std::process::id()));
    // SAFETY: the only test in this binary, run before any thread reads the environment.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &missing);
        std::env::remove_var("SSL_CERT_DIR");
    }
    assert_eq!(TrustRoots::in_use(), TrustRoots::Platform);

    let client = shared::http::builder()
        .expect("a missing trust store still gives a client")
        .build()
        .unwrap();
    // The public roots, not "trust anything": a certificate no root signed is still refused.
    let refused = client.get(server.url("/health")).send().await;
    assert!(refused.is_err(), "{refused:?}");
}
