//! ECR set-up in moto for tests and the demo: repositories, pushed images, and the scan
//! results moto should answer (moto keys a configured result by how the image is asked
//! for, tag or digest, so configure one per way).

use serde_json::{Value, json};

use crate::Moto;

const ECR: &str = "AmazonEC2ContainerRegistry_V20150921";

pub async fn call(moto: &Moto, operation: &str, body: Value) -> Value {
    moto.aws_json("ecr", &format!("{ECR}.{operation}"), &body)
        .await
}

pub async fn create_repository(moto: &Moto, name: &str, immutable: bool) {
    let mutability = if immutable { "IMMUTABLE" } else { "MUTABLE" };
    call(
        moto,
        "CreateRepository",
        json!({"repositoryName": name, "imageTagMutability": mutability}),
    )
    .await;
}

/// Pushes a manifest whose layer is unique to `seed` (moto derives digests from layers)
/// and starts a scan; returns the image digest.
pub async fn push_image(moto: &Moto, repository: &str, tag: &str, seed: &str) -> String {
    let layer = format!(
        "sha256:{:0>64}",
        seed.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1024, "digest": layer},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2048, "digest": layer}]
    });
    let out = call(moto, "PutImage", json!({"repositoryName": repository, "imageTag": tag, "imageManifest": manifest.to_string()})).await;
    let digest = out["image"]["imageId"]["imageDigest"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        moto,
        "StartImageScan",
        json!({"repositoryName": repository, "imageId": {"imageDigest": digest}}),
    )
    .await;
    digest
}

pub fn basic_finding(id: &str, severity: &str) -> Value {
    json!({
        "name": id, "severity": severity, "uri": format!("https://nvd.nist.gov/vuln/detail/{id}"),
        "attributes": [{"key": "package_name", "value": "openssl"}, {"key": "package_version", "value": "3.0.1"}]
    })
}

pub fn enhanced_finding(id: &str, severity: &str, fix_available: &str) -> Value {
    json!({
        "severity": severity, "fixAvailable": fix_available, "title": format!("{id} - libssl"),
        "packageVulnerabilityDetails": {
            "vulnerabilityId": id, "sourceUrl": format!("https://nvd.nist.gov/vuln/detail/{id}"),
            "vulnerablePackages": [{"name": "libssl3", "version": "3.0.2", "fixedInVersion": if fix_available == "NO" { "NotAvailable" } else { "3.0.13" }}]
        }
    })
}

/// Makes moto answer DescribeImageScanFindings for `image_id` (by tag or by digest: moto
/// keys results by how the image is asked for) with this status and these findings.
pub async fn scan_result(
    moto: &Moto,
    repository: &str,
    image_id: Value,
    status: &str,
    findings: Vec<Value>,
    enhanced: bool,
) {
    let key = if enhanced {
        "enhancedFindings"
    } else {
        "findings"
    };
    let result = json!({
        "registryId": crate::moto::ACCOUNT,
        "repositoryName": repository,
        "imageId": image_id,
        "imageScanStatus": {"status": status, "description": format!("scan {status}")},
        "imageScanFindings": {key: findings, "imageScanCompletedAt": 1_700_000_000}
    });
    moto.post_moto_api(
        "/moto-api/static/ecr/scan-finding-results",
        &json!({"results": [result], "region": crate::moto::REGION}),
    )
    .await;
}
