//! Configuration too large or too shared for an environment variable: a JSON document given
//! inline and checked at init, or kept in SSM or Secrets Manager and read on first use.

use std::borrow::Cow;

use super::{ConfigError, Environment, Vars};
use crate::Deadline;
use crate::error::Error;
use crate::secrets::{SecretRef, Secrets};

impl<'a, E: Environment + ?Sized> Vars<'a, E> {
    /// A JSON document: given inline (it starts with `{` or `[`), checked by `parse` now so
    /// a mistake stops the function at init; or an `ssm:`/`secretsmanager:` reference to where
    /// the same JSON is kept, read on first use.
    pub fn document<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<Document<T>>, ConfigError> {
        let Some(text) = self.optional(name)? else {
            return Ok(None);
        };
        if text.starts_with(['{', '[']) {
            return parse(&text)
                .map(|doc| Some(Document::Inline(doc)))
                .map_err(|why| ConfigError::malformed(name, expected, why));
        }
        match SecretRef::parse(&text) {
            Ok(reference @ (SecretRef::Ssm(_) | SecretRef::SecretsManager { .. })) => {
                Ok(Some(Document::Stored(reference)))
            }
            Ok(SecretRef::Literal(_)) => Err(ConfigError::malformed(
                name,
                expected,
                "neither JSON nor an ssm:/secretsmanager: reference",
            )),
            Err(why) => Err(ConfigError::malformed(name, expected, why)),
        }
    }
}

/// A JSON document from configuration (see [`Vars::document`]). Stored documents are for
/// what outgrows an environment variable or is shared between functions.
#[derive(Debug, Clone, PartialEq)]
pub enum Document<T> {
    Inline(T),
    Stored(SecretRef),
}

/// Why a stored [`Document`] could not be loaded; `from` names the store, never its content.
#[derive(Debug)]
pub enum LoadError {
    /// The store could not be read; the error says whether trying again may help.
    Unreadable { from: String, error: Error },
    /// The stored text is not a valid document.
    Invalid { from: String, why: String },
}

impl LoadError {
    /// For a person: `cannot read CHECKS from ssm:/x: …` or `CHECKS in ssm:/x: …`.
    pub fn describe(&self, what: &str) -> String {
        match self {
            Self::Unreadable { from, error } => format!("cannot read {what} from {from}: {error}"),
            Self::Invalid { from, why } => format!("{what} in {from}: {why}"),
        }
    }

    /// As an error: an unreadable store keeps its own word on whether a retry may help; an
    /// invalid document is bad input, which no retry fixes.
    pub fn into_error(self, what: &str) -> Error {
        match self {
            Self::Unreadable { error, .. } => error,
            invalid @ Self::Invalid { .. } => Error::bad_input(invalid.describe(what)),
        }
    }
}

impl<T: Clone> Document<T> {
    /// The inline document, or the stored one read through `secrets` (which keeps it for
    /// `CONFIG_TTL`) and parsed.
    pub async fn load(
        &self,
        secrets: Option<&Secrets>,
        deadline: &Deadline,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Cow<'_, T>, LoadError> {
        let reference = match self {
            Self::Inline(doc) => return Ok(Cow::Borrowed(doc)),
            Self::Stored(reference) => reference,
        };
        let from = reference.describe();
        let Some(secrets) = secrets else {
            let error =
                Error::bad_input("a reference is configured but no secret reader is available");
            return Err(LoadError::Unreadable { from, error });
        };
        match secrets.resolve(reference, deadline).await {
            Ok(text) => parse(text.expose())
                .map(Cow::Owned)
                .map_err(|why| LoadError::Invalid { from, why }),
            Err(error) => Err(LoadError::Unreadable { from, error }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn numbers(text: &str) -> Result<Vec<u32>, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_document_is_inline_json_checked_at_init_or_a_stored_reference() {
        let env = [
            ("INLINE", "[1, 2]"),
            ("STORED", "ssm:/ops/doc"),
            ("BROKEN", "[1, "),
            ("WORD", "s3cr3t-looking-text"),
        ];
        let vars = Vars::new(&env);
        let expected = "a JSON list or a reference";
        assert_eq!(
            vars.document("INLINE", expected, numbers).unwrap(),
            Some(Document::Inline(vec![1, 2]))
        );
        assert_eq!(
            vars.document("STORED", expected, numbers).unwrap(),
            Some(Document::Stored(SecretRef::Ssm("/ops/doc".into())))
        );
        assert_eq!(vars.document("UNSET", expected, numbers).unwrap(), None);
        assert_eq!(
            vars.document("BROKEN", expected, numbers)
                .unwrap_err()
                .variable,
            "BROKEN"
        );
        let word = vars.document("WORD", expected, numbers).unwrap_err();
        assert!(word.problem.contains("neither JSON nor"), "{word}");
        assert!(!word.to_string().contains("s3cr3t"), "{word}");
    }

    #[tokio::test]
    async fn a_stored_document_without_a_secret_reader_is_unreadable_not_a_panic() {
        let doc: Document<Vec<u32>> = Document::Stored(SecretRef::Ssm("/ops/doc".into()));
        let deadline = Deadline::after(Duration::from_secs(5));
        match doc.load(None, &deadline, numbers).await {
            Err(LoadError::Unreadable { from, .. }) => assert_eq!(from, "ssm:/ops/doc"),
            other => panic!("{other:?}"),
        }
        let inline = Document::Inline(vec![7]);
        assert_eq!(
            *inline.load(None, &deadline, numbers).await.unwrap(),
            vec![7]
        );
    }
}
