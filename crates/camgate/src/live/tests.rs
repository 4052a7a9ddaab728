//! Lifecycle tests with a scripted source and tokio's paused clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use media::{CodecParams, Frame};
use tokio::sync::mpsc;

use super::*;
use crate::cameras::{SecretUrl, Transport};
use crate::hub::Protocol;
use crate::ingest::{FailureKind, FrameStream, IngestError, Source, SourceSpec, Stage};

/// What the next `open` does.
enum Script {
    /// Opens and sends a frame every 40 ms, forever (until dropped).
    Stream,
    /// Opens, sends `n` frames, then goes silent with the session still open.
    StallAfter(usize),
    Fail(FailureKind),
}

#[derive(Default)]
struct FakeSource {
    script: Mutex<VecDeque<Script>>,
    opens: AtomicUsize,
    /// Sessions currently open (streams not yet dropped).
    open_now: Arc<AtomicUsize>,
}

impl FakeSource {
    fn then(&self, s: Script) -> &Self {
        self.script.lock().unwrap().push_back(s);
        self
    }
}

struct OpenGuard(Arc<AtomicUsize>);
impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn params() -> Arc<CodecParams> {
    media::test_util::h264_params()
}

impl Source for Arc<FakeSource> {
    fn open(&self, spec: &SourceSpec) -> BoxFuture<'static, Result<FrameStream, IngestError>> {
        let this = self.clone();
        let id = spec.camera_id.clone();
        Box::pin(async move {
            this.opens.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await; // DESCRIBE..PLAY
            let step = this
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Script::Stream);
            let limit = match step {
                Script::Fail(kind) => {
                    return Err(IngestError::new(kind, Stage::Describe, &id, "scripted"));
                }
                Script::Stream => usize::MAX,
                Script::StallAfter(n) => n,
            };
            this.open_now.fetch_add(1, Ordering::SeqCst);
            let guard = OpenGuard(this.open_now.clone());
            let (tx, rx) = mpsc::channel(4);
            let p = params();
            tokio::spawn(async move {
                for n in 0..limit {
                    let f = media::test_util::video_frame(
                        Bytes::from_static(&[0, 0, 0, 1, 0x65]),
                        n as i64 * 3600,
                        n as i64 * 3600,
                        n % 25 == 0,
                        &p,
                    );
                    if tx.send(Ok(f)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
                // Silent but open: keep the sender alive until the session is dropped.
                tx.closed().await;
            });
            let s = tokio_stream_from(rx).map(move |item| {
                let _keep = &guard;
                item
            });
            Ok(s.boxed() as FrameStream)
        })
    }
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Frame, IngestError>>,
) -> impl futures::Stream<Item = Result<Frame, IngestError>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn settings() -> LiveSettings {
    LiveSettings {
        idle_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(1),
        reconnect_min: Duration::from_secs(1),
        reconnect_max: Duration::from_secs(4),
        ..LiveSettings::default()
    }
}

fn spec(on_demand: bool) -> CameraSpec {
    CameraSpec {
        camera_id: "1".into(),
        name: "1".into(),
        stream_path: "cam_1".into(),
        rtsp_url: SecretUrl::new("rtsp://u:secret@cam/s"),
        on_demand,
        record: false,
        transport: Transport::Auto,
        idle_timeout: None,
        record_limits: Default::default(),
        profiles: None,
        frame_interval: None,
    }
}

async fn wait_state(rt: &LiveStream, want: StreamState) {
    let mut rx = rt.watch_state();
    tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|s| s.state == want))
        .await
        .unwrap_or_else(|_| panic!("state never became {want:?}; is {:?}", rt.state()))
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn on_demand_connects_for_a_viewer_and_disconnects_after_idle_timeout() {
    let src = Arc::new(FakeSource::default());
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let rt = streams.upsert(spec(true));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rt.state().state, StreamState::Idle);
    assert_eq!(
        src.opens.load(Ordering::SeqCst),
        0,
        "nobody watches: no connection"
    );

    let viewer = rt.join(Protocol::Hls).unwrap();
    wait_state(&rt, StreamState::Live).await;
    let mut c = rt.hub().subscribe();
    assert!(c.recv().await.unwrap().keyframe);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = rt.status();
    assert!(st.online);
    assert!((st.fps - 25.0).abs() < 2.0, "{st:?}");
    assert_eq!(st.viewers, 1);
    assert_eq!(st.codec.as_deref(), Some("h264"));
    assert_eq!(st.resolution.as_deref(), Some("320x240"));
    assert!(st.last_frame_at.is_some());
    assert_eq!(streams.active_streams(), 1);

    drop(viewer);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rt.state().state,
        StreamState::Live,
        "still within idle_timeout"
    );
    // A viewer coming back within the idle window keeps the same session.
    let again = rt.join(Protocol::Mse).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(src.opens.load(Ordering::SeqCst), 1);
    drop(again);
    wait_state(&rt, StreamState::Idle).await;
    tokio::task::yield_now().await;
    assert_eq!(src.open_now.load(Ordering::SeqCst), 0, "session closed");
    assert_eq!(streams.active_streams(), 0);
    assert!(!rt.hub().has_keyframe(), "idle releases the GOP cache");
}

