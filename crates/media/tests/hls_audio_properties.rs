//! Property tests of the segmenter with an AAC track next to the video, over arbitrary
//! interleavings (audio early or late against the video, lost, repeated or out-of-order
//! audio frames, timestamp jumps, codec changes, flushes). Every segment of the playlist is
//! read back with `mp4read` (init segment + segment bytes, as a player gets them) and checked:
//! - every fragment parses and names only tracks of its init segment;
//! - audio keeps its distance to the video: within a run (between discontinuities), an audio
//!   sample's decode time minus the run's first video sample's equals the same difference of
//!   the times they were pushed with (nothing drifts, nothing is re-timed);
//! - each audio sample lies before the end of its part's video and not before its run;
//! - audio samples never repeat, keep push order, never overlap, and each lasts exactly until
//!   the next one unless the camera's audio had a hole longer than the ceiling;
//! - in a steady stream, every audio frame from the first keyframe to the video's end is
//!   there, once.

use std::collections::HashMap;
use std::sync::Arc;

use media::hls::{Segmenter, SegmenterConfig};
use media::test_util::{
    AAC_FRAME_TICKS, aac_params, audio_frame, frame, h264_params, h264_params_1080p, pcma_params,
};
use media::{AudioParams, CodecParams, mp4read};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// A video frame lasting `ticks`, then the audio up to `video + lead` (lead may be
    /// negative: audio arriving late).
    Video {
        ticks: u32,
        key: bool,
    },
    /// How far the audio runs ahead of (or behind) the video from now on.
    Lead(i32),
    /// The next audio frame is lost.
    LoseAudio,
    /// The previous audio frame comes again.
    RepeatAudio,
    /// The audio clock skips ahead (a hole in the camera's audio).
    AudioHole(u32),
    JumpBack(u32),
    CodecChange,
    /// G.711 frames, which HLS leaves out.
    G711,
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (1500u32..6000, prop::bool::weighted(0.08))
            .prop_map(|(ticks, key)| Op::Video { ticks, key }),
        3 => (-30_000i32..30_000).prop_map(Op::Lead),
        3 => Just(Op::LoseAudio),
        2 => Just(Op::RepeatAudio),
        1 => (1000u32..600_000).prop_map(Op::AudioHole),
        1 => (0u32..1_000_000).prop_map(Op::JumpBack),
        1 => Just(Op::CodecChange),
        1 => Just(Op::G711),
        1 => Just(Op::Flush),
    ]
}

fn config() -> impl Strategy<Value = SegmenterConfig> {
    (500u64..3000, 50u64..500, prop::option::of(1u64..6)).prop_map(|(seg_ms, part_ms, max_s)| {
        SegmenterConfig {
            segment_target: std::time::Duration::from_millis(seg_ms),
            part_target: std::time::Duration::from_millis(part_ms),
            // Nothing slides out, so the whole stream can be read back at the end.
            window: 100_000,
            max_segment: max_s.map(std::time::Duration::from_secs),
            delta_updates: false,
            instance: 5,
        }
    })
}

/// What was pushed: source decode times by payload index.
#[derive(Default)]
struct Pushed {
    video: HashMap<u32, i64>,
    audio: HashMap<u32, i64>,
}

/// One sample read back: its track, payload index, decode time and duration.
#[derive(Clone, Copy, Debug)]
struct Got {
    index: u32,
    dts: i64,
    duration: i64,
}

/// A segment read back: its run (discontinuity count so far), video and audio samples,
/// and per fragment the video end and the audio samples in it.
struct ReadSegment {
    run: usize,
    video: Vec<Got>,
    audio: Vec<Got>,
    fragments: Vec<(i64, Vec<Got>)>,
    init_has_audio: bool,
}

fn index_of(payload: &[u8]) -> u32 {
    // Video: length prefix, NAL header, then the index; audio: the index alone.
    let tail = &payload[payload.len() - 4..];
    u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]])
}

