//! HEIC/HEIF photos (the iPhone's default) through libheif, the system
//! library (`libheif-dev` on Debian), with the few calls Storytime needs:
//! the primary image's size, then its luminance (for reading) or its
//! colours (for the stored copy) with the file's own transformations
//! (rotation, mirroring, crop) applied.
//!
//! Built with the `heic` feature; without it HEIC uploads are refused
//! with a message that says so.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use image::{GrayImage, RgbImage};

use super::ImageRejection;

#[repr(C)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

#[repr(C)]
struct Context {
    _private: [u8; 0],
}
#[repr(C)]
struct Handle {
    _private: [u8; 0],
}
#[repr(C)]
struct Image {
    _private: [u8; 0],
}

const COLORSPACE_YCBCR: c_int = 0;
/// Keep the coded chroma layout: only the luma plane is read.
const CHROMA_UNDEFINED: c_int = 99;
const CHANNEL_Y: c_int = 0;
const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHANNEL_INTERLEAVED: c_int = 10;

#[link(name = "heif")]
unsafe extern "C" {
    fn heif_context_alloc() -> *mut Context;
    fn heif_context_free(ctx: *mut Context);
    fn heif_context_read_from_memory_without_copy(
        ctx: *mut Context,
        mem: *const c_void,
        size: usize,
        options: *const c_void,
    ) -> HeifError;
    fn heif_context_get_primary_image_handle(ctx: *mut Context, handle: *mut *mut Handle) -> HeifError;
    fn heif_image_handle_release(handle: *const Handle);
    fn heif_image_handle_get_width(handle: *const Handle) -> c_int;
    fn heif_image_handle_get_height(handle: *const Handle) -> c_int;
    fn heif_decode_image(
        handle: *const Handle,
        out: *mut *mut Image,
        colorspace: c_int,
        chroma: c_int,
        options: *const c_void,
    ) -> HeifError;
    fn heif_image_release(image: *const Image);
    fn heif_image_get_width(image: *const Image, channel: c_int) -> c_int;
    fn heif_image_get_height(image: *const Image, channel: c_int) -> c_int;
    fn heif_image_get_plane_readonly(image: *const Image, channel: c_int, stride: *mut c_int) -> *const u8;
    fn heif_image_get_bits_per_pixel_range(image: *const Image, channel: c_int) -> c_int;
}

fn check(e: HeifError) -> Result<(), ImageRejection> {
    if e.code == 0 {
        return Ok(());
    }
    let message = if e.message.is_null() {
        format!("libheif error {}", e.code)
    } else {
        // SAFETY: libheif's messages are static NUL-terminated strings.
        unsafe { CStr::from_ptr(e.message) }.to_string_lossy().into_owned()
    };
    Err(ImageRejection::Damaged(format!("the HEIC photo cannot be read ({message})")))
}

/// An opened HEIF file and its primary image; both freed on drop. The
/// context reads the caller's bytes in place, so it borrows them.
pub struct Heif<'a> {
    ctx: *mut Context,
    handle: *mut Handle,
    _bytes: &'a [u8],
}

impl<'a> Heif<'a> {
    /// Reads the file's structure (no pixels are decoded).
    pub fn open(bytes: &'a [u8]) -> Result<Self, ImageRejection> {
        // SAFETY: each pointer is checked before use and freed once, in
        // drop; the context reads `bytes`, which outlive it.
        unsafe {
            let ctx = heif_context_alloc();
            if ctx.is_null() {
                return Err(ImageRejection::Damaged("libheif could not start".into()));
            }
            let mut heif = Self { ctx, handle: ptr::null_mut(), _bytes: bytes };
            check(heif_context_read_from_memory_without_copy(ctx, bytes.as_ptr().cast(), bytes.len(), ptr::null()))?;
            check(heif_context_get_primary_image_handle(ctx, &mut heif.handle))?;
            Ok(heif)
        }
    }

    /// The primary image's size, as shown (after rotation and crop).
    pub fn dimensions(&self) -> (u32, u32) {
        // SAFETY: the handle is valid while self lives.
        let (w, h) = unsafe { (heif_image_handle_get_width(self.handle), heif_image_handle_get_height(self.handle)) };
        (w.max(0) as u32, h.max(0) as u32)
    }

    /// The primary image's luminance, upright as the file says.
    pub fn luma(&self) -> Result<GrayImage, ImageRejection> {
        let (w, h, pixels) = self.plane(COLORSPACE_YCBCR, CHROMA_UNDEFINED, CHANNEL_Y, 1)?;
        GrayImage::from_raw(w, h, pixels).ok_or_else(inconsistent)
    }

    /// The primary image in 8-bit RGB, upright as the file says.
    pub fn rgb(&self) -> Result<RgbImage, ImageRejection> {
        let (w, h, pixels) = self.plane(COLORSPACE_RGB, CHROMA_INTERLEAVED_RGB, CHANNEL_INTERLEAVED, 3)?;
        RgbImage::from_raw(w, h, pixels).ok_or_else(inconsistent)
    }

    /// Decodes the primary image and copies one plane of `samples` 8-bit
    /// samples a pixel (16-bit samples, little-endian, are cut to 8).
    fn plane(
        &self,
        colorspace: c_int,
        chroma: c_int,
        channel: c_int,
        samples: usize,
    ) -> Result<(u32, u32, Vec<u8>), ImageRejection> {
        let mut image: *mut Image = ptr::null_mut();
        // SAFETY: `image` is released below whatever happens; the plane is
        // read within its height and stride before that, and a row's bytes
        // were checked to fit in the stride.
        unsafe {
            check(heif_decode_image(self.handle, &mut image, colorspace, chroma, ptr::null()))?;
            let result = (|| {
                let (w, h) = (heif_image_get_width(image, channel), heif_image_get_height(image, channel));
                let bits = heif_image_get_bits_per_pixel_range(image, channel);
                let bytes_per_sample = if bits > 8 { 2 } else { 1 };
                let mut stride: c_int = 0;
                let plane = heif_image_get_plane_readonly(image, channel, &mut stride);
                let row_bytes = w.max(0) as usize * samples * bytes_per_sample;
                if plane.is_null()
                    || w <= 0
                    || h <= 0
                    || !(1..=16).contains(&bits)
                    || (stride.max(0) as usize) < row_bytes
                {
                    return Err(ImageRejection::Damaged("the HEIC photo has no image plane libheif can give".into()));
                }
                let (w, h, stride) = (w as usize, h as usize, stride as usize);
                let rows = std::slice::from_raw_parts(plane, stride * (h - 1) + row_bytes);
                let mut pixels = Vec::with_capacity(w * h * samples);
                for y in 0..h {
                    let row = &rows[y * stride..y * stride + row_bytes];
                    if bytes_per_sample == 1 {
                        pixels.extend_from_slice(row);
                    } else {
                        let shift = bits - 8;
                        pixels.extend(row.chunks_exact(2).map(|s| (u16::from_le_bytes([s[0], s[1]]) >> shift) as u8));
                    }
                }
                Ok((w as u32, h as u32, pixels))
            })();
            heif_image_release(image);
            result
        }
    }
}

fn inconsistent() -> ImageRejection {
    ImageRejection::Damaged("the HEIC photo's size is inconsistent".into())
}

impl Drop for Heif<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated in `open`, freed once here.
        unsafe {
            if !self.handle.is_null() {
                heif_image_handle_release(self.handle);
            }
            heif_context_free(self.ctx);
        }
    }
}
