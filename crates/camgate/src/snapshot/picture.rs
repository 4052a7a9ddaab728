//! A decoded picture (planar YUV 4:2:0, as H.264 decoders give it), scaled and written as
//! JPEG. Owns the pixel work of snapshots; it knows nothing of streams, decoders or HTTP.
//!
//! The planes go to the JPEG encoder as YCbCr directly (no RGB round trip): the encoder
//! subsamples chroma to 4:2:0 again, so a pixel is converted once, from the video's limited
//! range (16-235, 16-240) to JFIF's full range.

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};

/// A decoded picture; chroma planes are half size, rounded up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

/// `?width=` bounds (API.md).
pub const MIN_WIDTH: u32 = 16;
pub const MAX_WIDTH: u32 = 3840;

impl Picture {
    /// Copies planes with strides (a decoder's buffers) into a packed picture.
    pub fn from_planes(
        (width, height): (usize, usize),
        (y, u, v): (&[u8], &[u8], &[u8]),
        (ys, us, vs): (usize, usize, usize),
    ) -> Option<Picture> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let pack = |plane: &[u8], stride: usize, w: usize, h: usize| -> Option<Vec<u8>> {
            if h > 0 && (stride < w || plane.len() < stride * (h - 1) + w) {
                return None;
            }
            let mut out = Vec::with_capacity(w * h);
            for row in 0..h {
                out.extend_from_slice(&plane[row * stride..row * stride + w]);
            }
            Some(out)
        };
        Some(Picture {
            width,
            height,
            y: pack(y, ys, width, height)?,
            u: pack(u, us, cw, ch)?,
            v: pack(v, vs, cw, ch)?,
        })
    }

    /// The height that keeps the aspect ratio at `width` (at least 1).
    pub fn height_for(&self, width: usize) -> usize {
        if self.width == 0 {
            return 1;
        }
        ((self.height * width + self.width / 2) / self.width).max(1)
    }

    /// The picture at `width` pixels wide, aspect kept. Averages the source pixels each output
    /// pixel covers (a box filter: no aliasing when shrinking a lot, as grids do), repeats
    /// pixels when enlarging.
    pub fn scaled(&self, width: usize) -> Picture {
        if width == self.width || self.width == 0 || self.height == 0 {
            return self.clone();
        }
        let height = self.height_for(width);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let (scw, sch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        Picture {
            width,
            height,
            y: resample(&self.y, self.width, self.height, width, height),
            u: resample(&self.u, scw, sch, cw, ch),
            v: resample(&self.v, scw, sch, cw, ch),
        }
    }

    /// The picture as a baseline JPEG at `quality` (1-100), chroma 4:2:0.
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, String> {
        if self.width == 0
            || self.height == 0
            || self.width > usize::from(u16::MAX)
            || self.height > usize::from(u16::MAX)
        {
            return Err(format!(
                "a {}x{} picture cannot be a JPEG",
                self.width, self.height
            ));
        }
        let mut out = Vec::with_capacity(self.width * self.height / 4);
        let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
        encoder.set_sampling_factor(SamplingFactor::F_2_2);
        encoder
            .encode_image(Ycbcr420(self))
            .map_err(|e| format!("JPEG encoding failed: {e}"))?;
        Ok(out)
    }
}

