//! The LL-HLS segmenter on hand-made frame sequences: segment and part boundaries, the
//! playlist's tags, discontinuities, lookups, blocking reload and delta updates.

mod common;

use std::time::Duration;

use common::synth::Parsed;
use media::hls::{ReloadDecision, Segmenter, SegmenterConfig};
use media::test_util::{frame, h264_params, h264_params_1080p};

/// 25 fps in 90 kHz ticks.
const F: i64 = 3600;
const T0_MS: i64 = 1_763_769_600_000; // 2025-11-22T00:00:00Z

/// Pushes `count` frames at 25 fps with a keyframe every `gop` frames, starting at `first`.
fn push_frames(s: &mut Segmenter, first: u32, count: u32, gop: u32) {
    let p = h264_params();
    for i in first..first + count {
        let dts = i64::from(i) * F;
        s.push(&frame(&p, i, dts, dts, i % gop == 0), T0_MS + dts / 90);
    }
}

#[test]
fn one_second_gops_make_one_second_segments_of_five_parts() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    assert!(!s.is_playable());
    push_frames(&mut s, 0, 101, 25);
    assert!(s.is_playable());
    let infos = s.segment_infos();
    let complete: Vec<_> = infos.iter().filter(|i| !i.open).collect();
    assert_eq!(complete.len(), 4);
    for (n, seg) in complete.iter().enumerate() {
        assert_eq!(seg.msn, n as u64);
        assert_eq!(seg.duration, 90_000);
        assert_eq!(seg.part_durations, vec![18_000; 5]);
        assert!(seg.starts_with_keyframe);
    }
    let text = s.playlist(false);
    let pl = Parsed::new(&text);
    assert_eq!(pl.tag("#EXT-X-TARGETDURATION").as_deref(), Some("4"));
    assert_eq!(pl.tag("#EXT-X-VERSION").as_deref(), Some("9"));
    assert_eq!(pl.tag("#EXT-X-MEDIA-SEQUENCE").as_deref(), Some("0"));
    assert_eq!(
        pl.tag("#EXT-X-PART-INF").as_deref(),
        Some("PART-TARGET=0.20000")
    );
    assert_eq!(
        pl.tag("#EXT-X-SERVER-CONTROL").as_deref(),
        Some("CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.60100,CAN-SKIP-UNTIL=24.00000")
    );
    assert_eq!(
        pl.tag("#EXT-X-MAP").as_deref(),
        Some("URI=\"init-0-0.mp4\"")
    );
    assert_eq!(
        pl.tag("#EXT-X-PROGRAM-DATE-TIME").as_deref(),
        Some("2025-11-22T00:00:00.000Z")
    );
    assert_eq!(pl.extinfs(), vec![1.0; 4]);
    // 20 parts of complete segments; the 101st frame is held back, so no open part yet.
    assert_eq!(pl.count("#EXT-X-PART:"), 20);
    assert_eq!(
        pl.count("#EXT-X-PART:DURATION=0.20000,URI=\"part-0-0.m4s\",INDEPENDENT=YES"),
        1
    );
    assert_eq!(
        pl.count("#EXT-X-PART:DURATION=0.20000,URI=\"part-0-1.m4s\"\n"),
        0
    );
    assert!(text.contains("#EXT-X-PART:DURATION=0.20000,URI=\"part-0-1.m4s\"\n"));
    assert!(text.ends_with(
        "#EXTINF:1.00000,\nseg-0-3.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-0-20.m4s\"\n"
    ));
    assert!(!text.contains("EXT-X-DISCONTINUITY\n"));
    // Every URI resolves except the hinted part, which is the next one to be made.
    let uris = pl.uris();
    let (hint, named) = uris.split_last().unwrap();
    for uri in named {
        let r = s
            .lookup(uri)
            .unwrap_or_else(|| panic!("{uri} does not resolve"));
        assert!(r.immutable && r.content_type == "video/mp4" && !r.is_empty());
    }
    assert!(s.lookup(hint).is_none());
    push_frames(&mut s, 101, 5, 25);
    assert!(s.lookup(hint).is_some(), "the hinted part appears");
}

