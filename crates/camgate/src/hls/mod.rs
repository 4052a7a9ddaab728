//! LL-HLS over HTTP: `GET /hls/{path}/index.m3u8` and the files it names (plus the compat
//! `GET /streams/{path}/stream.m3u8`). The segmenter itself is `media::hls`; this module owns
//! the serving side: one `HlsStream` per stream, starting on-demand cameras from the first
//! playlist request, blocking reloads, preload-hint waits, caching headers and HLS viewer
//! sessions (see docs/live.md "Viewers").
//!
//! Bodies are the segmenter's `Bytes` chunks streamed as they are: serving a segment to a
//! thousand players copies no video.
//!
//! An output: it imports `hub`, `media`, `http` (and the event counters); it must not import
//! another output, `ingest`, `live` or `api`. It follows every stream as a `hub::Output`, so a
//! stream that goes live gets its segmenter at once.

mod delay;
mod master;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use media::hls::{PLAYLIST_CONTENT_TYPE, ReloadDecision, names};

pub use delay::{PART_DELAY_BUCKETS, PartDelay, PartDelaySnapshot};
pub use stream::{HlsStream, SESSION_IDLE};

use crate::cameras::StreamState;
use crate::events::{HlsRequestKind, Metrics};
use crate::http::client::Client;
use crate::http::refuse::{check_stream_path, stream_not_found, too_many_viewers};
use crate::http::{AppError, RouteDoc, Routes};
use crate::hub::{LiveStream, Output, Registry, TooManyViewers};
use crate::tasks::Tasks;

/// Complete segments a plain playlist request waits for (see `playlist`).
const MIN_SEGMENTS_AT_START: u64 = 3;

/// The LL-HLS output's settings (`[hls]`, and `[streams] start_timeout`).
#[derive(Clone, Debug, PartialEq)]
pub struct HlsSettings {
    pub segment_duration: Duration,
    pub part_duration: Duration,
    pub list_size: usize,
    pub start_timeout: Duration,
}

impl HlsSettings {
    pub fn from_config(c: &crate::config::Config) -> HlsSettings {
        HlsSettings {
            segment_duration: c.hls.segment_duration,
            part_duration: c.hls.part_duration,
            list_size: c.hls.list_size as usize,
            start_timeout: c.streams.start_timeout,
        }
    }
}

impl Default for HlsSettings {
    fn default() -> Self {
        HlsSettings::from_config(&crate::config::Config::default())
    }
}

/// Every stream's HLS output that currently exists.
pub struct Hls {
    /// Itself, for the per-stream followers (which must not keep it alive).
    me: std::sync::Weak<Hls>,
    settings: HlsSettings,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    tasks: Tasks,
    streams: Arc<Mutex<HashMap<String, Arc<HlsStream>>>>,
    /// `camgate_hls_part_delay_seconds`, shared by every stream's segmenter.
    part_delay: Arc<PartDelay>,
}

impl Hls {
    /// The output; register it with the registry (`Registry::add_output`) so that every
    /// stream that goes live gets its segmenter at once, and a player arriving at a streaming
    /// camera finds segments ready.
    pub fn new(
        settings: HlsSettings,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        tasks: Tasks,
    ) -> Arc<Hls> {
        Arc::new_cyclic(|me| Hls {
            me: me.clone(),
            settings,
            registry,
            metrics,
            tasks,
            streams: Arc::default(),
            part_delay: Arc::default(),
        })
    }

    /// Frame arrival at the hub -> part available, over all streams.
    pub fn part_delay(&self) -> &PartDelay {
        &self.part_delay
    }

    /// The stream's HLS output, if it exists.
    pub fn get(&self, rt: &LiveStream) -> Option<Arc<HlsStream>> {
        let map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&rt.path()).filter(|s| s.camera.same(rt)).cloned()
    }

    /// The stream's HLS output, created (with its feeder) if needed.
    pub fn get_or_start(&self, rt: &LiveStream) -> Arc<HlsStream> {
        let mut map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let id = rt.path();
        if let Some(s) = map.get(&id).filter(|s| s.camera.same(rt)) {
            return s.clone();
        }
        let registry = Arc::downgrade(&self.streams);
        let key = id.clone();
        let s = HlsStream::start(
            rt.clone(),
            &self.settings,
            self.part_delay.clone(),
            &self.tasks,
            move |ended| {
                if let Some(reg) = registry.upgrade() {
                    let mut map = reg.lock().unwrap_or_else(|p| p.into_inner());
                    if map.get(&key).is_some_and(|s| Arc::ptr_eq(s, ended)) {
                        map.remove(&key);
                    }
                }
            },
        );
        map.insert(id, s.clone());
        s
    }
}

