//! The few image filters page preparation needs, written for 8-bit grey
//! buffers and linear in the number of pixels whatever the window size.

use image::GrayImage;

/// Shrinks by area averaging (each output pixel is the mean of the input
/// pixels it covers), which keeps thin strokes instead of aliasing them.
pub fn downscale_area(src: &GrayImage, new_w: u32, new_h: u32) -> GrayImage {
    let (w, h) = src.dimensions();
    let new_w = new_w.clamp(1, w);
    let new_h = new_h.clamp(1, h);
    // Horizontal pass into f32 rows, then vertical.
    let xs = spans(w, new_w);
    let ys = spans(h, new_h);
    let raw = src.as_raw();
    let mut tmp = vec![0f32; (new_w * h) as usize];
    for y in 0..h as usize {
        let row = &raw[y * w as usize..(y + 1) * w as usize];
        for (ox, span) in xs.iter().enumerate() {
            tmp[y * new_w as usize + ox] = span.apply(|i| row[i] as f32);
        }
    }
    let mut out = GrayImage::new(new_w, new_h);
    let buf: &mut [u8] = &mut out;
    for (oy, span) in ys.iter().enumerate() {
        for ox in 0..new_w as usize {
            let v = span.apply(|i| tmp[i * new_w as usize + ox]);
            buf[oy * new_w as usize + ox] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// The input cells covering one output cell, with fractional edge weights.
struct Span {
    first: usize,
    last: usize,
    first_weight: f32,
    last_weight: f32,
    norm: f32,
}

impl Span {
    fn apply(&self, get: impl Fn(usize) -> f32) -> f32 {
        if self.first == self.last {
            return get(self.first);
        }
        let mut sum = get(self.first) * self.first_weight + get(self.last) * self.last_weight;
        for i in self.first + 1..self.last {
            sum += get(i);
        }
        sum * self.norm
    }
}

fn spans(from: u32, to: u32) -> Vec<Span> {
    let ratio = from as f64 / to as f64;
    (0..to)
        .map(|o| {
            let start = o as f64 * ratio;
            let end = ((o + 1) as f64 * ratio).min(from as f64);
            let first = start.floor() as usize;
            let last = ((end.ceil() as usize).max(first + 1) - 1).min(from as usize - 1);
            let first_weight = (first as f64 + 1.0 - start).min(end - start) as f32;
            let last_weight = if last > first { (end - last as f64) as f32 } else { first_weight };
            Span { first, last, first_weight, last_weight, norm: (1.0 / (end - start)) as f32 }
        })
        .collect()
}

/// Maximum over a square window of side `2r + 1`, edges replicated
/// (van Herk / Gil-Werman: three comparisons per pixel for any window).
pub fn max_filter(src: &GrayImage, r: u32) -> GrayImage {
    separable(src, |line, out| sliding_max(line, r as usize, out))
}

/// Mean over a square window of side `2r + 1`, edges replicated.
pub fn box_blur(src: &GrayImage, r: u32) -> GrayImage {
    separable(src, |line, out| sliding_mean(line, r as usize, out))
}

/// Applies a one-dimensional filter to every row, then to every column.
fn separable(src: &GrayImage, filter: impl Fn(&[u8], &mut Vec<u8>)) -> GrayImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let mut rows = vec![0u8; w * h];
    let mut res = Vec::with_capacity(w.max(h));
    for (y, line) in src.as_raw().chunks_exact(w).enumerate() {
        filter(line, &mut res);
        rows[y * w..(y + 1) * w].copy_from_slice(&res);
    }
    let mut out = vec![0u8; w * h];
    let mut column = Vec::with_capacity(h);
    for x in 0..w {
        column.clear();
        column.extend((0..h).map(|y| rows[y * w + x]));
        filter(&column, &mut res);
        for (y, v) in res.iter().enumerate() {
            out[y * w + x] = *v;
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).expect("buffer size matches")
}

fn sliding_max(a: &[u8], r: usize, out: &mut Vec<u8>) {
    let n = a.len();
    let k = 2 * r + 1;
    let padded: Vec<u8> = (0..n + 2 * r).map(|j| a[j.saturating_sub(r).min(n - 1)]).collect();
    let m = padded.len();
    let mut g = vec![0u8; m];
    let mut hh = vec![0u8; m];
    for j in 0..m {
        g[j] = if j % k == 0 { padded[j] } else { g[j - 1].max(padded[j]) };
    }
    for j in (0..m).rev() {
        hh[j] = if j == m - 1 || (j + 1) % k == 0 { padded[j] } else { hh[j + 1].max(padded[j]) };
    }
    out.clear();
    out.extend((0..n).map(|i| hh[i].max(g[i + k - 1])));
}

fn sliding_mean(a: &[u8], r: usize, out: &mut Vec<u8>) {
    let n = a.len() as isize;
    let at = |j: isize| a[j.clamp(0, n - 1) as usize] as u32;
    let k = (2 * r + 1) as u32;
    let mut sum: u32 = (-(r as isize)..=r as isize).map(at).sum();
    out.clear();
    for i in 0..n {
        out.push(((sum + k / 2) / k) as u8);
        sum = sum + at(i + r as isize + 1) - at(i - r as isize);
    }
}

/// Otsu's threshold: the grey level that best splits ink from paper.
pub fn otsu_level(img: &GrayImage) -> u8 {
    let mut hist = [0u64; 256];
    for p in img.as_raw() {
        hist[*p as usize] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &c)| i as f64 * c as f64).sum();
    let (mut w_b, mut sum_b, mut best, mut level) = (0u64, 0f64, -1f64, 0u8);
    for (t, &count) in hist.iter().enumerate() {
        w_b += count;
        if w_b == 0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0 {
            break;
        }
        sum_b += t as f64 * count as f64;
        let m_b = sum_b / w_b as f64;
        let m_f = (sum_all - sum_b) / w_f as f64;
        let between = w_b as f64 * w_f as f64 * (m_b - m_f).powi(2);
        if between > best {
            best = between;
            level = t as u8;
        }
    }
    level
}

/// Bounding boxes (width, height, area) of the 4-connected dark components
/// (pixels at or below `level`).
pub fn dark_components(img: &GrayImage, level: u8) -> Vec<(u32, u32, u32)> {
    let (w, h) = img.dimensions();
    let raw = img.as_raw();
    let mut seen = vec![false; raw.len()];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    for start in 0..raw.len() {
        if seen[start] || raw[start] > level {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1, mut area) = (u32::MAX, u32::MAX, 0, 0, 0u32);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % w as usize) as u32, (i / w as usize) as u32);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            area += 1;
            let mut visit = |j: usize| {
                if !seen[j] && raw[j] <= level {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w as usize);
            }
            if y + 1 < h {
                visit(i + w as usize);
            }
        }
        out.push((x1 - x0 + 1, y1 - y0 + 1, area));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn area_downscale_averages_blocks() {
        let img = GrayImage::from_fn(4, 2, |x, _| Luma([if x < 2 { 0 } else { 200 }]));
        let small = downscale_area(&img, 2, 1);
        assert_eq!(small.as_raw(), &vec![0, 200]);
        let odd = downscale_area(&GrayImage::from_pixel(7, 5, Luma([77])), 3, 2);
        assert!(odd.as_raw().iter().all(|&v| v == 77));
    }

    #[test]
    fn max_filter_spreads_the_brightest_pixel() {
        let mut img = GrayImage::new(9, 9);
        img.put_pixel(4, 4, Luma([255]));
        let out = max_filter(&img, 2);
        for y in 0..9 {
            for x in 0..9 {
                let inside = (2..=6).contains(&x) && (2..=6).contains(&y);
                assert_eq!(out.get_pixel(x, y).0[0], if inside { 255 } else { 0 }, "({x},{y})");
            }
        }
    }

    #[test]
    fn box_blur_keeps_flat_images_flat() {
        let out = box_blur(&GrayImage::from_pixel(10, 6, Luma([90])), 3);
        assert!(out.as_raw().iter().all(|&v| v == 90));
    }

    #[test]
    fn otsu_splits_two_levels_and_components_are_counted() {
        let img = GrayImage::from_fn(20, 10, |x, y| {
            Luma([if (2..5).contains(&x) && (2..8).contains(&y) || x == 12 { 20 } else { 230 }])
        });
        let level = otsu_level(&img);
        assert!((20..230).contains(&level));
        let mut comps = dark_components(&img, level);
        comps.sort();
        assert_eq!(comps, vec![(1, 10, 10), (3, 6, 18)]);
    }
}
