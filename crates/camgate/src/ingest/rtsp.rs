//! RTSP cameras through `retina`: DESCRIBE, SETUP, PLAY, then frames converted to
//! `media::Frame` (4-byte length-prefixed NAL units, 90 kHz timestamps, shared `CodecParams`).
//!
//! Transport `auto` tries TCP interleaved first and falls back to UDP only when the camera
//! rejects the TCP SETUP. Why TCP first: it crosses NAT and firewalls, it needs no extra ports,
//! and retina's UDP path has no reorder buffer (out-of-order packets are dropped), so TCP gives
//! whole frames wherever the camera offers it. The transport a refusal points to is remembered
//! per camera (before trying it) so reconnects and retries do not repeat the refused attempt.
//!
//! Keepalives are retina's: it sends GET_PARAMETER/OPTIONS within the session timeout while
//! the stream is polled. Stale sessions: every camera has a retina `SessionGroup`; a dropped
//! session is torn down in the background (`TeardownPolicy::Auto`: TEARDOWN on the open TCP
//! connection, repeated TEARDOWNs for UDP), and before a reconnect we wait (bounded) for the
//! previous session's TEARDOWN so the camera does not count two sessions from us.
//!
//! Audio: the first audio stream of a codec we carry (AAC `mpeg4-generic`, G.711 PCMA/PCMU;
//! retina has no Opus or LATM depacketizer) is set up next to the video and becomes
//! `Track::Audio` frames with pts on the video's 90 kHz timeline: PLAY asks retina to anchor
//! every stream at the `RTP-Info` rtptime (the same instant for all streams) when the camera
//! gives one for each, else each stream starts at its first packet. Audio never fails a
//! session: a refused audio SETUP plays the video alone, and an audio stream that errors is
//! dropped (and left out of this camera's later sessions).
//!
//! Credentials come from the URL's userinfo and go to retina as `Credentials` (Basic or
//! Digest, whichever the camera asks for). Every message built here is redacted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use media::dts::{AccessUnit, DtsExtractor, ParameterSets};
use media::timestamp::rescale;
use media::{AudioCodec, AudioParams, CodecParams, Frame, TrackParams};
use retina::client::{
    Credentials, InitialTimestampPolicy, PlayOptions, Session, SessionGroup, SessionOptions,
    SetupOptions, TeardownPolicy,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParameters, VideoParametersCodec};
use url::Url;

use super::{FailureKind, FrameStream, IngestError, Source, SourceSpec, Stage, Transport};

/// Timeouts of the RTSP exchange.
#[derive(Clone, Debug)]
pub struct RtspTimeouts {
    /// DNS, TCP connect and each of DESCRIBE, SETUP, PLAY.
    pub request: Duration,
    /// How long a reconnect waits for the previous session's TEARDOWN before going ahead.
    pub teardown_wait: Duration,
}

impl Default for RtspTimeouts {
    fn default() -> Self {
        RtspTimeouts {
            request: Duration::from_secs(10),
            teardown_wait: Duration::from_secs(3),
        }
    }
}

/// Opens RTSP sessions with retina. One value serves every camera.
#[derive(Default)]
pub struct RtspSource {
    timeouts: RtspTimeouts,
    cameras: Mutex<HashMap<String, CameraMemory>>,
}

/// What we remember about a camera between sessions.
#[derive(Clone)]
struct CameraMemory {
    group: Arc<SessionGroup>,
    /// The transport `auto` settled on.
    auto_choice: Option<Transport>,
    /// The camera's audio failed in a session: later sessions play its video alone.
    audio_broken: Arc<AtomicBool>,
}

impl RtspSource {
    pub fn new(timeouts: RtspTimeouts) -> RtspSource {
        RtspSource {
            timeouts,
            cameras: Mutex::new(HashMap::new()),
        }
    }

    fn memory(&self, camera_id: &str) -> CameraMemory {
        let mut map = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(camera_id.to_owned())
            .or_insert_with(|| CameraMemory {
                group: Arc::new(SessionGroup::default().named(camera_id.to_owned())),
                auto_choice: None,
                audio_broken: Arc::new(AtomicBool::new(false)),
            })
            .clone()
    }

