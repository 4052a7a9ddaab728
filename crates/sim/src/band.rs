//! The machine-readable clock band: a row of 32 black/white cells across the picture that
//! encodes the Unix time in milliseconds modulo 2^24 (about 4.66 hours), so a test can read the
//! capture time back from a decoded frame, a screenshot or a browser canvas and measure
//! glass-to-glass latency. Owns the layout, the drawing onto a luma plane and the decoder.
//!
//! Layout (all positions are fractions of the picture, so the band survives scaling):
//! - rows `[10/12 H, 11/12 H)`; cell `i` (0..32) spans columns `[i W/32, (i+1) W/32)`:
//!   60x90 px at 1920x1080, 10x20 px at 320x240; much larger than H.264's 16x16 macroblocks.
//! - cells 0,1 = white, black (start guard); 2..26 = the 24 time bits, most significant first,
//!   white = 1; 26..30 = CRC-4 (polynomial x^4+x+1) of the 24 bits, MSB first;
//!   30,31 = black, white (end guard).
//! - the decoder averages the middle half (both ways) of each cell, thresholds at the midpoint
//!   of the start guard's white and black, and checks both guards and the CRC.
//!
//! docs/sim.md repeats this for the browser-side port.

/// Cells in the band.
pub const BAND_CELLS: usize = 32;
/// Time bits carried.
pub const BAND_DATA_BITS: u32 = 24;
/// The band carries `unix_ms % BAND_PERIOD_MS`.
pub const BAND_PERIOD_MS: u64 = 1 << BAND_DATA_BITS;

const WHITE: u8 = 235;
const BLACK: u8 = 16;
/// Minimum white-minus-black difference of the start guard for a band to count as found.
const MIN_CONTRAST: u32 = 48;

/// Pixel rows `[top, bottom)` of the band in a picture `height` tall.
pub fn band_rows(height: usize) -> (usize, usize) {
    (height * 10 / 12, height * 11 / 12)
}

/// Pixel columns `[left, right)` of cell `i` in a picture `width` wide.
pub fn cell_columns(width: usize, i: usize) -> (usize, usize) {
    (i * width / BAND_CELLS, (i + 1) * width / BAND_CELLS)
}

fn crc4(data: u32) -> u32 {
    let mut crc = 0u32;
    for i in (0..BAND_DATA_BITS).rev() {
        let bit = ((data >> i) & 1) ^ ((crc >> 3) & 1);
        crc = (crc << 1) & 0xF;
        if bit == 1 {
            crc ^= 0x3;
        }
    }
    crc
}

/// The cell colours (true = white) that encode `unix_ms`.
pub fn band_cells(unix_ms: u64) -> [bool; BAND_CELLS] {
    let data = (unix_ms % BAND_PERIOD_MS) as u32;
    let crc = crc4(data);
    let mut cells = [false; BAND_CELLS];
    cells[0] = true;
    cells[1] = false;
    for i in 0..BAND_DATA_BITS as usize {
        cells[2 + i] = (data >> (BAND_DATA_BITS as usize - 1 - i)) & 1 == 1;
    }
    for i in 0..4 {
        cells[26 + i] = (crc >> (3 - i)) & 1 == 1;
    }
    cells[30] = false;
    cells[31] = true;
    cells
}

/// Paints the band for `unix_ms` onto an 8-bit luma plane of `width` x `height`
/// (row stride = `width`). The caller keeps chroma neutral under the band.
pub fn draw_band(luma: &mut [u8], width: usize, height: usize, unix_ms: u64) {
    let (top, bottom) = band_rows(height);
    let cells = band_cells(unix_ms);
    for row in top..bottom {
        let line = &mut luma[row * width..(row + 1) * width];
        for (i, white) in cells.iter().enumerate() {
            let (l, r) = cell_columns(width, i);
            line[l..r].fill(if *white { WHITE } else { BLACK });
        }
    }
}

