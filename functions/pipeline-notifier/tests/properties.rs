//! The event decoder and the Slack text path under arbitrary input (proptest): no input makes
//! the function panic, and no text from an event — a commit message, an error summary, a
//! pipeline name — reaches Slack as markup that could ping a channel or disguise a link.

use pipeline_notifier::event::parse;
use pipeline_notifier::live::state::merge;
use pipeline_notifier::live::view::render_live;
use pipeline_notifier::render::{RenderOptions, render};
use proptest::prelude::*;
use serde_json::Value;
use shared::text::slack_len;
use standins::codepipeline::{Ending, execution_events};
use standins::props::{arb_bytes, arb_json, hostile_text, mutated_samples, strings};

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

    /// The live message, merged from an execution's events in any order with hostile stage
    /// and action names and error text: no input becomes markup, and every block stays within
    /// Slack's limits (header 150, section 3000 characters).
    #[test]
    fn hostile_names_in_any_order_never_become_markup_in_the_live_message(
        stage in hostile_text(),
        action in hostile_text(),
        summary in hostile_text(),
        order in Just(()).prop_perturb(|_, mut rng| (0..64).map(|_| rng.next_u32()).collect::<Vec<u32>>()),
    ) {
        let mut events = execution_events("exec", Ending::BuildFails);
        for e in &mut events {
            if e["detail"]["stage"] == "Build" {
                e["detail"]["stage"] = stage.clone().into();
            }
            if e["detail"]["action"] == "BuildImage" {
                e["detail"]["action"] = action.clone().into();
            }
            if e["detail"]["execution-result"].is_object() {
                e["detail"]["execution-result"]["external-execution-summary"] = summary.clone().into();
            }
        }
        for (i, key) in order.iter().enumerate().take(events.len()) {
            let j = *key as usize % events.len();
            events.swap(i, j);
        }
        let mut state = None;
        for e in &events {
            let Ok(e) = parse(e) else { continue };
            if let Some(next) = merge(state.as_ref(), &e, true) {
                state = Some(next);
            }
        }
        let Some(state) = state else { return Ok(()) };
        let payload = render_live(&state).to_payload();
        for text in strings(&payload) {
            for bad in FORBIDDEN {
                prop_assert!(!text.contains(bad), "{bad} reached Slack in {text:?}");
            }
        }
        for block in payload["blocks"].as_array().into_iter().flatten() {
            let own = block["text"]["text"].as_str().map(slack_len).unwrap_or(0);
            match block["type"].as_str() {
                Some("header") => prop_assert!(own <= 150, "header of {own}"),
                Some("section") => prop_assert!(own <= 3000, "section of {own}"),
                _ => {}
            }
        }
    }

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
        let options = RenderOptions { failure_mention: None, action_failures_posted: true, approvals: true };
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
