//! What Storytime stores of a photo: the same picture and nothing else.
//! Phone photos carry EXIF (the place it was taken, the phone, the time),
//! XMP and comments; none of it is kept, and anything after the picture's
//! end is dropped. A picture the file asks to be turned is turned first, so
//! the stored copy shows as the sender saw it.
//!
//! JPEGs and PNGs without such a request keep their coded data byte for
//! byte (only metadata segments and chunks go); a turned JPEG is encoded
//! again, upright. Other formats (GIF, WebP, BMP, TIFF) become PNGs, and
//! HEIC photos become JPEGs, which every browser and Slack show.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder};

use super::decode::{exif_orientation, limited_reader};
use super::jpeg::segments as jpeg_segments;
use super::{ImageKind, ImageLimits, ImageRejection};

/// Quality of the JPEGs Storytime encodes: indistinguishable from the
/// phone's own at a glance, and well read.
const JPEG_QUALITY: u8 = 90;

/// A photo as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub bytes: Vec<u8>,
    pub kind: ImageKind,
}

/// How cleaning a photo goes: by dropping bytes, or by decoding and
/// encoding the picture again (which costs memory and time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleaning {
    Strip,
    Encode,
}

/// Tells how [`clean`] will treat these bytes, without decoding them.
pub fn cleaning(bytes: &[u8], kind: ImageKind) -> Cleaning {
    match kind {
        ImageKind::Jpeg if jpeg_turn(bytes).is_none() => Cleaning::Strip,
        ImageKind::Png if !png_chunks(bytes).any(|(kind, _)| kind == b"eXIf") => Cleaning::Strip,
        _ => Cleaning::Encode,
    }
}

/// The format a photo is stored in.
pub fn stored_kind(kind: ImageKind, cleaning: Cleaning) -> ImageKind {
    match (kind, cleaning) {
        (_, Cleaning::Strip) => kind,
        (ImageKind::Jpeg | ImageKind::Heic, Cleaning::Encode) => ImageKind::Jpeg,
        (_, Cleaning::Encode) => ImageKind::Png,
    }
}

/// The bytes to store for a photo [`inspect`](super::inspect) accepted.
pub fn clean(bytes: &[u8], kind: ImageKind, limits: &ImageLimits) -> Result<Cleaned, ImageRejection> {
    let how = cleaning(bytes, kind);
    let cleaned = match (kind, how) {
        (ImageKind::Jpeg, Cleaning::Strip) => Cleaned { bytes: strip_jpeg(bytes)?, kind },
        (ImageKind::Png, Cleaning::Strip) => Cleaned { bytes: strip_png(bytes), kind },
        (ImageKind::Jpeg, Cleaning::Encode) => {
            let orientation = jpeg_turn(bytes).unwrap_or(Orientation::NoTransforms);
            let mut picture = DynamicImage::ImageRgb8(decode_jpeg_rgb(bytes, limits)?);
            picture.apply_orientation(orientation);
            Cleaned { bytes: encode_jpeg(&picture)?, kind: ImageKind::Jpeg }
        }
        #[cfg(feature = "heic")]
        (ImageKind::Heic, _) => {
            let heif = super::heif::Heif::open(bytes)?;
            Cleaned { bytes: encode_jpeg(&DynamicImage::ImageRgb8(heif.rgb()?))?, kind: ImageKind::Jpeg }
        }
        #[cfg(not(feature = "heic"))]
        (ImageKind::Heic, _) => return Err(ImageRejection::Heic),
        _ => Cleaned { bytes: encode_png(&decode_upright(bytes, limits)?)?, kind: ImageKind::Png },
    };
    debug_assert_eq!(cleaned.kind, stored_kind(kind, how));
    Ok(cleaned)
}

/// The turn a JPEG's EXIF asks for, if any.
fn jpeg_turn(bytes: &[u8]) -> Option<Orientation> {
    let exif =
        jpeg_segments(bytes).find(|s| s.marker == 0xE1 && s.data.starts_with(b"Exif\0\0")).map(|s| &s.data[6..])?;
    let orientation = Orientation::from_exif(exif_orientation(exif)? as u8)?;
    (orientation != Orientation::NoTransforms).then_some(orientation)
}

