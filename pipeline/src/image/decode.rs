//! Decoding an upload into grey pixels, upright as its EXIF tag says, with
//! the decoder's memory bounded by the same limits intake checked.

use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageDecoder, metadata::Orientation};
use sha2::{Digest, Sha256};

use super::{ImageLimits, ImageRejection};
use crate::domain::ContentId;

/// A decoded page.
pub struct DecodedImage {
    /// Luminance, turned as the EXIF orientation tag says.
    pub gray: GrayImage,
    /// Clockwise degrees the EXIF tag asked for (mirroring tags are applied
    /// too but do not count here).
    pub exif_rotation: u16,
    /// Hash of the decoded pixels as stored (before the EXIF turn): equal
    /// for two files that differ only in encoding details or metadata.
    pub pixel_hash: ContentId,
}

pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<DecodedImage, ImageRejection> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageRejection::Damaged(e.to_string()))?;
    let mut decoder_limits = image::Limits::default();
    let side = limits.max_pixels.min(u32::MAX as u64) as u32;
    decoder_limits.max_image_width = Some(side);
    decoder_limits.max_image_height = Some(side);
    // RGBA at the largest accepted size, plus the decoder's own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels * 4 + 64 * 1024 * 1024);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(reject)?;
    let (w, h) = decoder.dimensions();
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(ImageRejection::TooManyPixels {
            width: w,
            height: h,
            megapixels: (w as u64 * h as u64).div_ceil(1_000_000),
            limit_megapixels: limits.max_pixels / 1_000_000,
        });
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let gray = DynamicImage::from_decoder(decoder).map_err(reject)?.into_luma8();

    let mut hash = Sha256::new();
    hash.update(gray.width().to_le_bytes());
    hash.update(gray.height().to_le_bytes());
    hash.update(gray.as_raw());
    let pixel_hash = ContentId::from_digest(hash);

    let mut oriented = DynamicImage::ImageLuma8(gray);
    oriented.apply_orientation(orientation);
    let exif_rotation = match orientation {
        Orientation::Rotate90 | Orientation::Rotate90FlipH => 90,
        Orientation::Rotate180 => 180,
        Orientation::Rotate270 | Orientation::Rotate270FlipH => 270,
        _ => 0,
    };
    Ok(DecodedImage {
        gray: oriented.into_luma8(),
        exif_rotation,
        pixel_hash,
    })
}

fn reject(e: image::ImageError) -> ImageRejection {
    match e {
        image::ImageError::Limits(l) => ImageRejection::Damaged(format!("it needs more memory than allowed ({l})")),
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageRejection::Truncated("the data ends early".into())
        }
        other => ImageRejection::Damaged(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Luma};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = GrayImage::from_fn(w, h, |x, _| Luma([(x % 256) as u8]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn the_same_pixels_in_different_files_hash_alike() {
        let a = png(50, 40);
        let img = image::load_from_memory(&a).unwrap();
        let mut b = Cursor::new(Vec::new());
        img.write_to(&mut b, ImageFormat::Bmp).unwrap();
        let limits = ImageLimits::default();
        assert_eq!(
            decode(&a, &limits).unwrap().pixel_hash,
            decode(b.get_ref(), &limits).unwrap().pixel_hash
        );
    }

    #[test]
    fn garbage_after_a_valid_header_is_reported_as_damage() {
        let mut bytes = png(50, 40);
        let n = bytes.len();
        for b in &mut bytes[60..n - 20] {
            *b = 0x5A;
        }
        assert!(decode(&bytes, &ImageLimits::default()).is_err());
    }
}
