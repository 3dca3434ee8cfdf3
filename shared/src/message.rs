//! One description of a notification, rendered twice: as Slack Block Kit and as the plain
//! text SNS subscribers read (e-mail, chat bridges). Renderers build it once; neither form is
//! kept by hand beside the other. Escaping is the default: untrusted text can only enter a
//! [`Mrkdwn`] escaped, and Slack's size limits are applied when the payload is rendered, so
//! no caller can exceed them.

use serde_json::{Value, json};

use crate::text::{TRUNCATION_MARKER, escape_mrkdwn, slack_len, truncate_mrkdwn};

pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_FIELD_TEXT: usize = 2000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_HEADER_TEXT: usize = 150;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
pub const MAX_CONTEXT_TEXT: usize = 2000;
pub const MAX_BUTTONS: usize = 25;
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_URL: usize = 3000;
/// Block Kit: a button's `value`, `action_id` and an actions block's `block_id`.
pub const MAX_BUTTON_VALUE: usize = 2000;
pub const MAX_ACTION_ID: usize = 255;
pub const MAX_FALLBACK_TEXT: usize = 40_000;
/// Slack has rejected messages as `msg_blocks_too_long` at about 13,000 characters of
/// block text in all, below the sum of the per-block limits; stay clear of it.
pub const MAX_TOTAL_BLOCK_TEXT: usize = 12_000;

/// Slack mrkdwn, escaped as it is built, with its plain-text twin built alongside.
/// [`Mrkdwn::markup`] takes Slack syntax unescaped (an operator's `<!subteam^…>` mention, a
/// quote marker) that has no place in plain text; [`Mrkdwn::literal`] takes trusted text both
/// forms show (an emoji, an arrow).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mrkdwn {
    slack: String,
    text: String,
}

impl Mrkdwn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_untrusted(text: &str) -> Self {
        Self::new().plain(text)
    }

    pub fn plain(mut self, untrusted: &str) -> Self {
        self.slack.push_str(&escape_mrkdwn(untrusted));
        self.text.push_str(untrusted);
        self
    }

    /// Slack-only syntax, left out of the plain text.
    pub fn markup(mut self, trusted: &str) -> Self {
        self.slack.push_str(trusted);
        self
    }

    /// Trusted text shown in both forms.
    pub fn literal(mut self, trusted: &str) -> Self {
        self.slack.push_str(trusted);
        self.text.push_str(trusted);
        self
    }

    /// A time Slack shows in each reader's own time zone (`<!date^secs^format|fallback>`);
    /// `fallback` (escaped) is what clients that cannot, and the plain text, show.
    pub fn date(self, epoch_secs: i64, format: &str, fallback: &str) -> Self {
        self.markup(&format!("<!date^{epoch_secs}^{format}|"))
            .plain(fallback)
            .markup(">")
    }

    pub fn append(mut self, other: &Mrkdwn) -> Self {
        self.slack.push_str(&other.slack);
        self.text.push_str(&other.text);
        self
    }

    pub fn bold(self, untrusted: &str) -> Self {
        if untrusted.is_empty() {
            return self;
        }
        self.markup("*").plain(untrusted).markup("*")
    }

    /// Inline code. A backtick inside would end the span early, so it is replaced by a
    /// look-alike that cannot.
    pub fn code(self, untrusted: &str) -> Self {
        if untrusted.is_empty() {
            return self;
        }
        let tamed = untrusted.replace('`', "ˋ").replace(['\n', '\r'], " ");
        self.markup("`").plain(&tamed).markup("`")
    }

    /// `<url|label>` when `url` is http(s); otherwise the label alone, so an event cannot
    /// smuggle a `javascript:` or `slack://` link into the message. In plain text: the label
    /// and the URL.
    pub fn link(self, url: &str, untrusted_label: &str) -> Self {
        match safe_url(url) {
            Some(escaped) => {
                let label = untrusted_label.replace(['\n', '\r'], " ");
                let label = if label.trim().is_empty() {
                    escaped.clone()
                } else {
                    label
                };
                let mut m = self.markup("<").markup(&escaped).markup("|");
                m.slack.push_str(&escape_mrkdwn(&label));
                m.text.push_str(&format!("{label} ({})", url.trim()));
                m.markup(">")
            }
            None => self.plain(untrusted_label),
        }
    }

    pub fn newline(self) -> Self {
        self.literal("\n")
    }

    /// The Slack form.
    pub fn as_str(&self) -> &str {
        &self.slack
    }

    /// The plain-text form.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.slack.is_empty()
    }
}

