//! Names that come from outside (file names, titles) as they may be shown
//! to people: no control characters and no invisible formatting characters
//! that reorder what is displayed (a "photo\u{202E}gpj.exe" that reads as
//! "photoexe.jpg").

/// Whether `c` is a control character or an invisible formatting one:
/// bidirectional embeddings, overrides, isolates and marks, zero-width
/// characters, the byte-order mark.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `name` without hidden characters (see [`is_hidden`]).
pub fn visible(name: &str) -> String {
    name.chars().filter(|c| !is_hidden(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_isolates_and_zero_widths_are_removed() {
        assert_eq!(visible("photo\u{202E}gpj.exe"), "photogpj.exe");
        assert_eq!(visible("a\u{2066}b\u{2069}c\u{200B}d\u{FEFF}e\u{061C}"), "abcde");
        assert_eq!(visible("line\r\nbreak\ttab"), "linebreaktab");
        assert_eq!(visible("이야기 page 1.jpeg"), "이야기 page 1.jpeg");
    }
}
