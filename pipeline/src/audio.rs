//! Joining narrated chunks into one MP3.

use mp3lame_encoder::{Bitrate, Builder, FlushNoGap, MonoPcm, Quality};

use crate::ports::Speech;

/// Pause between chunks and pages, in seconds.
const PAUSE_SECONDS: f32 = 0.6;

/// One MP3 and its length.
pub struct Mp3 {
    pub bytes: Vec<u8>,
    pub seconds: f32,
}

/// Joins synthesized chunks, in order, into one MP3. PCM chunks are joined
/// with a short pause and encoded once; MP3 chunks (from engines that
/// produce MP3) are concatenated frame streams.
pub fn join(chunks: Vec<Speech>) -> Result<Mp3, String> {
    let mut pcm: Vec<i16> = Vec::new();
    let mut rate = None;
    let mut mp3 = Vec::new();
    let mut mp3_seconds = 0.0;
    for chunk in chunks {
        match chunk {
            Speech::Pcm { samples, sample_rate } => {
                if *rate.get_or_insert(sample_rate) != sample_rate {
                    return Err("chunks were synthesized at different sample rates".into());
                }
                if !pcm.is_empty() {
                    pcm.extend(std::iter::repeat_n(0, (sample_rate as f32 * PAUSE_SECONDS) as usize));
                }
                pcm.extend(samples);
            }
            Speech::Mp3 { bytes, seconds } => {
                mp3.extend_from_slice(&bytes);
                mp3_seconds += seconds;
            }
        }
    }
    match (rate, mp3.is_empty()) {
        (Some(_), false) => Err("chunks mix PCM and MP3".into()),
        (Some(rate), true) => {
            let seconds = pcm.len() as f32 / rate as f32;
            Ok(Mp3 { bytes: encode(&pcm, rate)?, seconds })
        }
        (None, _) => Ok(Mp3 { bytes: mp3, seconds: mp3_seconds }),
    }
}

/// Encodes mono 16-bit PCM as constant-bitrate MP3 (64 kbit/s is ample
/// for one voice).
pub fn encode(samples: &[i16], sample_rate: u32) -> Result<Vec<u8>, String> {
    let mut builder = Builder::new().ok_or("the MP3 encoder could not start")?;
    builder.set_num_channels(1).map_err(|e| e.to_string())?;
    builder.set_sample_rate(sample_rate).map_err(|e| e.to_string())?;
    builder.set_brate(Bitrate::Kbps64).map_err(|e| e.to_string())?;
    builder.set_quality(Quality::Good).map_err(|e| e.to_string())?;
    let mut encoder = builder.build().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for chunk in samples.chunks(64 * 1024) {
        out.reserve(mp3lame_encoder::max_required_buffer_size(chunk.len()));
        encoder.encode_to_vec(MonoPcm(chunk), &mut out).map_err(|e| e.to_string())?;
    }
    out.reserve(7200);
    encoder.flush_to_vec::<FlushNoGap>(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32, rate: u32) -> Vec<i16> {
        (0..(seconds * rate as f32) as usize)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn pcm_chunks_become_one_mp3_with_pauses_between() {
        let chunks = vec![
            Speech::Pcm { samples: tone(1.0, 22050), sample_rate: 22050 },
            Speech::Pcm { samples: tone(2.0, 22050), sample_rate: 22050 },
        ];
        let mp3 = join(chunks).unwrap();
        assert!((mp3.seconds - 3.6).abs() < 0.01, "{}", mp3.seconds);
        // MPEG audio frame sync at the start, and about 64 kbit/s of data.
        assert_eq!(mp3.bytes[0], 0xFF);
        assert_eq!(mp3.bytes[1] & 0xE0, 0xE0);
        let expected = 64_000.0 / 8.0 * mp3.seconds;
        assert!((mp3.bytes.len() as f32 - expected).abs() < expected * 0.2, "{} bytes", mp3.bytes.len());
    }

    #[test]
    fn mp3_chunks_are_concatenated() {
        let a = Speech::Mp3 { bytes: bytes::Bytes::from_static(b"ab"), seconds: 1.0 };
        let b = Speech::Mp3 { bytes: bytes::Bytes::from_static(b"cd"), seconds: 2.0 };
        let mp3 = join(vec![a, b]).unwrap();
        assert_eq!(mp3.bytes, b"abcd");
        assert_eq!(mp3.seconds, 3.0);
    }

    #[test]
    fn mixed_rates_are_refused() {
        let chunks = vec![
            Speech::Pcm { samples: vec![0; 10], sample_rate: 22050 },
            Speech::Pcm { samples: vec![0; 10], sample_rate: 16000 },
        ];
        assert!(join(chunks).is_err());
    }
}
