//! Where Lambda runs the functions, `SSL_CERT_FILE` and `SSL_CERT_DIR` are unset (neither is
//! among the runtime's environment variables, Lambda developer guide, "Defined runtime
//! environment variables"), and the clients trust Mozilla's roots compiled in: no PEM bundle
//! is parsed at init. Certificates are still verified: a server whose issuer is not among
//! them is refused.
//! One binary of its own, because it clears process-wide variables before the TLS set-up
//! (made once per process) reads them.

use shared::http::TrustRoots;
use standins::SelfSignedTls;

fn clear_trust_store_variables() {
    // SAFETY: no other test in this binary reads or writes the environment.
    unsafe {
        std::env::remove_var("SSL_CERT_FILE");
        std::env::remove_var("SSL_CERT_DIR");
    }
}

#[tokio::test]
async fn without_ssl_cert_variables_the_compiled_in_roots_are_used_and_an_unknown_issuer_is_refused()
 {
    clear_trust_store_variables();
    assert_eq!(TrustRoots::in_use(), TrustRoots::CompiledIn);

    let server = SelfSignedTls::start().await;
    let client = shared::http::builder().unwrap().build().unwrap();
    let refused = client.get(server.url("/health")).send().await;
    let why = format!(
        "{:?}",
        refused.expect_err("a self-signed certificate must not be trusted")
    );
    assert!(
        why.contains("UnknownIssuer"),
        "refused, but not for its issuer: {why}"
    );
}

#[test]
fn the_compiled_in_roots_hold_the_roots_aws_endpoints_chain_to() {
    // AWS endpoints and ACM certificates chain to Amazon Trust Services: one of Amazon Root CA
    // 1–4, anchored since August 2024 at Starfield Services Root Certificate Authority - G2
    // (AWS Security Blog, "ACM will no longer cross sign certificates with Starfield Class 2
    // starting August 2024"). A client trusting any of them accepts those chains.
    let subjects: Vec<&[u8]> = webpki_roots::TLS_SERVER_ROOTS
        .iter()
        .map(|anchor| anchor.subject.as_ref())
        .collect();
    for name in [
        "Amazon Root CA 1",
        "Amazon Root CA 2",
        "Amazon Root CA 3",
        "Amazon Root CA 4",
        "Starfield Services Root Certificate Authority - G2",
    ] {
        assert!(
            subjects
                .iter()
                .any(|s| s.windows(name.len()).any(|w| w == name.as_bytes())),
            "{name} is missing from the compiled-in roots"
        );
    }
}
