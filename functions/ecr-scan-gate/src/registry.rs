//! ECR: what a tag or digest names (an image, or an image index and the platform images it
//! lists), each image's scan and findings (every page, up to a bound; basic and enhanced), a
//! basic scan started when none exists, and the optional promotion tag.

mod findings;
mod manifests;
mod promotion;

use std::future::Future;

use aws_sdk_ecr::types::ImageIdentifier;
use shared::{Deadline, Error};

use crate::event::{ImageRef, Reference};
use crate::index::Platform;
use crate::policy::Finding;

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

fn image_id(image: &ImageRef) -> ImageIdentifier {
    match &image.reference {
        Reference::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
        Reference::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
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
