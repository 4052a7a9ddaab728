//! `WS /mse/{path}`: fMP4 over a WebSocket for Media Source Extensions players.
//!
//! Protocol (server to client): a text message with the MIME type for
//! `MediaSource.addSourceBuffer` (`video/mp4; codecs="avc1.640028"`), a binary init segment,
//! then media fragments as binary messages, starting at the hub's cached keyframe. A fragment
//! is split over several messages (its `moof`+`mdat` header, then each frame's own bytes, so
//! no video is copied per viewer); the client appends every binary message to its
//! SourceBuffer in order (MSE parses a byte stream, so splits are fine). When the codec
//! parameters change, the text message and an init segment are sent again.
//! Audio: when the camera sends AAC (known from the cached GOP or the hub's last audio
//! parameters when the socket sends its first init segment), the MIME type lists both codecs
//! (`video/mp4; codecs="avc1.640028,mp4a.40.2"`), the init segment has a second track and
//! each AAC frame goes out as its own fragment of track 2. G.711 and Opus are left out (MSE
//! does not play G.711; Opus in fMP4 is not written yet), and so is AAC that starts after the
//! first init segment: the players add their SourceBuffer once.
//! A client that falls more than `mse_max_lag` behind the camera skips to the next keyframe and
//! receives the text message `{"type":"skip"}`.
//! Client messages are ignored; the socket counts as one MSE viewer while it is open.
//!
//! An output: it imports `hub`, `media` and `http`; it must not import another output,
//! `ingest`, `live` or `api`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};

use axum::response::Response;

use bytes::Bytes;
use media::fmp4::{AUDIO_TRACK_ID, TrackRun};
use media::{AudioParams, CodecParams, Frame, TIMESCALE, fmp4};

use crate::http::refuse::{check_stream_path, stream_not_found, too_many_viewers};
use crate::http::{AppError, RouteDoc, Routes};
use crate::hub::{Consumer, LiveStream, Protocol, Registry, ViewerGuard};

/// The MSE output's state.
#[derive(Clone)]
pub struct Mse {
    pub registry: Arc<Registry>,
    /// A socket further behind the camera than this skips to the next keyframe.
    pub max_lag: Duration,
}

/// The largest message a client may send on an MSE socket (as on `/ws/events`).
const MAX_CLIENT_MESSAGE: usize = 4096;

pub fn router(mse: Mse) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .websocket(
            "/mse/{path}",
            "fMP4 over WebSocket for Media Source Extensions players",
            upgrade,
        )
        .with_state(mse)
}

async fn upgrade(
    State(mse): State<Mse>,
    Path(path): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    check_stream_path(&path)?;
    let rt = mse
        .registry
        .get(&path)
        .ok_or_else(|| stream_not_found(&path))?;
    // Counted (and limited) before the upgrade, so a refused viewer gets a plain 429.
    let viewer = rt
        .join(Protocol::Mse)
        .map_err(|e| too_many_viewers(&path, e.max))?;
    // Players send nothing we read; a cap keeps a client from making us buffer 64 MiB.
    Ok(ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| serve(socket, rt, mse, viewer)))
}

/// The MIME type a client passes to `addSourceBuffer`.
pub fn mime_type(p: &CodecParams) -> String {
    format!("video/mp4; codecs=\"{}\"", p.rfc6381)
}

/// The MIME type of a stream with `audio` (AAC) next to its video.
pub fn mime_type_av(p: &CodecParams, audio: Option<&AudioParams>) -> String {
    match audio.and_then(AudioParams::rfc6381) {
        Some(a) => format!("video/mp4; codecs=\"{},{a}\"", p.rfc6381),
        None => mime_type(p),
    }
}

/// The AAC track this socket carries, decided once: from the consumer's first frames (the
/// cached GOP) or what the hub last saw of the camera's audio.
fn carried_audio(rt: &LiveStream) -> Option<Arc<AudioParams>> {
    rt.cached_gop()
        .iter()
        .find_map(|f| f.audio().cloned())
        .or_else(|| rt.hub().audio_params())
        .filter(|a| a.fmp4_supported())
}

/// The duration of an audio frame whose successor does not give one (after a hole): 1024
/// samples, AAC's frame length, at its rate.
fn nominal_audio_ticks(a: &AudioParams) -> i64 {
    1024 * i64::from(TIMESCALE) / i64::from(a.sample_rate.max(1))
}