/// Reads every complete segment of the playlist back through `mp4read`.
fn read_back(s: &Segmenter) -> Result<Vec<ReadSegment>, TestCaseError> {
    let playlist = s.playlist(false);
    let mut init: Option<Vec<u8>> = None;
    let mut run = 0;
    let mut out = Vec::new();
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            run += 1;
        } else if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            let name = rest.trim_end_matches('"');
            let res = s.lookup(name);
            prop_assert!(res.is_some(), "init {} resolves", name);
            init = res.map(|r| r.chunks.concat());
        } else if !line.starts_with('#') && !line.is_empty() {
            let seg = s.lookup(line);
            prop_assert!(seg.is_some(), "segment {} resolves", line);
            let mut file = init.clone().unwrap_or_default();
            file.extend_from_slice(&seg.map(|r| r.chunks.concat()).unwrap_or_default());
            let contents = mp4read::read(&file);
            prop_assert!(contents.end.tail.is_none(), "{:?}", contents.end.tail);
            let Some(init) = contents.init.as_ref() else {
                return Err(TestCaseError::fail("segment without init"));
            };
            let init_has_audio = init.track(2).is_some();
            prop_assert!(init.video().is_some());
            let mut r = ReadSegment {
                run,
                video: Vec::new(),
                audio: Vec::new(),
                fragments: Vec::new(),
                init_has_audio,
            };
            for f in &contents.fragments {
                let mut video_end = 0;
                let mut audio = Vec::new();
                for t in &f.tracks {
                    prop_assert!(init.track(t.track_id).is_some(), "track {}", t.track_id);
                    for smp in &t.samples {
                        let range = smp.range();
                        let payload = &file[range.start as usize..range.end as usize];
                        let got = Got {
                            index: index_of(payload),
                            dts: smp.dts as i64,
                            duration: i64::from(smp.duration),
                        };
                        if t.track_id == 1 {
                            r.video.push(got);
                        } else {
                            prop_assert!(smp.keyframe(), "audio samples are sync samples");
                            r.audio.push(got);
                            audio.push(got);
                        }
                    }
                    if t.track_id == 1 {
                        video_end = t.end_decode_time() as i64;
                    }
                }
                r.fragments.push((video_end, audio));
            }
            out.push(r);
        }
    }
    Ok(out)
}

/// The checks listed in the module docs (all but completeness).
fn check(s: &Segmenter, pushed: &Pushed, ceiling: i64) -> Result<Vec<ReadSegment>, TestCaseError> {
    let segments = read_back(s)?;
    let mut last_audio: Option<Got> = None;
    let mut last_run = usize::MAX;
    let mut run_anchor: Option<(i64, i64)> = None; // (internal, source) of the run's first video
    for seg in &segments {
        if seg.run != last_run {
            last_run = seg.run;
            run_anchor = None;
            last_audio = None;
        }
        if !seg.init_has_audio {
            prop_assert!(seg.audio.is_empty(), "audio without an audio track");
        }
        if run_anchor.is_none()
            && let Some(v) = seg.video.first()
        {
            run_anchor = Some((v.dts, pushed.video[&v.index]));
        }
        let Some((anchor, anchor_src)) = run_anchor else {
            continue;
        };
        for (video_end, audio) in &seg.fragments {
            for a in audio {
                prop_assert!(
                    a.dts < *video_end,
                    "audio at {} after its part's video",
                    a.dts
                );
                prop_assert!(a.dts >= anchor, "audio at {} before its run", a.dts);
            }
        }
        for a in &seg.audio {
            let src = pushed.audio[&a.index];
            prop_assert_eq!(
                a.dts - anchor,
                src - anchor_src,
                "audio {} out of sync",
                a.index
            );
            if let Some(prev) = last_audio {
                prop_assert!(
                    a.index > prev.index,
                    "audio {} after {}",
                    a.index,
                    prev.index
                );
                prop_assert!(prev.dts + prev.duration <= a.dts, "audio overlaps");
                let src_gap = src - pushed.audio[&prev.index];
                if src_gap <= ceiling {
                    prop_assert_eq!(prev.dts + prev.duration, a.dts, "hole in the audio");
                }
            }
            last_audio = Some(*a);
        }
    }
    Ok(segments)
}