/// Every stream that goes live gets its segmenter (so the first player finds segments
/// ready): one small task per stream following its state, ending when the hub closes.
impl Output for Hls {
    fn attach(&self, stream: &LiveStream) {
        let mut state = stream.watch_state();
        let mut closed = stream.subscribe();
        let weak = stream.downgrade();
        let me = self.me.clone();
        self.tasks
            .spawn(format!("hls follower {}", stream.path()), async move {
                loop {
                    let live = state.borrow_and_update().state == StreamState::Live;
                    if live {
                        let (Some(stream), Some(hls)) = (weak.upgrade(), me.upgrade()) else {
                            return;
                        };
                        hls.get_or_start(&stream);
                    }
                    tokio::select! {
                        changed = state.changed() => if changed.is_err() { return },
                        // The hub closed (stream removed).
                        None = closed.recv() => return,
                    }
                }
            });
    }
}

pub fn router(hls: Arc<Hls>) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get(
            "/hls/{path}/master.m3u8",
            "Multivariant playlist: the camera and its transcode profiles (ABR)",
            master::master,
        )
        .get(
            "/hls/{path}/index.m3u8",
            "LL-HLS playlist (starts an on-demand camera; blocking reload)",
            playlist,
        )
        .get(
            "/hls/{path}/{file}",
            "Init segment, segment or part named by the playlist",
            media_file,
        )
        .get(
            "/streams/{path}/stream.m3u8",
            "LL-HLS playlist (compatibility path)",
            playlist,
        )
        .get(
            "/streams/{path}/{file}",
            "Media file of the compatibility playlist",
            media_file,
        )
        .with_state(hls)
}

/// Query parameters of a playlist request.
#[derive(Default)]
struct PlaylistQuery {
    msn: Option<u64>,
    part: Option<u64>,
    skip: bool,
    session: Option<String>,
    token: Option<String>,
}

fn bad_param(name: &str) -> AppError {
    AppError::bad_request(
        "invalid_hls_param",
        format!("{name} must be a non-negative integer"),
    )
}

fn parse_query(uri: &Uri) -> Result<PlaylistQuery, AppError> {
    let mut q = PlaylistQuery::default();
    let Some(raw) = uri.query() else {
        return Ok(q);
    };
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        match k.as_ref() {
            "_HLS_msn" => q.msn = Some(v.parse().map_err(|_| bad_param("_HLS_msn"))?),
            "_HLS_part" => q.part = Some(v.parse().map_err(|_| bad_param("_HLS_part"))?),
            "_HLS_skip" => q.skip = v == "YES" || v == "v2",
            "hls_session" if stream::valid_session_id(&v) => q.session = Some(v.into_owned()),
            // Viewer tokens travel on every URI so they work in <video> tags.
            "token" if v.len() <= 512 => q.token = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(q)
}

fn cookie_name(path: &str) -> String {
    format!("cg_hls_{path}")
}

fn session_from_cookie(headers: &HeaderMap, path: &str) -> Option<String> {
    let name = cookie_name(path);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == name && stream::valid_session_id(v))
        .map(|(_, v)| v.to_owned())
}

fn too_many(path: &str, e: TooManyViewers) -> AppError {
    too_many_viewers(path, e.max)
}

/// Resolves (or creates) the player's session: the `hls_session` query (URIs of our
/// playlists carry it), else the cookie, else the client address's provisional one
/// ([`HlsStream::resolve_session`]). Returns the id and whether it is new.
fn session(
    hls: &HlsStream,
    query: Option<&str>,
    cookie: Option<String>,
    client: Option<IpAddr>,
    path: &str,
    may_create: bool,
) -> Result<Option<(String, bool)>, AppError> {
    let claimed = query.map(str::to_owned).or(cookie);
    hls.resolve_session(claimed.as_deref(), client, may_create)
        .map_err(|e| too_many(path, e))
}

/// Waits for the segmenter's next change, up to `deadline`; false on timeout.
async fn changed_before(
    rx: &mut tokio::sync::watch::Receiver<u64>,
    deadline: tokio::time::Instant,
) -> bool {
    matches!(
        tokio::time::timeout_at(deadline, rx.changed()).await,
        Ok(Ok(()))
    )
}

