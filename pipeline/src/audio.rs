//! Joining narrated chunks into one MP3.

use mp3lame_encoder::{Bitrate, Builder, FlushNoGap, MonoPcm, Quality};

use crate::ports::Speech;

/// Pause between chunks and pages, in seconds.
const PAUSE_SECONDS: f32 = 0.6;

/// One MP3, its length, and where each joined chunk starts in it.
pub struct Mp3 {
    pub bytes: Vec<u8>,
    pub seconds: f32,
    pub offsets_ms: Vec<u32>,
}

/// Joins synthesized chunks, in order, with a short pause between them,
/// and encodes them once.
pub fn join(chunks: &[Speech]) -> Result<Mp3, String> {
    let Some(rate) = chunks.first().map(|c| c.sample_rate) else {
        return Err("there is no speech to encode".into());
    };
    let mut pcm: Vec<i16> = Vec::new();
    let mut offsets_ms = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        if chunk.sample_rate != rate {
            return Err("chunks were synthesized at different sample rates".into());
        }
        if !pcm.is_empty() {
            pcm.extend(std::iter::repeat_n(0, (rate as f32 * PAUSE_SECONDS) as usize));
        }
        offsets_ms.push((pcm.len() as u64 * 1000 / u64::from(rate)) as u32);
        pcm.extend_from_slice(&chunk.samples);
    }
    let seconds = pcm.len() as f32 / rate as f32;
    Ok(Mp3 { bytes: encode(&pcm, rate)?, seconds, offsets_ms })
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

    fn speech(samples: Vec<i16>, sample_rate: u32) -> Speech {
        Speech { samples, sample_rate, spans: Vec::new() }
    }

    #[test]
    fn chunks_become_one_mp3_with_pauses_between() {
        let chunks = [speech(tone(1.0, 22050), 22050), speech(tone(2.0, 22050), 22050)];
        let mp3 = join(&chunks).unwrap();
        assert!((mp3.seconds - 3.6).abs() < 0.01, "{}", mp3.seconds);
        assert_eq!(mp3.offsets_ms, [0, 1600]);
        // MPEG audio frame sync at the start, and about 64 kbit/s of data.
        assert_eq!(mp3.bytes[0], 0xFF);
        assert_eq!(mp3.bytes[1] & 0xE0, 0xE0);
        let expected = 64_000.0 / 8.0 * mp3.seconds;
        assert!((mp3.bytes.len() as f32 - expected).abs() < expected * 0.2, "{} bytes", mp3.bytes.len());
    }

    #[test]
    fn mixed_rates_and_nothing_are_refused() {
        assert!(join(&[speech(vec![0; 10], 22050), speech(vec![0; 10], 16000)]).is_err());
        assert!(join(&[]).is_err());
    }
}
