//! Snapshots of the live message in each state an execution can be in, rendered from the
//! state its events merge into, and the escaping of hostile names in it.

use pipeline_notifier::event::parse;
use pipeline_notifier::live::state::{Execution, merge};
use pipeline_notifier::live::view::render_live;
use serde_json::{Value, json};
use standins::codepipeline::{Ending, execution_events};

fn fold(events: &[Value]) -> Execution {
    let mut state: Option<Execution> = None;
    for e in events {
        let e = parse(e).unwrap();
        if let Some(next) = merge(state.as_ref(), &e, false) {
            state = Some(next);
        }
    }
    state.unwrap()
}

/// The events of a run up to (and including) the first whose id ends with `last`.
fn until(ending: Ending, last: &str) -> Vec<Value> {
    let events = execution_events("3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01", ending);
    let end = events
        .iter()
        .position(|e| e["id"].as_str().unwrap().ends_with(last))
        .unwrap();
    events[..=end].to_vec()
}

fn with_pipeline_event(mut events: Vec<Value>, state: &str) -> Vec<Value> {
    let mut last = events[0].clone();
    last["id"] = json!(format!("pipeline-{state}"));
    last["time"] = json!("2026-11-20T10:30:00Z");
    last["detail"]["state"] = json!(state);
    events.push(last);
    events
}

#[test]
fn the_live_message_in_each_state() {
    let states = [
        ("started", until(Ending::Succeeded, "pipeline-----STARTED")),
        (
            "building",
            until(Ending::Succeeded, "Build-BuildImage-STARTED"),
        ),
        (
            "waiting-for-approval",
            execution_events(
                "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01",
                Ending::AwaitingApproval,
            ),
        ),
        (
            "succeeded",
            execution_events("3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01", Ending::Succeeded),
        ),
        (
            "failed",
            execution_events("3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01", Ending::BuildFails),
        ),
        (
            "stopping",
            with_pipeline_event(
                until(Ending::Succeeded, "Build-BuildImage-STARTED"),
                "STOPPING",
            ),
        ),
        (
            "stopped",
            with_pipeline_event(
                until(Ending::Succeeded, "Build-BuildImage-STARTED"),
                "STOPPED",
            ),
        ),
        (
            "superseded",
            with_pipeline_event(
                until(Ending::Succeeded, "Approve-ProdApproval-STARTED"),
                "SUPERSEDED",
            ),
        ),
    ];
    for (name, events) in states {
        let message = render_live(&fold(&events));
        insta::assert_json_snapshot!(format!("live-{name}"), message.to_payload());
    }
}

#[test]
fn hostile_names_in_events_arrive_escaped() {
    let mut events = execution_events("exec", Ending::BuildFails);
    for e in &mut events {
        if e["detail"]["stage"] == json!("Build") {
            e["detail"]["stage"] = json!("<!channel> Build");
        }
        if e["detail"]["action"] == json!("BuildImage") {
            e["detail"]["action"] = json!("<https://evil.example|click>");
        }
    }
    let text = render_live(&fold(&events)).to_payload().to_string();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
    assert!(text.contains("&lt;!channel&gt; Build"), "{text}");
}

/// The README's picture of the live message is this rendering, drawn as Slack lays it out
/// (roughly): a failed run, then a green one. `UPDATE_PICTURES=1` redraws it after a change.
#[test]
fn the_readme_picture_is_the_live_message_as_rendered_now() {
    let id = "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01";
    let cards = [
        render_live(&fold(&execution_events(id, Ending::BuildFails))).to_payload(),
        render_live(&fold(&execution_events(id, Ending::Succeeded))).to_payload(),
    ];
    let svg = picture::draw(&cards);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pictures/live-message.svg");
    if std::env::var_os("UPDATE_PICTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &svg).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == svg,
        "{} is not the current rendering: run UPDATE_PICTURES=1 cargo test -p pipeline-notifier --test live_rendering",
        path.display()
    );
}

/// A small SVG drawing of Block Kit: headers, mrkdwn sections (bold, code, links), buttons
/// and context lines. Enough to show the message's shape, not a Slack client.
mod picture {
    use serde_json::Value;

