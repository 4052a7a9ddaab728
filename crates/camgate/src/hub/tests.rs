use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use media::{CodecParams, Frame};

use super::*;

fn params() -> Arc<CodecParams> {
    media::test_util::h264_params()
}

/// Frame `n` of a 25 fps stream with a keyframe every `gop` frames, 1000 bytes each.
fn frame(n: i64, gop: i64, p: &Arc<CodecParams>) -> Frame {
    let data = Bytes::from(vec![n as u8; 1000]);
    media::test_util::video_frame(data, n * 3600, n * 3600, n % gop == 0, p)
}

fn small(queue: usize) -> Hub {
    Hub::new(HubLimits {
        consumer_queue: queue,
        ..HubLimits::default()
    })
}

#[tokio::test(start_paused = true)]
async fn late_consumer_starts_at_latest_keyframe() {
    let hub = small(100);
    let p = params();
    for n in 0..13 {
        hub.publish(frame(n, 5, &p));
    }
    let mut c = hub.subscribe();
    let first = c.recv().await.unwrap();
    assert!(first.keyframe);
    assert_eq!(first.dts, 10 * 3600);
    assert_eq!(c.queued(), 2, "frames 11 and 12 follow the keyframe");
    // Shared, not copied: the consumer's frame points at the same bytes as a fresh subscribe.
    let mut c2 = hub.subscribe();
    let again = c2.recv().await.unwrap();
    assert_eq!(first.data.as_ptr(), again.data.as_ptr());
}

#[tokio::test(start_paused = true)]
async fn consumer_without_cached_keyframe_waits_for_one() {
    let hub = small(100);
    let p = params();
    let mut c = hub.subscribe();
    hub.publish(frame(1, 5, &p)); // not a keyframe: useless to a fresh decoder
    hub.publish(frame(5, 5, &p));
    assert_eq!(c.recv().await.unwrap().dts, 5 * 3600);
    assert_eq!(c.dropped(), 0, "nothing was lost before the first keyframe");
}

