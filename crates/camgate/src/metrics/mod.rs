//! `GET /metrics`: Prometheus text exposition (format 0.0.4): the registry, the live totals,
//! each camera's figures from its runtime and hub (labels `camera` and `stream`), HLS
//! serving, the event feeds, NATS and the process. Names follow Prometheus conventions (unit
//! suffixes, `_total` counters). The full list is in docs/events.md.
//!
//! It owns no counter (every figure is read where it is kept: the store, the live path, the
//! hubs, the event counters, HLS's part delay, /proc) and serves no other route.

use std::fmt::{Display, Write};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

pub mod process;

use std::sync::Arc;

use crate::cameras::{CameraStatus, RecordingBoard, RecordingState, StreamState};
use crate::events::counters::WsEndpoint;
use crate::events::{EventBus, HlsRequestKind, NatsStatus};
use crate::hls::Hls;
use crate::http::{AppError, RouteDoc, Routes};
use crate::hub::ByProtocol;
use crate::live::Live;
use crate::snapshot::Snapshots;
use crate::stats::Totals;
use crate::webrtc::WebRtc;

/// What `/metrics` reads. It owns no counter: every figure is read from where it is kept.
#[derive(Clone)]
pub struct MetricsState {
    pub totals: Totals,
    pub live: Arc<Live>,
    pub hls: Arc<Hls>,
    pub webrtc: Arc<WebRtc>,
    pub bus: EventBus,
    /// Each recorded stream's recording state (written by `record/`).
    pub recordings: RecordingBoard,
    /// Snapshot and frame-message figures (kept by `snapshot/`).
    pub snapshots: Arc<Snapshots>,
}