/// Box-filter resampling of one plane.
fn resample(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    let spans = |s: usize, d: usize| -> Vec<(usize, usize)> {
        (0..d)
            .map(|i| {
                let a = i * s / d;
                let b = ((i + 1) * s / d).max(a + 1).min(s);
                (a.min(s - 1), b)
            })
            .collect()
    };
    let xs = spans(sw, dw);
    let ys = spans(sh, dh);
    let mut out = Vec::with_capacity(dw * dh);
    for &(y0, y1) in &ys {
        for &(x0, x1) in &xs {
            let mut sum = 0u32;
            for row in y0..y1 {
                let line = &src[row * sw..row * sw + sw];
                sum += line[x0..x1].iter().map(|&p| u32::from(p)).sum::<u32>();
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            out.push(((sum + n / 2) / n) as u8);
        }
    }
    out
}

/// Limited-range video levels to JFIF's full range.
struct Levels {
    luma: [u8; 256],
    chroma: [u8; 256],
}

static LEVELS: std::sync::LazyLock<Levels> = std::sync::LazyLock::new(|| {
    let mut luma = [0u8; 256];
    let mut chroma = [0u8; 256];
    for i in 0..256 {
        let y = (i as f32 - 16.0) * 255.0 / 219.0;
        luma[i] = y.round().clamp(0.0, 255.0) as u8;
        let c = (i as f32 - 128.0) * 255.0 / 224.0 + 128.0;
        chroma[i] = c.round().clamp(0.0, 255.0) as u8;
    }
    Levels { luma, chroma }
});

struct Ycbcr420<'a>(&'a Picture);

impl ImageBuffer for Ycbcr420<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        // Checked in `to_jpeg`.
        self.0.width as u16
    }

    fn height(&self) -> u16 {
        self.0.height as u16
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let p = self.0;
        let levels = &*LEVELS;
        let row = usize::from(row).min(p.height - 1);
        let cw = p.width.div_ceil(2);
        let luma = &p.y[row * p.width..(row + 1) * p.width];
        let crow = row / 2;
        let u = &p.u[crow * cw..(crow + 1) * cw];
        let v = &p.v[crow * cw..(crow + 1) * cw];
        buffers[0].extend(luma.iter().map(|&y| levels.luma[usize::from(y)]));
        for x in 0..p.width {
            buffers[1].push(levels.chroma[usize::from(u[x / 2])]);
            buffers[2].push(levels.chroma[usize::from(v[x / 2])]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(width: usize, height: usize, luma: u8) -> Picture {
        let c = width.div_ceil(2) * height.div_ceil(2);
        Picture {
            width,
            height,
            y: vec![luma; width * height],
            u: vec![128; c],
            v: vec![128; c],
        }
    }

    #[test]
    fn scaling_keeps_the_aspect_and_averages() {
        let mut p = flat(64, 48, 16);
        // Left half black, right half white: a 2-wide picture averages each half.
        for row in 0..48 {
            for x in 32..64 {
                p.y[row * 64 + x] = 235;
            }
        }
        let s = p.scaled(2);
        assert_eq!((s.width, s.height), (2, 2));
        assert_eq!(s.y, vec![16, 235, 16, 235]);
        let big = flat(320, 240, 100).scaled(1000);
        assert_eq!((big.width, big.height), (1000, 750));
        assert!(big.y.iter().all(|&y| y == 100));
        assert_eq!(big.u.len(), 500 * 375);
    }

    #[test]
    fn odd_sizes_and_strides_are_packed() {
        let (w, h) = (5, 3);
        let y: Vec<u8> = (0..8 * 3).map(|i| i as u8).collect();
        let c = vec![128u8; 4 * 2];
        let p = Picture::from_planes((w, h), (&y, &c, &c), (8, 4, 4)).unwrap();
        assert_eq!(&p.y[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(&p.y[5..10], &[8, 9, 10, 11, 12]);
        assert_eq!(p.u.len(), 3 * 2);
        // A plane shorter than its stride says is refused, not read past.
        assert!(Picture::from_planes((w, h), (&y[..10], &c, &c), (8, 4, 4)).is_none());
        let jpeg = p.to_jpeg(80).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }

    #[test]
    fn levels_map_video_range_to_full_range() {
        let l = &*LEVELS;
        assert_eq!(
            (l.luma[16], l.luma[235], l.luma[0], l.luma[255]),
            (0, 255, 0, 255)
        );
        assert_eq!(l.chroma[128], 128);
        assert!(flat(0, 0, 0).to_jpeg(80).is_err());
    }
}
