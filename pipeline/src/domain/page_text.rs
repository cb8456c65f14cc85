//! From a text reader's raw answer to the text of a page, in reading order.
//!
//! Readers return *fragments*: runs of words they saw on one line, in their
//! own order. On a photo of a real book that order is not always the reading
//! order: a shadow or a curved page makes the reader split one printed line
//! into pieces placed far apart, and an illustration yields noise. This
//! module rebuilds printed lines from word geometry, keeps the reader's order
//! of lines, drops noise and page numbers, and joins hyphenated words.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    pub left: i32,
    pub top: i32,
    pub width: i32,
    pub height: i32,
}

impl Rect {
    fn right(&self) -> i32 {
        self.left + self.width
    }

    fn center_y(&self) -> f32 {
        self.top as f32 + self.height as f32 / 2.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    /// 0–100.
    pub confidence: f32,
    pub bbox: Rect,
}

/// Words a reader saw together on one line, with the reader's block and
/// paragraph numbers (0 when the reader has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub words: Vec<Word>,
    pub block: u32,
    pub paragraph: u32,
}

/// The text of a page, ready to narrate.
#[derive(Debug, Clone, PartialEq)]
pub struct PageText {
    /// Paragraphs separated by a newline; lines within one joined by spaces.
    pub text: String,
    /// Mean confidence of the words kept, 0–100 (0 when there are none).
    pub confidence: f32,
    /// Number of words kept.
    pub words: usize,
}

/// Fragments whose mean confidence is below this are noise (illustrations,
/// textures); real print on a flattened page reads far above it.
const MIN_FRAGMENT_CONFIDENCE: f32 = 45.0;

/// Words lower than this share of the typical word height are specks the
/// reader took for marks (dust, texture), not print.
const MIN_WORD_HEIGHT_SHARE: f32 = 0.3;

/// Builds the page text from a reader's fragments, given in reader order.
pub fn assemble(fragments: Vec<Fragment>) -> PageText {
    let typical = median_height(fragments.iter().flat_map(|f| f.words.iter()));
    let kept: Vec<(usize, Fragment)> = fragments
        .into_iter()
        .enumerate()
        .filter_map(|(order, mut f)| {
            f.words.retain(|w| w.bbox.height as f32 >= MIN_WORD_HEIGHT_SHARE * typical);
            clean_fragment(f).map(|f| (order, f))
        })
        .collect();
    let lines = merge_into_lines(kept);

    let mut text = String::new();
    let mut last_para: Option<(u32, u32)> = None;
    let (mut conf_sum, mut words) = (0.0f32, 0usize);
    for line in lines {
        let line_text = join_words(&line.words);
        if is_page_number(&line_text) {
            continue;
        }
        conf_sum += line.words.iter().map(|w| w.confidence).sum::<f32>();
        words += line.words.len();
        let para = (line.block, line.paragraph);
        let same_para = last_para == Some(para);
        last_para = Some(para);
        append_line(&mut text, &line_text, same_para);
    }
    let confidence = if words == 0 { 0.0 } else { conf_sum / words as f32 };
    PageText { text, confidence, words }
}

/// Drops words that are only marks the reader was unsure of, then decides
/// whether what is left is text at all.
fn clean_fragment(mut f: Fragment) -> Option<Fragment> {
    f.words.retain(|w| {
        let text = w.text.trim();
        !text.is_empty() && (text.chars().any(char::is_alphanumeric) || w.confidence >= 60.0)
    });
    if f.words.is_empty() {
        return None;
    }
    f.words.sort_by_key(|w| w.bbox.left);
    let all: String = f.words.iter().map(|w| w.text.as_str()).collect();
    let chars = all.chars().count().max(1);
    let letters = all.chars().filter(|c| c.is_alphabetic()).count();
    let digits = all.chars().filter(|c| c.is_ascii_digit()).count();
    let mean_conf = f.words.iter().map(|w| w.confidence).sum::<f32>() / f.words.len() as f32;
    if letters == 0 {
        // Numbers alone are kept for now: they may be part of a sentence
        // split by the reader, and page numbers are dropped per line later.
        return (digits > 0 && mean_conf >= MIN_FRAGMENT_CONFIDENCE).then_some(f);
    }
    if letters * 2 < chars || mean_conf < MIN_FRAGMENT_CONFIDENCE {
        return None;
    }
    Some(f)
}

