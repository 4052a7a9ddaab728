//! The synthetic test picture, drawn straight into I420 planes: static colour bars, a box that
//! moves every frame (so P-frames carry motion), the UTC wall-clock time and frame number in
//! readable digits, and the machine-readable clock band (`band.rs`). Owns pixels only.

use crate::band;
use crate::font::{self, GLYPH_H, GLYPH_W};

/// BT.601 video-range (Y, U, V) of the classic bars: white, yellow, cyan, green, magenta, red,
/// blue.
const BARS: [(u8, u8, u8); 7] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
];
const GREY: u8 = 64;

/// One I420 picture, reused frame after frame.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// The static background, copied in at the start of every frame.
    background: (Vec<u8>, Vec<u8>, Vec<u8>),
}

impl Picture {
    /// `width` and `height` must be even (checked by `SimConfig::validate`).
    pub fn new(width: usize, height: usize) -> Picture {
        let (cw, ch) = (width / 2, height / 2);
        let mut y = vec![GREY; width * height];
        let mut u = vec![128; cw * ch];
        let mut v = vec![128; cw * ch];
        let bars_bottom = height * 2 / 3;
        for row in 0..bars_bottom {
            for col in 0..width {
                y[row * width + col] = BARS[col * BARS.len() / width].0;
            }
        }
        for row in 0..bars_bottom / 2 {
            for col in 0..cw {
                let (_, cu, cv) = BARS[(col * 2) * BARS.len() / width];
                u[row * cw + col] = cu;
                v[row * cw + col] = cv;
            }
        }
        Picture {
            width,
            height,
            background: (y.clone(), u.clone(), v.clone()),
            y,
            u,
            v,
        }
    }

    /// Draws frame `frame_no`, captured at `unix_ms`.
    pub fn draw(&mut self, frame_no: u64, unix_ms: u64) {
        self.y.copy_from_slice(&self.background.0);
        self.u.copy_from_slice(&self.background.1);
        self.v.copy_from_slice(&self.background.2);
        let (w, h) = (self.width, self.height);

        // Film grain over the bars: fresh every frame, so the encoder spends roughly the
        // configured bitrate (a flat synthetic picture would need a tenth of it) and load
        // tests move realistic amounts of data.
        let mut seed = (frame_no.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16) as u32 | 1;
        for px in &mut self.y[..w * (h * 2 / 3)] {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *px = px.saturating_add((seed & 15) as u8).saturating_sub(8);
        }

        // A black box sliding back and forth over the bars, one sweep every ~2 s at 30 fps.
        let side = (h / 6).max(2) & !1;
        let travel = w.saturating_sub(side).max(1);
        let step = (w / 30).max(1);
        let pos = (frame_no as usize).wrapping_mul(step) % (2 * travel);
        let x = if pos < travel { pos } else { 2 * travel - pos };
        self.fill_rect(x & !1, (h / 4) & !1, side, side, (16, 128, 128));

        // Readable clock: HH:MM:SS.mmm (UTC) and the frame number, white on black.
        let scale = (h / 100).max(1);
        let line_h = GLYPH_H * scale;
        let top = h * 2 / 3 + 2 * scale;
        let clock = format_utc(unix_ms);
        let count = format!("#{frame_no}");
        let text_w = (clock.len() + 2) * (GLYPH_W + 1) * scale;
        self.fill_rect(
            0,
            top - scale,
            text_w.min(w),
            2 * line_h + 4 * scale,
            (16, 128, 128),
        );
        self.text(scale, top, scale, &clock);
        self.text(scale, top + line_h + 2 * scale, scale, &count);

        // The band, on neutral chroma so colour subsampling cannot smear into it.
        let (btop, bbottom) = band::band_rows(h);
        band::draw_band(&mut self.y, w, h, unix_ms);
        let cw = w / 2;
        for row in btop / 2..bbottom.div_ceil(2).min(h / 2) {
            self.u[row * cw..(row + 1) * cw].fill(128);
            self.v[row * cw..(row + 1) * cw].fill(128);
        }
    }

    /// Fills a rectangle, clipped to the picture.
    fn fill_rect(&mut self, x: usize, y: usize, rw: usize, rh: usize, (cy, cu, cv): (u8, u8, u8)) {
        let (w, h) = (self.width, self.height);
        let (x1, y1) = ((x + rw).min(w), (y + rh).min(h));
        if x >= x1 || y >= y1 {
            return;
        }
        for row in y..y1 {
            self.y[row * w + x..row * w + x1].fill(cy);
        }
        let cw = w / 2;
        for row in y / 2..y1.div_ceil(2).min(h / 2) {
            let (l, r) = (x / 2, x1.div_ceil(2).min(cw));
            self.u[row * cw + l..row * cw + r].fill(cu);
            self.v[row * cw + l..row * cw + r].fill(cv);
        }
    }

    /// Draws white text with its top-left corner at (x, y), each font pixel `scale` wide.
    fn text(&mut self, x: usize, y: usize, scale: usize, s: &str) {
        let w = self.width;
        for (i, c) in s.chars().enumerate() {
            let gx = x + i * (GLYPH_W + 1) * scale;
            for row in 0..GLYPH_H {
                for col in 0..GLYPH_W {
                    if !font::ink(c, col, row) {
                        continue;
                    }
                    for dy in 0..scale {
                        let py = y + row * scale + dy;
                        if py >= self.height {
                            continue;
                        }
                        let px0 = gx + col * scale;
                        let px1 = (px0 + scale).min(w);
                        if px0 < px1 {
                            self.y[py * w + px0..py * w + px1].fill(235);
                        }
                    }
                }
            }
        }
    }
}

/// `HH:MM:SS.mmm` of a Unix time in milliseconds, UTC.
pub fn format_utc(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let s = unix_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(format_utc(0), "00:00:00.000");
        assert_eq!(format_utc(1_763_771_234_567), "00:27:14.567");
    }

    #[test]
    fn frames_differ_and_carry_the_band() {
        for (w, h) in [(320, 240), (1920, 1080), (64, 48), (32, 32)] {
            let mut p = Picture::new(w, h);
            p.draw(0, 5_000);
            let first = p.y.clone();
            assert_eq!(band::decode_band(&p.y, w, h), Some(5_000));
            p.draw(1, 5_033);
            assert_ne!(first, p.y);
            assert_eq!(band::decode_band(&p.y, w, h), Some(5_033));
        }
    }
}
