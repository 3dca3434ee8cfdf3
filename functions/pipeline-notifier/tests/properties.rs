//! The event decoder and the Slack text path under arbitrary input (proptest): no input makes
//! the function panic, and no text from an event — a commit message, an error summary, a
//! pipeline name — reaches Slack as markup that could ping a channel or disguise a link.

use pipeline_notifier::event::parse;
use pipeline_notifier::render::{RenderOptions, render};
use proptest::prelude::*;
use serde_json::Value;
use standins::props::{arb_bytes, arb_json, mutated_samples, strings};

/// Markup that only hostile input contains: the render adds mentions only from
/// configuration (none here) and links only to the console or the event's own URLs.
const FORBIDDEN: &[&str] = &[
    "<!channel",
    "<!here",
    "<@U024BE7LH",
    "<https://evil.example|ok",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_json_is_decoded_or_refused_never_a_panic(event in arb_json()) {
        let _ = parse(&event);
    }

    #[test]
    fn arbitrary_bytes_are_decoded_or_refused_never_a_panic(bytes in arb_bytes()) {
        if let Ok(event) = serde_json::from_slice::<Value>(&bytes) {
            let _ = parse(&event);
        }
    }

    /// Sample events with parts replaced by hostile text or other types: whatever is
    /// understood renders to a payload in which no input became markup.
    #[test]
    fn hostile_text_in_a_real_event_never_becomes_slack_markup(event in mutated_samples("pipeline-notifier")) {
        let Ok(e) = parse(&event) else { return Ok(()) };
        let options = RenderOptions { failure_mention: None, action_failures_posted: true };
        let payload = render(&e, None, &options).slack.to_payload();
        for text in strings(&payload) {
            for bad in FORBIDDEN {
                prop_assert!(!text.contains(bad), "{bad} reached Slack in {text:?}");
            }
        }
    }
}

#[test]
fn deeply_nested_json_is_refused_by_the_runtime_parser_before_the_decoder() {
    // serde_json stops at 128 levels; the Lambda runtime hands the function nothing deeper.
    let text = standins::props::deeply_nested(100_000);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let shallow: Value = serde_json::from_str(&standins::props::deeply_nested(100)).unwrap();
    assert!(parse(&shallow).is_err());
}
