//! Input generators for the property tests: hostile text, arbitrary JSON, and the repository's
//! sample events with parts replaced, removed or retyped — the shapes a decoder meets when an
//! event is malformed, from another source, or crafted.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Text a person could put in a commit message, a pipeline name or an error: Slack's control
/// characters and mention syntax, escapes already escaped, quotes, newlines, multi-byte and
/// combining characters, and plain random Unicode — short, or long enough to need truncating.
pub fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("<!channel>".to_owned()),
        Just("<!here>".to_owned()),
        Just("<@U024BE7LH>".to_owned()),
        Just("<https://evil.example|ok>".to_owned()),
        Just("&amp;".to_owned()),
        Just("&lt;".to_owned()),
        Just("&".to_owned()),
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("*bold* _it_ `code` ~s~".to_owned()),
        Just("\n".to_owned()),
        Just("\"'\\".to_owned()),
        Just("é漢字🚀\u{301}".to_owned()),
        Just("\u{0}\u{7}\u{200b}\u{202e}".to_owned()),
        any::<char>().prop_map(String::from),
        "[a-z ]{1,12}".prop_map(|s| s),
    ];
    prop_oneof![
        12 => vec(pieces.clone(), 0..40).prop_map(|p| p.concat()),
        1 => (vec(pieces, 1..3), 50usize..400).prop_map(|(p, n)| p.concat().repeat(n)),
        3 => any::<String>(),
    ]
}

/// Any JSON value, strings hostile, nested a few levels deep.
pub fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Object keys: mostly names the functions look for, so generated objects reach their code.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "id", "source", "detail-type", "detail", "time", "region", "account", "state",
            "pipeline", "execution-id", "stage", "action", "type", "CodePipeline.job", "data",
            "actionConfiguration", "configuration", "UserParameters", "continuationToken",
            "DeploymentId", "LifecycleEventHookExecutionId", "executionId", "lifecycleStage",
            "executionDetails", "hookDetails", "resourceArn", "repository-name", "image-digest",
            "image-tags", "scan-status", "finding-severity-counts", "lastStatus", "taskArn",
            "containers", "exitCode", "stopCode", "version", "startedBy", "clusterArn",
            "action-type", "result", "tags",
        ])
        .prop_map(str::to_owned),
        1 => hostile_text(),
    ]
}

/// One change to a sample event.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// The node at this position (in a depth-first walk) becomes this value.
    Replace(usize, Value),
    /// The object member at this position is removed.
    Remove(usize),
}

/// `sample` with one to four nodes replaced by arbitrary JSON or removed: wrong types,
/// missing fields, hostile strings where names and messages go.
pub fn mutated(sample: Value) -> impl Strategy<Value = Value> {
    let nodes = count_nodes(&sample).max(1);
    let mutation = prop_oneof![
        3 => (0..nodes, arb_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => (0..nodes, hostile_text()).prop_map(|(i, s)| Mutation::Replace(i, Value::String(s))),
        1 => (0..nodes).prop_map(Mutation::Remove),
    ];
    vec(mutation, 1..5).prop_map(move |mutations| {
        let mut event = sample.clone();
        for m in mutations {
            apply(&mut event, &m);
        }
        event
    })
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(members) => members.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn apply(root: &mut Value, m: &Mutation) {
    let target = match m {
        Mutation::Replace(i, _) | Mutation::Remove(i) => *i,
    };
    let mut seen = 0;
    walk(root, target, &mut seen, m);
}

/// Depth-first; returns true once the mutation is applied.
fn walk(v: &mut Value, target: usize, seen: &mut usize, m: &Mutation) -> bool {
    if *seen == target
        && let Mutation::Replace(_, new) = m
    {
        *v = new.clone();
        return true;
    }
    *seen += 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|item| walk(item, target, seen, m)),
        Value::Object(members) => {
            let keys: Vec<String> = members.keys().cloned().collect();
            for k in keys {
                if *seen == target && matches!(m, Mutation::Remove(_)) {
                    members.remove(&k);
                    return true;
                }
                if let Some(child) = members.get_mut(&k)
                    && walk(child, target, seen, m)
                {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

/// Every string in `v` that Slack shows, for tests that look for hostile input in an output.
/// A button's `value` is left out: Slack never renders it, it only hands it back to the app
/// in the interaction payload (Block Kit reference, button element), so it carries names as
/// they are and the app that receives it treats it as untrusted.
pub fn strings(v: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    collect(v, &mut out);
    out
}

fn collect<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(members) => {
            let button = members.get("type").and_then(Value::as_str) == Some("button");
            members
                .iter()
                .filter(|(name, _)| !(button && name.as_str() == "value"))
                .for_each(|(_, i)| collect(i, out));
        }
        _ => {}
    }
}

/// An object, for decoders whose input is a JSON object member (hookDetails).
pub fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(key(), arb_json(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// The sample events of `function` (`events/<function>/*.json`, not the recorded API answers),
/// each with a few parts replaced, removed or retyped.
pub fn mutated_samples(function: &str) -> impl Strategy<Value = Value> {
    let mut samples: Vec<Value> = crate::sample_paths(function)
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    samples.sort_by_key(Value::to_string);
    prop::sample::select(samples).prop_flat_map(mutated)
}

/// Bytes as a misbehaving sender might post them: random, or JSON cut short or corrupted.
pub fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..512),
        (arb_json(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, at, byte)| {
            let mut bytes = v.to_string().into_bytes();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes
        }),
    ]
}

/// Deeply nested JSON (arrays in arrays), as text: a decoder must not overflow its stack.
pub fn deeply_nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}