async fn playlist(
    State(app): State<Arc<Hls>>,
    Path(path): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    client: Option<Extension<Client>>,
) -> Result<Response, AppError> {
    check_stream_path(&path)?;
    app.metrics.hls_request(HlsRequestKind::Playlist);
    let q = parse_query(&uri)?;
    let rt = app
        .registry
        .get(&path)
        .ok_or_else(|| stream_not_found(&path))?;
    let hls = app.get_or_start(&rt);
    let cookie = session_from_cookie(&headers, &path);
    let client = client.and_then(|Extension(c)| c.ip);
    // With may_create, `session` returns a session or an error, never None.
    let Some((session_id, fresh)) =
        session(&hls, q.session.as_deref(), cookie, client, &path, true)?
    else {
        return Err(AppError::internal(
            "hls_session",
            "no HLS session could be made",
        ));
    };
    let settings = &app.settings;

    // An on-demand camera is starting now: wait for its first part instead of failing. A
    // plain request (no blocking reload) waits for MIN_SEGMENTS_AT_START complete segments:
    // players without LL-HLS give up on a playlist with no segment (ffmpeg), and Chromium's
    // native player never starts on one with fewer than three (it reloads once, then stalls).
    // A warm stream has them already, so this only delays cold starts.
    let mut version = hls.watch_version();
    let start_deadline = tokio::time::Instant::now() + settings.start_timeout;
    let ready = |hls: &HlsStream| {
        let seg = hls.segmenter();
        seg.is_playable() && (q.msn.is_some() || seg.next_msn() >= MIN_SEGMENTS_AT_START)
    };
    while !ready(&hls) {
        let state = rt.state();
        if state.state == StreamState::Unauthorized
            || !changed_before(&mut version, start_deadline).await
        {
            let state = rt.state();
            let why = match (&state.last_error, state.state) {
                (Some(e), s) if s != StreamState::Live => format!("{s} ({e})"),
                (_, s) => format!("state {s}"),
            };
            return Err(AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "stream_start_timeout",
                format!(
                    "camera {} sent no playable video within {:?}: {why}",
                    rt.camera_id(),
                    settings.start_timeout
                ),
            ));
        }
    }

    // Blocking reload (RFC 8216bis §6.2.5.2): hold the request until the asked-for part
    // exists, at most three target durations (then 503, as the spec says). The version only
    // moves when the playlist changed, so each wake-up here is worth a decision.
    let target = Duration::from_secs(hls.segmenter().target_duration_secs().max(1));
    let reload_deadline = tokio::time::Instant::now() + 3 * target;
    let at_version = loop {
        let (decision, at_version) = hls.reload_decision(q.msn, q.part);
        match decision {
            ReloadDecision::Ready => break at_version,
            ReloadDecision::BadRequest(why) => {
                return Err(AppError::bad_request("invalid_hls_param", why));
            }
            ReloadDecision::Wait => {
                app.metrics.hls_blocking_reload_wait();
                if !changed_before(&mut version, reload_deadline).await {
                    return Err(AppError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "hls_part_not_ready",
                        "the requested part did not appear within three target durations",
                    ));
                }
            }
        }
    };

    let mut suffix = format!("hls_session={session_id}");
    if let Some(t) = &q.token {
        let enc: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
        suffix.push_str("&token=");
        suffix.push_str(&enc);
    }
    // Rendered once per playlist change; this request only copies it with its own query.
    let text = hls.playlist(q.skip, at_version).with_query(&suffix);
    app.registry.add_bytes_sent(text.len() as u64);
    app.metrics.hls_bytes_sent(text.len() as u64);
    let mut resp = (
        [
            (header::CONTENT_TYPE, PLAYLIST_CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response();
    if fresh {
        let cookie = format!(
            "{}={session_id}; Path=/; HttpOnly; SameSite=Lax",
            cookie_name(&path)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

fn file_not_found(file: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "hls_file_not_found",
        format!("{file} is not (or no longer) in the playlist; reload index.m3u8"),
    )
}

async fn media_file(
    State(app): State<Arc<Hls>>,
    Path((path, file)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    client: Option<Extension<Client>>,
) -> Result<Response, AppError> {
    check_stream_path(&path)?;
    if file.len() > 64
        || !file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(AppError::bad_request(
            "invalid_hls_file",
            "HLS file names are letters, digits, '-', '_' and '.'",
        ));
    }
    if let Some((_, name)) = names::parse(&file) {
        app.metrics.hls_request(match name {
            names::Name::Init { .. } => HlsRequestKind::Init,
            names::Name::Segment { .. } => HlsRequestKind::Segment,
            names::Name::Part { .. } => HlsRequestKind::Part,
        });
    }
    let q = parse_query(&uri)?;
    let rt = app
        .registry
        .get(&path)
        .ok_or_else(|| stream_not_found(&path))?;
    let hls = app.get(&rt).ok_or_else(|| file_not_found(&file))?;
    session(
        &hls,
        q.session.as_deref(),
        session_from_cookie(&headers, &path),
        client.and_then(|Extension(c)| c.ip),
        &path,
        false,
    )?;

    let mut found = hls.segmenter().lookup(&file);
    if found.is_none() {
        // A preload hint names the next part before it exists; players request it at once
        // and expect the answer when it is ready. Only names of this segmenter can appear.
        let (instance, _) = names::parse(&file).ok_or_else(|| file_not_found(&file))?;
        let mut version = hls.watch_version();
        let target = Duration::from_secs(hls.segmenter().target_duration_secs().max(1));
        let deadline = tokio::time::Instant::now() + 2 * target;
        let ours = hls
            .segmenter()
            .init_segment()
            .and_then(|(name, _)| names::parse(&name))
            .is_some_and(|(i, _)| i == instance);
        if !ours {
            return Err(file_not_found(&file));
        }
        while found.is_none() && changed_before(&mut version, deadline).await {
            found = hls.segmenter().lookup(&file);
        }
    }
    let res = found.ok_or_else(|| file_not_found(&file))?;
    let len = res.len();
    app.registry.add_bytes_sent(len as u64);
    app.metrics.hls_bytes_sent(len as u64);
    let cache = if res.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let body = Body::from_stream(futures::stream::iter(
        res.chunks.into_iter().map(Ok::<Bytes, Infallible>),
    ));
    Ok((
        [
            (header::CONTENT_TYPE, res.content_type.to_owned()),
            (header::CACHE_CONTROL, cache.to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}
