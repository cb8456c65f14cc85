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

/// Splits mrkdwn into pieces of at most `max` characters (a section
/// block holds 3,000), at line ends where it can and otherwise at a space,
/// never inside an entity such as `&amp;`. A quoted line cut in two stays
/// quoted.
pub fn sections(text: &str, max: usize) -> Vec<String> {
    let max = max.max(16);
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    let push = |piece: String, out: &mut Vec<String>, current: &mut String, current_len: &mut usize| {
        let len = piece.chars().count();
        let joined = *current_len + usize::from(*current_len > 0) + len;
        if *current_len > 0 && joined > max {
            out.push(std::mem::take(current));
            *current_len = 0;
        }
        if *current_len > 0 {
            current.push('\n');
            *current_len += 1;
        }
        current.push_str(&piece);
        *current_len += len;
    };
    for line in text.lines() {
        let prefix = if line.starts_with("> ") { "> " } else { "" };
        let mut rest: Vec<char> = line.chars().collect();
        let mut first = true;
        loop {
            let lead: Vec<char> = if first { Vec::new() } else { prefix.chars().collect() };
            let room = max - lead.len();
            if rest.len() <= room {
                push(lead.into_iter().chain(rest).collect(), &mut out, &mut current, &mut current_len);
                break;
            }
            let mut cut = rest[..room].iter().rposition(|c| *c == ' ').filter(|&i| i > room / 2).unwrap_or(room);
            // An entity is at most 6 characters (`&quot;`): do not cut one.
            if let Some(amp) = rest[cut.saturating_sub(6)..cut].iter().rposition(|c| *c == '&') {
                let amp = cut.saturating_sub(6) + amp;
                if !rest[amp..cut].contains(&';') && amp > 0 {
                    cut = amp;
                }
            }
            let head: String = lead.into_iter().chain(rest[..cut].iter().copied()).collect();
            push(head, &mut out, &mut current, &mut current_len);
            rest = rest[cut..].iter().copied().skip_while(|c| *c == ' ').collect();
            first = false;
            if rest.is_empty() {
                break;
            }
        }
    }
    if current_len > 0 {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_into_sections_at_line_ends_then_spaces() {
        assert_eq!(sections("one\ntwo", 3000), vec!["one\ntwo"]);
        assert_eq!(sections("aaaa aaaa\nbbbb", 16), vec!["aaaa aaaa\nbbbb"]);
        let quoted = format!("Title\n> {}", "word ".repeat(10));
        let cut = sections(&quoted, 20);
        assert!(cut.iter().all(|s| s.chars().count() <= 20), "{cut:?}");
        assert!(cut[1..].iter().all(|s| s.starts_with("> ")), "{cut:?}");
        let entities = "&amp;".repeat(10);
        assert!(sections(&entities, 18).iter().all(|s| s.ends_with(';')), "{:?}", sections(&entities, 18));
    }

    proptest::proptest! {
        /// Every piece fits and no word is lost.
        #[test]
        fn any_text_fits_its_sections(text in "[a-z&;> \n]{0,400}", max in 16usize..64) {
            let cut = sections(&text, max);
            proptest::prop_assert!(cut.iter().all(|s| s.chars().count() <= max));
            // Cutting adds only whitespace and quote marks.
            let words = |s: &str| s.chars().filter(|c| !c.is_whitespace() && *c != '>').collect::<String>();
            proptest::prop_assert_eq!(words(&cut.join("\n")), words(&text));
        }
    }

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
