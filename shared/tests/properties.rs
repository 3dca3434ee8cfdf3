//! The Slack and SNS text path under arbitrary input (proptest): whatever text an event or an
//! API hands the suite, what reaches Slack is escaped — no `<`, `>` or `&` from the input
//! survives as markup, so nothing can ping a channel or disguise a link — and within every
//! Slack limit (Block Kit reference: 50 blocks, 3000 characters a section, 2000 a field or
//! context element, 150 a header, 75 a button; 40,000 for `text`; about 12,000 of block
//! text in all), and the SNS subject and message within SNS's (100 ASCII characters on one
//! line; 256 KiB).

use proptest::prelude::*;
use serde_json::Value;
use shared::slack::{
    Block, Button, MAX_BLOCKS, MAX_BUTTON_TEXT, MAX_CONTEXT_ELEMENTS, MAX_CONTEXT_TEXT,
    MAX_FALLBACK_TEXT, MAX_FIELD_TEXT, MAX_FIELDS, MAX_HEADER_TEXT, MAX_SECTION_TEXT,
    MAX_TOTAL_BLOCK_TEXT, Message, Mrkdwn,
};
use shared::sns::{sns_message, sns_subject};
use shared::text::{escape_mrkdwn, slack_len, truncate_mrkdwn};
use standins::props::hostile_text;

/// Every `&` starts one of the three entities the escaping writes, and no `<` or `>` is left:
/// the text is inert.
fn assert_inert(text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!text.contains(['<', '>']), "markup in {text:?}");
    for (i, _) in text.match_indices('&') {
        let rest = &text[i..];
        prop_assert!(
            rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;"),
            "a bare & in {text:?}"
        );
    }
    Ok(())
}

fn block_from(kind: u8, parts: &[String]) -> Block {
    let first = parts.first().cloned().unwrap_or_default();
    match kind % 6 {
        0 => Block::Header(first),
        1 => Block::section(
            Mrkdwn::new()
                .bold(&first)
                .newline()
                .plain(parts.get(1).map_or("", String::as_str))
                .code(parts.get(2).map_or("", String::as_str)),
        ),
        2 => Block::fields(parts.iter().map(|p| Mrkdwn::from_untrusted(p)).collect()),
        3 => Block::Context(parts.iter().map(|p| Mrkdwn::from_untrusted(p)).collect()),
        4 => Block::Buttons(
            parts
                .iter()
                .map(|p| Button {
                    label: p.clone(),
                    url: format!("https://console.aws.amazon.com/{}", p.len()),
                })
                .collect(),
        ),
        _ => Block::Divider,
    }
}

fn arb_message() -> impl Strategy<Value = Message> {
    // Up to 60 blocks of up to 11 parts (past the 50 blocks and the 10 fields or context
    // elements); long parts go past the text limits.
    let block = (any::<u8>(), prop::collection::vec(hostile_text(), 0..12));
    (hostile_text(), prop::collection::vec(block, 0..60)).prop_map(|(text, blocks)| {
        blocks.iter().fold(
            Message::new(Mrkdwn::from_untrusted(&text)),
            |m, (kind, parts)| m.block(block_from(*kind, parts)),
        )
    })
}

/// (limit, UTF-16 length) of every text object in a rendered block, by where it sits.
fn block_texts(block: &Value) -> Vec<(usize, String)> {
    let text = |v: &Value| v["text"].as_str().unwrap_or_default().to_owned();
    match block["type"].as_str().unwrap_or_default() {
        "header" => vec![(MAX_HEADER_TEXT, text(&block["text"]))],
        "section" => {
            let mut out = Vec::new();
            if block.get("text").is_some() {
                out.push((MAX_SECTION_TEXT, text(&block["text"])));
            }
            for f in block["fields"].as_array().into_iter().flatten() {
                out.push((MAX_FIELD_TEXT, text(f)));
            }
            out
        }
        "context" => block["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (MAX_CONTEXT_TEXT, text(e)))
            .collect(),
        "actions" => block["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (MAX_BUTTON_TEXT, text(&e["text"])))
            .collect(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn escaped_text_is_inert(s in hostile_text()) {
        assert_inert(&escape_mrkdwn(&s))?;
    }

    #[test]
    fn truncated_escaped_text_is_inert_and_within_its_limit(s in hostile_text(), max in 0usize..4000) {
        let escaped = escape_mrkdwn(&s);
        let cut = truncate_mrkdwn(&escaped, max);
        prop_assert!(slack_len(&cut) <= max);
        assert_inert(&cut)?;
    }

    #[test]
    fn a_link_from_hostile_parts_is_one_link_or_none(url in hostile_text(), label in hostile_text()) {
        let link = Mrkdwn::new().link(&format!("https://x.example/{url}"), &label);
        let link = link.as_str();
        let opened = link.matches('<').count();
        prop_assert!(opened <= 1, "{link:?}");
        if opened == 1 {
            prop_assert!(link.starts_with('<') && link.ends_with('>'), "{link:?}");
            prop_assert_eq!(link.matches('>').count(), 1);
            assert_inert(&link[1..link.len() - 1])?;
        } else {
            assert_inert(link)?;
        }
    }

}

proptest! {
    // Whole messages are big: fewer cases, each of them large.
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn every_payload_fits_slacks_limits_and_carries_no_markup_from_input(m in arb_message()) {
        let payload = m.to_payload();
        let reparsed: Value = serde_json::from_str(&payload.to_string()).unwrap();
        prop_assert_eq!(&reparsed, &payload);

        let fallback = payload["text"].as_str().unwrap();
        prop_assert!(slack_len(fallback) <= MAX_FALLBACK_TEXT);
        assert_inert(fallback)?;
        let blocks = payload["blocks"].as_array().cloned().unwrap_or_default();
        prop_assert!(blocks.len() <= MAX_BLOCKS);
        let mut total = 0;
        for block in &blocks {
            if let Some(fields) = block["fields"].as_array() {
                prop_assert!(fields.len() <= MAX_FIELDS);
            }
            if block["type"] == "context" {
                prop_assert!(block["elements"].as_array().unwrap().len() <= MAX_CONTEXT_ELEMENTS);
            }
            for (limit, text) in block_texts(block) {
                prop_assert!(slack_len(&text) <= limit, "{} > {limit}", slack_len(&text));
                prop_assert!(!text.is_empty(), "Slack refuses empty texts");
                total += slack_len(&text);
                // Bold and code markers are the only markup the builder adds here.
                assert_inert(&text)?;
            }
        }
        prop_assert!(total <= MAX_TOTAL_BLOCK_TEXT, "{total} characters of block text");
    }

    #[test]
    fn the_sns_copy_fits_snss_limits(m in arb_message()) {
        let subject = sns_subject(m.text.text());
        prop_assert!(subject.len() <= 100);
        prop_assert!(subject.is_ascii() && !subject.contains(['\n', '\r']));
        let message = sns_message(&m.to_text());
        prop_assert!(message.len() <= 256 * 1024);
    }
}
