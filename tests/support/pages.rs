//! Page images rendered by the tests themselves, so every test knows the
//! true text of the page it sends.

use std::io::Cursor;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::{GrayImage, ImageFormat, Luma};

const SERIF: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf";
const KOREAN: &str = "/usr/share/fonts/truetype/nanum/NanumMyeongjo.ttf";

/// A page to render.
#[derive(Debug, Clone)]
pub struct Page {
    pub lines: Vec<String>,
    /// Letter size in pixels.
    pub size: f32,
    /// Clockwise degrees the page is turned, as a phone held sideways or
    /// upside down would store it.
    pub rotation: u32,
    /// Use the Korean font.
    pub korean: bool,
}

impl Page {
    pub fn new(lines: &[&str]) -> Self {
        Self { lines: lines.iter().map(|l| l.to_string()).collect(), size: 44.0, rotation: 0, korean: false }
    }

    pub fn rotated(mut self, degrees: u32) -> Self {
        self.rotation = degrees;
        self
    }

    pub fn korean(mut self) -> Self {
        self.korean = true;
        self
    }

    /// The page's text as one string.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

fn font(path: &str) -> FontVec {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path}: {e}; install the fonts with `sudo apt-get install fonts-dejavu-core fonts-nanum`")
    });
    FontVec::try_from_vec(bytes).expect("a valid font")
}

/// Renders the page as a PNG: dark print on off-white paper with a shadow
/// falling across it, like a phone photo of a book.
pub fn render_page(page: &Page) -> Vec<u8> {
    let font = font(if page.korean { KOREAN } else { SERIF });
    let scaled = font.as_scaled(PxScale::from(page.size));
    let margin = 90.0;
    let line_height = page.size * 1.7;
    let width = page
        .lines
        .iter()
        .map(|l| l.chars().map(|c| scaled.h_advance(font.glyph_id(c))).sum::<f32>())
        .fold(0.0, f32::max);
    let (w, h) = ((width + 2.0 * margin) as u32, (page.lines.len() as f32 * line_height + 2.0 * margin) as u32);
    // Paper darkening towards the lower right, as in a shadow.
    let mut img = GrayImage::from_fn(w, h, |x, y| {
        let shade = 40.0 * (x as f32 / w as f32) * (y as f32 / h as f32);
        Luma([(236.0 - shade) as u8])
    });
    for (i, line) in page.lines.iter().enumerate() {
        let baseline = margin + page.size + i as f32 * line_height;
        let mut x = margin;
        let mut prev = None;
        for c in line.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(page.size, point(x, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                outline.draw(|gx, gy, coverage| {
                    let (px, py) = (bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32);
                    if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                        let p = img.get_pixel_mut(px as u32, py as u32);
                        let ink = 30.0;
                        p.0[0] = (p.0[0] as f32 * (1.0 - coverage) + ink * coverage) as u8;
                    }
                });
            }
            x += scaled.h_advance(id);
            prev = Some(id);
        }
    }
    let img = match page.rotation % 360 {
        90 => image::imageops::rotate90(&img),
        180 => image::imageops::rotate180(&img),
        270 => image::imageops::rotate270(&img),
        _ => img,
    };
    png(&img)
}

/// A page with nothing printed on it.
pub fn blank_page() -> Vec<u8> {
    png(&GrayImage::from_fn(900, 700, |x, _| Luma([230 - (x / 30) as u8])))
}

fn png(img: &GrayImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).expect("PNG encoding");
    out.into_inner()
}

/// The same PNG with a text chunk added: other bytes, the same pixels.
pub fn with_comment(png: &[u8], comment: &str) -> Vec<u8> {
    let mut data = b"Comment\0".to_vec();
    data.extend_from_slice(comment.as_bytes());
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut typed = b"tEXt".to_vec();
    typed.extend_from_slice(&data);
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    // After the signature (8 bytes) and IHDR (8 + 13 + 4 bytes).
    let at = 8 + 25;
    let mut out = png[..at].to_vec();
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&png[at..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Pages of a picture book the project renders itself, with their true
/// text: the photos the benchmarks use when given no folder of real ones.
/// Some are stored turned, as phones often store them.
pub fn sample_book() -> Vec<Page> {
    vec![
        Page::new(&[
            "Once upon a time a little fox lived at the edge",
            "of a deep green wood. Every morning she ran",
            "down to the river to say hello to the ducks.",
        ]),
        Page::new(&[
            "One windy day she found a red kite caught in",
            "the tall grass. She pulled it free and ran to",
            "the top of the hill to let it fly.",
        ])
        .rotated(180),
        Page::new(&[
            "The kite climbed higher and higher, over the",
            "river and over the trees, until it was only a",
            "tiny red dot in the wide blue sky.",
        ]),
        Page::new(&[
            "That night the fox looked up at the stars and",
            "smiled. Somewhere up there, she thought, my kite",
            "is dancing with the moon.",
        ])
        .rotated(90),
        Page::new(&["옛날 옛적에 깊은 산속에 호랑이 한 마리가", "살았어요. 호랑이는 배가 고파서 마을로 내려갔어요."])
            .korean(),
    ]
}

/// Writes [`sample_book`] into `dir` as PNG files with a `truth.json` of
/// `{"file", "text"}` entries, the layout the benchmarks read.
pub fn write_sample_book(dir: &std::path::Path) -> std::io::Result<()> {
    let mut truth = Vec::new();
    for (i, page) in sample_book().iter().enumerate() {
        let file = format!("page-{}.png", i + 1);
        std::fs::write(dir.join(&file), render_page(page))?;
        truth.push(serde_json::json!({ "file": file, "text": page.text() }));
    }
    std::fs::write(dir.join("truth.json"), serde_json::Value::Array(truth).to_string())
}

/// The folder of page photos a benchmark was given as its first argument,
/// or else a temporary folder holding [`sample_book`]. The second value
/// keeps the temporary folder alive.
pub fn photo_folder() -> (std::path::PathBuf, Option<tempfile::TempDir>) {
    // `cargo bench` adds `--bench`; the folder is the first other argument.
    if let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with("--")) {
        return (std::path::PathBuf::from(dir), None);
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    write_sample_book(dir.path()).expect("write the sample pages");
    println!("(no photo folder given: using {} pages the project renders itself)", sample_book().len());
    (dir.path().to_owned(), Some(dir))
}
