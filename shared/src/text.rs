//! Escaping and truncation for text that reaches Slack or SNS; hex for the MACs the suite
//! checks and makes.

use std::borrow::Cow;

/// Appended where text was cut, so a reader knows something is missing.
pub const TRUNCATION_MARKER: &str = "… [truncated]";

/// Escapes Slack's three control characters. Applied to every untrusted string, it turns
/// `<!channel>` and `<https://evil|ok>` into inert text.
pub fn escape_mrkdwn(untrusted: &str) -> Cow<'_, str> {
    if !untrusted.contains(['&', '<', '>']) {
        return Cow::Borrowed(untrusted);
    }
    let mut out = String::with_capacity(untrusted.len() + 16);
    for c in untrusted.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Length as Slack's limits count it (UTF-16 code units): an emoji counts twice.
pub fn slack_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Cuts already-escaped mrkdwn to at most `max` UTF-16 units including the marker. The
/// cut lands on a char boundary and never inside an entity (`&amp;`) or one of our own
/// `<url|label>` links, which would otherwise render as garbage or a broken link.
pub fn truncate_mrkdwn(text: &str, max: usize) -> Cow<'_, str> {
    cut_with_marker(text, max, |mut kept| {
        if let Some(amp) = kept.rfind('&')
            && !kept[amp..].contains(';')
        {
            kept = &kept[..amp];
        }
        if let Some(open) = kept.rfind('<')
            && !kept[open..].contains('>')
        {
            kept = &kept[..open];
        }
        kept
    })
}

/// Cuts plain text (no markup) to at most `max` UTF-16 units including the marker.
pub fn truncate_plain(text: &str, max: usize) -> Cow<'_, str> {
    cut_with_marker(text, max, |kept| kept)
}

/// Keeps what fits of `text` beside the marker; `back_off` may shorten the kept part
/// further so that it does not end inside markup.
fn cut_with_marker<'a>(
    text: &'a str,
    max: usize,
    back_off: impl Fn(&'a str) -> &'a str,
) -> Cow<'a, str> {
    if slack_len(text) <= max {
        return Cow::Borrowed(text);
    }
    let marker_len = slack_len(TRUNCATION_MARKER);
    if max <= marker_len {
        return Cow::Owned(cut_at_units(TRUNCATION_MARKER, max).to_owned());
    }
    let kept = back_off(cut_at_units(text, max - marker_len));
    Cow::Owned(format!("{kept}{TRUNCATION_MARKER}"))
}

/// Cuts to at most `max` UTF-8 bytes including the marker, on a char boundary.
pub fn truncate_bytes(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let budget = max.saturating_sub(TRUNCATION_MARKER.len());
    let mut end = budget.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if budget == 0 {
        return Cow::Owned(String::new());
    }
    Cow::Owned(format!("{}{TRUNCATION_MARKER}", &text[..end]))
}

fn cut_at_units(text: &str, max_units: usize) -> &str {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max_units {
            return &text[..i];
        }
    }
    text
}

/// A duration as a person reads it in a message: `42 ms`, `1.5 s`, `20 s`, `3 min 20 s`,
/// `2 h 3 min`. The one formatter every function uses.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms} ms")
    } else if s < 60 && !ms.is_multiple_of(1000) {
        format!("{:.1} s", d.as_secs_f64())
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        match s % 60 {
            0 => format!("{} min", s / 60),
            rest => format!("{} min {rest} s", s / 60),
        }
    } else {
        match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            rest => format!("{} h {rest} min", s / 3600),
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of `text` read as hex (either case); `None` for anything that is not.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_mentions_and_disguised_links() {
        assert_eq!(escape_mrkdwn("<!channel> hi"), "&lt;!channel&gt; hi");
        assert_eq!(
            escape_mrkdwn("<https://evil|ok>"),
            "&lt;https://evil|ok&gt;"
        );
        assert_eq!(escape_mrkdwn("fish & chips"), "fish &amp; chips");
        assert_eq!(escape_mrkdwn("&amp;"), "&amp;amp;");
        assert!(matches!(escape_mrkdwn("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_text_is_left_alone() {
        assert_eq!(truncate_mrkdwn("abc", 10), "abc");
        assert_eq!(truncate_bytes("abc", 3), "abc");
    }

    #[test]
    fn truncation_respects_the_limit_and_marks_the_cut() {
        let long = "x".repeat(5000);
        let cut = truncate_mrkdwn(&long, 3000);
        assert_eq!(slack_len(&cut), 3000);
        assert!(cut.ends_with(TRUNCATION_MARKER));
    }

    #[test]
    fn truncation_counts_multibyte_and_astral_characters_and_cuts_between_them() {
        let text = "é😀".repeat(2000);
        let cut = truncate_mrkdwn(&text, 3000);
        assert!(slack_len(&cut) <= 3000);
        assert!(cut.ends_with(TRUNCATION_MARKER));
        let bytes = truncate_bytes(&text, 1001);
        assert!(bytes.len() <= 1001);
    }

    #[test]
    fn truncation_never_splits_an_entity() {
        let text = format!("{}&amp;{}", "a".repeat(20), "tail".repeat(20));
        let marker = slack_len(TRUNCATION_MARKER);
        let cut = truncate_mrkdwn(&text, 22 + marker);
        assert_eq!(cut, format!("{}{TRUNCATION_MARKER}", "a".repeat(20)));
    }

    #[test]
    fn truncation_never_leaves_half_a_link() {
        let text = format!("see <https://example.com/{}|logs> now", "p".repeat(100));
        let cut = truncate_mrkdwn(&text, 60);
        assert_eq!(cut, format!("see {TRUNCATION_MARKER}"));
    }

    #[test]
    fn tiny_limits_still_fit() {
        assert!(slack_len(&truncate_mrkdwn("abcdefghijklmnopqrstuvwxyz", 5)) <= 5);
        assert!(truncate_bytes("abcdef", 3).len() <= 3);
    }

    #[test]
    fn durations_read_as_a_person_would_say_them() {
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_millis(42)), "42 ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human_duration(Duration::from_secs(20)), "20 s");
        assert_eq!(human_duration(Duration::from_secs(180)), "3 min");
        assert_eq!(human_duration(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(human_duration(Duration::from_secs(7384)), "2 h 3 min");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 h");
    }
}
