//! The languages Storytime reads and narrates, and how a page's language is
//! told from its text.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    English,
    #[serde(rename = "ko")]
    Korean,
}

impl Language {
    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::Korean => "ko",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" | "eng" | "english" => Some(Self::English),
            "ko" | "kor" | "korean" => Some(Self::Korean),
            _ => None,
        }
    }

    /// Decides by script: a page whose letters are mostly Hangul is Korean.
    /// Children's books rarely mix scripts on a page, so counting letters is
    /// both cheap and reliable here.
    pub fn detect(text: &str) -> Self {
        let (mut hangul, mut latin) = (0usize, 0usize);
        for c in text.chars() {
            if is_hangul(c) {
                hangul += 1;
            } else if c.is_ascii_alphabetic() {
                latin += 1;
            }
        }
        // A Hangul syllable carries about as much as two or three Latin letters.
        if hangul * 2 >= latin && hangul > 0 { Self::Korean } else { Self::English }
    }
}

pub(crate) fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_korean_and_english_pages() {
        assert_eq!(Language::detect("옛날 옛적에 호랑이가 살았어요."), Language::Korean);
        assert_eq!(Language::detect("Once upon a time there lived a tiger."), Language::English);
        assert_eq!(Language::detect("토끼가 말했어요. \"OK!\""), Language::Korean);
        assert_eq!(Language::detect(""), Language::English);
    }
}
