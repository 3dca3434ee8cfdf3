//! Putting the promotion tag (PASS_TAG) on an image that passed, and telling what a refusal
//! means: the tag already there, the tag held by another image, or a real failure.

use aws_sdk_ecr::types::ImageIdentifier;
use shared::Error;

use super::{Ecr, Promotion};

impl Ecr {
    pub(super) async fn put_tag(
        &self,
        repository: &str,
        digest: &str,
        tag: &str,
    ) -> Result<Promotion, Error> {
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
