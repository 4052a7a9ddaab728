//! The live layer without HTTP (`camgate::live::Live` driven directly): the supervisors over
//! the real RTSP client, a camera spec, short settings, waiting for a stream state or a frame.

use std::sync::Arc;
use std::time::Duration;

use camgate::cameras::{CameraSpec, SecretUrl, StreamState};
use camgate::hub::{Consumer, LiveStream};
use camgate::ingest::Transport;
use camgate::ingest::rtsp::RtspSource;
use camgate::live::{Live, LiveSettings};

/// Short timeouts so faults are noticed and recovered within a test's patience.
pub fn settings() -> LiveSettings {
    LiveSettings {
        idle_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(2),
        reconnect_min: Duration::from_millis(500),
        reconnect_max: Duration::from_secs(2),
        ..LiveSettings::default()
    }
}

/// The supervisors over the real RTSP client.
pub fn live(settings: LiveSettings) -> Arc<Live> {
    Live::new(settings, Arc::new(Arc::new(RtspSource::default())))
}

/// Camera `id` at `url`, served as `cam_{id}`.
pub fn spec(id: &str, url: String, on_demand: bool, transport: Transport) -> CameraSpec {
    CameraSpec {
        camera_id: id.into(),
        name: id.into(),
        stream_path: format!("cam_{id}"),
        rtsp_url: SecretUrl::new(url),
        on_demand,
        record: false,
        transport,
        idle_timeout: None,
        record_limits: Default::default(),
        profiles: None,
        frame_interval: None,
    }
}

/// Waits until the stream is in state `want`, or panics after `within` with the state it is in.
pub async fn wait_for(rt: &LiveStream, want: StreamState, within: Duration) {
    let mut rx = rt.watch_state();
    if tokio::time::timeout(within, rx.wait_for(|s| s.state == want))
        .await
        .is_err()
    {
        panic!(
            "{want:?} not reached within {within:?}; state {:?}",
            rt.state()
        );
    }
}

/// The consumer's next frame, within 10 s (frames keep coming while a camera is live).
pub async fn next_frame(consumer: &mut Consumer) -> media::Frame {
    tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .expect("frames keep coming")
        .expect("hub open")
}