    fn remember_choice(&self, camera_id: &str, t: Transport) {
        let mut map = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get_mut(camera_id) {
            m.auto_choice = Some(t);
        }
    }
}

impl Source for Arc<RtspSource> {
    fn open(&self, spec: &SourceSpec) -> BoxFuture<'static, Result<FrameStream, IngestError>> {
        let this = self.clone();
        let spec = spec.clone();
        Box::pin(async move { this.open_session(&spec).await })
    }

    fn wait_teardowns(&self, limit: Duration) -> BoxFuture<'static, ()> {
        let groups: Vec<Arc<SessionGroup>> = {
            let map = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
            map.values().map(|m| m.group.clone()).collect()
        };
        Box::pin(async move {
            let all = futures::future::join_all(groups.iter().map(|g| g.await_teardown()));
            if tokio::time::timeout(limit, all).await.is_err() {
                tracing::warn!(?limit, "some cameras did not confirm TEARDOWN in time");
            }
        })
    }
}

/// The parts of a camera URL retina wants separately.
struct Target {
    url: Url,
    creds: Option<Credentials>,
    redacted: String,
    password: String,
}

fn parse_target(spec: &SourceSpec) -> Result<Target, IngestError> {
    let redacted = spec.url.redacted();
    let bad =
        |msg: String| IngestError::new(FailureKind::Error, Stage::Connect, &spec.camera_id, msg);
    let mut url =
        Url::parse(spec.url.expose()).map_err(|e| bad(format!("invalid URL {redacted}: {e}")))?;
    match url.scheme() {
        "rtsp" => {}
        "rtsps" => {
            return Err(bad(format!(
                "{redacted}: rtsps (RTSP over TLS) is not supported by the RTSP client yet; use rtsp://"
            )));
        }
        other => return Err(bad(format!("{redacted}: scheme {other} is not rtsp"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("{redacted}: no host")));
    }
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    // Percent-decoding without turning '+' into ' ' (form decoding would).
    let pct = |s: &str| decode(&s.replace('+', "%2B"));
    let username = pct(url.username());
    let password = url.password().map(pct).unwrap_or_default();
    let creds = if username.is_empty() && password.is_empty() {
        None
    } else {
        Some(Credentials {
            username,
            password: password.clone(),
        })
    };
    // retina refuses URLs with userinfo; these setters cannot fail on an rtsp URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(Target {
        url,
        creds,
        redacted,
        password,
    })
}

/// First line of a retina error (the rest is packet context for Wireshark), never the password.
fn human(err: &retina::Error, password: &str) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("").trim().to_owned();
    if password.len() >= 3 {
        first.replace(password, "***")
    } else {
        first
    }
}

fn classify(stage: Stage, target: &Target, camera_id: &str, err: &retina::Error) -> IngestError {
    let msg = human(err, &target.password);
    let (kind, message) = match err.status_code() {
        Some(401) if target.creds.is_none() => (
            FailureKind::Unauthorized,
            format!(
                "the camera requires credentials (RTSP 401) and {} has none",
                target.redacted
            ),
        ),
        Some(401) | Some(403) => (
            FailureKind::Unauthorized,
            format!(
                "wrong username or password for {} (RTSP {})",
                target.redacted,
                err.status_code().unwrap_or(401)
            ),
        ),
        Some(404) => (
            FailureKind::Error,
            format!("the camera has no stream at {} (RTSP 404)", target.redacted),
        ),
        _ if msg.starts_with("Unable to connect") => (
            FailureKind::Unreachable,
            format!("cannot connect to {}: {msg}", target.redacted),
        ),
        _ if msg == "Timeout" => (
            FailureKind::Unreachable,
            format!("{} did not answer in time", target.redacted),
        ),
        _ => (FailureKind::Error, format!("{msg} ({})", target.redacted)),
    };
    IngestError::new(kind, stage, camera_id, message)
}

