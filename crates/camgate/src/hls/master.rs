//! `GET /hls/{path}/master.m3u8`: the multivariant playlist of a camera for ABR players, the
//! camera's own stream plus each of its transcode profiles (`{path}~{profile}`), each with
//! `BANDWIDTH`, `RESOLUTION`, `CODECS` and `FRAME-RATE` (RFC 8216bis §4.4.6.2).
//!
//! It owns only the rendering of that playlist. Profiles are found in the registry (streams
//! whose `LiveStream::variant` is set and whose path is `{path}~...`); what a profile that is
//! not running yet will produce comes from its configuration. The camera itself is started (a
//! hold, up to the start timeout) so its codec and size are known: a player must be told that
//! an H.265 original is H.265, or it will try and fail to play it.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use media::{Codec, CodecParams};

use super::Hls;
use crate::http::AppError;
use crate::http::refuse::{check_stream_path, stream_not_found};
use crate::hub::{LiveStream, Variant};

/// Bandwidth assumed for a stream that has not been measured yet, by height.
fn guess_kbps(height: u32) -> u32 {
    match height {
        0..=400 => 800,
        401..=800 => 2500,
        _ => 5000,
    }
}

/// One line of the playlist.
struct Entry {
    uri: String,
    bandwidth_bps: u64,
    resolution: Option<(u32, u32)>,
    codecs: Option<String>,
    fps: Option<f64>,
}

/// The H.264 codec string of our encoders' High profile output at a level that fits `height`.
fn h264_codecs(height: u32) -> &'static str {
    match height {
        0..=576 => "avc1.64001f",
        577..=1088 => "avc1.640028",
        _ => "avc1.640033",
    }
}

/// Width of a profile `height` pixels tall from a `w`x`h` camera, even (ffmpeg's `scale=-2`).
fn scaled_width(w: u16, h: u16, height: u32) -> u32 {
    if h == 0 {
        return 0;
    }
    let exact = u64::from(w) * u64::from(height) / u64::from(h);
    (exact as u32 / 2) * 2
}

