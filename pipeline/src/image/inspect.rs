//! Cheap checks on an upload's bytes: what kind of image it is, how big it
//! claims to be, whether it is complete, and the identity of its content.
//! Nothing here decodes pixels, so it is fast enough for the upload path
//! and safe against decompression bombs.

use std::io::Cursor;

use sha2::{Digest, Sha256};

use super::{ImageLimits, ImageRejection};
use crate::domain::ContentId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Tiff,
    /// HEIC/HEIF, read through libheif (the `heic` feature).
    Heic,
}

impl ImageKind {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Bmp => "image/bmp",
            Self::Tiff => "image/tiff",
            Self::Heic => "image/heic",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Bmp => "bmp",
            Self::Tiff => "tiff",
            Self::Heic => "heic",
        }
    }

    /// Tells the kind from the first bytes, whatever the file claims to be.
    pub fn sniff(bytes: &[u8]) -> Result<Self, ImageRejection> {
        let starts = |magic: &[u8]| bytes.starts_with(magic);
        if bytes.is_empty() {
            return Err(ImageRejection::Empty);
        }
        if starts(&[0xFF, 0xD8, 0xFF]) {
            return Ok(Self::Jpeg);
        }
        if starts(b"\x89PNG\r\n\x1a\n") {
            return Ok(Self::Png);
        }
        if starts(b"GIF87a") || starts(b"GIF89a") {
            return Ok(Self::Gif);
        }
        if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
            return Ok(Self::Webp);
        }
        if starts(b"BM") && bytes.len() >= 26 {
            return Ok(Self::Bmp);
        }
        if starts(b"II*\0") || starts(b"MM\0*") {
            return Ok(Self::Tiff);
        }
        if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
            let brand = &bytes[8..12];
            if brand == b"avif" {
                return Err(ImageRejection::Heic);
            }
            if [b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"].iter().any(|b| brand == *b) {
                return if cfg!(feature = "heic") { Ok(Self::Heic) } else { Err(ImageRejection::Heic) };
            }
        }
        Err(describe_non_image(bytes))
    }
}

fn describe_non_image(bytes: &[u8]) -> ImageRejection {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if head.contains("<svg") || (head.starts_with("<?xml") && head.contains("svg")) {
        return ImageRejection::Svg;
    }
    let looks_like = if head.starts_with("<!doctype html") || head.starts_with("<html") {
        " (it looks like a web page)"
    } else if bytes.starts_with(b"%PDF") {
        " (it is a PDF document)"
    } else if bytes.starts_with(b"PK\x03\x04") {
        " (it is a ZIP archive)"
    } else if head.starts_with('{') || head.starts_with('[') {
        " (it looks like JSON)"
    } else if std::str::from_utf8(&bytes[..bytes.len().min(512)]).is_ok() {
        " (it looks like text)"
    } else {
        ""
    };
    ImageRejection::NotAnImage(looks_like.to_owned())
}

/// What intake learns about an upload without decoding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    /// Identity of the image content: for JPEG and PNG, a hash of the coded
    /// image data with metadata (EXIF, comments, text chunks) left out, so
    /// the same photo with edited metadata is the same page.
    pub content_id: ContentId,
}

/// Checks an upload against the limits and reads its header.
pub fn inspect(bytes: &[u8], limits: &ImageLimits) -> Result<ImageInfo, ImageRejection> {
    if bytes.is_empty() {
        return Err(ImageRejection::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageRejection::TooLarge { size: bytes.len(), limit: limits.max_bytes });
    }
    let kind = ImageKind::sniff(bytes)?;
    let (width, height, content_id) = match kind {
        ImageKind::Jpeg => inspect_jpeg(bytes)?,
        ImageKind::Png => inspect_png(bytes)?,
        ImageKind::Gif | ImageKind::Webp | ImageKind::Bmp | ImageKind::Tiff => {
            let (w, h) = header_dimensions(bytes)?;
            check_complete_other(kind, bytes)?;
            (w, h, ContentId::of(bytes))
        }
        ImageKind::Heic => {
            let (w, h) = heic_dimensions(bytes)?;
            (w, h, ContentId::of(bytes))
        }
    };
    check_size(width, height, limits)?;
    Ok(ImageInfo { kind, width, height, content_id })
}

#[cfg(feature = "heic")]
fn heic_dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageRejection> {
    Ok(super::heif::Heif::open(bytes)?.dimensions())
}

#[cfg(not(feature = "heic"))]
fn heic_dimensions(_: &[u8]) -> Result<(u32, u32), ImageRejection> {
    Err(ImageRejection::Heic)
}

