//! ffmpeg's HLS demuxer (an independent player) reads a playlist we rendered, with every file
//! it names served from a directory: all frames decode, in order, with steady timestamps.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{X264_NO_B_FRAMES, synth::Parsed, testsrc_frames};
use media::Codec;
use media::hls::{Segmenter, SegmenterConfig};

/// Runs ffmpeg, killing it if it outlives `limit` (a live playlist could make it wait).
fn ffmpeg_bounded(args: &[&str], limit: Duration) -> String {
    let mut child = Command::new("ffmpeg")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (install ffmpeg)");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "ffmpeg failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return String::from_utf8(out.stdout).unwrap();
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "ffmpeg did not finish: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ffmpeg_plays_the_rendered_playlist() {
    let dir = tempfile::tempdir().unwrap();
    let frames = testsrc_frames(dir.path(), Codec::H264, 6, X264_NO_B_FRAMES, 3600);
    assert_eq!(frames.len(), 150);
    let mut s = Segmenter::new(SegmenterConfig::default());
    for (i, f) in frames.iter().enumerate() {
        s.push(f, 1_763_769_600_000 + i as i64 * 40);
    }
    s.flush();
    let playlist = s.playlist(false);
    let pl = Parsed::new(&playlist);
    assert_eq!(pl.extinfs(), vec![1.0; 6]);
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    // ffmpeg's demuxer keeps polling a live playlist and holds the last frame back waiting
    // for more; ENDLIST (what a finished stream's playlist gets) lets it drain and exit.
    std::fs::write(
        site.join("index.m3u8"),
        format!("{playlist}#EXT-X-ENDLIST\n"),
    )
    .unwrap();
    let uris = pl.uris();
    for uri in &uris[..uris.len() - 1] {
        let r = s.lookup(uri).unwrap();
        let bytes: Vec<u8> = r.chunks.iter().flat_map(|c| c.iter().copied()).collect();
        std::fs::write(site.join(uri), bytes).unwrap();
    }
    let index = site.join("index.m3u8");
    let out = ffmpeg_bounded(
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            index.to_str().unwrap(),
            "-f",
            "framecrc",
            "-",
        ],
        Duration::from_secs(60),
    );
    let pts: Vec<i64> = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(',').nth(1).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(pts.len(), 150, "every frame decoded:\n{out}");
    let step = pts[1] - pts[0];
    assert!(step > 0);
    assert!(
        pts.windows(2).all(|w| w[1] - w[0] == step),
        "steady timestamps: {pts:?}"
    );
}
