//! Text from a photo, file names and anything else a user typed is
//! untrusted: Slack mrkdwn needs `&`, `<` and `>` escaped, or it could
//! mention `<!channel>`, `<@U…>` or smuggle in links; and a backtick in a
//! name shown in a code span would close it. Messages are posted without
//! `link_names`, so a bare `@channel` stays text.

/// Escapes the three characters Slack treats as control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A name (file name, title, address, voice) to show in a message: no
/// hidden characters, escaped, and no backtick to end a code span around
/// it or start one (it becomes a prime, which looks alike).
pub fn name(text: &str) -> String {
    escape(&storytime_pipeline::domain::names::visible(text)).replace('`', "\u{2032}")
}

/// `text` in a code span, which it cannot leave.
pub fn code(text: &str) -> String {
    format!("`{}`", name(text))
}

/// The text as a block quote of at most `max` characters (cut after a
/// sentence where possible, with an ellipsis), escaped.
pub fn quote(text: &str, max: usize) -> String {
    let (kept, cut) = storytime_pipeline::domain::narration_text::truncate_at_sentence(text, max);
    let mut body = escape(&kept);
    if cut {
        body.push_str(" …");
    }
    body.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("> {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("Tom & Jerry <!channel> > 3"), "Tom &amp; Jerry &lt;!channel&gt; &gt; 3");
    }

    #[test]
    fn names_cannot_mention_link_or_leave_their_code_span() {
        let hostile = "a`<!channel>` <@U123> <https://evil.example|x> &\u{202E}gpj.exe`";
        let shown = code(hostile);
        assert_eq!(
            shown,
            "`a\u{2032}&lt;!channel&gt;\u{2032} &lt;@U123&gt; &lt;https://evil.example|x&gt; &amp;gpj.exe\u{2032}`"
        );
        assert_eq!(shown.matches('`').count(), 2, "only the span's own backticks");
        assert!(!shown.contains('<') && !shown.contains('>'));
        assert_eq!(name("page 1.jpeg"), "page 1.jpeg");
    }

    #[test]
    fn long_text_is_quoted_and_cut_at_a_sentence() {
        let text = "One fish. Two fish.\nRed fish? Blue fish.";
        assert_eq!(quote(text, 100), "> One fish. Two fish.\n> Red fish? Blue fish.");
        assert_eq!(quote(text, 12), "> One fish. …");
    }
}
