//! ECR: what a tag or digest names (an image, or an image index and the platform images it
//! lists), each image's scan and findings (every page, up to a bound; basic and enhanced), a
//! basic scan started when none exists, and the optional promotion tag.

use std::future::Future;

use aws_sdk_ecr::types::ImageIdentifier;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use shared::{Deadline, Error};

use crate::event::{ImageRef, Reference};
use crate::index::{self, Platform};
use crate::policy::{Finding, Severity};

/// What one image manifest's scan reads as. The image it belongs to (digest, tags) comes
/// from [`Subject`], resolved first, so a tag moved mid-judgement cannot mix two images.
#[derive(Debug, Clone, PartialEq)]
pub enum Scan {
    /// No scan exists yet (scan on push may not have started).
    NotStarted,
    InProgress {
        status: String,
        description: Option<String>,
    },
    Complete {
        findings: Vec<Finding>,
        enhanced: bool,
        /// Seconds since the epoch, when ECR says.
        completed_at: Option<i64>,
    },
    /// FAILED, UNSUPPORTED_IMAGE, or a status this gate does not know: it fails closed.
    Unusable {
        status: String,
        description: Option<String>,
    },
}

/// What a tag or digest names: one image manifest, or an image index (manifest list) whose
/// platform manifests are what ECR scans and what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Image {
        digest: String,
        tags: Vec<String>,
    },
    Index {
        digest: String,
        tags: Vec<String>,
        platforms: Vec<Platform>,
        /// Entries that are not images to run (build attestations, other artifacts), each
        /// with why it was skipped: said in the verdict, never silently dropped.
        skipped: Vec<String>,
    },
}

/// How a scanned image belongs to the image index that lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// One of the platforms: the index is what is judged.
    Platform(Subject),
    /// Listed but not an image to run (a build attestation): nothing to judge.
    NotJudged { index: String },
}

impl Subject {
    pub fn digest(&self) -> &str {
        match self {
            Self::Image { digest, .. } | Self::Index { digest, .. } => digest,
        }
    }

