//! Property tests: every parser that sees an upload's bytes, fed random
//! and mutated input. Nothing may panic or hang, and memory stays within
//! the (small) limits given. `PROPTEST_CASES` sets how many cases run
//! (256 by default; `scripts/bench-parsers` runs 10,000).

use std::io::Cursor;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::{ImageLimits, clean, decode, inspect, jpeg};
use crate::domain::{BlobKey, JobId};
use crate::links::MediaLinks;

/// Small limits, so that a mutated header declaring a huge picture is
/// refused or decoded within a few megabytes.
fn limits() -> ImageLimits {
    ImageLimits { max_bytes: 1 << 20, max_pixels: 1 << 20, min_side: 8 }
}

/// The formats the upload path reads without the `heic` feature.
const FORMATS: [image::ImageFormat; 6] = [
    image::ImageFormat::Jpeg,
    image::ImageFormat::Png,
    image::ImageFormat::Gif,
    image::ImageFormat::WebP,
    image::ImageFormat::Bmp,
    image::ImageFormat::Tiff,
];

/// One small valid file of each format the upload path reads.
fn samples() -> &'static [Vec<u8>] {
    static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let picture = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(40, 24, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 10) as u8, ((x + y) * 3) as u8])
        }));
        FORMATS
            .iter()
            .map(|&format| {
                let mut out = Cursor::new(Vec::new());
                picture.write_to(&mut out, format).expect("encodes");
                out.into_inner()
            })
            .collect()
    })
}

/// Every parser an upload meets, in the order intake and the readers do.
fn all_parsers(bytes: &[u8]) {
    let limits = limits();
    let _ = jpeg::segments(bytes).count();
    if let Ok(info) = inspect(bytes, &limits) {
        let _ = clean(bytes, info.kind, &limits);
    }
    let _ = decode(bytes, &limits);
}

proptest! {
    #[test]
    fn random_bytes_are_refused_or_read(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        all_parsers(&bytes);
    }

    #[test]
    fn random_bytes_after_a_real_signature_are_refused_or_read(
        which in 0usize..6,
        tail in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let sample = &samples()[which];
        let mut bytes = sample[..sample.len().min(16)].to_vec();
        bytes.extend_from_slice(&tail);
        all_parsers(&bytes);
    }

    #[test]
    fn mutated_images_are_refused_or_read(
        which in 0usize..6,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        cut_it in any::<bool>(),
    ) {
        let mut bytes = samples()[which].clone();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        if cut_it {
            bytes.truncate(cut.index(bytes.len()));
        }
        all_parsers(&bytes);
    }

    #[test]
    fn media_link_parts_from_anywhere_are_checked(
        key in "(originals|audio|readings)/[0-9a-f]{0,70}\\.?[a-z0-9]{0,5}|\\PC{0,100}",
        exp in any::<i64>(),
        name in "\\PC{0,60}",
        sig in "[A-Za-z0-9_-]{0,50}|\\PC{0,60}",
    ) {
        let links = MediaLinks::new(b"a key for the property tests, 32b".to_vec(), "http://storytime.test");
        prop_assert!(links.verify(&key, exp, &name, &sig).is_err());
        if let Ok(parsed) = BlobKey::parse(&key) {
            prop_assert!(!parsed.as_str().contains(".."));
        }
        let _ = JobId::parse(&key);
    }
}
