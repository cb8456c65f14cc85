//! When each word of a narration is spoken: placing a text's words on the
//! stretches of audio where speech sounds, and writing them as WebVTT.
//!
//! Engines say different things about timing. Polly's speech marks and
//! Piper's alignments give one span per spoken word; for espeak-ng the
//! spans are the sounding stretches between pauses, found in the audio.
//! The same placement serves all: when there is one span per word, each
//! word takes its span; otherwise the words are laid along the spans in
//! proportion to their length, so a pause in the audio falls between words.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One word of the text and when it is spoken, in milliseconds from the
/// start of the narration. Stored compactly as `[text, start, end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordTiming {
    pub text: String,
    pub start_ms: u32,
    pub end_ms: u32,
}

impl Serialize for WordTiming {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.text, self.start_ms, self.end_ms).serialize(s)
    }
}

impl<'de> Deserialize<'de> for WordTiming {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (text, start_ms, end_ms) = <(String, u32, u32)>::deserialize(d)?;
        Ok(Self { text, start_ms, end_ms })
    }
}

/// A stretch of audio in which speech sounds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start_ms: u32,
    pub end_ms: u32,
}

impl Span {
    fn len(self) -> u32 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// The words of a text, as `/retrieve` counts them: runs of non-space.
pub fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// Places `words` on the sounding `spans` of audio lasting `duration_ms`.
/// Spans out of order or past the end are tidied first; with none, the
/// whole audio is one span. Timings are non-decreasing and end by
/// `duration_ms`.
pub fn place(words: &[&str], spans: &[Span], duration_ms: u32) -> Vec<WordTiming> {
    if words.is_empty() {
        return Vec::new();
    }
    let mut tidy: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        let start = s.start_ms.min(duration_ms).max(tidy.last().map_or(0, |l: &Span| l.end_ms));
        let end = s.end_ms.min(duration_ms);
        if end > start {
            tidy.push(Span { start_ms: start, end_ms: end });
        }
    }
    if tidy.is_empty() {
        tidy.push(Span { start_ms: 0, end_ms: duration_ms });
    }
    if tidy.len() == words.len() {
        return words
            .iter()
            .zip(&tidy)
            .map(|(w, s)| WordTiming { text: (*w).to_owned(), start_ms: s.start_ms, end_ms: s.end_ms })
            .collect();
    }
    // Each word weighs its letters and one more for the gap after it; the
    // sounding time is shared out by weight, skipping the pauses.
    let weights: Vec<u64> = words.iter().map(|w| w.chars().count() as u64 + 1).collect();
    let total_weight: u64 = weights.iter().sum();
    let total_sound: u64 = tidy.iter().map(|s| u64::from(s.len())).sum();
    let at = |weight: u64, leaning_forward: bool| -> u32 {
        let mut sound = total_sound * weight / total_weight;
        for s in &tidy {
            let len = u64::from(s.len());
            if sound < len || (sound == len && !leaning_forward) {
                return s.start_ms + sound as u32;
            }
            sound -= len;
        }
        tidy.last().map_or(0, |s| s.end_ms)
    };
    let mut out = Vec::with_capacity(words.len());
    let mut before = 0;
    for (w, weight) in words.iter().zip(&weights) {
        let start = at(before, true);
        let end = at(before + weight - 1, false).max(start);
        out.push(WordTiming { text: (*w).to_owned(), start_ms: start, end_ms: end });
        before += weight;
    }
    out
}

/// The sounding stretches of mono 16-bit audio: 10 ms frames louder than
/// a twentieth of the loudest frame, with pauses of at least 150 ms
/// between stretches (shorter dips are within a word or between words of
/// one phrase).
pub fn sounding(samples: &[i16], sample_rate: u32) -> Vec<Span> {
    let frame = (sample_rate / 100).max(1) as usize;
    let loudness: Vec<f64> = samples
        .chunks(frame)
        .map(|c| (c.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / c.len() as f64).sqrt())
        .collect();
    let loudest = loudness.iter().copied().fold(0.0, f64::max);
    if loudest < 1.0 {
        return Vec::new();
    }
    let threshold = (loudest / 20.0).max(64.0);
    const MIN_PAUSE_FRAMES: usize = 15;
    let mut spans: Vec<Span> = Vec::new();
    let mut start: Option<usize> = None;
    let mut quiet = 0;
    for (i, &l) in loudness.iter().enumerate() {
        if l >= threshold {
            start.get_or_insert(i);
            quiet = 0;
        } else if let Some(s) = start {
            quiet += 1;
            if quiet >= MIN_PAUSE_FRAMES {
                spans.push(Span { start_ms: s as u32 * 10, end_ms: (i + 1 - quiet) as u32 * 10 });
                start = None;
            }
        }
    }
    if let Some(s) = start {
        spans.push(Span { start_ms: s as u32 * 10, end_ms: (loudness.len() - quiet) as u32 * 10 });
    }
    spans
}

