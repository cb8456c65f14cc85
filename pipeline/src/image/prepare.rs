//! Preparing a decoded page for a text reader.
//!
//! A phone photo of a book page is far larger than a reader needs (a
//! 4000×2252 photo of 14-point print carries letters 50 pixels tall, while
//! Tesseract reads best at about 20–30), and it is lit unevenly: a shadow
//! across the lower lines defeats a single global threshold. So the page is
//! shrunk until its letters have the height the reader wants, and the
//! paper's brightness is flattened by dividing by a local estimate of the
//! background.

use image::GrayImage;

use super::filters::{box_blur, dark_components, downscale_area, max_filter, otsu_level};

/// What a text reader wants from a page image.
#[derive(Debug, Clone, Copy)]
pub struct ReaderNeeds {
    /// Letter height (as [`estimate_text_height`] measures it) the reader
    /// reads best at, in pixels.
    pub text_height: f32,
    /// Largest side in pixels the reader accepts.
    pub max_side: u32,
}

/// A page ready for a reader: grey, flat background, scaled.
pub struct PreparedImage {
    pub gray: GrayImage,
    /// Prepared pixels per decoded pixel.
    pub scale: f32,
    /// The letter height measured on the decoded page, if any text-like
    /// shapes were found.
    pub text_height: Option<f32>,
}

/// A clockwise quarter turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    None,
    Cw90,
    Cw180,
    Cw270,
}

impl Rotation {
    pub fn from_degrees(degrees: u32) -> Option<Self> {
        match degrees % 360 {
            0 => Some(Self::None),
            90 => Some(Self::Cw90),
            180 => Some(Self::Cw180),
            270 => Some(Self::Cw270),
            _ => None,
        }
    }

    pub fn degrees(self) -> u16 {
        match self {
            Self::None => 0,
            Self::Cw90 => 90,
            Self::Cw180 => 180,
            Self::Cw270 => 270,
        }
    }
}

pub fn rotate(img: &GrayImage, rotation: Rotation) -> GrayImage {
    match rotation {
        Rotation::None => img.clone(),
        Rotation::Cw90 => image::imageops::rotate90(img),
        Rotation::Cw180 => image::imageops::rotate180(img),
        Rotation::Cw270 => image::imageops::rotate270(img),
    }
}

/// Side of the thumbnail used to measure letters.
const PROBE_SIDE: u32 = 1000;

/// Measures the typical letter height of a page, in the page's pixels: the
/// median height of letter-sized dark shapes on a flattened thumbnail.
/// `None` when the page shows too few of them to tell.
pub fn estimate_text_height(gray: &GrayImage) -> Option<f32> {
    let (w, h) = gray.dimensions();
    let s = (PROBE_SIDE as f32 / w.max(h) as f32).min(1.0);
    let small = if s < 1.0 {
        downscale_area(gray, (w as f32 * s).round() as u32, (h as f32 * s).round() as u32)
    } else {
        gray.clone()
    };
    let flat = flatten(&small, 7, 7);
    let level = otsu_level(&flat);
    let mut heights: Vec<u32> = dark_components(&flat, level)
        .into_iter()
        .filter(|&(cw, ch, area)| (3..=60).contains(&ch) && cw <= 60 && area >= 4)
        .map(|(_, ch, _)| ch)
        .collect();
    if heights.len() < 20 {
        return None;
    }
    heights.sort_unstable();
    Some(heights[heights.len() / 2] as f32 / s)
}

/// Scales and flattens a page for a reader.
pub fn prepare(gray: &GrayImage, needs: &ReaderNeeds) -> PreparedImage {
    let (w, h) = gray.dimensions();
    let long = w.max(h) as f32;
    let text_height = estimate_text_height(gray);
    let mut scale = match text_height {
        Some(t) => (needs.text_height / t).clamp(0.15, 2.0),
        // No measurable letters: a moderate size keeps whatever is there legible.
        None => (2000.0 / long).min(1.0),
    };
    scale = scale.min(needs.max_side as f32 / long);
    let (nw, nh) = ((w as f32 * scale).round().max(1.0) as u32, (h as f32 * scale).round().max(1.0) as u32);
    let scaled = if scale < 1.0 {
        downscale_area(gray, nw, nh)
    } else if scale > 1.0 {
        image::imageops::resize(gray, nw, nh, image::imageops::FilterType::CatmullRom)
    } else {
        gray.clone()
    };
    let r = needs.text_height.round().max(4.0) as u32;
    PreparedImage { gray: flatten(&scaled, r, r / 2), scale, text_height }
}

/// Divides each pixel by the local paper brightness (the brightest value
/// nearby, smoothed), so shadows and gradients vanish and print stays dark;
/// then squares the result, which keeps paper white but darkens print
/// set in light grey (children's books often fade words for effect).
fn flatten(img: &GrayImage, max_radius: u32, blur_radius: u32) -> GrayImage {
    let background = box_blur(&max_filter(img, max_radius), blur_radius);
    let mut out = img.clone();
    for (p, bg) in out.iter_mut().zip(background.as_raw()) {
        let v = ((*p as u32 * 255 + (*bg as u32 / 2)) / (*bg as u32).max(1)).min(255);
        *p = ((v * v + 127) / 255) as u8;
    }
    out
}

/// Encodes as binary PGM, the cheapest format every reader accepts.
pub fn encode_pgm(img: &GrayImage) -> Vec<u8> {
    let mut out = format!("P5\n{} {}\n255\n", img.width(), img.height()).into_bytes();
    out.extend_from_slice(img.as_raw());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A page of dark "letters" 30 px tall on paper that darkens to the right.
    fn synthetic_page() -> GrayImage {
        GrayImage::from_fn(1200, 800, |x, y| {
            let paper = 230 - (x / 12) as u8;
            let in_row = (y % 60) < 30 && y > 100 && y < 700;
            let in_letter = (x % 24) < 14 && x > 100 && x < 1100;
            Luma([if in_row && in_letter { paper / 4 } else { paper }])
        })
    }

    #[test]
    fn measures_letter_height() {
        let t = estimate_text_height(&synthetic_page()).expect("letters present");
        assert!((27.0..=33.0).contains(&t), "{t}");
        assert_eq!(estimate_text_height(&GrayImage::from_pixel(500, 500, Luma([200]))), None);
    }

    #[test]
    fn prepared_pages_have_the_wanted_letter_size_and_flat_paper() {
        let needs = ReaderNeeds { text_height: 15.0, max_side: 10_000 };
        let p = prepare(&synthetic_page(), &needs);
        assert!((0.45..=0.55).contains(&p.scale), "{}", p.scale);
        // Paper on the left and on the darker right both come out near white.
        let left = p.gray.get_pixel(20, 20).0[0];
        let right = p.gray.get_pixel(p.gray.width() - 20, 20).0[0];
        assert!(left > 240 && right > 240, "{left} {right}");
    }

    #[test]
    fn quarter_turns_compose() {
        let img = GrayImage::from_fn(3, 2, |x, y| Luma([(x + 3 * y) as u8]));
        let back = rotate(&rotate(&img, Rotation::Cw90), Rotation::Cw270);
        assert_eq!(back, img);
        assert_eq!(rotate(&img, Rotation::Cw90).dimensions(), (2, 3));
        assert_eq!(Rotation::from_degrees(450), Some(Rotation::Cw90));
    }
}
