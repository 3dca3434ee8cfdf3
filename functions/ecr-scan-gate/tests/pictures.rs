//! The pictures on this function's page (`pictures/*.svg`) are its own messages as rendered
//! now: a PASS (a waiver ending soon, the pass tag added) and a FAIL naming the CVEs over the
//! thresholds (an expired waiver among them), each decided by the gate's policy from a
//! completed scan of the sample image. `UPDATE_PICTURES=1` redraws them after a change.

use std::path::Path;

use ecr_scan_gate::Config;
use ecr_scan_gate::policy::{Finding, Policy, Severity};
use ecr_scan_gate::registry::{Promotion, Scan};
use ecr_scan_gate::render::{RegistryLocation, render};
use ecr_scan_gate::verdict::{Judged, Look, Verdict, decide};
use serde_json::Value;
use shared::config::Document;
use standins::picture;

/// 2026-11-20T10:21:00Z, a minute after the sample scan event.
const NOW: i64 = 1_795_170_060;

const WAIVERS: &str = r#"[
  {"id": "CVE-2023-44487", "repository": "prod-*", "expires": "2026-11-25",
   "reason": "HTTP/2 is terminated at the load balancer; the service speaks HTTP/1.1"},
  {"id": "CVE-2024-6387", "repository": "prod-*", "expires": "2026-10-31",
   "reason": "sshd does not run in the container"}
]"#;

fn finding(id: &str, severity: &str, package: &str, version: &str, fix: Option<&str>) -> Finding {
    Finding {
        package: Some(package.into()),
        version: Some(version.into()),
        fixed_in: fix.map(str::to_owned),
        url: Some(format!("https://security-tracker.debian.org/tracker/{id}")),
        fix_available: Some(fix.is_some()),
        ..Finding::new(id, Severity::parse(severity))
    }
}

/// The policy as the gate reads it from its environment: the default thresholds (no
/// CRITICAL, no HIGH), the waivers above, and a tag for images that pass.
fn config() -> Config {
    Config::from_env(&[("WAIVERS", WAIVERS), ("PASS_TAG", "scan-passed")])
        .expect("a valid configuration")
}

fn policy(config: &Config) -> Policy {
    let Document::Inline(waivers) = &config.waivers else {
        panic!("the waivers are inline");
    };
    Policy {
        max: config.max.clone(),
        ignore_unfixed: config.ignore_unfixed,
        waivers: waivers.clone(),
        rules: None,
    }
}

/// The sample scan event's image, under `tag` and `digest`.
fn image(tag: &str, digest: &str) -> (Judged, Value) {
    let event = standins::sample_event("ecr-scan-gate", "ecr-image-scan.json");
    let judged = Judged {
        repository: event["detail"]["repository-name"]
            .as_str()
            .unwrap()
            .to_owned(),
        digest: digest.into(),
        tags: vec![tag.into()],
        platforms: Vec::new(),
        skipped: Vec::new(),
    };
    (judged, event)
}

/// The gate's message on `findings` for the image, as the scan event path renders it.
fn message(tag: &str, digest: &str, findings: Vec<Finding>, expect: &str) -> Value {
    let config = config();
    let (judged, event) = image(tag, digest);
    let repository = judged.repository.clone();
    let scan = Scan::Complete {
        findings,
        enhanced: false,
        completed_at: Some(NOW - 60),
    };
    let look = Look {
        now: NOW,
        settle: config.findings_settle,
        told: None,
    };
    let verdict = decide(scan, judged, &policy(&config), &look);
    assert_eq!(verdict.name(), expect, "{verdict:?}");
    let promotion = matches!(verdict, Verdict::Pass { .. })
        .then(|| (config.pass_tag.clone().unwrap(), Promotion::Tagged));
    let registry = RegistryLocation {
        region: event["region"].as_str().unwrap(),
        account: event["account"].as_str().unwrap(),
    };
    render(
        &verdict,
        &repository,
        &format!("{repository}:{tag}"),
        &registry,
        promotion.as_ref(),
    )
    .slack
    .to_payload()
}

#[test]
fn the_pictures_are_the_messages_as_rendered_now() {
    let pass = message(
        "1.42.0",
        "sha256:4f0b1c7e9a5d3b2c1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d",
        vec![
            finding(
                "CVE-2023-44487",
                "HIGH",
                "libnghttp2-14",
                "1.52.0-1",
                Some("1.52.0-1+deb12u1"),
            ),
            finding(
                "CVE-2023-5678",
                "MEDIUM",
                "libssl3",
                "3.0.11-1~deb12u2",
                Some("3.0.13-1~deb12u1"),
            ),
            finding("CVE-2011-3374", "LOW", "apt", "2.6.1", None),
            finding("CVE-2022-0563", "LOW", "util-linux", "2.38.1-5+b1", None),
        ],
        "PASS",
    );
    let fail = message(
        "1.41.0",
        "sha256:9c2e7d4a1b0f8e6d5c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918a7b6c5d",
        vec![
            finding(
                "CVE-2023-4863",
                "CRITICAL",
                "libwebp7",
                "1.2.4-0.2",
                Some("1.2.4-0.2+deb12u1"),
            ),
            finding(
                "CVE-2024-6387",
                "HIGH",
                "openssh-client",
                "1:9.2p1-2+deb12u2",
                Some("1:9.2p1-2+deb12u3"),
            ),
            finding(
                "CVE-2023-44487",
                "HIGH",
                "libnghttp2-14",
                "1.52.0-1",
                Some("1.52.0-1+deb12u1"),
            ),
            finding(
                "CVE-2023-5678",
                "MEDIUM",
                "libssl3",
                "3.0.11-1~deb12u2",
                Some("3.0.13-1~deb12u1"),
            ),
            finding("CVE-2011-3374", "LOW", "apt", "2.6.1", None),
        ],
        "FAIL",
    );
    picture::assert_current(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pictures"),
        &[
            ("pass.svg", picture::draw("ecr-scan-gate", &[pass])),
            ("fail.svg", picture::draw("ecr-scan-gate", &[fail])),
        ],
        "cargo test -p ecr-scan-gate --test pictures",
    );
}
