//! SNS publishing within SNS's limits: a subject of at most 100 ASCII characters with no
//! line breaks, a message of at most 256 KiB.

use crate::deadline::Deadline;
use crate::error::Error;
use crate::text::truncate_bytes;

pub const MAX_SUBJECT: usize = 100;
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// A bound of our own (the notices carry four); SQS subscribers with raw message delivery
/// keep at most 10 (SNS developer guide, "Amazon SNS message attributes").
pub const MAX_ATTRIBUTES: usize = 10;
/// Our own bound on an attribute's value: a name or a state, never a document. The
/// attributes count towards the 256 KiB message limit.
pub const MAX_ATTRIBUTE_VALUE: usize = 256;

pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sns::Client::new(sdk),
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Publishes with `attributes` (name, value) as String message attributes, for
    /// subscriptions' filter policies, and returns SNS's message id.
    pub async fn publish(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, String)],
        deadline: &Deadline,
    ) -> Result<String, Error> {
        let subject = sns_subject(subject);
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .set_subject((!subject.is_empty()).then_some(subject))
            // The attributes count towards SNS's 256 KiB (Publish, SNS API reference).
            .message(sns_message_within(message, attributes_size(attributes)));
        for (name, value) in attributes.iter().take(MAX_ATTRIBUTES) {
            // A value is untrusted text (a pipeline's name): kept short, and never empty,
            // which SNS refuses.
            let value = truncate_bytes(value.trim(), MAX_ATTRIBUTE_VALUE);
            if value.is_empty() {
                continue;
            }
            if let Ok(attribute) = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
            {
                request = request.message_attributes(*name, attribute);
            }
        }
        let out = deadline
            .run(request.send())
            .await
            .map_err(|_| Error::OutOfTime("publishing to SNS"))?
            .map_err(|e| Error::from_sdk("SNS", "Publish", e))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// SNS subjects must be ASCII without control characters, start with a letter, digit or
/// punctuation, and stay under 100 characters (email subscribers see them as the subject).
pub fn sns_subject(text: &str) -> String {
    let ascii: String = text
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect();
    let collapsed = ascii
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut subject: String = collapsed.chars().take(MAX_SUBJECT).collect();
    if collapsed.len() > MAX_SUBJECT {
        subject.truncate(MAX_SUBJECT - 3);
        subject.push_str("...");
    }
    subject
}

pub fn sns_message(text: &str) -> String {
    sns_message_within(text, 0)
}

/// What the attributes take of the message's size: each name, its type and its value.
fn attributes_size(attributes: &[(&str, String)]) -> usize {
    attributes
        .iter()
        .take(MAX_ATTRIBUTES)
        .map(|(name, value)| name.len() + "String".len() + value.len().min(MAX_ATTRIBUTE_VALUE))
        .sum()
}

fn sns_message_within(text: &str, attributes: usize) -> String {
    let message = truncate_bytes(text, MAX_MESSAGE_BYTES.saturating_sub(attributes)).into_owned();
    // SNS rejects an empty message.
    if message.is_empty() {
        "(empty)".to_owned()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_one_ascii_line_within_the_limit() {
        let s = sns_subject("FAILED: ünïcode\npipeline\r\n".repeat(20).as_str());
        assert!(s.len() <= MAX_SUBJECT, "{}", s.len());
        assert!(s.is_ascii());
        assert!(!s.contains(['\n', '\r']));
        assert!(s.ends_with("..."));
    }

    #[test]
    fn short_subject_is_kept() {
        assert_eq!(sns_subject("prod-api: SUCCEEDED"), "prod-api: SUCCEEDED");
    }

    #[test]
    fn message_is_cut_to_256_kib_on_a_char_boundary() {
        let m = sns_message(&"é".repeat(200_000));
        assert!(m.len() <= MAX_MESSAGE_BYTES);
        assert!(m.ends_with(crate::text::TRUNCATION_MARKER));
        assert_eq!(sns_message(""), "(empty)");
    }
}
