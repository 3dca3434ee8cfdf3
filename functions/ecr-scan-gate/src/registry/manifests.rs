//! Knowing what is judged before judging it: what a tag or digest names (an image, or an
//! image index and the platform images it lists) and which index lists a scanned image, read
//! from the manifests as ECR stores them.

use aws_sdk_ecr::types::ImageIdentifier;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use shared::Error;

use super::{Ecr, Listed, Subject};
use crate::index;

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

impl Ecr {
    /// The digest, tags and manifest media type of what `id` names.
    pub(super) async fn describe(
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
    pub(super) async fn batch_get(
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

    pub(super) async fn subject(
        &self,
        repository: &str,
        id: ImageIdentifier,
    ) -> Result<Subject, Error> {
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

    pub(super) async fn find_index(
        &self,
        repository: &str,
        member: &str,
    ) -> Result<Option<Listed>, Error> {
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
}