impl RtspSource {
    async fn open_session(&self, spec: &SourceSpec) -> Result<FrameStream, IngestError> {
        let target = parse_target(spec)?;
        let memory = self.memory(&spec.camera_id);
        // A previous session of ours may still be tearing down; the camera may limit
        // sessions, so give that a bounded moment.
        let _ =
            tokio::time::timeout(self.timeouts.teardown_wait, memory.group.await_teardown()).await;
        self.resolve(spec, &target).await?;
        match spec.transport {
            Transport::Tcp | Transport::Udp => {
                self.open_with(spec, &target, &memory, spec.transport).await
            }
            Transport::Auto => {
                let first = memory.auto_choice.unwrap_or(Transport::Tcp);
                match self.open_with(spec, &target, &memory, first).await {
                    Ok(s) => {
                        self.remember_choice(&spec.camera_id, first);
                        Ok(s)
                    }
                    // Only a refused SETUP says "try the other transport"; auth and network
                    // failures would fail the same way again.
                    Err(e) if e.stage == Stage::Setup && e.kind == FailureKind::Error => {
                        let other = if first == Transport::Tcp {
                            Transport::Udp
                        } else {
                            Transport::Tcp
                        };
                        tracing::info!(camera = %spec.camera_id, error = %e, "SETUP over {first} refused; trying {other}");
                        // Remembered before the attempt: the camera said what it refuses, and
                        // when the attempt fails for another reason (GStreamer's server answers
                        // the DESCRIBE right after a refused SETUP with 503 while it tears that
                        // media down), the supervisor's retry must not ask for `first` again.
                        self.remember_choice(&spec.camera_id, other);
                        self.open_with(spec, &target, &memory, other).await
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Resolves the host first so a DNS failure reads as such, not as a connect error.
    async fn resolve(&self, spec: &SourceSpec, target: &Target) -> Result<(), IngestError> {
        let host = target.url.host_str().unwrap_or_default().to_owned();
        let port = target.url.port().unwrap_or(554);
        let unreachable = |m: String| {
            IngestError::new(FailureKind::Unreachable, Stage::Connect, &spec.camera_id, m)
        };
        match tokio::time::timeout(
            self.timeouts.request,
            tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
        )
        .await
        {
            Ok(Ok(addrs)) => {
                if addrs.count() > 0 {
                    Ok(())
                } else {
                    Err(unreachable(format!("DNS: {host} has no address")))
                }
            }
            Ok(Err(e)) => Err(unreachable(format!("DNS lookup of {host} failed: {e}"))),
            Err(_) => Err(unreachable(format!("DNS lookup of {host} timed out"))),
        }
    }

    async fn open_with(
        &self,
        spec: &SourceSpec,
        target: &Target,
        memory: &CameraMemory,
        transport: Transport,
    ) -> Result<FrameStream, IngestError> {
        let id = spec.camera_id.as_str();
        let limit = self.timeouts.request;
        let timed_out = |stage: Stage| {
            IngestError::new(
                FailureKind::Unreachable,
                stage,
                id,
                format!("{} did not answer within {limit:?}", target.redacted),
            )
        };
        let options = SessionOptions::default()
            .creds(target.creds.clone())
            .session_group(memory.group.clone())
            .teardown(TeardownPolicy::Auto)
            .user_agent(format!("camgate/{}", env!("CARGO_PKG_VERSION")));
        let mut session =
            tokio::time::timeout(limit, Session::describe(target.url.clone(), options))
                .await
                .map_err(|_| timed_out(Stage::Describe))?
                .map_err(|e| classify(Stage::Describe, target, id, &e))?;

        let video = session
            .streams()
            .iter()
            .position(|s| {
                s.media() == "video"
                    && matches!(
                        s.encoding_name().to_ascii_lowercase().as_str(),
                        "h264" | "h265"
                    )
            })
            .ok_or_else(|| {
                let found: Vec<String> = session
                    .streams()
                    .iter()
                    .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                    .collect();
                IngestError::new(
                    FailureKind::Error,
                    Stage::Describe,
                    id,
                    format!(
                        "no H.264 or H.265 video in the camera's SDP (it offers: {})",
                        found.join(", ")
                    ),
                )
            })?;

        let setup = SetupOptions::default()
            .frame_format(FrameFormat::MP4)
            .transport(match transport {
                Transport::Udp => retina::client::Transport::Udp(Default::default()),
                _ => retina::client::Transport::Tcp(Default::default()),
            });
        tokio::time::timeout(limit, session.setup(video, setup))
            .await
            .map_err(|_| timed_out(Stage::Setup))?
            .map_err(|e| classify(Stage::Setup, target, id, &e))?;
        let audio = setup_audio(&mut session, memory, transport, limit, id).await;
        // With two streams retina by default insists on RTP-Info rtptime for each; a camera
        // without it must still play (its streams then start at their first packets).
        let play = PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive);
        let playing = tokio::time::timeout(limit, session.play(play))
            .await
            .map_err(|_| timed_out(Stage::Play))?
            .map_err(|e| classify(Stage::Play, target, id, &e))?;
        let demuxed = playing
            .demuxed()
            .map_err(|e| classify(Stage::Play, target, id, &e))?;
        tracing::info!(camera = id, url = %target.redacted, %transport, "RTSP session playing");

        let audio = audio.map(|(stream, params)| AudioTrack {
            stream,
            params,
            ctx: demuxed.streams()[stream]
                .ctx()
                .map(|c| format!("\nstream: {c}\n")),
            sender_report: None,
        });
        let state = FrameState {
            audio,
            audio_broken: memory.audio_broken.clone(),
            demuxed,
            video,
            params: None,
            sender_report: None,
            dts: DtsExtractor::new(),
            dts_warned: false,
            camera_id: id.to_owned(),
            redacted: target.redacted.clone(),
            password: target.password.clone(),
            ended: false,
        };
        Ok(futures::stream::unfold(state, next_frame).boxed())
    }
}

/// Sets up the camera's first audio stream we can carry, over the video's transport. Never an
/// error: the session plays its video whatever happens here.
async fn setup_audio(
    session: &mut Session<retina::client::Described>,
    memory: &CameraMemory,
    transport: Transport,
    limit: Duration,
    id: &str,
) -> Option<(usize, Arc<AudioParams>)> {
    if memory.audio_broken.load(Ordering::Relaxed) {
        return None;
    }
    let mut skipped = Vec::new();
    let mut found = None;
    for (i, s) in session.streams().iter().enumerate() {
        if s.media() != "audio" {
            continue;
        }
        match audio_params(s) {
            Ok(p) => {
                found = Some((i, Arc::new(p)));
                break;
            }
            Err(why) => skipped.push(why),
        }
    }
    if !skipped.is_empty() {
        tracing::info!(camera = id, audio = %skipped.join("; "), "camera audio not carried");
    }
    let (i, params) = found?;
    let setup = SetupOptions::default()
        .frame_format(FrameFormat::MP4)
        .transport(match transport {
            Transport::Udp => retina::client::Transport::Udp(Default::default()),
            _ => retina::client::Transport::Tcp(Default::default()),
        });
    match tokio::time::timeout(limit, session.setup(i, setup)).await {
        Ok(Ok(())) => Some((i, params)),
        Ok(Err(e)) => {
            let e = e.to_string();
            let first = e.lines().next().unwrap_or_default();
            tracing::warn!(
                camera = id,
                error = first,
                "audio SETUP refused; video only"
            );
            None
        }
        Err(_) => {
            tracing::warn!(camera = id, "audio SETUP timed out; video only");
            None
        }
    }
}

/// Our parameters of a camera audio stream, or why it is not carried.
fn audio_params(s: &retina::client::Stream) -> Result<AudioParams, String> {
    let encoding = s.encoding_name().to_ascii_lowercase();
    let channels = s
        .channels()
        .map_or(1, |c| u8::try_from(c.get()).unwrap_or(u8::MAX));
    let simple = |codec| Ok(AudioParams::simple(codec, s.clock_rate_hz(), channels));
    match encoding.as_str() {
        "mpeg4-generic" => match s.parameters() {
            Some(ParametersRef::Audio(a)) => AudioParams::aac(a.extra_data())
                .map_err(|e| format!("AAC with an unusable config: {e}")),
            _ => Err("AAC without a usable config in the SDP".to_owned()),
        },
        "pcma" => simple(AudioCodec::Pcma),
        "pcmu" => simple(AudioCodec::Pcmu),
        other => Err(format!("{other} (no depacketizer)")),
    }
}

/// The audio stream of a session.
struct AudioTrack {
    stream: usize,
    params: Arc<AudioParams>,
    /// `\nstream: {context}\n` as retina writes it into a packet error of this stream.
    ctx: Option<String>,
    /// As `FrameState::sender_report`, for the audio clock.
    sender_report: Option<(SystemTime, i64)>,
}

struct FrameState {
    audio: Option<AudioTrack>,
    audio_broken: Arc<AtomicBool>,
    demuxed: retina::client::Demuxed,
    video: usize,
    params: Option<Arc<CodecParams>>,
    /// The camera's latest RTCP sender report for the video: its wall clock and the RTP time
    /// (in retina's extended timeline, ticks of the video clock) it corresponds to.
    sender_report: Option<(SystemTime, i64)>,
    /// Decode times from the frame order (B-frames); one per session.
    dts: DtsExtractor,
    dts_warned: bool,
    camera_id: String,
    redacted: String,
    password: String,
    ended: bool,
}

async fn next_frame(mut st: FrameState) -> Option<(Result<Frame, IngestError>, FrameState)> {
    if st.ended {
        return None;
    }
    loop {
        let item = st.demuxed.next().await;
        let err = |st: &FrameState, kind, msg: String| {
            IngestError::new(kind, Stage::Data, &st.camera_id, msg)
        };
        match item {
            None => {
                st.ended = true;
                let e = err(
                    &st,
                    FailureKind::Error,
                    format!("{} ended the session", st.redacted),
                );
                return Some((Err(e), st));
            }
            Some(Err(e)) if st.audio_failed(&e) => {
                // Audio is a bonus: drop it and keep the video going. retina stops a session
                // after some depacketizer errors; the next session then goes without audio.
                tracing::warn!(camera = %st.camera_id, error = %human(&e, &st.password), "camera audio failed; video only from now on");
                st.audio = None;
                st.audio_broken.store(true, Ordering::Relaxed);
            }
            Some(Err(e)) => {
                st.ended = true;
                let msg = format!("{} ({})", human(&e, &st.password), st.redacted);
                let e = err(&st, FailureKind::Error, msg);
                return Some((Err(e), st));
            }
            Some(Ok(CodecItem::VideoFrame(vf))) if vf.stream_id() == st.video => {
                if vf.has_new_parameters() || st.params.is_none() {
                    let p = match st.demuxed.streams()[st.video].parameters() {
                        Some(ParametersRef::Video(vp)) => codec_params(vp),
                        _ => Err("the camera sent video before its parameter sets".to_owned()),
                    };
                    match p {
                        // Keep the old Arc when nothing changed, so muxers see no discontinuity.
                        Ok(p) if st.params.as_deref() == Some(&p) => {}
                        Ok(p) => st.params = Some(Arc::new(p)),
                        Err(m) => {
                            st.ended = true;
                            let e = err(&st, FailureKind::Error, m);
                            return Some((Err(e), st));
                        }
                    }
                }
                let Some(params) = st.params.clone() else {
                    continue;
                };
                let ts = vf.timestamp();
                let clock_rate = ts.clock_rate().get();
                let pts = rescale(ts.elapsed(), clock_rate);
                let keyframe = vf.is_random_access_point();
                let wallclock = capture_time(st.sender_report, ts.elapsed(), clock_rate);
                let data = Bytes::from(vf.into_data());
                // retina gives presentation times only; a camera that sends B-frames needs
                // decode times derived from the frame order, as players expect.
                let sets = ParameterSets {
                    codec: params.codec,
                    vps: &params.vps,
                    sps: &params.sps,
                    pps: &params.pps,
                };
                let au = AccessUnit {
                    data: &data,
                    pts,
                    keyframe,
                };
                let dts = match st.dts.extract(&sets, &au) {
                    Ok(dts) => dts,
                    Err(e) => {
                        if !st.dts_warned {
                            st.dts_warned = true;
                            tracing::warn!(camera = %st.camera_id, error = %e, "cannot derive decode times; using presentation times");
                        }
                        pts
                    }
                };
                let frame = Frame {
                    data,
                    pts,
                    dts,
                    keyframe,
                    params: TrackParams::Video(params),
                    wallclock,
                };
                return Some((Ok(frame), st));
            }
            Some(Ok(CodecItem::Rtcp(rtcp))) if rtcp.stream_id() == st.video => {
                let Some(rtp) = rtcp.rtp_timestamp() else {
                    continue;
                };
                let sr = rtcp
                    .pkts()
                    .find_map(|p| p.as_sender_report().ok().flatten());
                if let Some(sr) = sr
                    && let Some(wall) = ntp_to_system_time(sr.ntp_timestamp().0)
                {
                    st.sender_report = Some((wall, rtp.elapsed()));
                }
            }
            Some(Ok(CodecItem::AudioFrame(af))) => {
                let Some(a) = st.audio.as_ref().filter(|a| a.stream == af.stream_id()) else {
                    continue;
                };
                // Same clock origin as the video (see the module docs), so the two stay in
                // sync through every consumer.
                let ts = af.timestamp();
                let clock_rate = ts.clock_rate().get();
                let pts = rescale(ts.elapsed(), clock_rate);
                let frame = Frame {
                    // retina 0.4 lends audio frames' bytes only as a slice (no `into_data` as
                    // for video): one copy of a few hundred bytes, 50 times a second.
                    data: Bytes::copy_from_slice(af.data()),
                    pts,
                    dts: pts,
                    keyframe: false,
                    params: TrackParams::Audio(a.params.clone()),
                    wallclock: capture_time(a.sender_report, ts.elapsed(), clock_rate),
                };
                return Some((Ok(frame), st));
            }
            Some(Ok(CodecItem::Rtcp(rtcp))) => {
                let Some(a) = st.audio.as_mut().filter(|a| a.stream == rtcp.stream_id()) else {
                    continue;
                };
                let Some(rtp) = rtcp.rtp_timestamp() else {
                    continue;
                };
                let sr = rtcp
                    .pkts()
                    .find_map(|p| p.as_sender_report().ok().flatten());
                if let Some(sr) = sr
                    && let Some(wall) = ntp_to_system_time(sr.ntp_timestamp().0)
                {
                    a.sender_report = Some((wall, rtp.elapsed()));
                }
            }
            // Metadata is not carried on the live path yet.
            Some(Ok(_)) => continue,
        }
    }
}

impl FrameState {
    /// Whether `e` is an error of the audio stream (retina names the stream's transport
    /// context in its packet errors, and each stream has its own).
    fn audio_failed(&self, e: &retina::Error) -> bool {
        self.audio
            .as_ref()
            .and_then(|a| a.ctx.as_deref())
            .is_some_and(|ctx| e.to_string().contains(ctx))
    }
}

/// Seconds between the NTP era (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// An RTCP NTP timestamp (32.32 fixed point seconds since 1900) as a `SystemTime`; `None`
/// before 1970 (cameras without a clock send zeros).
fn ntp_to_system_time(ntp: u64) -> Option<SystemTime> {
    let secs = (ntp >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let nanos = ((ntp & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos as u32))
}

/// When the frame at RTP time `ticks` was captured: the sender report's wall clock moved by
/// the RTP distance from it, or now (arrival) when the camera sent no usable report. A report
/// further than a minute from the frame is stale or bogus; arrival time is better then.
fn capture_time(report: Option<(SystemTime, i64)>, ticks: i64, clock_rate: u32) -> SystemTime {
    let arrival = SystemTime::now();
    let Some((wall, at)) = report else {
        return arrival;
    };
    let delta = ticks.saturating_sub(at);
    let rate = i64::from(clock_rate.max(1));
    if delta.unsigned_abs() > 60 * rate.unsigned_abs() {
        return arrival;
    }
    let offset = Duration::from_nanos(delta.unsigned_abs() * 1_000_000_000 / rate as u64);
    let t = if delta >= 0 {
        wall.checked_add(offset)
    } else {
        wall.checked_sub(offset)
    };
    t.unwrap_or(arrival)
}

/// The camera's parameter sets as our `CodecParams`, parsed by the media crate (which also
/// checks that they fit the avcC/hvcC record the muxers will write).
fn codec_params(vp: &VideoParameters) -> Result<CodecParams, String> {
    let parsed = match vp.codec_params() {
        VideoParametersCodec::H264 { sps, pps } => CodecParams::h264(sps, pps),
        VideoParametersCodec::H265 { vps, sps, pps } => CodecParams::h265(vps, sps, pps),
        other => return Err(format!("unsupported video codec {other:?}")),
    };
    parsed.map_err(|e| format!("the camera's parameter sets are not usable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> SourceSpec {
        SourceSpec {
            camera_id: "cam1".into(),
            url: crate::cameras::SecretUrl::new(url),
            transport: Transport::Auto,
        }
    }

    #[test]
    fn capture_time_follows_sender_reports() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t = capture_time(Some((wall, 90_000)), 180_000, 90_000);
        assert_eq!(t, wall + Duration::from_secs(1));
        let t = capture_time(Some((wall, 90_000)), 45_000, 90_000);
        assert_eq!(t, wall - Duration::from_millis(500));
        // Far from the report, or no report: arrival time.
        let before = SystemTime::now();
        assert!(capture_time(Some((wall, 0)), i64::MAX, 90_000) >= before);
        assert!(capture_time(None, 0, 90_000) >= before);
        // NTP 1900 era; zero (no clock) is refused.
        assert_eq!(ntp_to_system_time(0), None);
        let ntp = (NTP_UNIX_OFFSET + 1_800_000_000) << 32 | (1 << 31);
        assert_eq!(
            ntp_to_system_time(ntp),
            Some(wall + Duration::from_millis(500))
        );
    }

    #[test]
    fn credentials_leave_the_url_and_are_decoded() {
        let t = parse_target(&spec("rtsp://ad%40min:p%3Ass+w@cam.local:8554/s")).unwrap();
        assert_eq!(t.url.as_str(), "rtsp://cam.local:8554/s");
        let c = t.creds.unwrap();
        assert_eq!(c.username, "ad@min");
        assert_eq!(c.password, "p:ss+w");
        assert_eq!(t.redacted, "rtsp://ad%40min:***@cam.local:8554/s");
    }

    #[test]
    fn bad_urls_are_errors_without_password() {
        let e = parse_target(&spec("rtsps://u:topsecret@cam/s"))
            .err()
            .unwrap();
        assert_eq!(e.stage, Stage::Connect);
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(e.to_string().contains("camera cam1"), "{e}");
        assert!(parse_target(&spec("http://cam/s")).is_err());
        assert!(parse_target(&spec("rtsp:///s")).is_err());
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable() {
        // A port nothing listens on: bind, learn the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let src = Arc::new(RtspSource::default());
        let e = match src
            .open(&spec(&format!("rtsp://u:pw123@127.0.0.1:{port}/x")))
            .await
        {
            Err(e) => e,
            Ok(_) => panic!("connected to a closed port"),
        };
        assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
        assert_eq!(e.stage, Stage::Describe);
        assert!(!e.to_string().contains("pw123"));
    }

    #[tokio::test]
    async fn unknown_host_is_unreachable() {
        let src = Arc::new(RtspSource::new(RtspTimeouts {
            request: Duration::from_secs(5),
            ..Default::default()
        }));
        let e = match src.open(&spec("rtsp://no-such-host.invalid/x")).await {
            Err(e) => e,
            Ok(_) => panic!("resolved an .invalid host"),
        };
        assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
        assert_eq!(e.stage, Stage::Connect);
    }
}