async fn serve(mut socket: WebSocket, rt: LiveStream, mse: Mse, _viewer: ViewerGuard) {
    let max_lag = (mse.max_lag.as_secs_f64() * f64::from(TIMESCALE)) as i64;
    let mut consumer = rt.subscribe();
    let mut out = Sender {
        socket: &mut socket,
        registry: &mse.registry,
    };
    let mut params: Option<Arc<CodecParams>> = None;
    let mut held: Option<Frame> = None;
    // Decided with the first init segment and kept: players add one SourceBuffer.
    let mut audio: Option<Option<Arc<AudioParams>>> = None;
    let mut held_audio: Option<Frame> = None;
    let mut seq: u32 = 0;
    // The cached GOP arrives as a burst of older frames; they are the instant start, not lag.
    let mut catching_up = true;
    loop {
        let frame = tokio::select! {
            f = consumer.recv() => match f {
                Some(f) => f,
                None => break, // camera deleted
            },
            msg = out.socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        let Some(video) = frame.video().cloned() else {
            let carried = audio.as_ref().and_then(Option::as_ref);
            let Some(a) = carried.filter(|a| frame.audio().is_some_and(|f| f == *a)) else {
                continue;
            };
            let nominal = nominal_audio_ticks(a);
            if let Some(prev) = held_audio.take() {
                let gap = frame.dts - prev.dts;
                if gap <= 0 {
                    // Out of order: keep the earlier one, lose this one.
                    held_audio = Some(prev);
                    continue;
                }
                // A hole (or a jump) longer than a second is not one frame's duration.
                let end = prev.dts
                    + if gap > i64::from(TIMESCALE) {
                        nominal
                    } else {
                        gap
                    };
                if !out.audio_fragment(&mut seq, prev, end).await {
                    break;
                }
            }
            held_audio = Some(frame);
            continue;
        };
        let lag = !catching_up && lagging(&consumer, &frame, max_lag);
        if consumer.queued() == 0 {
            catching_up = false;
        }
        if consumer.take_skips() > 0 || lag {
            if !frame.keyframe {
                consumer.skip_to_next_keyframe();
                consumer.take_skips();
            }
            held = None;
            held_audio = None;
            if !out.text(r#"{"type":"skip"}"#.to_owned()).await {
                break;
            }
            if !frame.keyframe {
                continue;
            }
        }
        if params.as_ref().is_none_or(|p| **p != *video) {
            // A fragment never spans two parameter sets: flush with what we know.
            if let Some(prev) = held.take()
                && !out.fragment(&mut seq, prev, frame.dts).await
            {
                break;
            }
            let carried = audio.get_or_insert_with(|| carried_audio(&rt)).clone();
            let Ok(init) = fmp4::init_segment_av(&video, carried.as_deref()) else {
                tracing::warn!(camera = %rt.camera_id(), "MSE: codec parameters cannot be muxed");
                break;
            };
            if !out.text(mime_type_av(&video, carried.as_deref())).await || !out.binary(init).await
            {
                break;
            }
            params = Some(video);
        }
        // Each frame lasts until the next one's dts, so a frame goes out when its successor
        // arrives (one frame of latency).
        if let Some(prev) = held.replace(frame) {
            let end = held.as_ref().map_or(prev.dts + 3600, |f| f.dts);
            if !out.fragment(&mut seq, prev, end).await {
                break;
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Behind the newest frame the hub has by more than the allowed lag.
fn lagging(consumer: &Consumer, frame: &Frame, max_lag: i64) -> bool {
    consumer
        .hub()
        .latest_dts()
        .is_some_and(|latest| latest - frame.dts > max_lag)
}

struct Sender<'a> {
    socket: &'a mut WebSocket,
    registry: &'a Registry,
}

impl Sender<'_> {
    async fn text(&mut self, s: String) -> bool {
        self.registry.add_bytes_sent(s.len() as u64);
        self.socket.send(Message::Text(s.into())).await.is_ok()
    }

    async fn binary(&mut self, b: Bytes) -> bool {
        self.registry.add_bytes_sent(b.len() as u64);
        self.socket.send(Message::Binary(b)).await.is_ok()
    }

    async fn fragment(&mut self, seq: &mut u32, frame: Frame, end_dts: i64) -> bool {
        if end_dts <= frame.dts {
            return true; // not a valid sample duration; the hub guarantees this never happens
        }
        *seq = seq.wrapping_add(1);
        let chunks = match fmp4::fragment(*seq, std::slice::from_ref(&frame), end_dts) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "MSE: frame cannot be muxed; skipped");
                return true;
            }
        };
        self.chunks(chunks).await
    }

    /// One AAC frame as a fragment of the audio track, lasting until `end_dts`.
    async fn audio_fragment(&mut self, seq: &mut u32, frame: Frame, end_dts: i64) -> bool {
        *seq = seq.wrapping_add(1);
        let run = TrackRun {
            track_id: AUDIO_TRACK_ID,
            frames: std::slice::from_ref(&frame),
            end_dts,
        };
        match fmp4::fragment_tracks(*seq, &[run]) {
            Ok(chunks) => self.chunks(chunks).await,
            Err(e) => {
                tracing::warn!(error = %e, "MSE: audio frame cannot be muxed; skipped");
                true
            }
        }
    }

    async fn chunks(&mut self, chunks: Vec<Bytes>) -> bool {
        for c in chunks {
            if !self.binary(c).await {
                return false;
            }
        }
        true
    }
}