#[test]
fn segments_and_parts_share_the_frames_payloads() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    let p = h264_params();
    let frames: Vec<_> = (0..30)
        .map(|i| frame(&p, i, i64::from(i) * F, i64::from(i) * F, i % 25 == 0))
        .collect();
    for f in &frames {
        s.push(f, T0_MS);
    }
    let seg = s.lookup("seg-0-0.m4s").unwrap();
    // 5 parts, each a header chunk then 5 payload chunks that are the frames' own buffers.
    assert_eq!(seg.chunks.len(), 30);
    for (k, f) in frames[..25].iter().enumerate() {
        let chunk = &seg.chunks[k / 5 * 6 + 1 + k % 5];
        assert_eq!(chunk.as_ptr(), f.data.as_ptr());
    }
    let part = s.lookup("part-0-1.m4s").unwrap();
    assert_eq!(part.chunks[1].as_ptr(), frames[5].data.as_ptr());
    let total: usize = (0..5)
        .map(|i| s.lookup(&format!("part-0-{i}.m4s")).unwrap().len())
        .sum();
    assert_eq!(seg.len(), total, "a segment is its parts concatenated");
}

#[test]
fn long_gops_stretch_segments_up_to_the_ceiling() {
    // 2 s GOP: segments of 2 s, all starting on keyframes.
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 50 * 4 + 1, 50);
    let complete: Vec<_> = s.segment_infos().into_iter().filter(|i| !i.open).collect();
    assert_eq!(complete.len(), 4);
    assert!(
        complete
            .iter()
            .all(|i| i.duration == 180_000 && i.starts_with_keyframe)
    );
    // 6 s GOP exceeds the 4 s ceiling: cut at 4 s on a non-keyframe, then at the keyframe.
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 150 * 2 + 1, 150);
    let complete: Vec<_> = s.segment_infos().into_iter().filter(|i| !i.open).collect();
    let shape: Vec<_> = complete
        .iter()
        .map(|i| (i.duration / 90, i.starts_with_keyframe, i.forced_cut))
        .collect();
    assert_eq!(
        shape,
        vec![
            (4000, true, false),
            (2000, false, true),
            (4000, true, false),
            (2000, false, true)
        ]
    );
    let pl = s.playlist(false);
    assert_eq!(
        Parsed::new(&pl).tag("#EXT-X-TARGETDURATION").as_deref(),
        Some("4")
    );
    assert!(!pl.contains("INDEPENDENT-SEGMENTS"));
}

#[test]
fn short_gops_group_into_segments_within_the_target() {
    // 0.6 s GOPs: waiting for the second keyframe would make 1.2 s, so each GOP is a segment.
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 15 * 6 + 1, 15);
    let complete: Vec<_> = s.segment_infos().into_iter().filter(|i| !i.open).collect();
    assert!(
        complete.iter().all(|i| i.duration == 54_000),
        "{complete:?}"
    );
    // 0.4 s GOPs: two per segment (0.8 s).
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 10 * 8 + 1, 10);
    let complete: Vec<_> = s.segment_infos().into_iter().filter(|i| !i.open).collect();
    assert!(
        complete.iter().all(|i| i.duration == 72_000),
        "{complete:?}"
    );
}

