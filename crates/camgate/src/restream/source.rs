//! The restream's `rtsp::Source`: a stream is named by its path (or camera id, as everywhere
//! `registry.get` answers), described from the video parameters of the hub's cached keyframe
//! (H.264 `profile-level-id` and `sprop-parameter-sets`, H.265 `sprop-vps/sps/pps`), and
//! played by a `HubPlay` that joins the stream as an RTSP viewer. The camera's audio, when the
//! hub has seen some, is track 1: AAC as `mpeg4-generic` (payload type 97, the camera's
//! AudioSpecificConfig), G.711 as PCMA/PCMU (static payload types 8 and 0).
//!
//! An on-demand camera that is not running has no parameters yet: `prepare` (run before a
//! DESCRIBE that passed authentication) holds the stream, which starts the camera, and waits
//! for its first keyframe up to the start timeout. The last parameters seen per stream are
//! kept, so a SETUP or PLAY that comes while the hub has no keyframe cached (the camera just
//! reconnected) still finds its stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use media::{AudioCodec, AudioParams, Codec, CodecParams};

use super::RestreamSettings;
use super::play::HubPlay;
use crate::http::refuse::check_stream_path;
use crate::hub::{LiveStream, Registry};

/// Dynamic payload type of the video track.
pub(super) const VIDEO_PAYLOAD_TYPE: u8 = 96;
/// Dynamic payload type of an AAC track.
pub(super) const AAC_PAYLOAD_TYPE: u8 = 97;

/// The SDP track of a stream's audio, and its payload type; `None` for audio we do not send
/// (Opus has no packetizer here; G.711 at another rate than 8 kHz has no static type).
pub(super) fn audio_track(a: &AudioParams) -> Option<(rtsp::Track, u8)> {
    match a.codec {
        AudioCodec::Aac => Some((
            rtsp::Track::aac(
                AAC_PAYLOAD_TYPE,
                a.sample_rate,
                u16::from(a.channels),
                &a.config,
            ),
            AAC_PAYLOAD_TYPE,
        )),
        AudioCodec::Pcma | AudioCodec::Pcmu if a.sample_rate == 8000 && a.channels == 1 => {
            let t = rtsp::Track::g711(a.codec == AudioCodec::Pcma);
            let pt = t.payload_type;
            Some((t, pt))
        }
        _ => None,
    }
}

/// How long a first DESCRIBE of a camera waits after its first keyframe for its audio.
const FIRST_AUDIO_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Every stream of the registry, as the RTSP server sees them.
pub struct HubSource {
    registry: Arc<Registry>,
    settings: RestreamSettings,
    /// The newest video parameters seen per stream path.
    known: Mutex<HashMap<String, Arc<CodecParams>>>,
}

impl HubSource {
    pub(super) fn new(registry: Arc<Registry>, settings: RestreamSettings) -> HubSource {
        HubSource {
            registry,
            settings,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn stream(&self, name: &str) -> Option<LiveStream> {
        check_stream_path(name).ok()?;
        self.registry.get(name)
    }

    /// The video parameters of the cached keyframe, else the last ones seen.
    fn params(&self, stream: &LiveStream) -> Option<Arc<CodecParams>> {
        let path = stream.path();
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match stream.latest_keyframe().and_then(|f| f.video().cloned()) {
            Some(p) => {
                known.insert(path, p.clone());
                Some(p)
            }
            None => known.get(&path).cloned(),
        }
    }
}

/// The SDP track of a stream's video.
pub(super) fn video_track(p: &CodecParams) -> rtsp::Track {
    let track = match p.codec {
        Codec::H264 => rtsp::Track::h264(VIDEO_PAYLOAD_TYPE, &p.sps, &p.pps),
        Codec::H265 => rtsp::Track::h265(VIDEO_PAYLOAD_TYPE, &p.vps, &p.sps, &p.pps),
    };
    track.with_attribute(format!("x-dimensions:{},{}", p.width, p.height))
}

impl rtsp::Source for HubSource {
    type Play = HubPlay;

    fn describe(&self, name: &str) -> Option<rtsp::StreamInfo> {
        let stream = self.stream(name)?;
        let params = self.params(&stream)?;
        let mut tracks = vec![video_track(&params)];
        if let Some((audio, _)) = stream.hub().audio_params().as_deref().and_then(audio_track) {
            tracks.push(audio);
        }
        Some(rtsp::StreamInfo {
            title: format!("camgate {}", stream.path()),
            tracks,
        })
    }

    fn play(&self, start: &rtsp::PlayStart) -> Option<HubPlay> {
        let stream = self.stream(&start.stream)?;
        let codec = self.params(&stream)?.codec;
        let track = *start.tracks.iter().find(|t| t.track == 0)?;
        // The audio the SDP announced (what the hub knows now: the same as at DESCRIBE but
        // for a camera whose audio changed meanwhile, which then is not sent).
        let audio = start
            .tracks
            .iter()
            .find(|t| t.track == 1)
            .and_then(|t| Some((*t, stream.hub().audio_params()?)));
        let viewer = match stream.join(crate::hub::Protocol::Rtsp) {
            Ok(v) => v,
            Err(e) => {
                tracing::info!(stream = %stream.path(), max = e.max,
                    "RTSP session refused: the stream has its maximum of viewers");
                return None;
            }
        };
        Some(HubPlay::new(
            stream,
            viewer,
            self.registry.clone(),
            codec,
            track,
            audio,
            &self.settings,
        ))
    }

    async fn prepare(&self, name: &str) {
        let Some(stream) = self.stream(name) else {
            return;
        };
        if stream.latest_keyframe().is_some() {
            return;
        }
        // Keeps an on-demand camera connecting while we wait; not a viewer yet (PLAY joins).
        let _hold = stream.hold();
        let mut consumer = stream.subscribe();
        // A new consumer's first frame is a keyframe: the camera is up.
        let first = tokio::time::timeout(self.settings.start_timeout, consumer.recv()).await;
        if !matches!(first, Ok(Some(_))) {
            tracing::info!(stream = %stream.path(), timeout = ?self.settings.start_timeout,
                "RTSP DESCRIBE: no keyframe from the camera in time");
            return;
        }
        // A camera never seen before: its audio follows the first keyframe closely. A
        // moment's wait lets the SDP announce it (only on this camera's very first start).
        if stream.hub().audio_params().is_none() {
            let _ = tokio::time::timeout(FIRST_AUDIO_WAIT, async {
                while let Some(f) = consumer.recv().await {
                    if f.audio().is_some() {
                        return;
                    }
                }
            })
            .await;
        }
    }
}
