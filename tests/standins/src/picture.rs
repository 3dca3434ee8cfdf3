//! Pictures of what the functions post, for their pages, drawn from the functions' own
//! Slack payloads (never by hand) so that a test can keep each picture current.
//!
//! [`draw`] lays out the Block Kit the functions send (`text` + `blocks`: header, section text
//! and fields, context, divider, actions with buttons) and the mrkdwn in it (``` code blocks,
//! `>` quotes, `<url|label>` links, mentions, `<!date^…>` dates, *bold*, _italic_, ~strike~,
//! `code`, emoji and the `:shortcodes:` Slack turns into emoji), under an app avatar and the
//! app's name with its APP badge. Nothing Block Kit does not draw: no coloured bars, no frames.
//! Text is measured with Helvetica's widths (the fallback of the font stack on most machines)
//! and placed run by run, so a wrong guess leaves a gap rather than an overlap. Dates are
//! shown in UTC (Slack shows each reader's own time zone). The output depends only on the
//! payloads: no clock, no hash order.
//!
//! [`assert_current`] compares pictures with the committed files, or rewrites them when
//! `UPDATE_PICTURES=1` is set.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// The picture's width; text wraps within it as Slack's message pane would.
pub const WIDTH: f64 = 760.0;
const PAD: f64 = 20.0;
const AVATAR: f64 = 36.0;
const LEFT: f64 = PAD + AVATAR + 8.0;
const TEXT_WIDTH: f64 = WIDTH - LEFT - PAD;

const FONT: &str = "Lato, 'Helvetica Neue', Helvetica, Arial, sans-serif";
const MONO: &str = "Monaco, Menlo, Consolas, 'Courier New', monospace";
/// First for emoji runs, so an emoji is drawn in colour and not as a missing glyph's box.
const EMOJI: &str =
    "'Apple Color Emoji', 'Segoe UI Emoji', 'Noto Color Emoji', 'Twemoji Mozilla', sans-serif";

const INK: &str = "#1d1c1d";
const GREY: &str = "#616061";
const LINK: &str = "#1264a3";
const CODE_INK: &str = "#e01e5a";
const CODE_BACK: &str = "#f8f8f8";
const RULE: &str = "#dddddd";
const MENTION_BACK: &str = "#e8f5fa";