/// The timings as a WebVTT caption file, one cue per word.
pub fn webvtt(words: &[WordTiming]) -> String {
    let mut out = String::from("WEBVTT\n");
    for w in words {
        // A cue's text cannot hold "-->", and `<` or `&` start markup.
        let text = w.text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        out.push_str(&format!("\n{} --> {}\n{text}\n", vtt_time(w.start_ms), vtt_time(w.end_ms.max(w.start_ms + 1))));
    }
    out
}

fn vtt_time(ms: u32) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(a: u32, b: u32) -> Span {
        Span { start_ms: a, end_ms: b }
    }

    fn well_formed(t: &[WordTiming], duration: u32) {
        let mut last = 0;
        for w in t {
            assert!(w.start_ms >= last && w.end_ms >= w.start_ms && w.end_ms <= duration, "{t:?}");
            last = w.start_ms;
        }
    }

    #[test]
    fn one_span_per_word_gives_each_word_its_span() {
        let t = place(&["Once", "upon", "a"], &[span(10, 200), span(250, 400), span(420, 480)], 500);
        assert_eq!(t[1], WordTiming { text: "upon".into(), start_ms: 250, end_ms: 400 });
        well_formed(&t, 500);
    }

    #[test]
    fn words_are_shared_out_by_length_and_pauses_fall_between_them() {
        // Two phrases of equal weight, a long pause between.
        let t = place(&["aaa", "bbb", "ccc", "ddd"], &[span(0, 1000), span(3000, 4000)], 5000);
        assert_eq!(t.len(), 4);
        well_formed(&t, 5000);
        assert_eq!(t[0].start_ms, 0);
        assert!(t[1].end_ms <= 1000, "{t:?}");
        assert_eq!(t[2].start_ms, 3000, "{t:?}");
        assert!(t[3].end_ms <= 4000);
    }

    #[test]
    fn without_spans_the_whole_audio_is_shared() {
        let t = place(&["one", "two"], &[], 800);
        assert_eq!((t[0].start_ms, t[1].end_ms), (0, 700));
        well_formed(&t, 800);
        // Spans past the end or backwards are tidied, not trusted.
        let t = place(&["one", "two"], &[span(500, 9000), span(100, 200)], 800);
        well_formed(&t, 800);
    }

    #[test]
    fn pauses_are_found_in_the_audio() {
        let rate = 22050;
        let tone = |ms: usize| (0..rate as usize * ms / 1000).map(|i| if i % 20 < 10 { 8000 } else { -8000 });
        let quiet = |ms: usize| std::iter::repeat_n(0i16, rate as usize * ms / 1000);
        let samples: Vec<i16> =
            quiet(100).chain(tone(500)).chain(quiet(400)).chain(tone(300)).chain(quiet(50)).collect();
        let spans = sounding(&samples, rate);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert!((spans[0].start_ms as i32 - 100).abs() <= 10 && (spans[0].end_ms as i32 - 600).abs() <= 10);
        assert!((spans[1].start_ms as i32 - 1000).abs() <= 10 && (spans[1].end_ms as i32 - 1300).abs() <= 10);
        assert!(sounding(&[0; 1000], rate).is_empty());
    }

    #[test]
    fn captions_are_webvtt_with_markup_escaped() {
        let vtt = webvtt(&[WordTiming { text: "<b>&".into(), start_ms: 61_005, end_ms: 3_723_004 }]);
        assert_eq!(vtt, "WEBVTT\n\n00:01:01.005 --> 01:02:03.004\n&lt;b&gt;&amp;\n");
    }

    #[test]
    fn timings_are_stored_compactly() {
        let w = WordTiming { text: "bear".into(), start_ms: 5, end_ms: 9 };
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, r#"["bear",5,9]"#);
        assert_eq!(serde_json::from_str::<WordTiming>(&json).unwrap(), w);
    }
}
