//! What Storytime accepts as a photo of a page, and why it refuses the rest.

use crate::domain::Failure;

/// Bounds on what Storytime accepts, checked before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Largest upload in bytes.
    pub max_bytes: usize,
    /// Largest decoded size in pixels (width × height).
    pub max_pixels: u64,
    /// Smallest side in pixels that can still hold readable text.
    pub min_side: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self { max_bytes: 20 * 1024 * 1024, max_pixels: 50_000_000, min_side: 32 }
    }
}

/// Why an upload is not a page Storytime can read. Each variant is phrased
/// for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRejection {
    #[error("the upload is empty: send the photo's bytes as the request body")]
    Empty,
    #[error("the file is {size} bytes; the largest photo accepted is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("SVG drawings are not supported: send a photo of the page (JPEG, HEIC, PNG, WebP, GIF, BMP or TIFF)")]
    Svg,
    #[error(
        "this photo's format (AVIF, or HEIC in a Storytime built without the `heic` feature) cannot be read here: share the photo as JPEG (most phones offer \"Most compatible\")"
    )]
    Heic,
    #[error("this is not an image{0}: send a photo of the page (JPEG, HEIC, PNG, WebP, GIF, BMP or TIFF)")]
    NotAnImage(String),
    #[error("the image is incomplete ({0}): the upload was probably cut off; send it again")]
    Truncated(String),
    #[error("the image is damaged: {0}")]
    Damaged(String),
    #[error(
        "the image is {width}×{height} pixels ({megapixels} megapixels); the largest accepted is {limit_megapixels} megapixels"
    )]
    TooManyPixels { width: u32, height: u32, megapixels: u64, limit_megapixels: u64 },
    #[error("the image is only {width}×{height} pixels, too small to hold readable text")]
    TooSmall { width: u32, height: u32 },
}

impl ImageRejection {
    /// A stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_body",
            Self::TooLarge { .. } => "too_large",
            Self::Svg => "svg_not_supported",
            Self::Heic => "heic_not_supported",
            Self::NotAnImage(_) => "not_an_image",
            Self::Truncated(_) => "truncated_image",
            Self::Damaged(_) => "damaged_image",
            Self::TooManyPixels { .. } => "too_many_pixels",
            Self::TooSmall { .. } => "too_small",
        }
    }

    /// The same, as the reason a job failed.
    pub fn to_failure(&self) -> Failure {
        let mut message = self.to_string();
        if let Some(first) = message.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        Failure::new(self.code(), message + ".")
    }
}
