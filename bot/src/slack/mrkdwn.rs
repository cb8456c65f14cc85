//! Text from a photo is untrusted: Slack mrkdwn needs `&`, `<` and `>`
//! escaped, or a page could mention `<!channel>` or smuggle in links.

/// Escapes the three characters Slack treats as control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
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
    fn long_text_is_quoted_and_cut_at_a_sentence() {
        let text = "One fish. Two fish.\nRed fish? Blue fish.";
        assert_eq!(quote(text, 100), "> One fish. Two fish.\n> Red fish? Blue fish.");
        assert_eq!(quote(text, 12), "> One fish. …");
    }
}
