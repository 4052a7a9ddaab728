//! HlsStream's serving side without HTTP: wake-ups only on playlist changes, the rendered
//! playlist cache, and the part-delay histogram fed from the hub.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use media::hls::ReloadDecision;
use media::{CodecParams, Frame};

use super::{HlsStream, PartDelay};
use crate::cameras::{CameraSpec, SecretUrl, Transport};
use crate::hub::LiveStream;
use crate::ingest::{FrameStream, IngestError, Source, SourceSpec};
use crate::live::{Live, LiveSettings};
use crate::tasks::Tasks;

/// A camera that never answers: the runtime stays `starting`, so the HLS output is not
/// abandoned, and only the frames a test publishes reach the hub.
struct Silent;

impl Source for Silent {
    fn open(&self, _spec: &SourceSpec) -> BoxFuture<'static, Result<FrameStream, IngestError>> {
        Box::pin(futures::future::pending())
    }
}

/// Frame `n` of a 25 fps stream with a keyframe every second.
fn frame(params: &Arc<CodecParams>, n: i64) -> Frame {
    media::test_util::gop_frame(params, n as u32, 25)
}

struct Fixture {
    _streams: Arc<Live>,
    rt: LiveStream,
    hls: Arc<HlsStream>,
    delay: Arc<PartDelay>,
    params: Arc<CodecParams>,
}

fn fixture() -> Fixture {
    let settings = LiveSettings::default();
    let streams = Live::new(settings, Arc::new(Silent));
    let rt = streams.upsert(CameraSpec {
        camera_id: "1".into(),
        name: "1".into(),
        stream_path: "cam_1".into(),
        rtsp_url: SecretUrl::new("rtsp://127.0.0.1:9/none"),
        on_demand: false,
        record: false,
        transport: Transport::Auto,
        idle_timeout: None,
        record_limits: Default::default(),
        profiles: None,
        frame_interval: None,
    });
    let delay = Arc::new(PartDelay::default());
    let hls = HlsStream::start(
        rt.clone(),
        &super::HlsSettings::default(),
        delay.clone(),
        &Tasks::new(),
        |_| {},
    );
    Fixture {
        _streams: streams,
        rt,
        hls,
        delay,
        params: media::test_util::h264_params(),
    }
}

/// Parts completed so far (over the window, which keeps all of these short tests).
fn parts(hls: &HlsStream) -> usize {
    hls.segmenter()
        .segment_infos()
        .iter()
        .map(|s| s.part_durations.len())
        .sum()
}

#[tokio::test]
async fn waiters_wake_on_part_completion_not_on_every_frame() {
    let f = fixture();
    let mut rx = f.hls.watch_version();
    let mut arrivals = VecDeque::new();
    let (mut wakes, mut frames_without_change) = (0, 0);
    for n in 0..80 {
        let before = parts(&f.hls);
        f.hls.push(
            &frame(&f.params, n),
            Some(std::time::Instant::now()),
            &mut arrivals,
        );
        let completed = parts(&f.hls) > before;
        assert_eq!(rx.has_changed().unwrap(), completed, "frame {n}");
        if completed {
            rx.borrow_and_update();
            wakes += 1;
        } else {
            frames_without_change += 1;
        }
    }
    // 200 ms parts at 25 fps: one wake-up per five frames, not one per frame.
    assert_eq!(wakes, parts(&f.hls));
    assert!(wakes >= 14 && frames_without_change >= 4 * wakes - 5);
    assert_eq!(*rx.borrow(), wakes as u64);
}

#[tokio::test]
async fn a_blocked_reload_wakes_when_its_part_appears() {
    let f = fixture();
    let mut arrivals = VecDeque::new();
    for n in 0..30 {
        f.hls.push(&frame(&f.params, n), None, &mut arrivals);
    }
    // Segment 0 is complete (5 parts), segment 1 has its first part: ask for the next one.
    let (decision, _) = f.hls.reload_decision(Some(1), Some(1));
    assert_eq!(decision, ReloadDecision::Wait);
    let mut rx = f.hls.watch_version();
    let waiter = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_ok()
    });
    let mut n = 30;
    while f.hls.reload_decision(Some(1), Some(1)).0 == ReloadDecision::Wait {
        f.hls.push(&frame(&f.params, n), None, &mut arrivals);
        n += 1;
        assert!(n < 60, "part 1 of segment 1 never completed");
    }
    assert!(waiter.await.unwrap(), "the waiter was not woken");
}

#[tokio::test]
async fn playlist_is_rendered_once_per_version_and_variant() {
    let f = fixture();
    let mut arrivals = VecDeque::new();
    let mut n = 0;
    while n < 60 {
        f.hls.push(&frame(&f.params, n), None, &mut arrivals);
        n += 1;
    }
    let (decision, v1) = f.hls.reload_decision(Some(1), Some(0));
    assert_eq!(decision, ReloadDecision::Ready);
    let a = f.hls.playlist(false, v1);
    let b = f.hls.playlist(false, v1);
    assert!(Arc::ptr_eq(&a, &b), "same version: a cache hit");
    let delta = f.hls.playlist(true, v1);
    assert!(!Arc::ptr_eq(&a, &delta), "each variant has its own entry");
    assert_eq!(a.bare(), f.hls.segmenter().playlist(false).as_bytes());

    // Frames that complete no part leave the cache valid.
    let parts_before = parts(&f.hls);
    while parts(&f.hls) == parts_before {
        let before = f.hls.playlist(false, 0);
        f.hls.push(&frame(&f.params, n), None, &mut arrivals);
        n += 1;
        if parts(&f.hls) == parts_before {
            assert!(Arc::ptr_eq(&before, &f.hls.playlist(false, 0)));
        }
    }
    // A new part is a new version: rendered again, and it names the new part.
    let c = f.hls.playlist(false, 0);
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(c.bare(), f.hls.segmenter().playlist(false).as_bytes());
    let newest = format!("part-{}-", instance(&f.hls));
    let last_id = parts(&f.hls) - 1;
    let text = String::from_utf8(c.with_query("hls_session=ab").to_vec()).unwrap();
    assert!(text.contains(&format!("{newest}{last_id}.m4s?hls_session=ab")));
    // Asking for a version not reached yet renders the current state (never panics).
    let d = f.hls.playlist(false, u64::MAX);
    assert_eq!(d.bare(), c.bare());
}

fn instance(hls: &HlsStream) -> String {
    let (name, _) = hls.segmenter().init_segment().unwrap();
    name.split('-').nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn part_delay_counts_each_frame_from_the_hub_once_its_part_is_out() {
    let f = fixture();
    // Let the feeder subscribe first, so every frame comes with its arrival time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while f.rt.hub().consumer_count() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "feeder never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut rx = f.hls.watch_version();
    for n in 0..51 {
        f.rt.hub().publish(frame(&f.params, n));
    }
    // Frame 50 (a keyframe) closes segment 1: frames 0..=49 are in parts by then.
    while f.hls.segmenter().next_msn() < 2 {
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("the feeder stalled")
            .unwrap();
    }
    let s = f.delay.snapshot();
    assert_eq!(s.count, 50);
    assert!(s.sum_seconds >= 0.0);
}
