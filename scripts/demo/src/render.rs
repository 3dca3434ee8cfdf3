//! Shows a Slack payload roughly as a person would read it in the channel.

use serde_json::Value;

pub fn slack_payload(payload: &Value) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        for l in text.lines() {
            out.push_str("   │ ");
            out.push_str(l);
            out.push('\n');
        }
    };
    out.push_str("   ┌──────────────────────────────────────────────────────────\n");
    for block in payload["blocks"].as_array().into_iter().flatten() {
        match block["type"].as_str().unwrap_or_default() {
            "header" => line(
                &mut out,
                &format!("# {}", block["text"]["text"].as_str().unwrap_or_default()),
            ),
            "section" => {
                if let Some(t) = block["text"]["text"].as_str() {
                    line(&mut out, t);
                }
                for f in block["fields"].as_array().into_iter().flatten() {
                    line(&mut out, f["text"].as_str().unwrap_or_default());
                }
            }
            "context" => {
                let parts: Vec<&str> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["text"].as_str())
                    .collect();
                line(&mut out, &format!("({})", parts.join(" · ")));
            }
            "divider" => line(&mut out, "────"),
            "actions" => {
                for b in block["elements"].as_array().into_iter().flatten() {
                    line(
                        &mut out,
                        &format!(
                            "[{}] → {}",
                            b["text"]["text"].as_str().unwrap_or_default(),
                            b["url"].as_str().unwrap_or_default()
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    out.push_str("   └──────────────────────────────────────────────────────────\n");
    out
}