/// The URL made safe to stand inside `<…|…>`: http(s) only, Slack's control characters
/// escaped, and `|` encoded so it cannot end the URL early.
fn safe_url(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let is_web = lower.starts_with("https://") || lower.starts_with("http://");
    if !is_web || url.chars().any(char::is_whitespace) || slack_len(url) > MAX_URL {
        return None;
    }
    Some(escape_mrkdwn(url).replace('|', "%7C"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Plain text, large. Untrusted text is fine: it is escaped when rendered.
    Header(String),
    Section {
        text: Option<Mrkdwn>,
        fields: Vec<Mrkdwn>,
    },
    Context(Vec<Mrkdwn>),
    Divider,
    Buttons(Vec<Button>),
    /// Buttons a person clicks to send the app an interaction (`block_actions`, to the app's
    /// Request URL), rather than links. Slack-only: SNS text has no use for them.
    Choices {
        block_id: String,
        choices: Vec<Choice>,
    },
}

/// A button that sends `action_id` and `value` to the app when clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub label: String,
    pub action_id: String,
    /// What the app needs to act on the click; Slack hands it back as it is. Never secret:
    /// everyone in the channel can see the message's payload.
    pub value: String,
    /// `primary` (green) or `danger` (red); `None` for the default look.
    pub style: Option<&'static str>,
}

impl Block {
    pub fn section(text: Mrkdwn) -> Self {
        Self::Section {
            text: Some(text),
            fields: Vec::new(),
        }
    }

    pub fn fields(fields: Vec<Mrkdwn>) -> Self {
        Self::Section { text: None, fields }
    }
}

/// One Slack message: Block Kit blocks plus the plain `text` Slack shows in notifications
/// and to clients that cannot render blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub text: Mrkdwn,
    pub blocks: Vec<Block>,
}

impl Message {
    pub fn new(text: Mrkdwn) -> Self {
        Self {
            text,
            blocks: Vec::new(),
        }
    }

    pub fn block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// The same message as plain text, for SNS: the header, each section, each field as
    /// `label: value` (fields are written label, newline, value), context lines, and each
    /// button as `label: url`.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        for block in &self.blocks {
            match block {
                Block::Header(title) => lines.push(title.replace(['\n', '\r'], " ")),
                Block::Section { text, fields } => {
                    if let Some(t) = text.as_ref().filter(|t| !t.text().trim().is_empty()) {
                        // Trimmed: a Slack-only mention leaves its line break behind.
                        lines.push(t.text().trim().to_owned());
                    }
                    for f in fields.iter().filter(|f| !f.text().trim().is_empty()) {
                        lines.push(match f.text().split_once('\n') {
                            Some((label, value)) => format!("{label}: {value}"),
                            None => f.text().to_owned(),
                        });
                    }
                }
                Block::Context(elements) => lines.extend(
                    elements
                        .iter()
                        .filter(|e| !e.text().trim().is_empty())
                        .map(|e| e.text().to_owned()),
                ),
                Block::Divider | Block::Choices { .. } => {}
                Block::Buttons(buttons) => lines.extend(
                    buttons
                        .iter()
                        .filter(|b| safe_url(&b.url).is_some())
                        .map(|b| format!("{}: {}", b.label, b.url.trim())),
                ),
            }
        }
        lines.join("\n")
    }

    /// The JSON Slack receives, within every limit: oversized texts cut with a marker,
    /// surplus blocks replaced by a note saying how many were left out.
    pub fn to_payload(&self) -> Value {
        let mut budget = MAX_TOTAL_BLOCK_TEXT;
        let mut rendered = Vec::new();
        // Room for the note that says blocks were left out.
        const NOTE_RESERVE: usize = 80;
        for (i, block) in self.blocks.iter().enumerate() {
            let left_after_this = self.blocks.len() - i - 1;
            let slots = if left_after_this > 0 {
                MAX_BLOCKS - 1
            } else {
                MAX_BLOCKS
            };
            if rendered.len() >= slots || budget <= NOTE_RESERVE {
                let omitted = self.blocks.len() - i;
                rendered.push(json!({
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": format!("… {omitted} more block(s) left out to fit Slack's limits")}]
                }));
                break;
            }
            let mut spend = budget - NOTE_RESERVE;
            if let Some(v) = render_block(block, &mut spend) {
                budget = spend + NOTE_RESERVE;
                rendered.push(v);
            }
        }
        let mut payload = json!({ "text": truncate_mrkdwn(self.text.as_str(), MAX_FALLBACK_TEXT) });
        if !rendered.is_empty() {
            payload["blocks"] = Value::Array(rendered);
        }
        payload
    }
}

/// Cuts `text` to the smaller of `limit` and what is left of the message's budget, and
/// charges the budget for it. `None` when too little is left for any of it and the
/// truncation marker: Slack refuses an empty text object (the whole post fails as
/// `invalid_blocks`), so the element is left out instead.
fn fit(text: &str, limit: usize, budget: &mut usize) -> Option<String> {
    let room = limit.min(*budget);
    if slack_len(text) > room && room <= slack_len(TRUNCATION_MARKER) {
        return None;
    }
    let cut = truncate_mrkdwn(text, room).into_owned();
    if cut.trim().is_empty() {
        return None;
    }
    *budget = budget.saturating_sub(slack_len(&cut));
    Some(cut)
}