    const WIDTH: usize = 640;
    const LINE: usize = 22;

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    /// One mrkdwn line as SVG tspans: `*bold*`, `` `code` ``, `<url|label>` links and
    /// `<!date^…|text>`; Slack's own entities decoded first.
    fn spans(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while !rest.is_empty() {
            let next = rest.find(['*', '`', '<']).unwrap_or(rest.len());
            out.push_str(&escape(&decode(&rest[..next])));
            rest = &rest[next..];
            let Some(mark) = rest.chars().next() else {
                break;
            };
            let close = match mark {
                '<' => '>',
                other => other,
            };
            let Some(end) = rest[1..].find(close).map(|e| e + 1) else {
                out.push_str(&escape(&decode(rest)));
                break;
            };
            let inner = &rest[1..end];
            match mark {
                '*' => out.push_str(&format!(
                    "<tspan font-weight=\"bold\">{}</tspan>",
                    escape(&decode(inner))
                )),
                '`' => out.push_str(&format!(
                    "<tspan font-family=\"monospace\" fill=\"#e01e5a\">{}</tspan>",
                    escape(&decode(inner))
                )),
                _ => {
                    let label = inner.split_once('|').map(|(_, l)| l).unwrap_or(inner);
                    let colour = if inner.starts_with('!') {
                        "#1d1c1d"
                    } else {
                        "#1264a3"
                    };
                    out.push_str(&format!(
                        "<tspan fill=\"{colour}\">{}</tspan>",
                        escape(&decode(label))
                    ));
                }
            }
            rest = &rest[end + 1..];
        }
        out
    }

    fn decode(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    fn card(payload: &Value, top: usize) -> (String, usize) {
        let blocks = payload["blocks"].as_array().cloned().unwrap_or_default();
        let header = blocks
            .first()
            .and_then(|b| b["text"]["text"].as_str())
            .unwrap_or_default();
        let bar = if header.starts_with('❌') {
            "#e01e5a"
        } else if header.starts_with('✅') {
            "#2eb67d"
        } else {
            "#ecb22e"
        };
        let mut body = String::new();
        let mut y = top + 34;
        for block in &blocks {
            match block["type"].as_str().unwrap_or_default() {
                "header" => {
                    body.push_str(&format!(
                        "<text x=\"28\" y=\"{y}\" font-size=\"17\" font-weight=\"bold\">{}</text>",
                        escape(block["text"]["text"].as_str().unwrap_or_default())
                    ));
                    y += LINE + 6;
                }
                "section" => {
                    for line in block["text"]["text"].as_str().unwrap_or_default().lines() {
                        body.push_str(&format!(
                            "<text x=\"28\" y=\"{y}\" font-size=\"13\">{}</text>",
                            spans(line)
                        ));
                        y += LINE;
                    }
                    y += 4;
                }
                "actions" => {
                    let mut x = 28;
                    for e in block["elements"].as_array().into_iter().flatten() {
                        let label = e["text"]["text"].as_str().unwrap_or_default();
                        let w = 24 + 7 * label.chars().count();
                        body.push_str(&format!(
                            "<rect x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"26\" rx=\"4\" fill=\"#fff\" stroke=\"#bbb\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">{}</text>",
                            y - 17,
                            x + 12,
                            y,
                            escape(label)
                        ));
                        x += w + 8;
                    }
                    y += LINE + 10;
                }
                "context" => {
                    for e in block["elements"].as_array().into_iter().flatten() {
                        body.push_str(&format!(
                            "<text x=\"28\" y=\"{y}\" font-size=\"11\" fill=\"#616061\">{}</text>",
                            spans(e["text"].as_str().unwrap_or_default())
                        ));
                        y += LINE - 4;
                    }
                }
                _ => {}
            }
        }
        let height = y - top;
        let frame = format!(
            "<rect x=\"8\" y=\"{top}\" width=\"{}\" height=\"{height}\" rx=\"6\" fill=\"#f8f8f8\" stroke=\"#ddd\"/><rect x=\"8\" y=\"{top}\" width=\"5\" height=\"{height}\" fill=\"{bar}\"/>",
            WIDTH - 16
        );
        (frame + &body, height)
    }

    pub fn draw(payloads: &[Value]) -> String {
        let mut top = 8;
        let mut parts = String::new();
        for p in payloads {
            let (svg, height) = card(p, top);
            parts.push_str(&svg);
            top += height + 12;
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{top}\" font-family=\"Lato, Helvetica, Arial, sans-serif\" fill=\"#1d1c1d\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n{parts}\n</svg>\n"
        )
    }
}