fn render(entries: &[Entry]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for e in entries {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", e.bandwidth_bps);
        if let Some((w, h)) = e.resolution.filter(|(w, h)| *w > 0 && *h > 0) {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(c) = &e.codecs {
            let _ = write!(out, ",CODECS=\"{c}\"");
        }
        if let Some(f) = e.fps.filter(|f| *f > 0.0) {
            let _ = write!(out, ",FRAME-RATE={f:.3}");
        }
        let _ = write!(out, "\n{}\n", e.uri);
    }
    out
}

/// The parameters a live stream is sending (from its cached keyframe).
fn params(s: &LiveStream) -> Option<Arc<CodecParams>> {
    s.latest_keyframe().and_then(|f| f.video().cloned())
}

/// The camera's codecs: what its LL-HLS init segment carries once it has one, else its video
/// plus the AAC audio of its cached GOP (AAC is the one audio codec our fMP4 carries).
fn camera_codecs(app: &Hls, camera: &LiveStream, video: &CodecParams) -> String {
    if let Some(c) = app.get(camera).and_then(|h| h.segmenter().codecs()) {
        return c;
    }
    let audio = camera
        .cached_gop()
        .iter()
        .find_map(|f| f.audio().filter(|a| a.fmp4_supported()).cloned())
        .and_then(|a| a.rfc6381());
    match audio {
        Some(a) => format!("{},{a}", video.rfc6381),
        None => video.rfc6381.clone(),
    }
}

/// The entry of a profile; `camera` is the camera's own parameters, if known.
fn profile_entry(
    s: &LiveStream,
    v: &Variant,
    camera: Option<&CodecParams>,
    camera_fps: f64,
    query: &str,
) -> Entry {
    let status = s.status();
    let running = params(s);
    let (resolution, codecs) = match (&running, camera) {
        (Some(p), _) => (
            Some((u32::from(p.width), u32::from(p.height))),
            p.rfc6381.clone(),
        ),
        (None, Some(c)) => {
            let mut h = if v.height == 0 {
                u32::from(c.height)
            } else {
                v.height
            };
            if v.profile == crate::config::RESERVED_PROFILE {
                h = h.min(1080);
            }
            (
                Some((scaled_width(c.width, c.height, h), h)),
                h264_codecs(h).to_owned(),
            )
        }
        (None, None) => (None, h264_codecs(v.height).to_owned()),
    };
    let measured = status.bitrate_kbps;
    let kbps = if measured > 0 {
        measured
    } else {
        u64::from(v.bitrate_kbps)
    };
    let fps = if status.fps > 0.0 {
        status.fps
    } else if v.fps > 0 {
        f64::from(v.fps)
    } else {
        camera_fps
    };
    Entry {
        uri: format!("../{}/index.m3u8{query}", s.path()),
        // Peak, as the tag asks: the configured rate is an average, so leave headroom.
        bandwidth_bps: kbps * 1000 * 5 / 4,
        resolution,
        codecs: Some(codecs),
        fps: Some(fps),
    }
}

pub(super) async fn master(
    State(app): State<Arc<Hls>>,
    Path(path): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    check_stream_path(&path)?;
    let camera = app
        .registry
        .get(&path)
        .filter(|s| s.variant().is_none())
        .ok_or_else(|| stream_not_found(&path))?;
    let camera_path = camera.path();
    // The viewer token (and only it) is carried into every URI, as the media playlists do.
    let query = uri
        .query()
        .and_then(|q| q.split('&').find(|kv| kv.starts_with("token=")))
        .map(|t| format!("?{t}"))
        .unwrap_or_default();

    // Start the camera (if on demand) and wait, bounded, for its codec and size.
    let hold = camera.hold();
    let deadline = tokio::time::Instant::now() + app.settings.start_timeout;
    let mut state = camera.watch_state();
    while params(&camera).is_none() && tokio::time::Instant::now() < deadline {
        let tick = tokio::time::sleep(std::time::Duration::from_millis(100));
        tokio::select! {
            _ = tick => {}
            r = tokio::time::timeout_at(deadline, state.changed()) => if !matches!(r, Ok(Ok(()))) { break },
        }
    }
    drop(hold);
    let cam_params = params(&camera);
    let cam_status = camera.status();

    let mut entries = Vec::new();
    let cam_h = cam_params.as_ref().map_or(0, |p| u32::from(p.height));
    let measured = cam_status.bitrate_kbps;
    entries.push(Entry {
        uri: format!("index.m3u8{query}"),
        bandwidth_bps: if measured > 0 {
            measured * 1000 * 5 / 4
        } else {
            u64::from(guess_kbps(cam_h)) * 1000
        },
        resolution: cam_params
            .as_ref()
            .map(|p| (u32::from(p.width), u32::from(p.height))),
        codecs: cam_params.as_ref().map(|p| camera_codecs(&app, &camera, p)),
        fps: Some(cam_status.fps),
    });
    let prefix = format!("{camera_path}~");
    let is_h264 = cam_params.as_ref().is_some_and(|p| p.codec == Codec::H264);
    for s in app.registry.list() {
        let Some(v) = s.variant() else { continue };
        if !s.path().starts_with(&prefix) {
            continue;
        }
        // `~h264` of an H.264 camera is the original itself: listing it twice helps no one.
        if v.profile == crate::config::RESERVED_PROFILE && is_h264 {
            continue;
        }
        entries.push(profile_entry(
            &s,
            &v,
            cam_params.as_deref(),
            cam_status.fps,
            &query,
        ));
    }
    let mut r = render(&entries).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media::hls::PLAYLIST_CONTENT_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_attribute() {
        let text = render(&[
            Entry {
                uri: "index.m3u8".into(),
                bandwidth_bps: 5_000_000,
                resolution: Some((1920, 1080)),
                codecs: Some("hvc1.1.6.L120.90".into()),
                fps: Some(25.0),
            },
            Entry {
                uri: "../cam_1~360p/index.m3u8?token=x".into(),
                bandwidth_bps: 750_000,
                resolution: None,
                codecs: Some("avc1.64001f".into()),
                fps: None,
            },
        ]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS=\"hvc1.1.6.L120.90\",FRAME-RATE=25.000\nindex.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=750000,CODECS=\"avc1.64001f\"\n../cam_1~360p/index.m3u8?token=x\n"
        );
        assert_eq!(scaled_width(1920, 1080, 360), 640);
        assert_eq!(scaled_width(320, 240, 100), 132);
    }
}