    pub fn tags(&self) -> &[String] {
        match self {
            Self::Image { tags, .. } | Self::Index { tags, .. } => tags,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promotion {
    Tagged,
    AlreadyTagged,
    /// The repository's tags are immutable and the tag already names another image.
    TagTaken(String),
    /// The role may not read or write the image (AccessDenied).
    NotAllowed(String),
    /// ECR was throttling or unavailable past the SDK's retries; a later pass may tag it.
    Unavailable(String),
    /// Anything else, as ECR said it (an image BatchGetImage could not return, ...).
    Failed(String),
}

impl Promotion {
    /// An error while promoting, told as what it is rather than as a tag conflict.
    pub fn from_error(e: &Error) -> Self {
        if matches!(
            e.aws_code(),
            Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation")
        ) {
            Self::NotAllowed(e.to_string())
        } else if e.is_retryable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::Failed(e.to_string())
        }
    }
}

/// The port the handler depends on.
pub trait Registry {
    /// What `image` names now: its digest and tags, and for an image index the platform
    /// images it lists.
    fn resolve(
        &self,
        image: &ImageRef,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Subject, Error>> + Send;
    /// The newest tagged image index in `repository` that lists `member`, if any: a scan
    /// event names a platform manifest (or an attestation, which scan on push scans too),
    /// while the pipeline deploys (and PASS_TAG belongs on) the index.
    fn index_listing(
        &self,
        repository: &str,
        member: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<Listed>, Error>> + Send;
    /// The scan of one image manifest, by digest.
    fn scan(
        &self,
        repository: &str,
        digest: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Scan, Error>> + Send;
    fn promote(
        &self,
        repository: &str,
        digest: &str,
        tag: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Promotion, Error>> + Send;
}

pub struct Ecr {
    client: aws_sdk_ecr::Client,
}

impl Ecr {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecr::Client::new(sdk),
        }
    }
}

/// A bound on pages: a service that keeps handing back a token must not hold the gate.
const MAX_PAGES: usize = 100;
/// Looking for the index that lists a scanned platform image reads at most this many pages
/// of 1,000 tagged images, and the newest this many indexes among them (one BatchGetImage,
/// whose limit is 100 images).
const INDEX_SEARCH_PAGES: usize = 10;
const INDEX_SEARCH_NEWEST: usize = 100;

/// Every manifest type ECR stores, indexes included (BatchGetImage acceptedMediaTypes).
const ACCEPTED_MANIFESTS: [&str; 5] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    index::OCI_INDEX,
    index::DOCKER_MANIFEST_LIST,
];

fn image_id(image: &ImageRef) -> ImageIdentifier {
    match &image.reference {
        Reference::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
        Reference::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
    }
}

fn basic_finding(f: aws_sdk_ecr::types::ImageScanFinding) -> Finding {
    let attr = |key: &str| {
        f.attributes()
            .iter()
            .find(|a| a.key() == key)
            .and_then(|a| a.value())
            .map(str::to_owned)
    };
    Finding {
        id: f.name.clone().unwrap_or_else(|| "(unnamed)".into()),
        severity: Severity::parse(
            f.severity
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or("UNDEFINED"),
        ),
        package: attr("package_name"),
        version: attr("package_version"),
        fixed_in: None,
        url: f.uri.clone(),
        fix_available: None,
    }
}

fn enhanced_finding(f: aws_sdk_ecr::types::EnhancedImageScanFinding) -> Finding {
    let details = f.package_vulnerability_details.as_ref();
    let package = details.and_then(|d| d.vulnerable_packages().first());
    Finding {
        id: details
            .and_then(|d| d.vulnerability_id.clone())
            .or(f.title.clone())
            .unwrap_or_else(|| "(unnamed)".into()),
        severity: Severity::parse(f.severity.as_deref().unwrap_or("UNDEFINED")),
        package: package.and_then(|p| p.name.clone()),
        version: package.and_then(|p| p.version.clone()),
        fixed_in: package
            .and_then(|p| p.fixed_in_version.clone())
            .filter(|v| !v.is_empty() && v != "NotAvailable"),
        url: details.and_then(|d| d.source_url.clone()),
        fix_available: match f.fix_available.as_deref() {
            Some("NO") => Some(false),
            Some("YES" | "PARTIAL") => Some(true),
            _ => None,
        },
    }
}

impl Ecr {
    async fn fetch(&self, repository: &str, digest: &str) -> Result<Scan, Error> {
        let id = || ImageIdentifier::builder().image_digest(digest).build();
        let mut findings = Vec::new();
        let mut enhanced = false;
        let mut next: Option<String> = None;
        let mut first: Option<
            aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput,
        > = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .describe_image_scan_findings()
                .repository_name(repository)
                .image_id(id())
                .set_next_token(next.clone())
                .send()
                .await;
            let mut page = match page {
                Ok(p) => p,
                Err(e) => {
                    let e = Error::from_sdk("ECR", "DescribeImageScanFindings", e);
                    if e.aws_code() == Some("ScanNotFoundException") {
                        return self.start_scan(repository, digest).await;
                    }
                    return Err(e);
                }
            };
            if let Some(f) = page.image_scan_findings.as_mut() {
                findings.extend(
                    f.findings
                        .take()
                        .unwrap_or_default()
                        .into_iter()
                        .map(basic_finding),
                );
                let e = f.enhanced_findings.take().unwrap_or_default();
                enhanced |= !e.is_empty();
                findings.extend(e.into_iter().map(enhanced_finding));
            }
            let token = page.next_token.clone().filter(|t| !t.is_empty());
            if first.is_none() {
                first = Some(page);
                let status = first
                    .as_ref()
                    .and_then(|p| p.image_scan_status.as_ref())
                    .and_then(|s| s.status.as_ref())
                    .map(|s| s.as_str().to_owned());
                if status.as_deref() != Some("COMPLETE") && status.as_deref() != Some("ACTIVE") {
                    break;
                }
            }
            if token.is_none() {
                next = None;
                break;
            }
            if token == next {
                return Err(Error::Aws {
                    service: "ECR",
                    operation: "DescribeImageScanFindings",
                    code: None,
                    message: "pagination returned the same token twice".into(),
                    retryable: false,
                });
            }
            next = token;
        }
        if next.is_some() {
            return Err(Error::bad_input(format!(
                "more than {MAX_PAGES} pages of findings"
            )));
        }
        let Some(first) = first else {
            return Ok(Scan::NotStarted);
        };
        let status = first.image_scan_status.as_ref();
        let status_text = status
            .and_then(|s| s.status.as_ref())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".into());
        let description = status.and_then(|s| s.description.clone());
        match status_text.as_str() {
            "COMPLETE" | "ACTIVE" => {}
            "IN_PROGRESS" | "PENDING" => {
                return Ok(Scan::InProgress {
                    status: status_text,
                    description,
                });
            }
            _ => {
                return Ok(Scan::Unusable {
                    status: status_text,
                    description,
                });
            }
        }
        let completed_at = first
            .image_scan_findings
            .as_ref()
            .and_then(|f| f.image_scan_completed_at)
            .map(|t| t.secs());
        Ok(Scan::Complete {
            findings,
            enhanced: enhanced || status_text == "ACTIVE",
            completed_at,
        })
    }

    /// No scan exists: the repository does not scan on push. Waiting for one would hold a
    /// pipeline for the whole MAX_WAIT, so start a basic scan and say so. ECR allows one
    /// manual scan per image per day, which makes this "once": a second start is refused
    /// with LimitExceededException, read as "a scan is on its way". Any other refusal
    /// (enhanced scanning, no permission) means the image cannot be judged: the answer says
    /// why and what to change.
    async fn start_scan(&self, repository: &str, digest: &str) -> Result<Scan, Error> {
        let started = self
            .client
            .start_image_scan()
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await
            .map_err(|e| Error::from_sdk("ECR", "StartImageScan", e));
        match started {
            Ok(_) => {
                tracing::warn!(
                    repository,
                    digest,
                    "no scan existed; started one (turn on scan on push for this repository)"
                );
                Ok(Scan::InProgress {
                    status: "PENDING".into(),
                    description: Some(
                        "no scan existed (the repository does not scan on push), so the gate started one".into(),
                    ),
                })
            }
            Err(e) if e.is_retryable() => Err(e),
            // One manual scan per image per day: a scan was started recently (by us on an
            // earlier invocation, whose result ECR may not show yet, or by someone else).
            // Wait for it; MAX_WAIT still bounds the wait.
            Err(e) if e.aws_code() == Some("LimitExceededException") => Ok(Scan::InProgress {
                status: "PENDING".into(),
                description: Some(
                    "no scan found yet, and a scan of this image was already started today".into(),
                ),
            }),
            Err(e) => Ok(Scan::Unusable {
                status: "NO_SCAN".into(),
                description: Some(format!(
                    "no scan exists and one could not be started ({e}). Turn on scan on push for the repository; with enhanced scanning, check that Amazon Inspector covers it"
                )),
            }),
        }
    }

    /// The digest, tags and manifest media type of what `id` names.
    async fn describe(
        &self,
        repository: &str,
        id: ImageIdentifier,
    ) -> Result<(String, Vec<String>, Option<String>), Error> {
        let out = self
            .client
            .describe_images()
            .repository_name(repository)
            .image_ids(id)
            .send()
            .await
            .map_err(|e| Error::from_sdk("ECR", "DescribeImages", e))?;
        let detail = out
            .image_details
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| Error::bad_input(format!("no such image in {repository}")))?;
        let digest = detail
            .image_digest
            .filter(|d| !d.is_empty())
            .ok_or_else(|| Error::bad_input("DescribeImages answered an image without a digest"))?;
        Ok((
            digest,
            detail.image_tags.unwrap_or_default(),
            detail.image_manifest_media_type,
        ))
    }

    /// The manifests of `digests` as stored, by digest. The accepted media types are named:
    /// without them ECR may answer a converted manifest, and an index must come back as one.
    /// BatchGetImage of `digests`, naming every manifest type ECR stores, indexes included.
    async fn batch_get(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<aws_sdk_ecr::operation::batch_get_image::BatchGetImageOutput, Error> {
        let ids: Vec<ImageIdentifier> = digests
            .iter()
            .map(|d| ImageIdentifier::builder().image_digest(d).build())
            .collect();
        let ask = |accepted: Option<Vec<String>>| {
            self.client
                .batch_get_image()
                .repository_name(repository)
                .set_image_ids(Some(ids.clone()))
                .set_accepted_media_types(accepted)
                .send()
        };
        let accepted = ACCEPTED_MANIFESTS.iter().map(|t| (*t).to_owned()).collect();
        match ask(Some(accepted)).await {
            Ok(got) => Ok(got),
            // ECR's API reference lists only image manifest types for acceptedMediaTypes;
            // should it refuse the index types, asking without the list returns manifests
            // as stored, which is what an index needs.
            Err(e) if e.code() == Some("InvalidParameterException") => {
                tracing::info!(
                    repository,
                    "BatchGetImage refused the index media types; asking without them"
                );
                ask(None)
                    .await
                    .map_err(|e| Error::from_sdk("ECR", "BatchGetImage", e))
            }
            Err(e) => Err(Error::from_sdk("ECR", "BatchGetImage", e)),
        }
    }

    async fn manifests(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<(String, String, Option<String>)>, Error> {
        let got = self.batch_get(repository, digests).await?;
        Ok(got
            .images
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| {
                let digest = i.image_id.and_then(|id| id.image_digest)?;
                Some((digest, i.image_manifest?, i.image_manifest_media_type))
            })
            .collect())
    }

    async fn subject(&self, repository: &str, id: ImageIdentifier) -> Result<Subject, Error> {
        let (digest, tags, media_type) = self.describe(repository, id).await?;
        if !media_type.as_deref().is_some_and(index::is_index) {
            return Ok(Subject::Image { digest, tags });
        }
        let got = self
            .manifests(repository, std::slice::from_ref(&digest))
            .await?;
        let manifest = got
            .into_iter()
            .find(|(d, _, _)| *d == digest)
            .map(|(_, m, _)| m)
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "BatchGetImage did not return the image index {digest}"
                ))
            })?;
        let listing = index::parse(&manifest).map_err(Error::bad_input)?;
        Ok(Subject::Index {
            digest,
            tags,
            platforms: listing.platforms,
            skipped: listing.skipped,
        })
    }

    async fn find_index(&self, repository: &str, member: &str) -> Result<Option<Listed>, Error> {
        let mut indexes = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..INDEX_SEARCH_PAGES {
            let page = self
                .client
                .describe_images()
                .repository_name(repository)
                .filter(
                    aws_sdk_ecr::types::DescribeImagesFilter::builder()
                        .tag_status(aws_sdk_ecr::types::TagStatus::Tagged)
                        .build(),
                )
                .max_results(1000)
                .set_next_token(next.clone())
                .send()
                .await
                .map_err(|e| Error::from_sdk("ECR", "DescribeImages", e))?;
            for d in page.image_details.unwrap_or_default() {
                if d.image_manifest_media_type
                    .as_deref()
                    .is_some_and(index::is_index)
                    && let Some(digest) = d.image_digest
                {
                    indexes.push((d.image_pushed_at.map(|t| t.secs()).unwrap_or(0), digest));
                }
            }
            next = page.next_token.filter(|t| !t.is_empty());
            if next.is_none() {
                break;
            }
        }
        // Newest first: an index is pushed after its platform images, so the one just
        // pushed is the one that lists a manifest whose scan just completed.
        indexes.sort_by_key(|(pushed_at, _)| std::cmp::Reverse(*pushed_at));
        indexes.truncate(INDEX_SEARCH_NEWEST);
        if indexes.is_empty() {
            return Ok(None);
        }
        let digests: Vec<String> = indexes.iter().map(|(_, d)| d.clone()).collect();
        let manifests = self.manifests(repository, &digests).await?;
        for digest in &digests {
            let Some((_, manifest, _)) = manifests.iter().find(|(d, _, _)| d == digest) else {
                continue;
            };
            // An index that cannot be read is not this member's parent for certain; the
            // member is still judged on its own.
            let Ok(listing) = index::parse(manifest) else {
                continue;
            };
            if listing.platforms.iter().any(|p| p.digest == member) {
                let id = ImageIdentifier::builder().image_digest(digest).build();
                return self
                    .subject(repository, id)
                    .await
                    .map(|s| Some(Listed::Platform(s)));
            }
            if listing.not_judged.iter().any(|d| d == member) {
                return Ok(Some(Listed::NotJudged {
                    index: digest.clone(),
                }));
            }
        }
        Ok(None)
    }

    async fn put_tag(&self, repository: &str, digest: &str, tag: &str) -> Result<Promotion, Error> {
        let got = self.batch_get(repository, &[digest.to_owned()]).await?;
        let Some(image) = got.images.unwrap_or_default().into_iter().next() else {
            // A 200 answer can carry the reason in failures[] instead of an image.
            let why = got
                .failures
                .unwrap_or_default()
                .into_iter()
                .next()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.failure_code
                            .map(|c| c.as_str().to_owned())
                            .unwrap_or_else(|| "unknown".into()),
                        f.failure_reason.unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "no image and no reason".into());
            return Err(Error::bad_input(format!(
                "BatchGetImage could not return {digest}: {why}"
            )));
        };
        let manifest = image
            .image_manifest
            .ok_or_else(|| Error::bad_input("BatchGetImage returned no manifest"))?;
        let put = self
            .client
            .put_image()
            .repository_name(repository)
            .image_manifest(manifest)
            .set_image_manifest_media_type(image.image_manifest_media_type)
            .image_tag(tag)
            .image_digest(digest)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Promotion::Tagged),
            Err(e) => {
                let e = Error::from_sdk("ECR", "PutImage", e);
                match e.aws_code() {
                    // "Already pushed, nothing changed" — or, from some implementations, an
                    // immutable tag held by another image. Where the tag points tells which.
                    Some("ImageAlreadyExistsException") => {
                        let tagged = ImageIdentifier::builder().image_tag(tag).build();
                        let (holder, _, _) = self.describe(repository, tagged).await?;
                        if holder == digest {
                            Ok(Promotion::AlreadyTagged)
                        } else {
                            Ok(Promotion::TagTaken(format!("{tag} already names {holder}")))
                        }
                    }
                    Some("ImageTagAlreadyExistsException") => {
                        Ok(Promotion::TagTaken(e.to_string()))
                    }
                    _ => Err(e),
                }
            }
        }
    }
}

impl Registry for Ecr {
    async fn resolve(&self, image: &ImageRef, deadline: &Deadline) -> Result<Subject, Error> {
        deadline
            .run(self.subject(&image.repository, image_id(image)))
            .await
            .map_err(|_| Error::OutOfTime("reading what the image is"))?
    }

    async fn index_listing(
        &self,
        repository: &str,
        member: &str,
        deadline: &Deadline,
    ) -> Result<Option<Listed>, Error> {
        deadline
            .run(self.find_index(repository, member))
            .await
            .map_err(|_| Error::OutOfTime("looking for the image index"))?
    }

    async fn scan(
        &self,
        repository: &str,
        digest: &str,
        deadline: &Deadline,
    ) -> Result<Scan, Error> {
        deadline
            .run(self.fetch(repository, digest))
            .await
            .map_err(|_| Error::OutOfTime("reading the scan findings"))?
    }

    async fn promote(
        &self,
        repository: &str,
        digest: &str,
        tag: &str,
        deadline: &Deadline,
    ) -> Result<Promotion, Error> {
        deadline
            .run(self.put_tag(repository, digest, tag))
            .await
            .map_err(|_| Error::OutOfTime("tagging the image"))?
    }
}