/// Keeps the segments that say how to show the picture (JFIF, the colour
/// profile, Adobe's colour transform) and the coded picture up to its end
/// marker; drops EXIF, XMP, comments and whatever follows the end.
fn strip_jpeg(bytes: &[u8]) -> Result<Vec<u8>, ImageRejection> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut end = None;
    for segment in jpeg_segments(bytes) {
        let keep = match segment.marker {
            0xE0 => segment.data.starts_with(b"JFIF\0"),
            0xE2 => segment.data.starts_with(b"ICC_PROFILE\0"),
            0xEE => segment.data.starts_with(b"Adobe"),
            0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(segment.whole);
        }
        if segment.marker == 0xD9 {
            end = Some(());
            break;
        }
    }
    end.map(|()| out).ok_or_else(|| ImageRejection::Truncated("the JPEG data ends early".into()))
}

/// The chunks a PNG needs to show its picture as intended.
const PNG_KEPT: [&[u8; 4]; 11] =
    [b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"cICP"];

fn strip_png(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..8]);
    for (kind, whole) in png_chunks(bytes) {
        if PNG_KEPT.contains(&kind) {
            out.extend_from_slice(whole);
        }
        if kind == b"IEND" {
            break;
        }
    }
    out
}

/// A PNG's chunks (kind, and the whole chunk with its length and CRC), up
/// to the first that is cut off.
fn png_chunks(bytes: &[u8]) -> impl Iterator<Item = (&[u8; 4], &[u8])> {
    let mut at = 8;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let kind: &[u8; 4] = bytes.get(at + 4..at + 8)?.try_into().ok()?;
        let end = at.checked_add(12)?.checked_add(len)?;
        let whole = bytes.get(at..end)?;
        at = end;
        Some((kind, whole))
    })
}

fn decode_jpeg_rgb(bytes: &[u8], limits: &ImageLimits) -> Result<image::RgbImage, ImageRejection> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    let side = limits.max_pixels.min(u32::MAX as u64) as usize;
    let options =
        DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB).set_max_width(side).set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let pixels = decoder.decode().map_err(|e| ImageRejection::Damaged(e.to_string()))?;
    let (w, h) = decoder.dimensions().ok_or_else(|| ImageRejection::Damaged("no frame header".into()))?;
    image::RgbImage::from_raw(w as u32, h as u32, pixels)
        .ok_or_else(|| ImageRejection::Damaged("the decoded size does not match the header".into()))
}

/// Decodes any format the `image` crate reads, turned as the file says.
fn decode_upright(bytes: &[u8], limits: &ImageLimits) -> Result<DynamicImage, ImageRejection> {
    let mut decoder = limited_reader(bytes, limits)?.into_decoder().map_err(super::decode::reject)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(super::decode::reject)?;
    picture.apply_orientation(orientation);
    Ok(picture)
}

fn encode_jpeg(picture: &DynamicImage) -> Result<Vec<u8>, ImageRejection> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(&picture.to_rgb8()).map_err(encode_failed)?;
    Ok(out)
}

/// Lossless, in 8-bit RGB or RGBA; fast compression, as the copy is for
/// looking at, not for archiving.
fn encode_png(picture: &DynamicImage) -> Result<Vec<u8>, ImageRejection> {
    let mut out = Cursor::new(Vec::new());
    let encoder = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    let result = if picture.color().has_alpha() {
        let rgba = picture.to_rgba8();
        encoder.write_image(rgba.as_raw(), rgba.width(), rgba.height(), image::ExtendedColorType::Rgba8)
    } else {
        let rgb = picture.to_rgb8();
        encoder.write_image(rgb.as_raw(), rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8)
    };
    result.map_err(encode_failed)?;
    Ok(out.into_inner())
}

