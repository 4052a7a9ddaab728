//! Decodes the clock band of raw frames and prints each frame's age (capture to now):
//! `ffmpeg -rtsp_transport tcp -i rtsp://127.0.0.1:8555/cam1 -frames:v 5 -f rawvideo
//!  -pix_fmt gray - | cargo run -p sim --example band -- 1920 1080`
//! Accepts grey (1 byte/pixel, the default), `rgb24` (`--rgb`) or `rgba` (`--rgba`) frames.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(w), Some(h)) = (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: band WIDTH HEIGHT [--rgb|--rgba] < raw frames");
        std::process::exit(2);
    };
    let bpp = match args.get(2).map(String::as_str) {
        Some("--rgb") => 3,
        Some("--rgba") => 4,
        _ => 1,
    };
    let mut frame = vec![0u8; w * h * bpp];
    let mut stdin = std::io::stdin().lock();
    let mut n = 0;
    while stdin.read_exact(&mut frame).is_ok() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        match sim::decode_band(&frame, w, h) {
            Some(band) => println!(
                "frame {n}: band {band} ms, age {} ms",
                sim::band_age_ms(band, now)
            ),
            None => println!("frame {n}: no band"),
        }
        n += 1;
    }
}
