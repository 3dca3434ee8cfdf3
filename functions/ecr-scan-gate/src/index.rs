//! What an image index (OCI index or Docker manifest list) lists: the platform images that
//! run, and the entries that are not images to judge (build attestations, other artifacts).
//!
//! `docker buildx` pushes an index even for one platform, because it adds provenance
//! attestations by default; ECR scans the platform manifests, not the index (an index has no
//! layers to scan). So a gate asked about an index judges every platform it lists.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Image manifests ECR stores and scans (OCI, Docker schema 2, and the old schema 1).
const IMAGE_MANIFESTS: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// More platforms than any real index lists: each one costs a findings read, so an index
/// claiming more is refused rather than read for minutes.
pub const MAX_PLATFORMS: usize = 32;

/// One runnable image listed by an image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub name: String,
    pub digest: String,
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    platform: Option<PlatformDoc>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
}

#[derive(Deserialize)]
struct PlatformDoc {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// The index's listing: platforms to judge and skipped entries, each with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub platforms: Vec<Platform>,
    pub skipped: Vec<String>,
    /// The skipped entries' digests: ECR's scan on push scans an attestation manifest too (and
    /// fails it), and its scan event is told apart by this.
    pub not_judged: Vec<String>,
}

fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", hex.chars().take(12).collect::<String>())
}

/// Reads an index manifest. Anything the gate cannot be sure is not a runnable image (a
/// nested index, an entry without a digest) makes the whole index unjudgeable: the caller
/// fails closed with the reason.
pub fn parse(manifest: &str) -> Result<Listing, String> {
    let doc: Document = serde_json::from_str(manifest).map_err(|e| {
        format!(
            "the image index is not a readable manifest (JSON error at line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    if let Some(t) = doc.media_type.as_deref().filter(|t| !is_index(t)) {
        return Err(format!("the manifest is a {t}, not an image index"));
    }
    let entries = doc
        .manifests
        .ok_or("the image index has no manifests list")?;
    let mut listing = Listing {
        platforms: Vec::new(),
        skipped: Vec::new(),
        not_judged: Vec::new(),
    };
    for d in entries {
        if !d.digest.starts_with("sha256:") || d.digest.len() != 71 {
            return Err("the image index lists an entry without a sha256 digest".into());
        }
        // buildx marks its provenance/SBOM manifests both ways; either is enough.
        let attestation = d
            .annotations
            .get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest");
        let unknown_platform = d
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
        if attestation || unknown_platform {
            listing.skipped.push(format!(
                "{} (build attestation, platform unknown/unknown)",
                short(&d.digest)
            ));
            listing.not_judged.push(d.digest);
            continue;
        }
        match d.media_type.as_deref() {
            Some(t) if is_index(t) => {
                return Err(format!(
                    "the image index lists another index ({}); nested indexes are not judged",
                    short(&d.digest)
                ));
            }
            Some(t) if IMAGE_MANIFESTS.contains(&t) && d.artifact_type.is_none() => {}
            other => {
                let kind = d
                    .artifact_type
                    .as_deref()
                    .or(other)
                    .unwrap_or("no media type");
                listing
                    .skipped
                    .push(format!("{} (not an image: {kind})", short(&d.digest)));
                listing.not_judged.push(d.digest);
                continue;
            }
        }
        let name = match &d.platform {
            Some(p) => {
                let mut name = format!("{}/{}", p.os, p.architecture);
                if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
                    name = format!("{name}/{v}");
                }
                name
            }
            None => format!("(no platform) {}", short(&d.digest)),
        };
        listing.platforms.push(Platform {
            name,
            digest: d.digest,
        });
    }
    if listing.platforms.is_empty() {
        return Err("the image index lists no image to judge".into());
    }
    if listing.platforms.len() > MAX_PLATFORMS {
        return Err(format!(
            "the image index lists {} platform images, more than the {MAX_PLATFORMS} the gate reads",
            listing.platforms.len()
        ));
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    /// What `docker buildx build --platform linux/amd64,linux/arm64 --push` writes by
    /// default: two platform manifests and one attestation manifest per platform.
    fn buildx_index() -> String {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest('a'), "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest('b'), "size": 1, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest('c'), "size": 1,
                 "annotations": {"vnd.docker.reference.digest": digest('a'), "vnd.docker.reference.type": "attestation-manifest"},
                 "platform": {"architecture": "unknown", "os": "unknown"}}
            ]
        })
        .to_string()
    }

    #[test]
    fn platforms_are_listed_and_attestations_skipped_and_named() {
        let l = parse(&buildx_index()).unwrap();
        assert_eq!(
            l.platforms,
            vec![
                Platform {
                    name: "linux/amd64".into(),
                    digest: digest('a')
                },
                Platform {
                    name: "linux/arm64/v8".into(),
                    digest: digest('b')
                }
            ]
        );
        assert_eq!(l.skipped.len(), 1);
        assert!(l.skipped[0].contains("attestation"), "{:?}", l.skipped);
        assert_eq!(l.not_judged, vec![digest('c')]);
    }

    #[test]
    fn an_index_that_cannot_be_judged_whole_is_refused_with_the_reason() {
        let nested = json!({"mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_INDEX, "digest": digest('d'), "size": 1}
        ]});
        assert!(parse(&nested.to_string()).unwrap_err().contains("nested"));
        let only_attestations = json!({"manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest('c'), "size": 1,
             "platform": {"architecture": "unknown", "os": "unknown"}}
        ]});
        assert!(
            parse(&only_attestations.to_string())
                .unwrap_err()
                .contains("no image")
        );
        let no_digest = json!({"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "md5:x"}]});
        assert!(parse(&no_digest.to_string()).is_err());
        assert!(parse("not json").is_err());
        assert!(
            parse(r#"{"mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}"#)
                .is_err()
        );
    }

    #[test]
    fn an_artifact_in_an_index_is_skipped_and_said() {
        let with_signature = json!({"manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": digest('a'), "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json", "digest": digest('e'), "size": 1}
        ]});
        let l = parse(&with_signature.to_string()).unwrap();
        assert_eq!(l.platforms.len(), 1);
        assert!(l.skipped[0].contains("cosign"), "{:?}", l.skipped);
    }
}