struct Line {
    order: usize,
    block: u32,
    paragraph: u32,
    words: Vec<Word>,
}

/// Joins fragments that continue each other on one printed line: the next
/// fragment starts right of where the line ends, at about the same height
/// as the line's *last* word (so lines that curve up along a bent page
/// still join). Each line keeps the reader's position of its leftmost piece.
fn merge_into_lines(fragments: Vec<(usize, Fragment)>) -> Vec<Line> {
    let h = median_height(fragments.iter().flat_map(|(_, f)| f.words.iter())).max(1.0);

    let mut by_left = fragments;
    by_left.sort_by_key(|(_, f)| f.words[0].bbox.left);
    let mut lines: Vec<Line> = Vec::new();
    let mut placed: Vec<Rect> = Vec::new();
    for (order, mut f) in by_left {
        // A reader sometimes reads the same print twice, as two overlapping
        // lines: keep the first reading of each spot.
        f.words.retain(|w| !placed.iter().any(|p| mostly_overlap(p, &w.bbox)));
        let Some(first) = f.words.first() else {
            continue;
        };
        placed.extend(f.words.iter().map(|w| w.bbox));
        let mut best: Option<(f32, usize)> = None;
        for (i, line) in lines.iter().enumerate() {
            let last = line.words.last().expect("lines are never empty");
            let gap = (first.bbox.left - last.bbox.right()) as f32;
            if gap < -0.5 * h || gap > 4.0 * h {
                continue;
            }
            let dy = (first.bbox.center_y() - last.bbox.center_y()).abs();
            if dy < 0.6 * h && best.is_none_or(|(d, _)| dy < d) {
                best = Some((dy, i));
            }
        }
        match best {
            Some((_, i)) => lines[i].words.extend(f.words),
            None => lines.push(Line { order, block: f.block, paragraph: f.paragraph, words: f.words }),
        }
    }
    lines.sort_by_key(|l| l.order);
    lines
}

/// Joins a line's words with spaces, except between Hangul syllables that
/// touch: Tesseract's Korean model reports each syllable of a word as a
/// word of its own, and only the gaps tell words apart.
fn join_words(words: &[Word]) -> String {
    let h = median_height(words.iter()).max(1.0);
    let mut out = String::new();
    let mut prev: Option<&Word> = None;
    for w in words {
        if let Some(p) = prev {
            let gap = (w.bbox.left - p.bbox.right()) as f32;
            let hangul_pair = p.text.chars().last().is_some_and(super::language::is_hangul)
                && w.text.chars().next().is_some_and(super::language::is_hangul);
            if !(hangul_pair && gap < 0.3 * h) {
                out.push(' ');
            }
        }
        out.push_str(&w.text);
        prev = Some(w);
    }
    out
}

fn median_height<'a>(words: impl Iterator<Item = &'a Word>) -> f32 {
    let mut heights: Vec<i32> = words.map(|w| w.bbox.height).collect();
    heights.sort_unstable();
    heights.get(heights.len() / 2).copied().unwrap_or(20) as f32
}

/// Two boxes share more than half of the smaller one.
fn mostly_overlap(a: &Rect, b: &Rect) -> bool {
    let w = (a.right().min(b.right()) - a.left.max(b.left)).max(0) as i64;
    let h = ((a.top + a.height).min(b.top + b.height) - a.top.max(b.top)).max(0) as i64;
    let smaller = (a.width as i64 * a.height as i64).min(b.width as i64 * b.height as i64).max(1);
    w * h * 2 > smaller
}

/// A line holding nothing but a number (perhaps with dashes or dots around
/// it) is a page number, not something to read aloud.
fn is_page_number(line: &str) -> bool {
    let core = line.trim_matches(|c: char| !c.is_alphanumeric());
    !core.is_empty()
        && core.len() <= 4
        && core.chars().all(|c| c.is_ascii_digit())
        && line.chars().filter(|c| c.is_alphanumeric()).count() == core.len()
}