#[test]
fn window_slides_and_keeps_three_target_durations() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 25 * 30 + 1, 25);
    let pl = Parsed::new(&s.playlist(false));
    // 30 complete 1 s segments; the window keeps 12 s = 3 target durations, more than 7.
    assert_eq!(pl.extinfs().len(), 12);
    assert_eq!(pl.tag("#EXT-X-MEDIA-SEQUENCE").as_deref(), Some("18"));
    assert!(s.lookup("seg-0-17.m4s").is_none(), "slid out");
    assert!(s.lookup("seg-0-18.m4s").is_some());
    // Parts are listed only within 3 target durations (12 s) of the live edge: all here.
    assert_eq!(pl.count("#EXT-X-PART:"), 12 * 5);

    // A short ceiling lets the window shrink to the configured 7 segments.
    let mut s = Segmenter::new(SegmenterConfig {
        max_segment: Some(Duration::from_secs(1)),
        ..SegmenterConfig::default()
    });
    push_frames(&mut s, 0, 25 * 30 + 1, 25);
    let pl = Parsed::new(&s.playlist(false));
    assert_eq!(pl.tag("#EXT-X-TARGETDURATION").as_deref(), Some("1"));
    assert_eq!(pl.extinfs().len(), 7);
    assert_eq!(pl.tag("#EXT-X-MEDIA-SEQUENCE").as_deref(), Some("23"));
}

#[test]
fn codec_change_is_a_discontinuity_with_a_new_init_segment() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 40, 25);
    let (name0, init0) = s.init_segment().unwrap();
    assert_eq!(name0, "init-0-0.mp4");
    // The camera reconnects at 1080p with timestamps starting over.
    let p2 = h264_params_1080p();
    // A non-keyframe first: dropped until the keyframe.
    let out = s.push(&frame(&p2, 0, 0, 0, false), T0_MS + 5_000);
    assert!(out.discontinuity && out.dropped);
    for i in 0..30 {
        let dts = i64::from(i) * F;
        s.push(
            &frame(&p2, i, 1000 + dts, 1000 + dts, i == 0),
            T0_MS + 5_000 + dts / 90,
        );
    }
    assert_eq!(s.dropped_frames(), 1);
    let (name1, init1) = s.init_segment().unwrap();
    assert_eq!(name1, "init-0-1.mp4");
    assert_ne!(init0, init1);
    let text = s.playlist(false);
    let pl = Parsed::new(&text);
    assert_eq!(pl.count("#EXT-X-DISCONTINUITY\n"), 0);
    assert_eq!(
        pl.count("#EXT-X-DISCONTINUITY"),
        2,
        "the tag and the sequence header"
    );
    let disc_at = text.find("#EXT-X-DISCONTINUITY\n").unwrap();
    let map1_at = text.find("#EXT-X-MAP:URI=\"init-0-1.mp4\"").unwrap();
    assert!(disc_at < map1_at);
    assert!(text[disc_at..].contains("#EXT-X-PROGRAM-DATE-TIME:2025-11-22T00:00:05.000Z"));
    // Both init segments resolve while segments using them are in the window.
    assert_eq!(s.lookup("init-0-0.mp4").unwrap().chunks, vec![init0]);
    assert_eq!(s.lookup("init-0-1.mp4").unwrap().chunks, vec![init1]);
    // The segment before the change was closed at the change, 40 frames long.
    let infos = s.segment_infos();
    assert_eq!(infos[1].duration, 15 * 3600);
    assert!(infos[2].discontinuity && infos[2].starts_with_keyframe);
}

#[test]
fn timestamps_going_back_are_a_discontinuity_with_the_same_init() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 30, 25);
    push_frames(&mut s, 0, 30, 25); // dts restarts at 0
    let text = s.playlist(false);
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert_eq!(text.matches("#EXT-X-MAP").count(), 1);
    // A jump forward past the ceiling is one too.
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 30, 25);
    push_frames(&mut s, 500, 30, 25);
    assert_eq!(
        s.playlist(false).matches("#EXT-X-DISCONTINUITY\n").count(),
        1
    );
}

