//! Shows a Slack payload roughly as a person reads it in the channel: links as their
//! labels, dates as text, mentions as @-tags, entities decoded.

use serde_json::Value;

/// mrkdwn as displayed: `<url|label>` → `label ↗`, `<!date^…|text>` → `text`,
/// `<!here>` → `@here`, `<!subteam^ID>` → `@ID`, then `&lt;` `&gt;` `&amp;` decoded (so
/// escaped input shows as the literal text it was, which is what Slack does).
pub fn as_read(mrkdwn: &str) -> String {
    let mut out = String::new();
    let mut rest = mrkdwn;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let token = &rest[open + 1..open + close];
        let (target, label) = token.split_once('|').unwrap_or((token, ""));
        let shown = if let Some(special) = target.strip_prefix('!') {
            if special.starts_with("date^") {
                label.to_owned()
            } else {
                format!("@{}", special.trim_start_matches("subteam^"))
            }
        } else if let Some(user) = target.strip_prefix('@') {
            format!("@{user}")
        } else if label.is_empty() {
            format!("{target} ↗")
        } else {
            format!("{label} ↗")
        };
        out.push_str(&shown);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn slack_payload(payload: &Value) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        for l in text.lines() {
            out.push_str("   │ ");
            out.push_str(l);
            out.push('\n');
        }
    };
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    out.push_str("   ┌──────────────────────────────────────────────────────────\n");
    if let Some(text) = payload["text"].as_str() {
        line(&mut out, &format!("(notification: {})", as_read(text)));
    }
    for block in payload["blocks"].as_array().into_iter().flatten() {
        match block["type"].as_str().unwrap_or_default() {
            "header" => line(
                &mut out,
                &format!("# {}", as_read(&s(&block["text"]["text"]))),
            ),
            "section" => {
                if let Some(t) = block["text"]["text"].as_str() {
                    line(&mut out, &as_read(t));
                }
                let fields: Vec<String> = block["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| as_read(&s(&f["text"])).replacen('\n', ": ", 1))
                    .collect();
                // Slack shows short fields two to a row; long ones get a row each here.
                if fields.iter().all(|f| f.chars().count() < 44) {
                    for pair in fields.chunks(2) {
                        let row: String = pair.iter().map(|f| format!("{f:<46}")).collect();
                        line(&mut out, &row);
                    }
                } else {
                    fields.iter().for_each(|f| line(&mut out, f));
                }
            }
            "context" => {
                let parts: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| as_read(&s(&e["text"])))
                    .collect();
                line(&mut out, &format!("({})", parts.join(" · ")));
            }
            "divider" => line(&mut out, "────"),
            "actions" => {
                let buttons: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|b| format!("[ {} ]", s(&b["text"]["text"])))
                    .collect();
                line(&mut out, &buttons.join("  "));
            }
            _ => {}
        }
    }
    out.push_str("   └──────────────────────────────────────────────────────────\n");
    out
}

/// What a function process wrote to its log as metrics, summed per metric and dimensions
/// (the per-function set, without `Function` itself): what CloudWatch would graph.
pub fn metrics_summary(logs: &[String]) -> String {
    let emf = standins::emf::parse(logs);
    let mut totals: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for line in &emf.lines {
        for directive in line["_aws"]["CloudWatchMetrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let dims: Vec<String> = directive["Dimensions"][0]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|d| *d != "Function")
                .map(|d| format!("{d}={}", line[d].as_str().unwrap_or_default()))
                .collect();
            for metric in directive["Metrics"].as_array().into_iter().flatten() {
                let name = metric["Name"].as_str().unwrap_or_default();
                let value: f64 = match &line[name] {
                    Value::Array(values) => values.iter().filter_map(Value::as_f64).sum(),
                    v => v.as_f64().unwrap_or_default(),
                };
                let key = if dims.is_empty() {
                    name.to_owned()
                } else {
                    format!("{name} {}", dims.join(" "))
                };
                *totals.entry(key).or_default() += value;
            }
        }
    }
    let mut out = String::from(
        "\n   Metrics in this container's log (CloudWatch embedded metric format; the alarms read them):\n",
    );
    for (key, value) in totals {
        out.push_str(&format!("     {key}: {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_links_dates_mentions_and_entities_as_slack_shows_them() {
        assert_eq!(
            as_read(
                "<https://x|logs> at <!date^1^{time}|10:00Z> <!subteam^S1> &lt;!channel&gt; &amp;"
            ),
            "logs ↗ at 10:00Z @S1 <!channel> &"
        );
    }
}