fn append_line(text: &mut String, line: &str, same_paragraph: bool) {
    let line = line.trim();
    if line.is_empty() {
        return;
    }
    if text.is_empty() {
        text.push_str(line);
        return;
    }
    // "won-" + "derful" → "wonderful": a line-end hyphen after a letter,
    // followed by a lowercase continuation, is typesetting, not spelling.
    let ends_hyphenated =
        text.ends_with(['-', '\u{2010}', '\u{00AD}']) && text.chars().rev().nth(1).is_some_and(char::is_alphabetic);
    if ends_hyphenated && line.chars().next().is_some_and(char::is_lowercase) {
        text.pop();
        text.push_str(line);
        return;
    }
    text.push(if same_paragraph { ' ' } else { '\n' });
    text.push_str(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, left: i32, top: i32) -> Word {
        let width = 12 * text.chars().count() as i32;
        Word { text: text.into(), confidence: 90.0, bbox: Rect { left, top, width, height: 30 } }
    }

    fn frag(block: u32, words: &[(&str, i32, i32)]) -> Fragment {
        Fragment { words: words.iter().map(|(t, l, tp)| word(t, *l, *tp)).collect(), block, paragraph: 1 }
    }

    #[test]
    fn pieces_of_one_printed_line_are_joined_in_place() {
        // The reader split the second line and put its right half first.
        let fragments = vec![
            frag(1, &[("Babette", 0, 0), ("saw", 100, 0)]),
            frag(2, &[("welcome.", 240, 52)]),
            frag(3, &[("courage,", 0, 50), ("and", 110, 51), ("said,", 160, 51)]),
        ];
        assert_eq!(assemble(fragments).text, "Babette saw\ncourage, and said, welcome.");
    }

    #[test]
    fn a_line_that_curves_up_keeps_its_end() {
        let fragments = vec![
            frag(1, &[("kids", 0, 100), ("drawing", 60, 98), ("with", 160, 94)]),
            frag(1, &[("street", 0, 150)]),
            frag(2, &[("chalk.", 230, 86)]),
        ];
        assert_eq!(assemble(fragments).text, "kids drawing with chalk. street");
    }

    #[test]
    fn page_numbers_and_noise_are_dropped() {
        let mut noise = frag(4, &[("~=%", 0, 300)]);
        noise.words[0].confidence = 20.0;
        let fragments = vec![
            frag(1, &[("Once", 0, 0), ("upon", 60, 0)]),
            noise,
            frag(5, &[("-", 0, 400), ("20", 20, 400), ("-", 50, 400)]),
        ];
        let page = assemble(fragments);
        assert_eq!(page.text, "Once upon");
        assert_eq!(page.words, 2);
    }

    #[test]
    fn specks_and_words_read_twice_are_dropped() {
        let mut speck = word("i", 40, 10);
        speck.bbox.height = 4;
        let fragments = vec![
            frag(1, &[("courage,", 0, 50), ("and", 110, 51), ("said,", 160, 51)]),
            Fragment { words: vec![speck, word("said,", 161, 52), word("welcome.", 240, 52)], block: 2, paragraph: 1 },
        ];
        assert_eq!(assemble(fragments).text, "courage, and said, welcome.");
    }

    #[test]
    fn touching_hangul_syllables_form_one_word() {
        let mut words =
            vec![word("옛날", 0, 0), word("옛", 60, 0), word("적", 74, 0), word("에", 88, 0), word("깊은", 120, 0)];
        for w in &mut words {
            w.bbox.width = 12 * w.text.chars().count() as i32;
        }
        let f = Fragment { words, block: 1, paragraph: 1 };
        assert_eq!(assemble(vec![f]).text, "옛날 옛적에 깊은");
    }

    #[test]
    fn numbers_inside_a_sentence_stay() {
        let fragments = vec![frag(1, &[("The", 0, 0), ("3", 50, 0), ("bears", 70, 0)])];
        assert_eq!(assemble(fragments).text, "The 3 bears");
    }

    #[test]
    fn line_end_hyphens_are_joined_but_real_hyphens_stay() {
        let fragments = vec![
            frag(1, &[("a", 0, 0), ("won-", 30, 0)]),
            frag(1, &[("derful", 0, 40), ("brand-new", 90, 40), ("day", 220, 40)]),
        ];
        assert_eq!(assemble(fragments).text, "a wonderful brand-new day");
    }

    #[test]
    fn a_page_without_text_gives_nothing() {
        let page = assemble(vec![]);
        assert!(page.text.is_empty());
        assert_eq!(page.confidence, 0.0);
    }
}
