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
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return decode_jpeg(bytes, limits);
    }
    #[cfg(feature = "heic")]
    if super::ImageKind::sniff(bytes) == Ok(super::ImageKind::Heic) {
        return decode_heic(bytes, limits);
    }
    let mut decoder = limited_reader(bytes, limits)?.into_decoder().map_err(reject)?;
    let (w, h) = decoder.dimensions();
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(too_many_pixels(w, h, limits));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let gray = DynamicImage::from_decoder(decoder).map_err(reject)?.into_luma8();
    Ok(finish(gray, orientation))
}

/// A reader for the formats the `image` crate decodes, whose allocations
/// are bounded by the largest accepted picture.
pub(super) fn limited_reader<'a>(
    bytes: &'a [u8],
    limits: &ImageLimits,
) -> Result<image::ImageReader<Cursor<&'a [u8]>>, ImageRejection> {
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
    Ok(reader)
}

/// About how many bytes decoding these bytes, turning the picture and
/// keeping or storing it again can hold at once: the decoder's output at
/// full depth (at least four bytes a pixel, for the decoders' own work
/// buffers) and as much again for the grey or turned copies. An estimate
/// for the memory budget, on the high side; cheap (headers only).
pub fn decode_cost(bytes: &[u8], width: u32, height: u32) -> u64 {
    let pixels = width as u64 * height as u64;
    let decoded =
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || super::ImageKind::sniff(bytes) == Ok(super::ImageKind::Heic) {
            pixels * 3
        } else {
            image::ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .ok()
                .and_then(|r| r.into_decoder().ok())
                .map_or(pixels * 8, |d| d.total_bytes())
        };
    decoded.max(pixels * 4) + pixels * 4 + 1024 * 1024
}

/// HEIC photos carry their rotation as a transformation libheif applies
/// while decoding: the pixels come out upright.
#[cfg(feature = "heic")]
fn decode_heic(bytes: &[u8], limits: &ImageLimits) -> Result<DecodedImage, ImageRejection> {
    let heif = super::heif::Heif::open(bytes)?;
    let (w, h) = heif.dimensions();
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(too_many_pixels(w, h, limits));
    }
    Ok(finish(heif.luma()?, Orientation::NoTransforms))
}

fn too_many_pixels(width: u32, height: u32, limits: &ImageLimits) -> ImageRejection {
    ImageRejection::TooManyPixels {
        width,
        height,
        megapixels: (width as u64 * height as u64).div_ceil(1_000_000),
        limit_megapixels: limits.max_pixels / 1_000_000,
    }
}

/// Phone photos are JPEGs: decode them straight to luminance, which needs
/// a third of the memory of colour and skips the colour conversion.
fn decode_jpeg(bytes: &[u8], limits: &ImageLimits) -> Result<DecodedImage, ImageRejection> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    let side = limits.max_pixels.min(u32::MAX as u64) as usize;
    let options =
        DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::Luma).set_max_width(side).set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| ImageRejection::Damaged(e.to_string()))?;
    let (w, h) = decoder.dimensions().ok_or_else(|| ImageRejection::Damaged("no frame header".into()))?;
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(too_many_pixels(w as u32, h as u32, limits));
    }
    let orientation = decoder
        .exif()
        .and_then(|tiff| exif_orientation(tiff))
        .and_then(|v| Orientation::from_exif(v as u8))
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder.decode().map_err(|e| ImageRejection::Damaged(e.to_string()))?;
    let gray = GrayImage::from_raw(w as u32, h as u32, pixels)
        .ok_or_else(|| ImageRejection::Damaged("the decoded size does not match the header".into()))?;
    Ok(finish(gray, orientation))
}

/// Reads the Orientation tag (0x0112) from IFD0 of EXIF data that starts
/// at its TIFF header.
pub(super) fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(0..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(i..i + 2)?.try_into().ok()?;
        Some(if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(i..i + 4)?.try_into().ok()?;
        Some(if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let ifd = u32_at(4)? as usize;
    let entries = u16_at(ifd)? as usize;
    (0..entries.min(512)).find_map(|n| {
        let entry = ifd + 2 + n * 12;
        (u16_at(entry)? == 0x0112).then(|| u16_at(entry + 8)).flatten()
    })
}

/// Hashes the stored pixels, then turns them as the EXIF tag says.
fn finish(gray: GrayImage, orientation: Orientation) -> DecodedImage {
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
    DecodedImage { gray: oriented.into_luma8(), exif_rotation, pixel_hash }
}

pub(super) fn reject(e: image::ImageError) -> ImageRejection {
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
        assert_eq!(decode(&a, &limits).unwrap().pixel_hash, decode(b.get_ref(), &limits).unwrap().pixel_hash);
    }

    #[test]
    fn exif_orientation_is_read_in_both_byte_orders() {
        let be = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        assert_eq!(exif_orientation(be), Some(6));
        let le = b"II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x03\0\0\0\0\0\0\0";
        assert_eq!(exif_orientation(le), Some(3));
        assert_eq!(exif_orientation(b"MM\0\x2a\xff\xff\xff\xff"), None);
        assert_eq!(exif_orientation(b""), None);
    }

    #[test]
    fn jpegs_decode_to_grey_with_their_exif_turn() {
        let img = image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([(x * 4) as u8, 0, 0]));
        let mut jpeg = Cursor::new(Vec::new());
        img.write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
        let plain = jpeg.into_inner();
        let d = decode(&plain, &ImageLimits::default()).unwrap();
        assert_eq!((d.gray.dimensions(), d.exif_rotation), ((64, 32), 0));
        // Add an APP1 EXIF segment saying "rotate 90° clockwise to view".
        let tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        let mut tagged = plain[..2].to_vec();
        tagged.extend([0xFF, 0xE1]);
        tagged.extend(((tiff.len() + 8) as u16).to_be_bytes());
        tagged.extend(b"Exif\0\0");
        tagged.extend(tiff);
        tagged.extend(&plain[2..]);
        let d2 = decode(&tagged, &ImageLimits::default()).unwrap();
        assert_eq!((d2.gray.dimensions(), d2.exif_rotation), ((32, 64), 90));
        assert_eq!(d.pixel_hash, d2.pixel_hash);
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
