//! The text a narrator reads: split into chunks an engine accepts, at
//! sentence ends, and cut at the length limit of a book.

/// Splits text into chunks of at most `max` characters for a narrator,
/// at sentence ends where possible, then at commas, then at spaces, so no
/// chunk ends mid-word.
pub fn split_for_narration(text: &str, max: usize) -> Vec<String> {
    let max = max.max(16);
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for sentence in sentences(text) {
        for piece in split_long(sentence.trim(), max) {
            if current.chars().count() + piece.chars().count() + 1 > max && !current.is_empty() {
                chunks.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(piece);
        }
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Sentences with their closing punctuation and quotes; a newline (a
/// paragraph end) also ends a sentence.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let ends = match c {
            '\n' => true,
            '.' | '!' | '?' | '。' | '…' => next.is_none_or(char::is_whitespace),
            '"' | '\u{201d}' | '\'' | '\u{2019}' | ')' => {
                i > 0 && matches!(chars[i - 1].1, '.' | '!' | '?') && next.is_none_or(char::is_whitespace)
            }
            _ => false,
        };
        if ends {
            let end = pos + c.len_utf8();
            if !text[start..end].trim().is_empty() {
                out.push(&text[start..end]);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

/// Cuts a sentence longer than `max` at commas or spaces.
fn split_long(sentence: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = sentence;
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map(|(i, _)| i).unwrap_or(rest.len());
        let window = &rest[..limit];
        let cut = window
            .rfind([',', ';', ':'])
            .map(|i| i + 1)
            .or_else(|| window.rfind(char::is_whitespace))
            .filter(|&i| i > 0)
            .unwrap_or(limit);
        out.push(rest[..cut].trim());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Cuts text to at most `max` characters at a sentence end; returns the
/// text and whether anything was cut.
pub fn truncate_at_sentence(text: &str, max: usize) -> (String, bool) {
    if text.chars().count() <= max {
        return (text.to_owned(), false);
    }
    let mut out = String::new();
    for s in sentences(text) {
        if out.chars().count() + s.chars().count() > max {
            break;
        }
        out.push_str(s);
    }
    if out.trim().is_empty() {
        out = text.chars().take(max).collect();
    }
    (out.trim().to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narration_chunks_end_at_sentences_and_respect_the_limit() {
        let text = "One fish. Two fish! \"Red fish?\" she asked. Blue fish.";
        let chunks = split_for_narration(text, 24);
        assert_eq!(chunks, ["One fish. Two fish!", "\"Red fish?\" she asked.", "Blue fish."]);
        let long = "word ".repeat(100);
        let chunks = split_for_narration(&long, 50);
        assert!(chunks.iter().all(|c| c.chars().count() <= 50 && !c.ends_with(' ')));
        assert_eq!(chunks.join(" ").split_whitespace().count(), 100);
        assert!(split_for_narration("  ", 50).is_empty());
    }

    #[test]
    fn truncation_keeps_whole_sentences() {
        assert_eq!(truncate_at_sentence("Short.", 100), ("Short.".into(), false));
        let (t, cut) = truncate_at_sentence("First one. Second one. Third.", 23);
        assert_eq!((t.as_str(), cut), ("First one. Second one.", true));
    }
}