#[test]
fn blocking_reload_decisions() {
    use ReloadDecision::*;
    let mut s = Segmenter::new(SegmenterConfig::default());
    assert_eq!(s.blocking_reload(None, None), Ready);
    assert_eq!(
        s.blocking_reload(None, Some(0)),
        BadRequest("_HLS_part requires _HLS_msn")
    );
    assert_eq!(s.blocking_reload(Some(0), Some(0)), Wait);
    assert!(matches!(s.blocking_reload(Some(2), None), BadRequest(_)));
    // 2 complete segments (0, 1) and 2 parts of segment 2.
    push_frames(&mut s, 0, 61, 25);
    assert_eq!((s.next_msn(), s.next_part()), (2, 2));
    assert_eq!(s.blocking_reload(Some(1), None), Ready);
    assert_eq!(s.blocking_reload(Some(2), None), Wait);
    assert_eq!(s.blocking_reload(Some(2), Some(1)), Ready);
    assert_eq!(s.blocking_reload(Some(2), Some(2)), Wait);
    assert_eq!(s.blocking_reload(Some(3), Some(0)), Wait);
    assert_eq!(s.blocking_reload(Some(3), None), Wait);
    // Last complete is 1: msn 4 is more than two ahead.
    assert!(matches!(s.blocking_reload(Some(4), None), BadRequest(_)));
    assert!(matches!(
        s.blocking_reload(Some(u64::MAX), Some(u64::MAX)),
        BadRequest(_)
    ));
    // Past the last part of a complete segment: part 0 of the next one.
    assert_eq!(s.blocking_reload(Some(1), Some(5)), Ready);
    assert_eq!(s.blocking_reload(Some(1), Some(99)), Ready);
    // Long gone from the window: the playlist is newer.
    push_frames(&mut s, 61, 25 * 30, 25);
    assert_eq!(s.blocking_reload(Some(0), Some(3)), Ready);
    assert_eq!(s.blocking_reload(Some(0), None), Ready);
}

#[test]
fn delta_updates_skip_old_segments() {
    let config = SegmenterConfig {
        window: 40,
        ..SegmenterConfig::default()
    };
    let mut s = Segmenter::new(config);
    push_frames(&mut s, 0, 25 * 30 + 1, 25);
    let full = Parsed::new(&s.playlist(false));
    assert_eq!(full.extinfs().len(), 30);
    let delta_text = s.playlist(true);
    let delta = Parsed::new(&delta_text);
    // 30 s listed, CAN-SKIP-UNTIL 24 s: the 6 oldest segments are skipped.
    assert_eq!(
        delta.tag("#EXT-X-SKIP").as_deref(),
        Some("SKIPPED-SEGMENTS=6")
    );
    assert_eq!(delta.extinfs().len(), 24);
    assert_eq!(delta.tag("#EXT-X-MEDIA-SEQUENCE").as_deref(), Some("0"));
    assert!(delta_text.find("#EXT-X-SKIP").unwrap() < delta_text.find("#EXT-X-MAP").unwrap());
    // Without delta updates, skip is ignored and CAN-SKIP-UNTIL not offered.
    let mut s = Segmenter::new(SegmenterConfig {
        delta_updates: false,
        window: 40,
        ..SegmenterConfig::default()
    });
    push_frames(&mut s, 0, 25 * 30 + 1, 25);
    let text = s.playlist(true);
    assert!(!text.contains("SKIP"));
    assert_eq!(
        Parsed::new(&text).tag("#EXT-X-VERSION").as_deref(),
        Some("6")
    );
}

#[test]
fn hostile_and_foreign_names_resolve_to_nothing() {
    let mut s = Segmenter::new(SegmenterConfig {
        instance: 7,
        ..SegmenterConfig::default()
    });
    push_frames(&mut s, 0, 60, 25);
    assert!(s.lookup("seg-7-0.m4s").is_some());
    for name in [
        "seg-0-0.m4s",
        "seg-7-00.m4s",
        "../seg-7-0.m4s",
        "seg-7-0.m4s%00",
        "seg-7-99.m4s",
        "part-7-9999.m4s",
        "init-7-1.mp4",
        "index.m3u8",
        "",
    ] {
        assert!(s.lookup(name).is_none(), "{name}");
    }
    assert!(s.playlist(false).contains("\"init-7-0.mp4\""));
}