/// Draws `payloads` as messages `app` posted, one under the other, each with the app's
/// avatar and name line.
pub fn draw(app: &str, payloads: &[Value]) -> String {
    let mut canvas = Canvas {
        out: String::new(),
        y: 16.0,
    };
    let mut titles = Vec::new();
    for payload in payloads {
        if let Some(title) = payload["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["type"] == "header")
            .and_then(|b| b["text"]["text"].as_str())
        {
            titles.push(plain_text(title));
        }
        canvas.message(app, payload);
    }
    let height = n(canvas.y.ceil());
    let title = if titles.is_empty() {
        format!("Messages from {app}")
    } else {
        titles.join(" / ")
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" font-family=\"{FONT}\" font-size=\"15\" fill=\"{INK}\" xml:space=\"preserve\">\n<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n{}</svg>\n",
        xml(&title),
        canvas.out,
        w = n(WIDTH),
    )
}

/// Checks each `(file name, svg)` against the committed file in `dir`. With
/// `UPDATE_PICTURES=1` it writes them instead (and passes); otherwise it fails naming every
/// picture that differs and the command (`rerun`) that redraws them.
pub fn assert_current(dir: &Path, pictures: &[(&str, String)], rerun: &str) {
    let update = std::env::var("UPDATE_PICTURES").is_ok_and(|v| !v.is_empty() && v != "0");
    if update {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    let mut stale = Vec::new();
    for (name, svg) in pictures {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, svg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(svg.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "not the messages as rendered now: {}. Run with UPDATE_PICTURES=1 to redraw them: UPDATE_PICTURES=1 {rerun}",
        stale.join(", ")
    );
}

/// A number for SVG: one decimal at most, so the output is short and stable.
fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Control characters are not allowed in XML; a tab shows as spaces.
            '\t' => out.push_str("    "),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// Slack's escaping undone: what a reader sees of `&amp;`, `&lt;` and `&gt;`.
fn decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A `plain_text` object's text as shown: entities decoded, shortcodes as emoji.
fn plain_text(text: &str) -> String {
    shortcodes(&decode(text))
}

/// Slack's emoji shortcodes, those a message about pipelines, scans and deployments uses.
const SHORTCODES: &[(&str, &str)] = &[
    ("+1", "👍"),
    ("alarm_clock", "⏰"),
    ("arrow_forward", "▶️"),
    ("arrows_counterclockwise", "🔄"),
    ("black_square_for_stop", "⏹️"),
    ("bug", "🐛"),
    ("fire", "🔥"),
    ("hand", "✋"),
    ("heavy_check_mark", "✔️"),
    ("hourglass", "⌛"),
    ("hourglass_flowing_sand", "⏳"),
    ("large_green_circle", "🟢"),
    ("large_yellow_circle", "🟡"),
    ("leftwards_arrow_with_hook", "↩️"),
    ("lock", "🔒"),
    ("no_entry", "⛔"),
    ("no_entry_sign", "🚫"),
    ("no_good", "🙅"),
    ("raised_hand", "✋"),
    ("red_circle", "🔴"),
    ("repeat", "🔁"),
    ("rocket", "🚀"),
    ("rotating_light", "🚨"),
    ("tada", "🎉"),
    ("thumbsup", "👍"),
    ("wastebasket", "🗑️"),
    ("warning", "⚠️"),
    ("white_check_mark", "✅"),
    ("x", "❌"),
];

/// `:white_check_mark:` and the like as the emoji Slack shows; unknown ones stay as text.
fn shortcodes(text: &str) -> String {
    if !text.contains(':') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(':') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let known = after.find(':').and_then(|close| {
            let name = &after[..close];
            SHORTCODES
                .iter()
                .find(|(code, _)| *code == name)
                .map(|(_, emoji)| (*emoji, close))
        });
        match known {
            Some((emoji, close)) => {
                out.push_str(emoji);
                rest = &after[close + 1..];
            }
            None => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Characters drawn as emoji by default (Unicode's Emoji_Presentation), so they get the
/// emoji font; others (an arrow, a check mark) are emoji only when followed by U+FE0F.
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x231A..=0x231B | 0x23E9..=0x23EC | 0x23F0 | 0x23F3 | 0x25FD..=0x25FE
        | 0x2614..=0x2615 | 0x2648..=0x2653 | 0x267F | 0x2693 | 0x26A1 | 0x26AA..=0x26AB
        | 0x26BD..=0x26BE | 0x26C4..=0x26C5 | 0x26CE | 0x26D4 | 0x26EA | 0x26F2..=0x26F3
        | 0x26F5 | 0x26FA | 0x26FD | 0x2705 | 0x270A..=0x270B | 0x2728 | 0x274C | 0x274E
        | 0x2753..=0x2755 | 0x2757 | 0x2795..=0x2797 | 0x27B0 | 0x27BF | 0x2B1B..=0x2B1C
        | 0x2B50 | 0x2B55 | 0x1F004 | 0x1F0CF | 0x1F18E | 0x1F191..=0x1F19A
        | 0x1F1E6..=0x1F1FF | 0x1F201 | 0x1F21A | 0x1F22F | 0x1F232..=0x1F236
        | 0x1F238..=0x1F23A | 0x1F250..=0x1F251 | 0x1F300..=0x1F64F | 0x1F680..=0x1F6FF
        | 0x1F7E0..=0x1F7EB | 0x1F90C..=0x1F9FF | 0x1FA70..=0x1FAFF)
}

/// What extends an emoji into one picture: the emoji variation selector, a zero-width
/// joiner's partner, a skin tone, a keycap, a tag.
fn extends_emoji(c: char) -> bool {
    matches!(c as u32, 0xFE0F | 0x200D | 0x20E3 | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F)
}

/// `text` split into runs of emoji and of other text, in order.
fn split_emoji(text: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let emoji = is_emoji(c) || chars.get(i + 1) == Some(&'\u{FE0F}');
        let mut piece = String::from(c);
        i += 1;
        if emoji {
            while i < chars.len() && extends_emoji(chars[i]) {
                piece.push(chars[i]);
                // After a joiner comes the next emoji of the sequence.
                if chars[i] == '\u{200D}' && i + 1 < chars.len() {
                    i += 1;
                    piece.push(chars[i]);
                }
                i += 1;
            }
            // A flag is two regional indicators.
            if (0x1F1E6..=0x1F1FF).contains(&(c as u32))
                && chars
                    .get(i)
                    .is_some_and(|d| (0x1F1E6..=0x1F1FF).contains(&(*d as u32)))
            {
                piece.push(chars[i]);
                i += 1;
            }
        }
        match parts.last_mut() {
            Some((text, was_emoji)) if *was_emoji == emoji => text.push_str(&piece),
            _ => parts.push((piece, emoji)),
        }
    }
    parts
}

/// Helvetica's advance widths (thousandths of an em) for ASCII 32–126, regular and bold.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// How wide `c` is, in ems, in the body font (`bold`) or a monospace one.
fn char_em(c: char, bold: bool, mono: bool) -> f64 {
    if extends_emoji(c) {
        return 0.0;
    }
    if mono {
        return 0.6;
    }
    let code = c as u32;
    if (32..127).contains(&code) {
        let table = if bold { &HELVETICA_BOLD } else { &HELVETICA };
        return f64::from(table[(code - 32) as usize]) / 1000.0;
    }
    match c {
        '·' => 0.278,
        '—' | '…' => 1.0,
        '–' => 0.556,
        '•' => 0.35,
        'ˋ' => 0.333,
        '→' | '↳' | '←' | '↗' => 0.85,
        c if c.is_alphabetic() => 0.6,
        _ => 0.7,
    }
}

/// An emoji's width: a little over an em in the colour emoji fonts.
const EMOJI_EM: f64 = 1.3;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    bold: bool,
    italic: bool,
    strike: bool,
    code: bool,
    link: bool,
    mention: bool,
    emoji: bool,
}

/// A stretch of displayed text in one style.
#[derive(Debug, Clone)]
struct Run {
    text: String,
    style: Style,
}

/// How a kind of text is set: the body, a header, a context line, a code block.
#[derive(Debug, Clone, Copy)]
struct Kind {
    size: f64,
    line: f64,
    fill: &'static str,
    bold: bool,
    mono: bool,
}

const BODY: Kind = Kind {
    size: 15.0,
    line: 22.0,
    fill: INK,
    bold: false,
    mono: false,
};
const HEADER: Kind = Kind {
    size: 18.0,
    line: 26.0,
    fill: INK,
    bold: true,
    mono: false,
};
const CONTEXT: Kind = Kind {
    size: 12.0,
    line: 18.0,
    fill: GREY,
    bold: false,
    mono: false,
};
const PRE: Kind = Kind {
    size: 12.0,
    line: 18.0,
    fill: INK,
    bold: false,
    mono: true,
};
const BUTTON: Kind = Kind {
    size: 13.0,
    line: 18.0,
    fill: INK,
    bold: true,
    mono: false,
};

impl Kind {
    fn size_of(&self, style: Style) -> f64 {
        if style.code && !self.mono {
            self.size * 0.8
        } else {
            self.size
        }
    }

    fn width(&self, text: &str, style: Style) -> f64 {
        let size = self.size_of(style);
        if style.emoji {
            let pictures = text.chars().filter(|c| !extends_emoji(*c)).count().max(1);
            return pictures as f64 * EMOJI_EM * size;
        }
        text.chars()
            .map(|c| char_em(c, self.bold || style.bold, self.mono || style.code))
            .sum::<f64>()
            * size
    }
}

/// A run placed on a line, `x` from the line's start.
#[derive(Debug, Clone)]
struct Piece {
    x: f64,
    width: f64,
    text: String,
    style: Style,
}

/// Runs broken into lines of at most `width`: at spaces, and inside a word only when the word
/// alone is wider than a line. `keep_indent` keeps a line's leading spaces (code blocks).
fn layout(runs: &[Run], width: f64, kind: Kind, keep_indent: bool) -> Vec<Vec<Piece>> {
    // Words (non-space stretches, possibly in several styles) and the spaces between them.
    let mut tokens: Vec<(String, Style, bool)> = Vec::new();
    for run in runs {
        for (part, emoji) in split_emoji(&run.text) {
            let style = Style { emoji, ..run.style };
            let mut current = String::new();
            let mut space = None;
            for c in part.chars() {
                let is_space = c == ' ';
                if space.is_some_and(|s| s != is_space) {
                    tokens.push((std::mem::take(&mut current), style, space == Some(true)));
                }
                space = Some(is_space);
                current.push(c);
            }
            if let Some(s) = space {
                tokens.push((current, style, s));
            }
        }
    }
    let mut lines: Vec<Vec<Piece>> = Vec::new();
    let mut line: Vec<Piece> = Vec::new();
    let mut x = 0.0;
    let mut word: Vec<(String, Style)> = Vec::new();
    let mut space: Option<(String, Style)> = None;
    let place = |line: &mut Vec<Piece>, x: &mut f64, text: &str, style: Style| {
        // Inline code has room on either side of its box.
        let code = style.code && !kind.mono;
        let after_code = line.last().is_some_and(|p| p.style.code && !kind.mono);
        if code != after_code && (code || !line.is_empty()) {
            *x += 3.0;
        }
        let w = kind.width(text, style);
        match line.last_mut() {
            Some(last) if last.style == style && (last.x + last.width - *x).abs() < 0.01 => {
                last.text.push_str(text);
                last.width += w;
            }
            _ => line.push(Piece {
                x: *x,
                width: w,
                text: text.to_owned(),
                style,
            }),
        }
        *x += w;
    };
    let flush = |word: &mut Vec<(String, Style)>,
                 space: &mut Option<(String, Style)>,
                 line: &mut Vec<Piece>,
                 lines: &mut Vec<Vec<Piece>>,
                 x: &mut f64| {
        if word.is_empty() {
            return;
        }
        let word_width: f64 = word.iter().map(|(t, s)| kind.width(t, *s)).sum();
        let space_width = space.as_ref().map_or(0.0, |(t, s)| kind.width(t, *s));
        if !line.is_empty() && *x + space_width + word_width > width {
            lines.push(std::mem::take(line));
            *x = 0.0;
        } else if let Some((t, s)) = space.take() {
            place(line, x, &t, s);
        }
        *space = None;
        if *x + word_width <= width {
            for (t, s) in word.drain(..) {
                place(line, x, &t, s);
            }
            return;
        }
        // Wider than a line: broken wherever the line is full.
        for (t, s) in word.drain(..) {
            let chunks: Vec<String> = if s.emoji {
                vec![t]
            } else {
                t.chars().map(String::from).collect()
            };
            for chunk in chunks {
                let w = kind.width(&chunk, s);
                if *x > 0.0 && *x + w > width {
                    lines.push(std::mem::take(line));
                    *x = 0.0;
                }
                place(line, x, &chunk, s);
            }
        }
    };
    for (text, style, is_space) in tokens {
        if is_space {
            flush(&mut word, &mut space, &mut line, &mut lines, &mut x);
            if keep_indent && line.is_empty() && lines.is_empty() {
                place(&mut line, &mut x, &text, style);
            } else {
                space = Some((text, style));
            }
        } else {
            word.push((text, style));
        }
    }
    flush(&mut word, &mut space, &mut line, &mut lines, &mut x);
    lines.push(line);
    lines
}

/// A paragraph of mrkdwn: a line of text (possibly quoted) or a code block.
enum Para {
    Line { raw: String, quote: bool },
    Pre(String),
}

/// mrkdwn split into lines and ``` code blocks.
fn paragraphs(text: &str) -> Vec<Para> {
    let mut paras = Vec::new();
    let mut pieces = text.split("```").peekable();
    let mut inside = false;
    let mut first = true;
    while let Some(piece) = pieces.next() {
        // An unmatched fence is text.
        if inside && pieces.peek().is_none() {
            push_lines(&mut paras, &format!("```{piece}"), false, true);
            break;
        }
        if inside {
            let body = piece.strip_prefix('\n').unwrap_or(piece);
            let body = body.strip_suffix('\n').unwrap_or(body);
            paras.push(Para::Pre(body.to_owned()));
        } else {
            push_lines(&mut paras, piece, !first, pieces.peek().is_some());
        }
        inside = !inside;
        first = false;
    }
    paras
}

fn push_lines(paras: &mut Vec<Para>, text: &str, after_fence: bool, before_fence: bool) {
    let mut text = text;
    if after_fence {
        text = text.strip_prefix('\n').unwrap_or(text);
    }
    if before_fence {
        text = text.strip_suffix('\n').unwrap_or(text);
    }
    if text.is_empty() && (after_fence || before_fence) {
        return;
    }
    for line in text.split('\n') {
        match line.strip_prefix('>') {
            Some(quoted) => paras.push(Para::Line {
                raw: quoted.strip_prefix(' ').unwrap_or(quoted).to_owned(),
                quote: true,
            }),
            None => paras.push(Para::Line {
                raw: line.to_owned(),
                quote: false,
            }),
        }
    }
}

/// Whether a formatting mark at `i` may open: at the start or after a space or punctuation,
/// and before a non-space.
fn opens(chars: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| chars[j]);
    let after = chars.get(i + 1);
    before.is_none_or(|b| !b.is_alphanumeric() && b != chars[i])
        && after.is_some_and(|a| !a.is_whitespace() && *a != chars[i])
}

/// Whether a formatting mark at `i` may close: after a non-space, before the end, a space or
/// punctuation.
fn closes(chars: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| chars[j]);
    let after = chars.get(i + 1);
    before.is_some_and(|b| !b.is_whitespace())
        && after.is_none_or(|a| !a.is_alphanumeric() && *a != chars[i])
}

