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
    let layer = seeded_layer(seed);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1024, "digest": layer},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2048, "digest": layer}]
    });
    put_and_scan(moto, repository, Some(tag), &manifest).await
}

fn seeded_layer(seed: &str) -> String {
    format!(
        "sha256:{:0>64}",
        seed.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// PutImage (tagged, or by digest only), then StartImageScan as scan on push would.
async fn put_and_scan(
    moto: &Moto,
    repository: &str,
    tag: Option<&str>,
    manifest: &Value,
) -> String {
    let mut put = json!({"repositoryName": repository, "imageManifest": manifest.to_string()});
    if let Some(tag) = tag {
        put["imageTag"] = json!(tag);
    }
    let out = call(moto, "PutImage", put).await;
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

/// A scan as DescribeImageScanFindings answers it for one image, answered through the
/// recording stub: for what moto cannot show, such as an untagged image's own scan, or
/// findings that appear later ([`ScanOf::answer_after`]).
pub struct ScanOf<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    pub status: &'a str,
    pub findings: Vec<Value>,
    pub enhanced: bool,
    /// `imageScanCompletedAt`, seconds since the epoch.
    pub completed_at: i64,
}

impl ScanOf<'_> {
    fn parts(self) -> (Value, Value) {
        let when =
            json!({"repositoryName": self.repository, "imageId": {"imageDigest": self.digest}});
        let answer = scan_answer(
            self.repository,
            json!({"imageDigest": self.digest}),
            self.status,
            self.findings,
            self.enhanced,
            self.completed_at,
        );
        (when, answer)
    }

    /// From now on (until answered otherwise).
    pub fn answer(self, stub: &crate::RecordingStub) {
        let (when, answer) = self.parts();
        stub.fixture("DescribeImageScanFindings", when, answer);
    }

    /// Once `delay` has passed: until then, what was answered before.
    pub fn answer_after(self, stub: &crate::RecordingStub, delay: std::time::Duration) {
        let (when, answer) = self.parts();
        stub.fixture_after(delay, "DescribeImageScanFindings", when, answer);
    }
}

/// Now, in seconds (the rig's clock).
pub use crate::rig::now_secs;

/// A time in seconds as an EventBridge event's `time` (RFC 3339).
pub fn event_time(secs: i64) -> String {
    shared::telemetry::rfc3339(u64::try_from(secs).unwrap_or(0) * 1000)
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

/// One enhanced finding in the shape the ECR API reference publishes for
/// DescribeImageScanFindings (`EnhancedImageScanFinding`, with its `PackageVulnerabilityDetails`,
/// `ScoreDetails` and `Resource`), every field present: what Inspector's triage and risk look
/// like to the gate. `status` is Inspector's (ACTIVE, SUPPRESSED, CLOSED); `exploit` and
/// `fix` are `YES` / `NO` (`fix` also `PARTIAL`).
pub fn published_enhanced_finding(
    id: &str,
    severity: &str,
    status: &str,
    exploit: &str,
    fix: &str,
    score: f64,
) -> Value {
    json!({
        "awsAccountId": crate::moto::ACCOUNT,
        "description": format!("{id} in libssl3: a flaw an attacker can reach over TLS."),
        "findingArn": format!("arn:aws:inspector2:us-east-1:{}:finding/{}", crate::moto::ACCOUNT, id.to_ascii_lowercase()),
        "firstObservedAt": 1_764_000_000.0,
        "lastObservedAt": 1_764_600_000.0,
        "packageVulnerabilityDetails": {
            "cvss": [{"baseScore": score, "scoringVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "source": "NVD", "version": "3.1"}],
            "referenceUrls": [format!("https://nvd.nist.gov/vuln/detail/{id}")],
            "relatedVulnerabilities": [],
            "source": "NVD",
            "sourceUrl": format!("https://nvd.nist.gov/vuln/detail/{id}"),
            "vendorCreatedAt": 1_700_000_000.0,
            "vendorSeverity": severity,
            "vendorUpdatedAt": 1_700_100_000.0,
            "vulnerabilityId": id,
            "vulnerablePackages": [{
                "arch": "X86_64", "epoch": 0, "name": "libssl3", "packageManager": "OS",
                "release": "1", "sourceLayerHash": "sha256:5e2b…", "version": "3.0.2",
                "fixedInVersion": if fix == "NO" { "NotAvailable" } else { "3.0.13" }
            }]
        },
        "remediation": {"recommendation": {"text": "Upgrade libssl3 to 3.0.13"}},
        "resources": [{
            "details": {"awsEcrContainerImage": {"architecture": "amd64", "imageHash": "sha256:…", "platform": "DEBIAN_12", "registry": crate::moto::ACCOUNT, "repositoryName": "prod-api"}},
            "id": "arn:aws:ecr:us-east-1:123456789012:repository/prod-api/sha256:…",
            "type": "AWS_ECR_CONTAINER_IMAGE"
        }],
        "score": score,
        "scoreDetails": {"cvss": {"adjustments": [], "score": score, "scoreSource": "NVD", "scoringVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "version": "3.1"}},
        "severity": severity,
        "status": status,
        "title": format!("{id} - libssl3"),
        "type": "PACKAGE_VULNERABILITY",
        "updatedAt": 1_764_600_000.0,
        "exploitAvailable": exploit,
        "fixAvailable": fix
    })
}

/// Makes moto answer DescribeImageScanFindings for `image_id` with this status and these
/// findings. moto keys a configured result by how the image is asked for (tag or digest) and
/// the gate asks by digest (it resolves a tag once, then judges that digest), so a result
/// configured by tag is configured by the tag's digest too. For an untagged image, answer
/// through the recording stub instead: moto gives a result that names no tag to the first
/// untagged image it is asked about, whatever its digest.
pub async fn scan_result(
    moto: &Moto,
    repository: &str,
    image_id: Value,
    status: &str,
    findings: Vec<Value>,
    enhanced: bool,
) {
    let mut ids = vec![image_id.clone()];
    if image_id.get("imageTag").is_some() {
        let described = call(
            moto,
            "DescribeImages",
            json!({"repositoryName": repository, "imageIds": [image_id]}),
        )
        .await;
        if let Some(digest) = described["imageDetails"][0]["imageDigest"].as_str() {
            ids.push(json!({"imageDigest": digest}));
        }
    }
    for id in ids {
        let result = scan_answer(
            repository,
            id,
            status,
            findings.clone(),
            enhanced,
            1_700_000_000,
        );
        moto.post_moto_api(
            "/moto-api/static/ecr/scan-finding-results",
            &json!({"results": [result], "region": crate::moto::REGION}),
        )
        .await;
    }
}

/// A DescribeImageScanFindings answer, as ECR gives it (for moto's configured results and
/// the recording stub's fixtures).
pub fn scan_answer(
    repository: &str,
    image_id: Value,
    status: &str,
    findings: Vec<Value>,
    enhanced: bool,
    completed_at: i64,
) -> Value {
    let key = if enhanced {
        "enhancedFindings"
    } else {
        "findings"
    };
    json!({
        "registryId": crate::moto::ACCOUNT,
        "repositoryName": repository,
        "imageId": image_id,
        "imageScanStatus": {"status": status, "description": format!("scan {status}")},
        "imageScanFindings": {key: findings, "imageScanCompletedAt": completed_at}
    })
}

/// Pushes an image index the way `docker buildx build --platform … --push` does: one
/// platform image per name in `platforms` (untagged, each scanned as pushed), and an index
/// tagged `tag` listing them plus one build attestation manifest (platform
/// `unknown/unknown`, buildx's default provenance). Returns the index digest and each
/// platform's digest, then the attestation's.
pub async fn push_index(
    moto: &Moto,
    repository: &str,
    tag: &str,
    platforms: &[(&str, &str)],
) -> (String, Vec<String>) {
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for (os_arch, seed) in platforms {
        let digest = push_untagged(moto, repository, seed).await;
        let (os, arch) = os_arch.split_once('/').unwrap_or(("linux", os_arch));
        entries.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1024,
            "platform": {"architecture": arch, "os": os}
        }));
        digests.push(digest);
    }
    // Pushed too, as buildx does (an image manifest whose layer is an in-toto statement), so
    // ECR's scan on push sees it: its scan fails, and its event must not read as an image's.
    let statement = format!(
        "sha256:{}",
        sha256_hex(format!("provenance of {tag}").as_bytes())
    );
    let attestation_manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 167, "digest": statement},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "size": 1024, "digest": statement,
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]
    });
    let out = call(
        moto,
        "PutImage",
        json!({"repositoryName": repository, "imageManifest": attestation_manifest.to_string()}),
    )
    .await;
    let attestation = out["image"]["imageId"]["imageDigest"]
        .as_str()
        .unwrap()
        .to_owned();
    entries.push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": attestation, "size": 566,
        "annotations": {"vnd.docker.reference.digest": digests[0], "vnd.docker.reference.type": "attestation-manifest"},
        "platform": {"architecture": "unknown", "os": "unknown"}
    }));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries
    })
    .to_string();
    digests.push(attestation);
    // A registry names a manifest by the SHA-256 of its bytes; moto would make one up.
    let index_digest = format!("sha256:{}", sha256_hex(index.as_bytes()));
    call(
        moto,
        "PutImage",
        json!({"repositoryName": repository, "imageTag": tag, "imageManifest": index,
               "imageManifestMediaType": "application/vnd.oci.image.index.v1+json",
               "imageDigest": index_digest}),
    )
    .await;
    (index_digest, digests)
}

/// A platform image as buildx pushes it: by digest, without a tag (the tag is on the index).
async fn push_untagged(moto: &Moto, repository: &str, seed: &str) -> String {
    let layer = seeded_layer(seed);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1024, "digest": layer},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 2048, "digest": layer}]
    });
    put_and_scan(moto, repository, None, &manifest).await
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