fn run(config: SegmenterConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut s = Segmenter::new(config);
    let ceiling = (s.target_duration_secs() * 90_000) as i64;
    let (a, b): (Arc<CodecParams>, Arc<CodecParams>) = (h264_params(), h264_params_1080p());
    let (aac, g711): (Arc<AudioParams>, Arc<AudioParams>) = (aac_params(), pcma_params());
    let mut current = a.clone();
    let mut pushed = Pushed::default();
    let (mut dts, mut audio_dts, mut lead) = (0i64, 0i64, 0i64);
    let (mut vi, mut ai) = (0u32, 0u32);
    let mut lose = false;
    for op in ops {
        match *op {
            Op::Video { ticks, key } => {
                s.push(&frame(&current, vi, dts, dts, key), 0);
                pushed.video.insert(vi, dts);
                vi += 1;
                dts += i64::from(ticks);
                while audio_dts < dts + lead {
                    if !std::mem::take(&mut lose) {
                        s.push(&audio_frame(&aac, ai, audio_dts), 0);
                        pushed.audio.insert(ai, audio_dts);
                        ai += 1;
                    }
                    audio_dts += AAC_FRAME_TICKS;
                }
            }
            Op::Lead(l) => lead = i64::from(l),
            Op::LoseAudio => lose = true,
            Op::RepeatAudio => {
                if ai > 0 {
                    let t = pushed.audio[&(ai - 1)];
                    // Same time, new index: if it were taken, the index order check fails.
                    s.push(&audio_frame(&aac, ai, t), 0);
                    pushed.audio.insert(ai, t);
                    ai += 1;
                }
            }
            Op::AudioHole(t) => audio_dts += i64::from(t),
            Op::JumpBack(t) => {
                dts -= i64::from(t);
                audio_dts -= i64::from(t);
            }
            Op::CodecChange => {
                current = if Arc::ptr_eq(&current, &a) {
                    b.clone()
                } else {
                    a.clone()
                };
            }
            Op::G711 => {
                // Never in HLS: an index no check expects (they would fail on a lookup).
                s.push(&audio_frame(&g711, u32::MAX, audio_dts), 0);
            }
            Op::Flush => {
                s.flush();
            }
        }
    }
    s.flush();
    check(&s, &pushed, ceiling)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn audio_stays_in_sync_and_whole(config in config(), ops in prop::collection::vec(op(), 0..300)) {
        run(config, &ops)?;
    }

    /// A steady camera: video at a fixed rate, audio jittering around it by up to a part
    /// (after starting with the video). All its audio from the first keyframe to the video's
    /// end is carried, and the codecs name both tracks.
    #[test]
    fn steady_audio_is_complete(
        frame_ticks in 1500i64..6000,
        gop in 1i64..60,
        count in 10i64..300,
        jitter in prop::collection::vec(-15_000i64..15_000, 1..20),
    ) {
        let mut s = Segmenter::new(SegmenterConfig { window: 100_000, ..SegmenterConfig::default() });
        let ceiling = (s.target_duration_secs() * 90_000) as i64;
        let (p, aac) = (h264_params(), aac_params());
        let mut pushed = Pushed::default();
        let mut ai = 0u32;
        let mut audio_dts = 0i64;
        for i in 0..count {
            let t = i * frame_ticks;
            s.push(&frame(&p, i as u32, t, t, i % gop == 0), 0);
            pushed.video.insert(i as u32, t);
            // The first audio arrives with the first video: audio that starts later than the
            // first part is only carried from a new generation on (see the segmenter docs).
            let lead = if t < 18_000 { frame_ticks } else { jitter[i as usize % jitter.len()] };
            // At the end, the audio up to a second past the video, so every frame before the
            // end has a successor.
            let until = if i + 1 == count { t + frame_ticks + 90_000 } else { t + lead };
            while audio_dts < until {
                s.push(&audio_frame(&aac, ai, audio_dts), 0);
                pushed.audio.insert(ai, audio_dts);
                ai += 1;
                audio_dts += AAC_FRAME_TICKS;
            }
        }
        let end = count * frame_ticks;
        s.push(&frame(&p, count as u32, end, end, false), 0);
        pushed.video.insert(count as u32, end);
        s.flush();
        let codecs = s.codecs();
        prop_assert_eq!(codecs.as_deref(), Some("avc1.64000d,mp4a.40.2"));
        let segments = check(&s, &pushed, ceiling)?;
        let got: Vec<u32> = segments.iter().flat_map(|s| s.audio.iter().map(|a| a.index)).collect();
        let want: Vec<u32> = (0..ai).filter(|i| pushed.audio[i] < end + frame_ticks).collect();
        prop_assert_eq!(got, want);
    }
}