fn flag(style: &mut Style, mark: char) -> &mut bool {
    match mark {
        '*' => &mut style.bold,
        '_' => &mut style.italic,
        _ => &mut style.strike,
    }
}

/// One line of mrkdwn as styled runs of displayed text.
fn inline(raw: &str) -> Vec<Run> {
    let chars: Vec<char> = raw.chars().collect();
    let mut runs: Vec<Run> = Vec::new();
    let mut style = Style::default();
    let mut text = String::new();
    let flush = |runs: &mut Vec<Run>, text: &mut String, style: Style| {
        if !text.is_empty() {
            runs.push(Run {
                text: shortcodes(&decode(text)),
                style,
            });
            text.clear();
        }
    };
    let find = |from: usize, c: char| chars[from..].iter().position(|x| *x == c).map(|p| p + from);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '<' => {
                if let Some(end) = find(i + 1, '>') {
                    flush(&mut runs, &mut text, style);
                    let token: String = chars[i + 1..end].iter().collect();
                    runs.push(special(&token, style));
                    i = end + 1;
                    continue;
                }
            }
            '`' => {
                if let Some(end) = find(i + 1, '`').filter(|end| *end > i + 1) {
                    flush(&mut runs, &mut text, style);
                    let code: String = chars[i + 1..end].iter().collect();
                    runs.push(Run {
                        text: decode(&code),
                        style: Style {
                            code: true,
                            ..style
                        },
                    });
                    i = end + 1;
                    continue;
                }
            }
            '*' | '_' | '~' => {
                let on = *flag(&mut style, c);
                let closer_ahead =
                    || (i + 2..chars.len()).any(|j| chars[j] == c && closes(&chars, j));
                if (on && closes(&chars, i)) || (!on && opens(&chars, i) && closer_ahead()) {
                    flush(&mut runs, &mut text, style);
                    *flag(&mut style, c) = !on;
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        text.push(c);
        i += 1;
    }
    flush(&mut runs, &mut text, style);
    runs
}

/// A `<…>` token as shown: a link's label, a mention, a date.
fn special(token: &str, style: Style) -> Run {
    let (target, label) = match token.split_once('|') {
        Some((t, l)) => (t, Some(decode(l))),
        None => (token, None),
    };
    let mention = |text: String| Run {
        text,
        style: Style {
            mention: true,
            ..style
        },
    };
    if let Some(special) = target.strip_prefix('!') {
        if let Some(date) = special.strip_prefix("date^") {
            let mut parts = date.split('^');
            let shown = parts
                .next()
                .and_then(|secs| secs.parse::<i64>().ok())
                .zip(parts.next())
                .map(|(secs, format)| slack_date(secs, format))
                .or(label)
                .unwrap_or_default();
            return Run { text: shown, style };
        }
        if let Some(id) = special.strip_prefix("subteam^") {
            return mention(label.unwrap_or_else(|| format!("@{id}")));
        }
        return mention(label.unwrap_or_else(|| format!("@{special}")));
    }
    if let Some(user) = target.strip_prefix('@') {
        return mention(label.unwrap_or_else(|| format!("@{user}")));
    }
    if let Some(channel) = target.strip_prefix('#') {
        return mention(label.map_or_else(|| format!("#{channel}"), |l| format!("#{l}")));
    }
    Run {
        text: label.unwrap_or_else(|| decode(target)),
        style: Style {
            link: true,
            ..style
        },
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `<!date^secs^format|…>` as Slack formats it, in UTC; the `_pretty` forms as their plain
/// ones (a picture has no "today").
fn slack_date(secs: i64, format: &str) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Days to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    let ordinal = match (day % 10, day / 10) {
        (1, d) if d != 1 => "st",
        (2, d) if d != 1 => "nd",
        (3, d) if d != 1 => "rd",
        _ => "th",
    };
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    let (h12, half) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format
        .replace("{date_num}", &format!("{year:04}-{month:02}-{day:02}"))
        .replace("_pretty}", "}")
        .replace(
            "{date_long}",
            &format!("{weekday}, {month_name} {day}{ordinal}, {year}"),
        )
        .replace("{date}", &format!("{month_name} {day}{ordinal}, {year}"))
        .replace(
            "{date_short}",
            &format!("{} {day}, {year}", &month_name[..3]),
        )
        .replace(
            "{time_secs}",
            &format!("{h12}:{minute:02}:{second:02} {half}"),
        )
        .replace("{time}", &format!("{h12}:{minute:02} {half}"))
}

/// A colour of Slack's avatar palette, chosen by the app's name (stable, not random).
fn avatar_colour(app: &str) -> &'static str {
    const PALETTE: [&str; 6] = [
        "#4a154b", "#1264a3", "#007a5a", "#e01e5a", "#2eb67d", "#ecb22e",
    ];
    let sum: u32 = app.bytes().map(u32::from).sum();
    PALETTE[(sum % PALETTE.len() as u32) as usize]
}

/// Up to two letters for the avatar: the initials of the name's words.
fn initials(app: &str) -> String {
    app.split(|c: char| !c.is_alphanumeric())
        .filter_map(|w| w.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

struct Canvas {
    out: String,
    y: f64,
}

impl Canvas {
    fn message(&mut self, app: &str, payload: &Value) {
        let top = self.y;
        let _ = writeln!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{a}\" height=\"{a}\" rx=\"6\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\" fill=\"#ffffff\" text-anchor=\"middle\">{}</text>",
            n(PAD),
            n(top),
            avatar_colour(app),
            n(PAD + AVATAR / 2.0),
            n(top + AVATAR / 2.0 + 5.0),
            xml(&initials(app)),
            a = n(AVATAR),
        );
        let name = Kind { bold: true, ..BODY };
        let badge_x = LEFT + name.width(app, Style::default()) + 6.0;
        let _ = writeln!(
            self.out,
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text><rect x=\"{}\" y=\"{}\" width=\"26\" height=\"14\" rx=\"2\" fill=\"#e8e8e8\"/><text x=\"{}\" y=\"{}\" font-size=\"10\" font-weight=\"bold\" fill=\"{GREY}\" text-anchor=\"middle\">APP</text>",
            n(LEFT),
            n(top + 14.0),
            xml(app),
            n(badge_x),
            n(top + 3.0),
            n(badge_x + 13.0),
            n(top + 14.0),
        );
        self.y = top + 24.0;
        let blocks = payload["blocks"].as_array().cloned().unwrap_or_default();
        if blocks.is_empty() {
            let text = payload["text"].as_str().unwrap_or_default();
            self.y = self.mrkdwn(text, LEFT, self.y, TEXT_WIDTH, BODY);
        }
        for (i, block) in blocks.iter().enumerate() {
            if i > 0 {
                self.y += 8.0;
            }
            self.block(block);
        }
        self.y = self.y.max(top + AVATAR) + 20.0;
    }

    fn block(&mut self, block: &Value) {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match block["type"].as_str().unwrap_or_default() {
            "header" => {
                let runs = [Run {
                    text: plain_text(&s(&block["text"]["text"])),
                    style: Style::default(),
                }];
                self.y = self.lines(&runs, LEFT, self.y, TEXT_WIDTH, HEADER);
            }
            "section" => {
                if let Some(text) = block["text"]["text"].as_str() {
                    self.y = if block["text"]["type"] == "plain_text" {
                        let runs = [Run {
                            text: plain_text(text),
                            style: Style::default(),
                        }];
                        self.lines(&runs, LEFT, self.y, TEXT_WIDTH, BODY)
                    } else {
                        self.mrkdwn(text, LEFT, self.y, TEXT_WIDTH, BODY)
                    };
                }
                let fields = block["fields"].as_array().cloned().unwrap_or_default();
                if !fields.is_empty() && block.get("text").is_some() {
                    self.y += 8.0;
                }
                let column = (TEXT_WIDTH - 16.0) / 2.0;
                for (row, pair) in fields.chunks(2).enumerate() {
                    if row > 0 {
                        self.y += 8.0;
                    }
                    let top = self.y;
                    let mut bottom = top;
                    for (i, field) in pair.iter().enumerate() {
                        let x = LEFT + i as f64 * (column + 16.0);
                        let end = self.mrkdwn(&s(&field["text"]), x, top, column, BODY);
                        bottom = bottom.max(end);
                    }
                    self.y = bottom;
                }
            }
            "context" => {
                let elements = block["elements"].as_array().cloned().unwrap_or_default();
                if let [only] = elements.as_slice()
                    && only["type"] == "mrkdwn"
                {
                    self.y = self.mrkdwn(&s(&only["text"]), LEFT, self.y, TEXT_WIDTH, CONTEXT);
                    return;
                }
                let mut runs: Vec<Run> = Vec::new();
                for (i, element) in elements.iter().enumerate() {
                    if i > 0 {
                        runs.push(Run {
                            text: "   ".into(),
                            style: Style::default(),
                        });
                    }
                    if let Some(text) = element["text"].as_str() {
                        if element["type"] == "plain_text" {
                            runs.push(Run {
                                text: plain_text(text),
                                style: Style::default(),
                            });
                        } else {
                            // Context text is one paragraph per line, as in a section.
                            for (j, line) in text.split('\n').enumerate() {
                                if j > 0 {
                                    runs.push(Run {
                                        text: " ".into(),
                                        style: Style::default(),
                                    });
                                }
                                runs.extend(inline(line));
                            }
                        }
                    }
                }
                self.y = self.lines(&runs, LEFT, self.y, TEXT_WIDTH, CONTEXT);
            }
            "divider" => {
                let y = self.y + 8.0;
                let _ = writeln!(
                    self.out,
                    "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{RULE}\"/>",
                    n(LEFT),
                    n(LEFT + TEXT_WIDTH),
                    y = n(y),
                );
                self.y += 16.0;
            }
            "actions" => self.buttons(block),
            _ => {}
        }
    }

    fn buttons(&mut self, block: &Value) {
        let top = self.y + 4.0;
        let (mut x, mut y) = (LEFT, top);
        for element in block["elements"].as_array().into_iter().flatten() {
            let label = plain_text(element["text"]["text"].as_str().unwrap_or_default());
            let width: f64 = split_emoji(&label)
                .iter()
                .map(|(t, emoji)| {
                    BUTTON.width(
                        t,
                        Style {
                            emoji: *emoji,
                            ..Style::default()
                        },
                    )
                })
                .sum::<f64>()
                + 24.0;
            if x > LEFT && x + width > LEFT + TEXT_WIDTH {
                x = LEFT;
                y += 36.0;
            }
            let (fill, stroke, ink) = match element["style"].as_str() {
                Some("primary") => ("#007a5a", "#007a5a", "#ffffff"),
                Some("danger") => ("#e01e5a", "#e01e5a", "#ffffff"),
                _ => ("#ffffff", "#c4c4c4", INK),
            };
            let mut text = String::new();
            for (t, emoji) in split_emoji(&label) {
                if emoji {
                    let _ = write!(text, "<tspan font-family=\"{EMOJI}\">{}</tspan>", xml(&t));
                } else {
                    text.push_str(&xml(&t));
                }
            }
            let _ = writeln!(
                self.out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"28\" rx=\"4\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\" fill=\"{ink}\" text-anchor=\"middle\">{text}</text>",
                n(x + 0.5),
                n(y + 0.5),
                n(width),
                n(x + 0.5 + width / 2.0),
                n(y + 19.0),
            );
            x += width + 8.0;
        }
        self.y = y + 29.0;
    }

    /// `text` as mrkdwn at `(x, top)` within `width`; returns where it ends.
    fn mrkdwn(&mut self, text: &str, x: f64, top: f64, width: f64, kind: Kind) -> f64 {
        let mut y = top;
        let mut quote_from: Option<f64> = None;
        let paras = paragraphs(text);
        for (i, para) in paras.iter().enumerate() {
            match para {
                Para::Line { raw, quote } => {
                    if *quote && quote_from.is_none() {
                        quote_from = Some(y);
                    }
                    let indent = if *quote { 14.0 } else { 0.0 };
                    y = self.lines(&inline(raw), x + indent, y, width - indent, kind);
                    let next_quoted =
                        matches!(paras.get(i + 1), Some(Para::Line { quote: true, .. }));
                    if let Some(from) = quote_from.filter(|_| !next_quoted) {
                        let _ = writeln!(
                            self.out,
                            "<rect x=\"{}\" y=\"{}\" width=\"4\" height=\"{}\" rx=\"2\" fill=\"{RULE}\"/>",
                            n(x),
                            n(from + 2.0),
                            n(y - from - 4.0),
                        );
                        quote_from = None;
                    }
                }
                Para::Pre(body) => {
                    let box_top = y + 4.0;
                    let mut inner = box_top + 8.0;
                    let mut text = String::new();
                    let mut lines = Vec::new();
                    for line in body.split('\n') {
                        let runs = [Run {
                            text: decode(line),
                            style: Style::default(),
                        }];
                        for laid in layout(&runs, width - 16.0, PRE, true) {
                            lines.push(laid);
                        }
                    }
                    for laid in &lines {
                        text.push_str(&line_svg(laid, x + 8.0, inner, PRE));
                        inner += PRE.line;
                    }
                    let height = inner + 8.0 - box_top;
                    let _ = writeln!(
                        self.out,
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\" fill=\"{CODE_BACK}\" stroke=\"{RULE}\"/>",
                        n(x + 0.5),
                        n(box_top + 0.5),
                        n(width - 1.0),
                        n(height - 1.0),
                    );
                    self.out.push_str(&text);
                    y = box_top + height + 4.0;
                }
            }
        }
        y
    }

    /// `runs` laid out at `(x, top)` within `width`; returns where the last line ends.
    fn lines(&mut self, runs: &[Run], x: f64, top: f64, width: f64, kind: Kind) -> f64 {
        let mut y = top;
        for line in layout(runs, width, kind, false) {
            let svg = line_svg(&line, x, y, kind);
            self.out.push_str(&svg);
            y += kind.line;
        }
        y
    }
}

/// One laid-out line whose box starts at `top`: the backgrounds of code and mentions,
/// then the text, each run placed where it was measured to start.
fn line_svg(line: &[Piece], x: f64, top: f64, kind: Kind) -> String {
    let mut out = String::new();
    let baseline = top + (kind.line + kind.size * 0.7) / 2.0;
    for p in line {
        let back = if p.style.code && !kind.mono {
            Some((CODE_BACK, Some(RULE)))
        } else if p.style.mention {
            Some((MENTION_BACK, None))
        } else {
            None
        };
        if let Some((fill, stroke)) = back {
            let size = kind.size_of(p.style);
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{fill}\"{}/>",
                n(x + p.x - 2.0),
                n(baseline - size * 1.0),
                n(p.width + 4.0),
                n(size * 1.35),
                stroke
                    .map(|s| format!(" stroke=\"{s}\""))
                    .unwrap_or_default(),
            );
        }
    }
    if line.iter().all(|p| p.text.trim().is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        return out;
    }
    let mut attributes = String::new();
    if kind.size != 15.0 {
        let _ = write!(attributes, " font-size=\"{}\"", n(kind.size));
    }
    if kind.fill != INK {
        let _ = write!(attributes, " fill=\"{}\"", kind.fill);
    }
    if kind.bold {
        attributes.push_str(" font-weight=\"bold\"");
    }
    if kind.mono {
        let _ = write!(attributes, " font-family=\"{MONO}\"");
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\"{attributes}>",
        n(x),
        n(baseline)
    );
    for p in line {
        let mut a = String::new();
        let st = p.style;
        if st.bold && !kind.bold {
            a.push_str(" font-weight=\"bold\"");
        }
        if st.italic {
            a.push_str(" font-style=\"italic\"");
        }
        if st.strike {
            a.push_str(" text-decoration=\"line-through\"");
        }
        if st.emoji {
            let _ = write!(a, " font-family=\"{EMOJI}\"");
        } else if st.code && !kind.mono {
            let _ = write!(
                a,
                " font-family=\"{MONO}\" font-size=\"{}\" fill=\"{CODE_INK}\"",
                n(kind.size_of(st))
            );
        }
        if (st.link || st.mention) && !st.code {
            let _ = write!(a, " fill=\"{LINK}\"");
        }
        let _ = write!(
            out,
            "<tspan x=\"{}\"{a}>{}</tspan>",
            n(x + p.x),
            xml(&p.text)
        );
    }
    out.push_str("</text>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(svg: &str) -> String {
        // The text content alone, tags dropped.
        let mut out = String::new();
        let mut inside = false;
        for c in svg.chars() {
            match c {
                '<' => inside = true,
                '>' => inside = false,
                c if !inside => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn mrkdwn_reads_as_slack_shows_it() {
        let svg = draw(
            "pipeline-notifier",
            &[json!({"text": "x", "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "<!subteam^S1|@oncall> *Build* failed: <https://example.com/a?b=1&amp;c=2|the logs> &amp; `a&lt;b` _now_ at <!date^1795169643^{date_short_pretty} {time_secs}|2026-11-20T10:14:03Z>"}}
            ]})],
        );
        let text = texts(&svg);
        assert!(
            text.contains(
                "@oncall Build failed: the logs &amp; a&lt;b now at Nov 20, 2026 10:14:03 AM"
            ),
            "{text}"
        );
        assert!(svg.contains("font-weight=\"bold\">Build</tspan>"), "{svg}");
        assert!(svg.contains("font-style=\"italic\">now</tspan>"), "{svg}");
        assert!(!svg.contains("*Build*") && !svg.contains("https://example.com"));
    }

    #[test]
    fn emoji_get_an_emoji_font_and_shortcodes_become_emoji() {
        let svg = draw(
            "x",
            &[
                json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": ":white_check_mark: done ⏹️ ✋"}}]}),
            ],
        );
        assert!(
            svg.contains(&format!("font-family=\"{EMOJI}\">✅</tspan>")),
            "{svg}"
        );
        assert!(
            svg.contains(&format!("font-family=\"{EMOJI}\">⏹️</tspan>")),
            "{svg}"
        );
        assert!(
            svg.contains(&format!("font-family=\"{EMOJI}\">✋</tspan>")),
            "{svg}"
        );
        assert!(!svg.contains(":white_check_mark:"));
    }

    #[test]
    fn code_blocks_quotes_and_identifiers_keep_their_text() {
        let svg = draw(
            "x",
            &[
                json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Log*\n```\nERROR: index \"invoices_number_key\"\n  *not bold* &lt;x&gt;\n```\n> quoted MAX_CRITICAL=0"}}]}),
            ],
        );
        let text = texts(&svg);
        assert!(
            text.contains("ERROR: index &quot;invoices_number_key&quot;"),
            "{text}"
        );
        assert!(text.contains("  *not bold* &lt;x&gt;"), "{text}");
        assert!(text.contains("quoted MAX_CRITICAL=0"), "{text}");
        assert!(!text.contains("```"), "{text}");
    }

    #[test]
    fn long_text_wraps_within_the_width_and_output_is_stable() {
        let long = "word ".repeat(200);
        let payload = json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": long}}, {"type": "divider"}, {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://example.com"}]}]});
        let svg = draw("x", std::slice::from_ref(&payload));
        assert!(svg.matches("<text x=\"64\"").count() > 5, "{svg}");
        assert_eq!(svg, draw("x", &[payload]));
        assert!(!svg.contains("stroke-width") && !svg.contains("#e01e5a\"/>"));
    }

    #[test]
    fn dates_are_told_in_slacks_words() {
        assert_eq!(
            slack_date(1_795_168_931, "{date_num} {date} {date_long} {time}"),
            "2026-11-20 November 20th, 2026 Friday, November 20th, 2026 10:02 AM"
        );
        assert_eq!(
            slack_date(0, "{date_short} {time_secs}"),
            "Jan 1, 1970 12:00:00 AM"
        );
    }
}