#[tokio::test(start_paused = true)]
async fn always_on_connects_without_viewers_and_many_viewers_share_one_session() {
    let src = Arc::new(FakeSource::default());
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let rt = streams.upsert(spec(false));
    wait_state(&rt, StreamState::Live).await;
    let guards: Vec<_> = (0..10).map(|_| rt.join(Protocol::Hls).unwrap()).collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(src.opens.load(Ordering::SeqCst), 1);
    assert_eq!(src.open_now.load(Ordering::SeqCst), 1);
    assert_eq!(streams.total_viewers(), 10);
    drop(guards);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        rt.state().state,
        StreamState::Live,
        "always-on ignores idleness"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_are_classified_and_retried_until_live() {
    let src = Arc::new(FakeSource::default());
    src.then(Script::Fail(FailureKind::Unreachable))
        .then(Script::Fail(FailureKind::Unreachable));
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let rt = streams.upsert(spec(false));
    wait_state(&rt, StreamState::Unreachable).await;
    assert!(
        rt.state()
            .last_error
            .unwrap()
            .contains("camera 1: DESCRIBE failed")
    );
    wait_state(&rt, StreamState::Live).await;
    assert_eq!(src.opens.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_live_camera_that_fails_is_reconnecting_then_live() {
    let src = Arc::new(FakeSource::default());
    src.then(Script::StallAfter(30))
        .then(Script::Fail(FailureKind::Unreachable));
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let rt = streams.upsert(spec(false));
    wait_state(&rt, StreamState::Live).await;
    wait_state(&rt, StreamState::Reconnecting).await;
    let err = rt.state().last_error.unwrap();
    assert!(err.contains("stall"), "{err}");
    assert!(err.contains("data failed"), "{err}");
    wait_state(&rt, StreamState::Live).await;
    assert_eq!(src.opens.load(Ordering::SeqCst), 3);
    assert_eq!(
        src.open_now.load(Ordering::SeqCst),
        1,
        "the stalled session was closed"
    );
    // The timeline continues across the reconnect.
    let mut c = rt.hub().subscribe();
    let a = c.recv().await.unwrap().dts;
    let b = c.recv().await.unwrap().dts;
    assert!(b > a && a > 29 * 3600, "{a} {b}");
}

#[tokio::test(start_paused = true)]
async fn wrong_credentials_are_unauthorized_and_retried_slowly() {
    let src = Arc::new(FakeSource::default());
    for _ in 0..10 {
        src.then(Script::Fail(FailureKind::Unauthorized));
    }
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let rt = streams.upsert(spec(false));
    wait_state(&rt, StreamState::Unauthorized).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // reconnect_max 4 s with jitter in its upper half: at most 1 + 10 / 2 attempts.
    let n = src.opens.load(Ordering::SeqCst);
    assert!((2..=6).contains(&n), "{n} attempts in 10 s");
}

#[tokio::test(start_paused = true)]
async fn upsert_restarts_only_on_change_and_remove_stops() {
    let src = Arc::new(FakeSource::default());
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let rt = streams.upsert(spec(false));
    wait_state(&rt, StreamState::Live).await;
    let mut consumer = rt.hub().subscribe();
    streams.upsert(spec(false));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        src.opens.load(Ordering::SeqCst),
        1,
        "same settings: untouched"
    );
    let mut changed = spec(false);
    changed.rtsp_url = SecretUrl::new("rtsp://u:secret@cam/other");
    let rt2 = streams.upsert(changed);
    assert!(rt.same(&rt2));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(src.opens.load(Ordering::SeqCst), 2);
    assert_eq!(src.open_now.load(Ordering::SeqCst), 1);
    assert!(streams.by_path("cam_1").is_some());
    assert!(
        streams.by_path("1").is_some(),
        "camera_id is an alias of the path"
    );
    assert!(streams.remove("1"));
    assert!(!streams.remove("1"));
    tokio::task::yield_now().await;
    assert_eq!(src.open_now.load(Ordering::SeqCst), 0);
    // The consumer sees the end of the stream.
    while consumer.recv().await.is_some() {}
    assert!(streams.by_path("cam_1").is_none());
}

#[tokio::test(start_paused = true)]
async fn per_camera_idle_timeout_overrides_default() {
    let src = Arc::new(FakeSource::default());
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let mut s = spec(true);
    s.idle_timeout = Some(Duration::from_secs(10));
    let rt = streams.upsert(s);
    let v = rt.join(Protocol::Hls).unwrap();
    wait_state(&rt, StreamState::Live).await;
    drop(v);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rt.state().state, StreamState::Live);
    wait_state(&rt, StreamState::Idle).await;
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_session_now_and_the_next_viewer_starts_it_again() {
    let src = Arc::new(FakeSource::default());
    let streams = Live::new(settings(), Arc::new(src.clone()));
    let rt = streams.upsert(spec(true));
    let viewer = rt.join(Protocol::Hls).unwrap();
    wait_state(&rt, StreamState::Live).await;
    let mut consumer = rt.hub().subscribe();

    assert!(streams.stop("1"));
    tokio::task::yield_now().await;
    // Now, although a viewer still holds the old stream: its session and its hub end.
    assert_eq!(src.open_now.load(Ordering::SeqCst), 0, "session closed");
    while consumer.recv().await.is_some() {}
    drop(viewer);
    // Still provisioned, idle, under the same path and id.
    let fresh = streams.get("1").expect("the camera stays");
    assert!(!fresh.same(&rt));
    assert!(streams.by_path("cam_1").is_some_and(|s| s.same(&fresh)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fresh.state().state, StreamState::Idle);
    assert_eq!(src.opens.load(Ordering::SeqCst), 1);
    // The next viewer starts a new session.
    let _next = fresh.join(Protocol::Hls).unwrap();
    wait_state(&fresh, StreamState::Live).await;
    assert_eq!(src.opens.load(Ordering::SeqCst), 2);
    assert!(!streams.stop("unknown"));
}