/// Reads the band back: `pixels` is an 8-bit picture of `width` x `height` given as a luma
/// plane (exactly `width*height` bytes, or any longer planar YUV buffer whose first plane is
/// luma, such as I420), packed RGB (`*3`) or RGBA (`*4`). Returns `unix_ms % BAND_PERIOD_MS`
/// of the frame, or `None` when no valid band is found (guards or CRC do not match).
pub fn decode_band(pixels: &[u8], width: usize, height: usize) -> Option<u64> {
    let area = width.checked_mul(height)?;
    if width < BAND_CELLS || height < 12 {
        return None;
    }
    let bpp = if Some(pixels.len()) == area.checked_mul(3) {
        3
    } else if Some(pixels.len()) == area.checked_mul(4) {
        4
    } else if pixels.len() >= area {
        1
    } else {
        return None;
    };
    let luma = |x: usize, y: usize| -> u32 {
        let i = (y * width + x) * bpp;
        if bpp == 1 {
            u32::from(pixels[i])
        } else {
            let (r, g, b) = (pixels[i], pixels[i + 1], pixels[i + 2]);
            (u32::from(r) * 77 + u32::from(g) * 150 + u32::from(b) * 29) >> 8
        }
    };
    let (top, bottom) = band_rows(height);
    let (y0, y1) = (top + (bottom - top) / 4, bottom - (bottom - top) / 4);
    let mut means = [0u32; BAND_CELLS];
    for (i, mean) in means.iter_mut().enumerate() {
        let (l, r) = cell_columns(width, i);
        let (x0, x1) = (l + (r - l) / 4, r - (r - l) / 4);
        let (mut sum, mut n) = (0u32, 0u32);
        for y in y0..y1.max(y0 + 1) {
            for x in x0..x1.max(x0 + 1) {
                sum += luma(x, y);
                n += 1;
            }
        }
        *mean = sum / n;
    }
    let (white, black) = (means[0], means[1]);
    if white < black + MIN_CONTRAST {
        return None;
    }
    let threshold = (white + black) / 2;
    let bit = |i: usize| means[i] > threshold;
    if bit(30) || !bit(31) {
        return None;
    }
    let mut data = 0u32;
    for i in 0..BAND_DATA_BITS as usize {
        data = (data << 1) | u32::from(bit(2 + i));
    }
    let mut crc = 0u32;
    for i in 0..4 {
        crc = (crc << 1) | u32::from(bit(26 + i));
    }
    (crc == crc4(data)).then_some(u64::from(data))
}

/// How many milliseconds lie between a band value and `now_unix_ms`, modulo the period:
/// the latency, when the frame was captured less than `BAND_PERIOD_MS` ago.
pub fn band_age_ms(band_ms: u64, now_unix_ms: u64) -> u64 {
    (now_unix_ms % BAND_PERIOD_MS + BAND_PERIOD_MS - band_ms % BAND_PERIOD_MS) % BAND_PERIOD_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn picture(w: usize, h: usize, ms: u64) -> Vec<u8> {
        let mut p: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
        draw_band(&mut p, w, h, ms);
        p
    }

    #[test]
    fn round_trips_at_common_sizes() {
        for (w, h) in [(1920, 1080), (1280, 720), (320, 240), (64, 48)] {
            for ms in [0, 1, 1_763_000_000_123, BAND_PERIOD_MS - 1, u64::MAX] {
                let p = picture(w, h, ms);
                assert_eq!(
                    decode_band(&p, w, h),
                    Some(ms % BAND_PERIOD_MS),
                    "{w}x{h} {ms}"
                );
            }
        }
    }

    #[test]
    fn survives_scaling_and_rgb() {
        // Nearest-neighbour downscale 1920x1080 -> 480x270, then expand to RGBA.
        let (w, h) = (1920, 1080);
        let p = picture(w, h, 123_456_789);
        let (sw, sh) = (480, 270);
        let mut rgba = Vec::with_capacity(sw * sh * 4);
        for y in 0..sh {
            for x in 0..sw {
                let v = p[(y * h / sh) * w + x * w / sw];
                rgba.extend_from_slice(&[v, v, v, 255]);
            }
        }
        assert_eq!(
            decode_band(&rgba, sw, sh),
            Some(123_456_789 % BAND_PERIOD_MS)
        );
    }

    #[test]
    fn rejects_pictures_without_a_band() {
        let flat = vec![128u8; 320 * 240];
        assert_eq!(decode_band(&flat, 320, 240), None);
        assert_eq!(decode_band(&[], 320, 240), None);
        assert_eq!(decode_band(&flat, 0, 0), None);
        // One flipped data cell breaks the CRC.
        let mut p = picture(320, 240, 42);
        let (top, bottom) = band_rows(240);
        let (l, r) = cell_columns(320, 10);
        for y in top..bottom {
            for x in l..r {
                p[y * 320 + x] = 255 - p[y * 320 + x];
            }
        }
        assert_eq!(decode_band(&p, 320, 240), None);
    }

    #[test]
    fn age_wraps_around_the_period() {
        assert_eq!(band_age_ms(1000, 1500), 500);
        assert_eq!(band_age_ms(BAND_PERIOD_MS - 100, BAND_PERIOD_MS + 50), 150);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..4096), w in 0usize..100, h in 0usize..100) {
            let _ = decode_band(&data, w, h);
        }
    }
}
