//! Throughput of the media core on 1080p30 at about 2 Mbit/s: one ~60 KB keyframe and
//! 29 ~8 KB P-frames per second. Measures the fMP4 fragment writer (payload GB/s and frames/s)
//! and the LL-HLS segmenter's push path, plus playlist rendering.
//!
//! Run: `cargo bench -p media --bench mux` (figures go to bench/REPORT.md).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use media::hls::{Segmenter, SegmenterConfig};
use media::test_util::{h264_params_1080p, video_frame};
use media::{Frame, fmp4};

const FRAME_TICKS: i64 = 3000; // 30 fps at 90 kHz

/// One second of video: a 60 KB keyframe then 29 P-frames of 8 KB (length-prefixed NALs).
fn one_second() -> Vec<Frame> {
    let params = h264_params_1080p();
    (0..30)
        .map(|i| {
            let key = i == 0;
            let size = if key { 60_000 } else { 8_000 };
            let mut data = vec![0xabu8; size];
            data[..4].copy_from_slice(&((size - 4) as u32).to_be_bytes());
            data[4] = if key { 0x65 } else { 0x41 };
            let t = i * FRAME_TICKS;
            video_frame(Bytes::from(data), t, t, key, &params)
        })
        .collect()
}

fn fragments(c: &mut Criterion) {
    let frames = one_second();
    let payload: u64 = frames.iter().map(|f| f.data.len() as u64).sum();
    // Five 200 ms parts per second, six frames each, as the segmenter makes them.
    let mux_second = |frames: &[Frame]| {
        for (k, part) in frames.chunks(6).enumerate() {
            let end = part.last().expect("6 frames").dts + FRAME_TICKS;
            black_box(fmp4::fragment(k as u32, part, end).expect("valid timing"));
        }
    };
    let mut g = c.benchmark_group("fmp4_fragment_1080p30");
    g.throughput(Throughput::BytesDecimal(payload));
    g.bench_function("payload_bytes", |b| {
        b.iter(|| mux_second(black_box(&frames)))
    });
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("frames", |b| b.iter(|| mux_second(black_box(&frames))));
    g.finish();
}

fn segmenter(c: &mut Criterion) {
    let second = one_second();
    let mut g = c.benchmark_group("hls_segmenter_1080p30");
    g.throughput(Throughput::Elements(second.len() as u64));
    g.bench_function("push_one_second", |b| {
        let mut s = Segmenter::new(SegmenterConfig::default());
        let mut t = 0i64;
        b.iter(|| {
            for f in &second {
                let mut f = f.clone();
                f.dts += t;
                f.pts += t;
                black_box(s.push(&f, t / 90));
            }
            t += 30 * FRAME_TICKS;
        })
    });
    g.finish();

    // A full window (12 s of 1 s segments, 5 parts each) rendered as one request would.
    let mut s = Segmenter::new(SegmenterConfig::default());
    for sec in 0..20 {
        for f in &second {
            let mut f = f.clone();
            f.dts += sec * 30 * FRAME_TICKS;
            f.pts = f.dts;
            s.push(&f, 0);
        }
    }
    let mut g = c.benchmark_group("hls_playlist");
    g.throughput(Throughput::Elements(1));
    g.bench_function("render_full_window", |b| {
        b.iter(|| black_box(s.playlist(false)))
    });
    g.bench_function("lookup_segment", |b| {
        b.iter(|| black_box(s.lookup(black_box("seg-0-15.m4s"))))
    });
    g.finish();
}

criterion_group!(benches, fragments, segmenter);
criterion_main!(benches);