pub fn router(state: MetricsState) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get("/metrics", "Prometheus text exposition", metrics)
        .with_state(state)
}

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<MetricsState>) -> Result<impl IntoResponse, AppError> {
    let cameras = state.totals.db.cameras().await?;
    // One reading per camera: status (state, rates) and hub counters from the same runtime.
    // A camera without a runtime has no source and no viewers, which is what `idle` says.
    let rows: Vec<CameraRow> = cameras
        .iter()
        .map(|c| match state.live.get(&c.spec.camera_id) {
            Some(rt) => {
                let hub = rt.hub().stats();
                CameraRow {
                    status: rt.status(),
                    by_protocol: rt.viewer_counts(),
                    frames: hub.frames_received,
                    bytes: hub.bytes_received,
                    reconnects: rt.reconnects(),
                }
            }
            None => CameraRow {
                status: CameraStatus::idle(c),
                by_protocol: ByProtocol::default(),
                frames: 0,
                bytes: 0,
                reconnects: 0,
            },
        })
        .collect();
    // The totals are /stats's own numbers, so the two always agree.
    let stats = state.totals.collect().await?;

    let mut m = Exposition::default();
    m.family("camgate_build_info", "Always 1; the version is the label.");
    m.sample(
        "camgate_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    m.gauge(
        "camgate_uptime_seconds",
        "Seconds since the server started.",
        state.totals.uptime_seconds(),
    );
    m.gauge("camgate_cameras", "Cameras in the registry.", stats.cameras);
    m.gauge(
        "camgate_cameras_online",
        "Cameras currently receiving video.",
        stats.cameras_online,
    );
    m.gauge(
        "camgate_active_streams",
        "Cameras whose video is flowing.",
        stats.active_streams,
    );
    let total = stats.viewers_by_protocol;
    m.family(
        "camgate_viewers",
        "Players watching, all cameras, by protocol.",
    );
    for (p, n) in protocols(&total) {
        m.sample("camgate_viewers", &[("protocol", p)], n);
    }
    m.counter(
        "camgate_sent_bytes_total",
        "Media bytes sent to players (all protocols).",
        stats.total_bytes_sent,
    );
    m.counter(
        "camgate_received_bytes_total",
        "Media bytes received from the cameras configured now.",
        stats.total_bytes_received,
    );

    // Per camera.
    let per_camera: [PerCamera; 9] = [
        (
            "camgate_camera_up",
            "gauge",
            "1 while the camera delivers video.",
            |r| u8::from(r.status.online).to_string(),
        ),
        (
            "camgate_camera_fps",
            "gauge",
            "Frames per second over the last seconds.",
            |r| r.status.fps.to_string(),
        ),
        (
            "camgate_camera_bitrate_kbps",
            "gauge",
            "Received video bitrate, kilobits per second.",
            |r| r.status.bitrate_kbps.to_string(),
        ),
        (
            "camgate_camera_received_bytes_total",
            "counter",
            "Video bytes received from the camera.",
            |r| r.bytes.to_string(),
        ),
        (
            "camgate_camera_frames_total",
            "counter",
            "Frames received from the camera.",
            |r| r.frames.to_string(),
        ),
        (
            "camgate_camera_dropped_frames_total",
            "counter",
            "Frames consumers skipped because they fell behind.",
            |r| r.status.dropped_frames.to_string(),
        ),
        (
            "camgate_camera_reconnects_total",
            "counter",
            "Source failures, each followed by a reconnect attempt.",
            |r| r.reconnects.to_string(),
        ),
        (
            "camgate_camera_uptime_seconds",
            "gauge",
            "Seconds since the current session's first frame (0 when not live).",
            |r| r.status.uptime_seconds.to_string(),
        ),
        (
            "camgate_camera_viewers",
            "gauge",
            "Players watching the camera, all protocols.",
            |r| r.status.viewers.to_string(),
        ),
    ];
    for (name, kind, help, value) in per_camera {
        m.family_of(name, help, kind);
        for r in &rows {
            m.sample(name, &labels(&r.status), value(r));
        }
    }
    m.family(
        "camgate_camera_viewers_by_protocol",
        "Players watching the camera, by protocol.",
    );
    for r in &rows {
        for (p, n) in protocols(&r.by_protocol) {
            let mut l = labels(&r.status).to_vec();
            l.push(("protocol", p));
            m.sample("camgate_camera_viewers_by_protocol", &l, n);
        }
    }
    m.family(
        "camgate_camera_state",
        "1 for the camera's current state, 0 for the others (label `state`).",
    );
    for r in &rows {
        for s in StreamState::ALL {
            let mut l = labels(&r.status).to_vec();
            l.push(("state", s.as_str()));
            m.sample("camgate_camera_state", &l, u8::from(r.status.state == s));
        }
    }

    // Recording, per recorded stream (label `stream`).
    let recorded = state.recordings.all();
    m.family(
        "camgate_recording_state",
        "1 for the stream's recording state, 0 for the others (label `state`).",
    );
    for (path, r) in &recorded {
        for s in [
            RecordingState::Waiting,
            RecordingState::Recording,
            RecordingState::DiskFull,
            RecordingState::Error,
        ] {
            m.sample(
                "camgate_recording_state",
                &[("stream", path.as_str()), ("state", s.as_str())],
                u8::from(r.state == s),
            );
        }
    }
    m.family(
        "camgate_recording_bytes",
        "Bytes of the stream's recordings on disk.",
    );
    for (path, r) in &recorded {
        m.sample(
            "camgate_recording_bytes",
            &[("stream", path.as_str())],
            r.bytes,
        );
    }
    m.family_of(
        "camgate_recording_removed_files_total",
        "Recording files removed by retention or DELETE since start.",
        "counter",
    );
    for (path, r) in &recorded {
        m.sample(
            "camgate_recording_removed_files_total",
            &[("stream", path.as_str())],
            r.removed_files,
        );
    }

    // HLS serving.
    let metrics = &state.totals.metrics;
    m.family_of(
        "camgate_hls_requests_total",
        "HLS requests by what they asked for.",
        "counter",
    );
    for kind in HlsRequestKind::ALL {
        m.sample(
            "camgate_hls_requests_total",
            &[("kind", kind.as_str())],
            metrics.hls_requests(kind),
        );
    }
    m.counter(
        "camgate_hls_blocking_reload_waits_total",
        "Playlist requests that waited for a part to appear (LL-HLS blocking reload).",
        metrics.hls_blocking_reload_waits(),
    );
    m.counter(
        "camgate_hls_sent_bytes_total",
        "Bytes of HLS playlists, init segments, segments and parts sent.",
        metrics.hls_sent_bytes(),
    );
    let delay = state.hls.part_delay().snapshot();
    m.family_of(
        "camgate_hls_part_delay_seconds",
        "Frame arrival at the hub -> the LL-HLS part holding it available to players, all cameras.",
        "histogram",
    );
    for (le, n) in &delay.buckets {
        m.sample(
            "camgate_hls_part_delay_seconds_bucket",
            &[("le", &le.to_string())],
            n,
        );
    }
    m.sample(
        "camgate_hls_part_delay_seconds_bucket",
        &[("le", "+Inf")],
        delay.count,
    );
    m.sample("camgate_hls_part_delay_seconds_sum", &[], delay.sum_seconds);
    m.sample("camgate_hls_part_delay_seconds_count", &[], delay.count);

    // WebRTC (WHEP) sessions: counters over every session since start, gauges over live ones.
    let w = state.webrtc.stats();
    m.gauge(
        "camgate_webrtc_sessions",
        "WHEP sessions alive now.",
        w.sessions,
    );
    let webrtc_counters = [
        (
            "camgate_webrtc_sessions_started_total",
            "WHEP sessions started.",
            w.sessions_started,
        ),
        (
            "camgate_webrtc_sent_bytes_total",
            "Bytes of the datagrams sent to WebRTC peers (SRTP, SRTCP, DTLS, STUN).",
            w.bytes_sent,
        ),
        (
            "camgate_webrtc_sent_datagrams_total",
            "Datagrams sent to WebRTC peers.",
            w.packets_sent,
        ),
        (
            "camgate_webrtc_nacks_total",
            "NACKs received from WebRTC peers (retransmission requests).",
            w.nacks,
        ),
        (
            "camgate_webrtc_plis_total",
            "PLIs received from WebRTC peers, answered from the cached keyframe.",
            w.plis,
        ),
        (
            "camgate_webrtc_firs_total",
            "FIRs received from WebRTC peers.",
            w.firs,
        ),
        (
            "camgate_webrtc_keyframe_skips_total",
            "Times a session that fell behind skipped to the next keyframe.",
            w.skips,
        ),
        (
            "camgate_webrtc_unrouted_datagrams_total",
            "Datagrams on the WebRTC socket that no session claimed.",
            w.unrouted_datagrams,
        ),
    ];
    for (name, help, value) in webrtc_counters {
        m.counter(name, help, value);
    }
    m.gauge(
        "camgate_webrtc_max_rtt_seconds",
        "The highest round-trip time a live WebRTC session reports.",
        w.max_rtt_micros as f64 / 1e6,
    );

    snapshot_metrics(&mut m, &state.snapshots);

    // Event feeds.
    m.family(
        "camgate_websocket_clients",
        "Connected WebSocket event clients.",
    );
    for (endpoint, e) in [
        ("events", WsEndpoint::Events),
        ("dashboard", WsEndpoint::Dashboard),
    ] {
        m.sample(
            "camgate_websocket_clients",
            &[("endpoint", endpoint)],
            metrics.ws_clients(e),
        );
    }
    m.counter(
        "camgate_websocket_messages_sent_total",
        "Messages sent to WebSocket event clients.",
        metrics.ws_messages_sent(),
    );
    let bus = &state.bus;
    m.counter(
        "camgate_events_published_total",
        "Events published on the in-process bus.",
        bus.published_total(),
    );
    m.counter(
        "camgate_events_lagged_total",
        "Events lost by subscribers that fell behind (each told with a lagged message).",
        bus.lagged_total(),
    );

    // NATS.
    let nats = metrics.nats_status();
    m.gauge(
        "camgate_nats_enabled",
        "1 when [nats] url is set.",
        u8::from(nats != NatsStatus::Disabled),
    );
    m.gauge(
        "camgate_nats_up",
        "1 while connected to NATS.",
        u8::from(nats == NatsStatus::Connected),
    );
    let counts = metrics.nats_counts();
    m.counter(
        "camgate_nats_published_messages_total",
        "Messages published to NATS.",
        counts.published,
    );
    m.counter(
        "camgate_nats_skipped_messages_total",
        "Messages not published because NATS was unreachable or slow (current state is republished on reconnect).",
        counts.skipped,
    );
    m.counter(
        "camgate_nats_errors_total",
        "NATS connection and publish errors.",
        counts.errors,
    );
    m.counter(
        "camgate_nats_connects_total",
        "Successful connections to NATS (the first and every reconnect).",
        counts.connects,
    );

    // The process (Linux /proc; absent elsewhere).
    let p = process::read();
    if let Some(v) = p.cpu_seconds {
        m.counter(
            "process_cpu_seconds_total",
            "User and system CPU time spent, seconds.",
            v,
        );
    }
    if let Some(v) = p.resident_memory_bytes {
        m.gauge(
            "process_resident_memory_bytes",
            "Resident memory size, bytes.",
            v,
        );
    }
    if let Some(v) = p.virtual_memory_bytes {
        m.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size, bytes.",
            v,
        );
    }
    if let Some(v) = p.open_fds {
        m.gauge("process_open_fds", "Open file descriptors.", v);
    }
    if let Some(v) = p.max_fds {
        m.gauge("process_max_fds", "Limit of open file descriptors.", v);
    }
    if let Some(v) = p.threads {
        m.gauge("process_threads", "OS threads.", v);
    }
    if let Some(v) = p.start_time_seconds {
        m.gauge(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, seconds.",
            v,
        );
    }
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], m.out))
}

