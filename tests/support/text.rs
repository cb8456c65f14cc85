//! Judging results: character error rate of a reading, and the length of
//! an MP3 as an independent decoder sees it.

use std::io::Cursor;

/// Character error rate of `got` against `want`, with quotes and dashes
/// normalised and whitespace collapsed (the measure the issue uses).
pub fn cer(got: &str, want: &str) -> f64 {
    let norm = |s: &str| -> Vec<char> {
        let s = s
            .replace(['\u{201c}', '\u{201d}'], "\"")
            .replace(['\u{2018}', '\u{2019}'], "'")
            .replace(['\u{2014}', '\u{2013}'], "-");
        s.split_whitespace().collect::<Vec<_>>().join(" ").chars().collect()
    };
    let (a, b) = (norm(got), norm(want));
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + usize::from(ca != cb));
        }
        prev = cur;
    }
    prev[b.len()] as f64 / b.len().max(1) as f64
}

/// Decodes an MP3 completely and returns its length in seconds; panics if
/// it does not decode.
pub fn mp3_seconds(bytes: &[u8]) -> f64 {
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .expect("the audio is an MP3 stream");
    let mut format = probed.format;
    let track = format.default_track().expect("an audio track").clone();
    let rate = track.codec_params.sample_rate.expect("a sample rate") as f64;
    let mut decoder =
        symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default()).expect("an MP3 decoder");
    let mut frames = 0u64;
    loop {
        match format.next_packet() {
            Ok(packet) => {
                let decoded = decoder.decode(&packet).expect("every packet decodes");
                frames += decoded.frames() as u64;
            }
            Err(symphonia::core::errors::Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("the MP3 does not decode: {e}"),
        }
    }
    frames as f64 / rate
}