fn mrkdwn_object(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn plain_object(text: &str) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

fn render_block(block: &Block, budget: &mut usize) -> Option<Value> {
    match block {
        Block::Header(untrusted) => {
            let one_line = untrusted.replace(['\n', '\r'], " ");
            let text = fit(&escape_mrkdwn(one_line.trim()), MAX_HEADER_TEXT, budget)?;
            Some(json!({"type": "header", "text": plain_object(&text)}))
        }
        Block::Section { text, fields } => {
            let mut v = json!({"type": "section"});
            if let Some(t) = text.as_ref().filter(|t| !t.is_empty())
                && let Some(cut) = fit(t.as_str(), MAX_SECTION_TEXT, budget)
            {
                v["text"] = mrkdwn_object(&cut);
            }
            let fields: Vec<Value> = fields
                .iter()
                .filter(|f| !f.is_empty())
                .take(MAX_FIELDS)
                .filter_map(|f| fit(f.as_str(), MAX_FIELD_TEXT, budget))
                .map(|cut| mrkdwn_object(&cut))
                .collect();
            if !fields.is_empty() {
                v["fields"] = Value::Array(fields);
            }
            (v.get("text").is_some() || v.get("fields").is_some()).then_some(v)
        }
        Block::Context(elements) => {
            let elements: Vec<Value> = elements
                .iter()
                .filter(|e| !e.is_empty())
                .take(MAX_CONTEXT_ELEMENTS)
                .filter_map(|e| fit(e.as_str(), MAX_CONTEXT_TEXT, budget))
                .map(|cut| mrkdwn_object(&cut))
                .collect();
            (!elements.is_empty()).then(|| json!({"type": "context", "elements": elements}))
        }
        Block::Divider => Some(json!({"type": "divider"})),
        Block::Choices { block_id, choices } => {
            let elements: Vec<Value> = choices
                .iter()
                // An id or value over Slack's limits would make Slack refuse the whole message:
                // such a button is left out instead.
                .filter(|c| {
                    !c.action_id.is_empty()
                        && c.action_id.len() <= MAX_ACTION_ID
                        && c.value.chars().count() <= MAX_BUTTON_VALUE
                })
                .filter_map(|c| {
                    let label = fit(&escape_mrkdwn(&c.label), MAX_BUTTON_TEXT, budget)?;
                    let mut button = json!({"type": "button", "text": plain_object(&label),
                                            "action_id": c.action_id, "value": c.value});
                    if let Some(style) = c.style.filter(|s| matches!(*s, "primary" | "danger")) {
                        button["style"] = json!(style);
                    }
                    Some(button)
                })
                .take(MAX_BUTTONS)
                .collect();
            (!elements.is_empty() && block_id.len() <= MAX_ACTION_ID)
                .then(|| json!({"type": "actions", "block_id": block_id, "elements": elements}))
        }
        Block::Buttons(buttons) => {
            let elements: Vec<Value> = buttons
                .iter()
                .filter_map(|b| {
                    let url = b.url.trim();
                    safe_url(url)?;
                    let label = fit(&escape_mrkdwn(&b.label), MAX_BUTTON_TEXT, budget)?;
                    Some(json!({"type": "button", "text": plain_object(&label), "url": url}))
                })
                .take(MAX_BUTTONS)
                .collect();
            (!elements.is_empty()).then(|| json!({"type": "actions", "elements": elements}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(payload: &Value) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(t)) = m.get("text") {
                        out.push(t.clone());
                    }
                    m.values().for_each(|v| walk(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(payload, &mut out);
        out
    }

    #[test]
    fn untrusted_text_cannot_ping_or_disguise_a_link() {
        let m = Message::new(Mrkdwn::from_untrusted("<!channel> deploy")).block(Block::section(
            Mrkdwn::new().bold("<!here>").plain(" <https://evil|ok>"),
        ));
        let p = m.to_payload();
        for t in texts(&p) {
            assert!(!t.contains("<!"), "{t}");
            assert!(!t.contains("<https://evil"), "{t}");
        }
        assert_eq!(
            p["blocks"][0]["text"]["text"],
            "*&lt;!here&gt;* &lt;https://evil|ok&gt;"
        );
    }

    #[test]
    fn trusted_markup_passes_through_to_slack_only() {
        let m = Mrkdwn::new().markup("<!subteam^S123>").plain(" failed");
        assert_eq!(m.as_str(), "<!subteam^S123> failed");
        assert_eq!(m.text(), " failed");
    }

    #[test]
    fn the_plain_text_twin_is_unescaped_and_shows_links_with_their_url() {
        let m = Mrkdwn::new()
            .literal("✅ ")
            .bold("a < b")
            .plain(" ")
            .link("https://example.com/x", "logs")
            .newline()
            .code("x`y");
        assert_eq!(m.text(), "✅ a < b logs (https://example.com/x)\nxˋy");
    }

    #[test]
    fn a_message_reads_as_text_for_sns() {
        let m = Message::new(Mrkdwn::from_untrusted("t"))
            .block(Block::Header("❌ prod-api failed".into()))
            .block(Block::fields(vec![
                Mrkdwn::new().bold("Pipeline").newline().plain("prod-api"),
            ]))
            .block(Block::Context(vec![Mrkdwn::from_untrusted("event 1")]))
            .block(Block::Buttons(vec![Button {
                label: "Open".into(),
                url: "https://console.aws.amazon.com/x".into(),
            }]));
        assert_eq!(
            m.to_text(),
            "❌ prod-api failed\nPipeline: prod-api\nevent 1\nOpen: https://console.aws.amazon.com/x"
        );
    }

    #[test]
    fn links_accept_only_web_urls_and_escape_their_parts() {
        let ok = Mrkdwn::new().link("https://example.com/a?b=1&c=2|x", "logs <here>");
        assert_eq!(
            ok.as_str(),
            "<https://example.com/a?b=1&amp;c=2%7Cx|logs &lt;here&gt;>"
        );
        let bad = Mrkdwn::new().link("javascript:alert(1)", "click");
        assert_eq!(bad.as_str(), "click");
        let spaced = Mrkdwn::new().link("https://a b", "x");
        assert_eq!(spaced.as_str(), "x");
    }

    #[test]
    fn code_spans_cannot_be_closed_by_input() {
        let m = Mrkdwn::new().code("rm -rf `pwd`");
        assert_eq!(m.as_str(), "`rm -rf ˋpwdˋ`");
    }

    #[test]
    fn oversized_section_is_cut_within_slacks_limit() {
        let big = "A".repeat(100 * 1024);
        let p = Message::new(Mrkdwn::from_untrusted(&big))
            .block(Block::section(Mrkdwn::from_untrusted(&big)))
            .to_payload();
        let section = p["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(slack_len(section) <= MAX_SECTION_TEXT);
        assert!(section.ends_with(crate::text::TRUNCATION_MARKER));
        assert!(slack_len(p["text"].as_str().unwrap()) <= MAX_FALLBACK_TEXT);
    }

    #[test]
    fn more_than_fifty_blocks_are_capped_with_a_note() {
        let mut m = Message::new(Mrkdwn::from_untrusted("many"));
        for i in 0..80 {
            m = m.block(Block::section(Mrkdwn::from_untrusted(&format!(
                "finding {i}"
            ))));
        }
        let p = m.to_payload();
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let note = blocks[49]["elements"][0]["text"].as_str().unwrap();
        assert!(note.contains("31 more block(s) left out"), "{note}");
    }

    #[test]
    fn total_block_text_stays_under_the_message_budget() {
        let mut m = Message::new(Mrkdwn::from_untrusted("big"));
        for _ in 0..10 {
            m = m.block(Block::section(Mrkdwn::from_untrusted(&"x".repeat(2900))));
        }
        let p = m.to_payload();
        let blocks = p["blocks"].as_array().unwrap();
        let total: usize = blocks.iter().flat_map(texts).map(|t| slack_len(&t)).sum();
        assert!(total <= MAX_TOTAL_BLOCK_TEXT, "{total}");
        let last = blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert!(last.contains("left out"), "{last}");
    }

    #[test]
    fn empty_blocks_are_dropped_and_headers_are_one_line() {
        let p = Message::new(Mrkdwn::from_untrusted("t"))
            .block(Block::Header("line one\nline <two>".into()))
            .block(Block::section(Mrkdwn::new()))
            .block(Block::Context(vec![]))
            .block(Block::Buttons(vec![Button {
                label: "x".into(),
                url: "ftp://nope".into(),
            }]))
            .to_payload();
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0]["text"]["text"], "line one line &lt;two&gt;");
    }

    #[test]
    fn buttons_render_as_actions_with_plain_labels() {
        let p = Message::new(Mrkdwn::from_untrusted("t"))
            .block(Block::Buttons(vec![Button {
                label: "Open in console".into(),
                url: "https://console.aws.amazon.com/x".into(),
            }]))
            .to_payload();
        assert_eq!(p["blocks"][0]["type"], "actions");
        assert_eq!(
            p["blocks"][0]["elements"][0]["url"],
            "https://console.aws.amazon.com/x"
        );
        assert_eq!(p["blocks"][0]["elements"][0]["text"]["type"], "plain_text");
    }
}