#[tokio::test(start_paused = true)]
async fn slow_consumer_skips_to_next_keyframe_and_others_get_everything() {
    let hub = small(4);
    let p = params();
    let mut slow = hub.subscribe();
    let mut fast = hub.subscribe();
    let mut fast_got = Vec::new();
    for n in 0..12 {
        hub.publish(frame(n, 5, &p));
        while let Some(f) = fast.try_recv() {
            fast_got.push(f.dts / 3600);
        }
    }
    assert_eq!(fast_got, (0..12).collect::<Vec<_>>());
    // slow got 0..3, overflowed on 4 (dropped 0..3 queued + 4), skipped until keyframe 5,
    // then 5..8 filled it, overflowed at 9, waited until keyframe 10: holds 10, 11.
    let mut slow_got = Vec::new();
    while let Some(f) = slow.try_recv() {
        slow_got.push(f.dts / 3600);
    }
    assert_eq!(slow_got, vec![10, 11]);
    assert_eq!(slow.take_skips(), 2);
    assert_eq!(slow.take_skips(), 0);
    assert_eq!(slow.dropped(), 10);
    assert_eq!(hub.stats().dropped_frames, 10);
    drop(slow);
    assert_eq!(hub.stats().dropped_frames, 10, "drops survive the consumer");
    assert_eq!(hub.consumer_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn explicit_skip_resumes_at_next_keyframe() {
    let hub = small(100);
    let p = params();
    let mut c = hub.subscribe();
    for n in 0..3 {
        hub.publish(frame(n, 5, &p));
    }
    c.skip_to_next_keyframe();
    for n in 3..6 {
        hub.publish(frame(n, 5, &p));
    }
    assert_eq!(c.recv().await.unwrap().dts, 5 * 3600);
    assert_eq!(c.take_skips(), 1);
    assert_eq!(c.dropped(), 5);
}

#[tokio::test(start_paused = true)]
async fn close_ends_consumers_after_their_queue() {
    let hub = small(100);
    let p = params();
    let mut c = hub.subscribe();
    hub.publish(frame(0, 5, &p));
    let waiter = tokio::spawn(async move {
        let mut n = 0;
        while c.recv().await.is_some() {
            n += 1;
        }
        n
    });
    tokio::task::yield_now().await;
    hub.publish(frame(1, 5, &p));
    hub.close();
    assert_eq!(waiter.await.unwrap(), 2);
    assert!(!hub.has_keyframe(), "closing releases the cache");
    hub.publish(frame(5, 5, &p));
    assert!(!hub.has_keyframe(), "a closed hub ignores frames");
}

#[tokio::test(start_paused = true)]
async fn stats_follow_the_stream_and_decay() {
    let hub = small(100);
    let p = params();
    for n in 0..100 {
        hub.publish(frame(n, 25, &p));
        tokio::time::advance(Duration::from_millis(40)).await;
    }
    let s = hub.stats();
    assert_eq!(s.frames_received, 100);
    assert_eq!(s.bytes_received, 100_000);
    assert!((s.fps - 25.0).abs() < 1.0, "fps {}", s.fps);
    // 25 frames/s * 1000 bytes * 8 = 200 kbit/s
    assert!(
        (s.bitrate_kbps - 200.0).abs() < 10.0,
        "kbps {}",
        s.bitrate_kbps
    );
    assert_eq!(s.uptime_seconds, 4);
    assert_eq!(s.codec(), Some("h264"));
    assert_eq!(s.resolution().as_deref(), Some("320x240"));
    assert!(s.last_frame_at.is_some());
    tokio::time::advance(Duration::from_secs(3)).await;
    let s = hub.stats();
    assert_eq!(s.fps, 0.0);
    assert_eq!(s.bitrate_kbps, 0.0);
    hub.begin_session();
    assert_eq!(hub.stats().uptime_seconds, 0);
}

#[tokio::test(start_paused = true)]
async fn gop_cache_is_bounded() {
    let hub = Hub::new(HubLimits {
        consumer_queue: 100,
        gop_max_frames: 10,
        gop_max_bytes: 1 << 20,
    });
    let p = params();
    for n in 0..20 {
        hub.publish(frame(n, 1000, &p));
    }
    assert!(!hub.has_keyframe(), "an over-long GOP is not cached");
    hub.publish(frame(1000, 1000, &p));
    assert!(hub.has_keyframe());
}

#[tokio::test(start_paused = true)]
async fn audio_rides_in_the_gop_cache_without_shortening_it() {
    let hub = Hub::new(HubLimits {
        consumer_queue: 100,
        gop_max_frames: 10,
        gop_max_bytes: 1 << 20,
    });
    let (p, a) = (params(), media::test_util::aac_params());
    let audio = |n: i64| media::test_util::audio_frame(&a, n as u32, n * 1920);
    hub.publish(audio(0)); // before any keyframe: nothing to start a consumer at
    assert!(!hub.has_keyframe());
    for n in 0..9 {
        hub.publish(frame(n, 1000, &p));
        hub.publish(audio(n + 1));
    }
    // 9 video frames and 9 audio frames: within the 10-frame GOP limit, which is video's.
    let gop = hub.cached_gop();
    assert_eq!(gop.len(), 18);
    assert!(gop[0].keyframe && gop[0].video().is_some());
    assert_eq!(gop.iter().filter(|f| f.audio().is_some()).count(), 9);
    assert_eq!(hub.audio_params().as_deref(), Some(&*a));
    let c = hub.subscribe();
    assert_eq!(
        c.queued(),
        18,
        "a new consumer gets the audio with the video"
    );
    // Video stopped, audio goes on: bounded at four times the frame limit.
    for n in 10..40 {
        hub.publish(audio(n));
    }
    assert!(
        !hub.has_keyframe(),
        "audio alone cannot grow the cache without bound"
    );
    // The video's statistics are not the audio's.
    assert_eq!(hub.stats().frames_received, 9);
}