fn encode_failed(e: image::ImageError) -> ImageRejection {
    ImageRejection::Damaged(format!("the picture could not be stored again: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{decode, inspect};

    fn photo(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        }))
    }

    fn jpeg(picture: &DynamicImage) -> Vec<u8> {
        encode_jpeg(picture).unwrap()
    }

    /// An APP1 EXIF segment with an orientation tag and a GPS latitude
    /// reference, as phones write them.
    fn exif_segment(orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&[0x25, 0x88, 2, 0, 4, 0, 0, 0]);
        tiff.extend_from_slice(b"GPS\0");
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        let mut data = b"Exif\0\0".to_vec();
        data.extend_from_slice(&tiff);
        let mut segment = vec![0xFF, 0xE1];
        segment.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
        segment.extend_from_slice(&data);
        segment
    }

    fn with_segments(jpeg: &[u8], segments: &[Vec<u8>], trailer: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        for s in segments {
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&jpeg[2..]);
        out.extend_from_slice(trailer);
        out
    }

    fn comment(text: &str) -> Vec<u8> {
        let mut segment = vec![0xFF, 0xFE];
        segment.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
        segment.extend_from_slice(text.as_bytes());
        segment
    }

    #[test]
    fn a_jpeg_loses_its_metadata_and_trailer_and_keeps_its_picture() {
        let plain = jpeg(&photo(64, 48));
        let tagged = with_segments(&plain, &[exif_segment(1), comment("at home")], b"secret tail");
        let cleaned = clean(&tagged, ImageKind::Jpeg, &ImageLimits::default()).unwrap();
        assert_eq!(cleaned.kind, ImageKind::Jpeg);
        assert_eq!(cleaned.bytes, plain);
        assert_eq!(cleaning(&tagged, ImageKind::Jpeg), Cleaning::Strip);
    }

    #[test]
    fn a_turned_jpeg_is_stored_upright_without_exif() {
        let plain = jpeg(&photo(64, 48));
        let turned = with_segments(&plain, &[exif_segment(6)], b"");
        assert_eq!(cleaning(&turned, ImageKind::Jpeg), Cleaning::Encode);
        let cleaned = clean(&turned, ImageKind::Jpeg, &ImageLimits::default()).unwrap();
        assert!(!cleaned.bytes.windows(4).any(|w| w == b"Exif"));
        let info = inspect(&cleaned.bytes, &ImageLimits::default()).unwrap();
        assert_eq!((info.width, info.height), (48, 64));
        let original = decode(&turned, &ImageLimits::default()).unwrap();
        let stored = decode(&cleaned.bytes, &ImageLimits::default()).unwrap();
        assert_eq!(stored.exif_rotation, 0);
        assert_eq!(stored.gray.dimensions(), original.gray.dimensions());
        let diff: u64 =
            stored.gray.pixels().zip(original.gray.pixels()).map(|(a, b)| a.0[0].abs_diff(b.0[0]) as u64).sum();
        assert!(diff / (48 * 64) < 4, "the stored picture differs from the upright original by {diff}");
    }

    #[test]
    fn a_png_keeps_its_picture_chunks_only() {
        let mut png = Vec::new();
        photo(40, 40).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let mut text_chunk = 12u32.to_be_bytes().to_vec();
        text_chunk.extend_from_slice(b"tEXtComment\0home");
        text_chunk.extend_from_slice(&[0, 0, 0, 0]);
        let mut tagged = png[..33].to_vec();
        tagged.extend_from_slice(&text_chunk);
        tagged.extend_from_slice(&png[33..]);
        tagged.extend_from_slice(b"after the end");
        let cleaned = clean(&tagged, ImageKind::Png, &ImageLimits::default()).unwrap();
        assert_eq!(cleaned.bytes, png);
    }

    #[test]
    fn other_formats_become_pngs_of_the_same_picture() {
        let picture = photo(50, 30);
        let mut tiff = Vec::new();
        picture.write_to(&mut Cursor::new(&mut tiff), image::ImageFormat::Tiff).unwrap();
        let cleaned = clean(&tiff, ImageKind::Tiff, &ImageLimits::default()).unwrap();
        assert_eq!(cleaned.kind, ImageKind::Png);
        let back = image::load_from_memory(&cleaned.bytes).unwrap();
        assert_eq!(back.to_rgb8(), picture.to_rgb8());
    }
}