/// A per-camera family: name, type, help, and how to read the value.
type PerCamera = (
    &'static str,
    &'static str,
    &'static str,
    fn(&CameraRow) -> String,
);

/// What `/metrics` shows of one camera, read once per scrape.
struct CameraRow {
    status: CameraStatus,
    by_protocol: ByProtocol,
    frames: u64,
    bytes: u64,
    reconnects: u64,
}

fn protocols(b: &ByProtocol) -> [(&'static str, u32); 4] {
    [
        ("hls", b.hls),
        ("webrtc", b.webrtc),
        ("mse", b.mse),
        ("rtsp", b.rtsp),
    ]
}

fn labels(s: &CameraStatus) -> [(&'static str, &str); 2] {
    [("camera", &s.camera_id), ("stream", &s.stream_path)]
}

/// Builds the text format. Label values here are camera ids, stream paths and fixed words,
/// all `[A-Za-z0-9_.-]`, so they need no escaping; `sample` escapes anyway to stay safe if
/// that ever changes.
/// Snapshots (`snapshot.jpg`, recorded `frame.jpg`, NATS frame URLs): requests, cache hits,
/// decoder runs and their time, errors by code, and the frames kept for frame messages.
fn snapshot_metrics(m: &mut Exposition, snaps: &Snapshots) {
    let s = snaps.metrics();
    let st = &s.stats;
    for (name, help, value) in [
        (
            "camgate_snapshot_requests_total",
            "Requests to the snapshot routes (snapshot.jpg, recordings frame.jpg, frame URLs).",
            st.requests,
        ),
        (
            "camgate_snapshot_cache_hits_total",
            "Snapshot requests answered from a cached picture or JPEG, without decoding.",
            st.cache_hits,
        ),
        (
            "camgate_snapshot_decodes_total",
            "Decoder runs (one request's decode, however many frames it fed).",
            st.decodes,
        ),
        (
            "camgate_snapshot_frames_decoded_total",
            "Frames fed to snapshot decoders.",
            st.frames_decoded,
        ),
        (
            "camgate_snapshot_cold_starts_total",
            "Snapshot requests that started an idle camera and waited for its first keyframe.",
            st.cold_starts,
        ),
        (
            "camgate_snapshot_frames_announced_total",
            "NATS frame messages announced.",
            st.frames_announced,
        ),
    ] {
        m.counter(name, help, value);
    }
    m.family_of(
        "camgate_snapshot_errors_total",
        "Error answers of the snapshot routes, by error code.",
        "counter",
    );
    for (reason, n) in &s.errors {
        m.sample("camgate_snapshot_errors_total", &[("reason", reason)], n);
    }
    m.gauge(
        "camgate_snapshot_warm_decoders",
        "Decoders kept warm for a stream's next snapshot.",
        st.warm_decoders,
    );
    m.gauge(
        "camgate_snapshot_frames_kept",
        "Announced frames kept (compressed) for their URLs.",
        st.frames_kept,
    );
    m.gauge(
        "camgate_snapshot_frames_kept_bytes",
        "Bytes of the announced frames kept, as counted per entry.",
        st.frames_kept_bytes,
    );
    let d = &s.decode_times;
    m.family_of(
        "camgate_snapshot_decode_seconds",
        "One decoder run: decode, scale and JPEG on a blocking thread, after a place among max_decodes.",
        "histogram",
    );
    for (le, n) in &d.buckets {
        m.sample(
            "camgate_snapshot_decode_seconds_bucket",
            &[("le", &le.to_string())],
            n,
        );
    }
    m.sample(
        "camgate_snapshot_decode_seconds_bucket",
        &[("le", "+Inf")],
        d.count,
    );
    m.sample("camgate_snapshot_decode_seconds_sum", &[], d.sum_seconds);
    m.sample("camgate_snapshot_decode_seconds_count", &[], d.count);
}

#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str) {
        self.family_of(name, help, "gauge");
    }

    fn family_of(&mut self, name: &str, help: &str, kind: &str) {
        // Writing to a String cannot fail.
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn counter(&mut self, name: &str, help: &str, value: impl Display) {
        self.family_of(name, help, "counter");
        self.sample(name, &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("{k}=\"{v}\"")
                })
                .collect();
            let _ = write!(self.out, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }
}
