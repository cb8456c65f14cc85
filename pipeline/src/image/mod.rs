//! Everything Storytime does with pixels: telling an image from anything
//! else by its bytes, refusing what is too big or broken before decoding
//! it, decoding with bounded memory, and preparing a page for a text reader
//! (orientation, working resolution, flat background).
//!
//! Pure functions over bytes and buffers; no I/O.

mod clean;
mod decode;
mod filters;
#[cfg(feature = "heic")]
// libheif is a C library: its calls are the unsafe code here, each block
// with the reason it is sound.
#[allow(unsafe_code)]
mod heif;
mod inspect;
mod jpeg;
mod limits;
mod prepare;
#[cfg(test)]
mod properties;

pub use clean::{Cleaned, Cleaning, clean, cleaning, stored_kind};
pub use decode::{DecodedImage, decode, decode_cost};
pub use inspect::{ImageInfo, ImageKind, inspect};
pub use limits::{ImageLimits, ImageRejection};
pub use prepare::{PreparedImage, ReaderNeeds, Rotation, encode_pgm, estimate_text_height, prepare, rotate};