#[test]
fn query_is_appended_to_every_uri_when_safe() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 60, 25);
    let text = s.playlist_with_query(false, "token=abc.DEF-1");
    let pl = Parsed::new(&text);
    assert!(pl.uris().iter().all(|u| u.ends_with("?token=abc.DEF-1")));
    let text = s.playlist_with_query(false, "x=\"\nEVIL");
    assert!(!text.contains("EVIL") && !text.contains('?'));
}

#[test]
fn b_frames_keep_their_composition_offsets_and_flush_completes() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    let p = h264_params();
    // I P B B pattern in decode order; pts = dts + 2 frames for I/P, dts for B... roughly.
    for i in 0..50u32 {
        let dts = i64::from(i) * F;
        let pts = if i % 3 == 0 { dts + 2 * F } else { dts };
        s.push(&frame(&p, i, dts - 2 * F, pts - 2 * F, i % 25 == 0), T0_MS);
    }
    let out = s.flush();
    assert_eq!(out.segments_completed, 1);
    let infos = s.segment_infos();
    assert_eq!(infos.iter().map(|i| i.duration).sum::<u64>(), 50 * 3600);
    assert!(infos.iter().all(|i| !i.open));
    // After a flush the next frames continue after a discontinuity.
    push_frames(&mut s, 100, 30, 25);
    assert!(s.playlist(false).contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn template_splices_the_query_exactly_where_rendering_would() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    push_frames(&mut s, 0, 160, 25);
    for skip in [false, true] {
        let t = s.playlist_template(skip);
        assert_eq!(t.bare(), s.playlist(skip).as_bytes());
        let q = "hls_session=0123456789abcdef0123456789abcdef&token=a%20b";
        let spliced = t.with_query(q);
        assert_eq!(spliced, s.playlist_with_query(skip, q).as_bytes());
        let text = std::str::from_utf8(&spliced).unwrap();
        // Every URI (map, parts, segments, hint) carries the query, and nothing else does.
        let uris = text.matches(".m4s").count() + text.matches(".mp4").count();
        assert_eq!(t.uri_count(), uris);
        assert_eq!(text.matches(&format!("?{q}")).count(), uris);
        for name in ["init-0-0.mp4", "part-0-0.m4s", "seg-0-0.m4s"] {
            assert!(text.contains(&format!("{name}?{q}")), "{name} in {text}");
        }
        // Hostile or empty queries give the bare text.
        assert_eq!(t.with_query("x=\"\nEVIL"), t.bare());
        assert_eq!(t.with_query(""), t.bare());
    }
}

#[test]
fn frames_completed_accounts_for_every_accepted_frame_in_order() {
    let p = h264_params();
    let mut s = Segmenter::new(SegmenterConfig::default());
    let (mut accepted, mut completed, mut changes) = (0u64, 0u64, 0u32);
    for i in 0..130u32 {
        // Starts on a non-keyframe (dropped), then 1 s GOPs.
        let dts = i64::from(i) * F;
        let out = s.push(&frame(&p, i, dts, dts, i % 25 == 3), T0_MS + dts / 90);
        if !out.dropped {
            accepted += 1;
        }
        completed += u64::from(out.frames_completed);
        // Frames leave only with a completed part, and a part always takes some.
        assert_eq!(out.changed(), out.frames_completed > 0, "frame {i}");
        changes += out.parts_completed;
        // Never more complete than accepted; at most the open part and the held frame wait.
        assert!(completed <= accepted);
        assert!(
            accepted - completed <= 6,
            "frame {i}: {accepted} {completed}"
        );
    }
    let parts_before_flush: usize = s.segment_infos().iter().map(|i| i.part_frames.len()).sum();
    assert_eq!(changes as usize, parts_before_flush);
    let out = s.flush();
    completed += u64::from(out.frames_completed);
    assert_eq!(completed, accepted);
    let in_parts: usize = s
        .segment_infos()
        .iter()
        .flat_map(|i| i.part_frames.clone())
        .sum();
    // The window kept every segment here, so every accepted frame is in some part.
    assert_eq!(in_parts as u64, accepted);
}