fn check_size(width: u32, height: u32, limits: &ImageLimits) -> Result<(), ImageRejection> {
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_pixels {
        return Err(ImageRejection::TooManyPixels {
            width,
            height,
            megapixels: pixels.div_ceil(1_000_000),
            limit_megapixels: limits.max_pixels / 1_000_000,
        });
    }
    if width < limits.min_side || height < limits.min_side {
        return Err(ImageRejection::TooSmall { width, height });
    }
    Ok(())
}

fn header_dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageRejection> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageRejection::Damaged(e.to_string()))?
        .into_dimensions()
        .map_err(|e| match e {
            image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                ImageRejection::Truncated("the header ends early".into())
            }
            other => ImageRejection::Damaged(other.to_string()),
        })
}

fn check_complete_other(kind: ImageKind, bytes: &[u8]) -> Result<(), ImageRejection> {
    match kind {
        ImageKind::Gif => {
            // The trailer byte 0x3B ends every complete GIF; allow a little padding.
            let tail = &bytes[bytes.len().saturating_sub(16)..];
            if !tail.contains(&0x3B) {
                return Err(ImageRejection::Truncated("the GIF trailer is missing".into()));
            }
        }
        ImageKind::Webp => {
            let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
            if bytes.len() < declared.saturating_add(8) {
                return Err(ImageRejection::Truncated(format!("{} of {} bytes", bytes.len(), declared + 8)));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Walks the JPEG marker segments up to the first scan: reads the frame
/// size, hashes everything but APPn/COM metadata, and checks that the data
/// ends with an end-of-image marker.
/// The size from the frame header, and an identity from everything but
/// metadata: the same picture with other EXIF, comments or a trailer has
/// the same identity, unless the EXIF asks for another turn.
fn inspect_jpeg(bytes: &[u8]) -> Result<(u32, u32, ContentId), ImageRejection> {
    let mut hash = Sha256::new();
    let mut dims = None;
    let mut ended = false;
    let mut scanned = false;
    for segment in super::jpeg::segments(bytes) {
        let is_sof = matches!(segment.marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_sof {
            let d = segment.data;
            if d.len() < 6 {
                return Err(ImageRejection::Damaged("the JPEG frame header is too short".into()));
            }
            dims = Some((u16::from_be_bytes([d[3], d[4]]) as u32, u16::from_be_bytes([d[1], d[2]]) as u32));
        }
        match segment.marker {
            0xE1 if segment.data.starts_with(b"Exif\0\0") => {
                let turn = super::decode::exif_orientation(&segment.data[6..]).unwrap_or(1);
                if turn > 1 {
                    hash.update([0xE1, turn as u8]);
                }
            }
            0xE0..=0xEF | 0xFE => {}
            _ => hash.update(segment.whole),
        }
        scanned |= segment.marker == 0xDA;
        if segment.marker == 0xD9 {
            ended = true;
        }
    }
    if !scanned {
        return Err(ImageRejection::Damaged("the JPEG holds no image data".into()));
    }
    if !ended {
        return Err(ImageRejection::Truncated("the JPEG data ends early".into()));
    }
    let (w, h) = dims.ok_or_else(|| ImageRejection::Damaged("the JPEG has no frame header".into()))?;
    if w == 0 || h == 0 {
        return Err(ImageRejection::Damaged("the JPEG declares a zero size".into()));
    }
    Ok((w, h, ContentId::from_digest(hash)))
}

fn inspect_png(bytes: &[u8]) -> Result<(u32, u32, ContentId), ImageRejection> {
    let mut hash = Sha256::new();
    let mut dims = None;
    let mut i = 8;
    loop {
        if i + 12 > bytes.len() {
            return Err(ImageRejection::Truncated("the PNG data ends early".into()));
        }
        let len = u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
        let kind = &bytes[i + 4..i + 8];
        let end = i.checked_add(12).and_then(|x| x.checked_add(len));
        let Some(end) = end.filter(|&e| e <= bytes.len()) else {
            return Err(ImageRejection::Truncated("a PNG chunk is cut off".into()));
        };
        if dims.is_none() {
            if kind != b"IHDR" || len != 13 {
                return Err(ImageRejection::Damaged("the PNG header chunk is missing".into()));
            }
            let d = &bytes[i + 8..];
            let w = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let h = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
            if w == 0 || h == 0 {
                return Err(ImageRejection::Damaged("the PNG declares a zero size".into()));
            }
            dims = Some((w, h));
        }
        if matches!(kind, b"IHDR" | b"PLTE" | b"tRNS" | b"IDAT") {
            hash.update(&bytes[i + 4..end]);
        }
        if kind == b"IEND" {
            let (w, h) = dims.expect("set by the first chunk");
            return Ok((w, h, ContentId::from_digest(hash)));
        }
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageFormat, Luma};

    fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img = GrayImage::from_fn(w, h, |x, y| Luma([((x * 7 + y * 13) % 251) as u8]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(img).to_rgb8().write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn kinds_are_told_from_bytes_not_names() {
        assert_eq!(ImageKind::sniff(&encoded(ImageFormat::Png, 40, 40)).unwrap(), ImageKind::Png);
        assert_eq!(ImageKind::sniff(&encoded(ImageFormat::Jpeg, 40, 40)).unwrap(), ImageKind::Jpeg);
        assert_eq!(ImageKind::sniff(b"<?xml version=\"1.0\"?><svg xmlns=\"..\"/>"), Err(ImageRejection::Svg));
        assert_eq!(ImageKind::sniff(b"  <svg width=\"10\"></svg>"), Err(ImageRejection::Svg));
        assert!(matches!(ImageKind::sniff(b"hello"), Err(ImageRejection::NotAnImage(_))));
        assert!(matches!(ImageKind::sniff(b"%PDF-1.7 ..."), Err(ImageRejection::NotAnImage(s)) if s.contains("PDF")));
        let heic = ImageKind::sniff(b"\0\0\0\x18ftypheic\0\0\0\0");
        if cfg!(feature = "heic") {
            assert_eq!(heic, Ok(ImageKind::Heic));
        } else {
            assert_eq!(heic, Err(ImageRejection::Heic));
        }
        assert_eq!(ImageKind::sniff(b"\0\0\0\x18ftypavif\0\0\0\0"), Err(ImageRejection::Heic));
        assert_eq!(ImageKind::sniff(b""), Err(ImageRejection::Empty));
    }

    #[test]
    fn complete_images_pass_with_their_size() {
        let limits = ImageLimits::default();
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::Bmp, ImageFormat::Tiff] {
            let info = inspect(&encoded(format, 64, 48), &limits).unwrap();
            assert_eq!((info.width, info.height), (64, 48), "{format:?}");
        }
    }

    #[test]
    fn truncated_images_are_refused() {
        let limits = ImageLimits::default();
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::Bmp] {
            let bytes = encoded(format, 200, 200);
            let cut = &bytes[..bytes.len() * 2 / 3];
            // BMP has no end marker: storing it (which decodes it) finds the cut.
            let err = inspect(cut, &limits).and_then(|info| super::super::clean(cut, info.kind, &limits)).unwrap_err();
            assert!(matches!(err, ImageRejection::Truncated(_) | ImageRejection::Damaged(_)), "{format:?}: {err:?}");
        }
    }

    #[test]
    fn a_huge_declared_size_is_refused_without_decoding() {
        // A valid PNG header declaring 100000 × 100000 pixels, then nothing.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(100_000u32.to_be_bytes());
        png.extend(100_000u32.to_be_bytes());
        png.extend([8, 0, 0, 0, 0, 0, 0, 0, 0]);
        png.extend(b"\0\0\0\0IEND\xaeB`\x82");
        let err = inspect(&png, &ImageLimits::default()).unwrap_err();
        assert!(matches!(err, ImageRejection::TooManyPixels { megapixels: 10_000, .. }), "{err:?}");
    }

    #[test]
    fn oversized_and_tiny_uploads_are_refused() {
        let limits = ImageLimits { max_bytes: 100, ..ImageLimits::default() };
        assert!(matches!(inspect(&[0xFF; 101], &limits), Err(ImageRejection::TooLarge { .. })));
        let tiny = encoded(ImageFormat::Png, 8, 8);
        assert!(matches!(inspect(&tiny, &ImageLimits::default()), Err(ImageRejection::TooSmall { .. })));
    }

    #[test]
    fn metadata_does_not_change_a_jpeg_content_id() {
        let jpeg = encoded(ImageFormat::Jpeg, 64, 64);
        // Insert a COM segment after SOI: same pixels, different bytes.
        let mut edited = jpeg[..2].to_vec();
        edited.extend([0xFF, 0xFE, 0x00, 0x07]);
        edited.extend(b"hello");
        edited.extend(&jpeg[2..]);
        let limits = ImageLimits::default();
        assert_eq!(inspect(&jpeg, &limits).unwrap().content_id, inspect(&edited, &limits).unwrap().content_id);
        let other = encoded(ImageFormat::Jpeg, 64, 65);
        assert_ne!(inspect(&jpeg, &limits).unwrap().content_id, inspect(&other, &limits).unwrap().content_id);
    }
}
