//! The ffmpeg source: a transcode profile of a camera, produced by ffmpeg as a child process
//! that reads *our* stream of that camera (the camera stays connected once) and writes H.264.
//!
//! Pipes: our frames go to ffmpeg's stdin as MPEG-TS (`media::mpegts::TsMuxer`, timestamps
//! kept), ffmpeg writes H.264 in MPEG-TS to stdout, which `media::mpegts::TsDemuxer` and
//! `AnnexBFrames` turn back into `Frame`s; stderr's last lines (redacted) become the error when
//! ffmpeg dies. No shell: the program and its argument vector are built from the config file's
//! typed profile (args.rs). `encoder = auto` is resolved once per process (encoders.rs).
//!
//! It implements `Source`, so the live path supervises a profile exactly like a camera (on
//! demand, idle stop, stall, backoff, state, last error, fps from its hub). It owns the child
//! process and the two helper tasks of one session: dropping the frame stream kills ffmpeg
//! (`kill_on_drop`), and on Linux the child also gets SIGKILL when camgate dies
//! (`PR_SET_PDEATHSIG`), so no ffmpeg outlives us. It does not know hubs: the live path hands it
//! an [`InputOpener`] that subscribes to the camera's stream and keeps it connected.

pub mod args;
pub mod encoders;

use std::any::Any;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, stream};
use media::mpegts::{AnnexBFrames, TsDemuxer, TsMuxer};
use media::{Codec, Frame};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::{FailureKind, FrameStream, IngestError, Source, SourceSpec, Stage};
use crate::redact::redact_url;
use crate::tasks::{TaskHandle, Tasks};

/// The H.264 encoders a profile may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoder {
    Libx264,
    Nvenc,
    Vaapi,
    Qsv,
}

impl Encoder {
    pub const ALL: [Encoder; 4] = [
        Encoder::Libx264,
        Encoder::Nvenc,
        Encoder::Vaapi,
        Encoder::Qsv,
    ];

    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            Encoder::Libx264 => "libx264",
            Encoder::Nvenc => "h264_nvenc",
            Encoder::Vaapi => "h264_vaapi",
            Encoder::Qsv => "h264_qsv",
        }
    }

    pub fn from_name(name: &str) -> Option<Encoder> {
        Encoder::ALL.into_iter().find(|e| e.ffmpeg_name() == name)
    }
}

/// What one profile asks ffmpeg for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// 0 = the camera's height...
    pub height: u32,
    /// ...capped at this (the built-in `h264` profile: at most 1080p).
    pub max_height: Option<u32>,
    /// 0 = the camera's rate.
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Frames between keyframes; 0 = one second.
    pub gop: u32,
    /// `None` = auto.
    pub encoder: Option<Encoder>,
    /// An H.264 camera's frames are passed through untouched (the built-in `h264` profile).
    pub passthrough_h264: bool,
}

impl Profile {
    pub fn gop(&self) -> u32 {
        match (self.gop, self.fps) {
            (0, 0) => 25,
            (0, fps) => fps,
            (g, _) => g,
        }
    }
}

/// The camera's frames for one session of a profile, and what keeps the camera connected
/// while the session lasts (dropped with it).
pub struct ProfileInput {
    pub frames: BoxStream<'static, Frame>,
    pub keep: Box<dyn Any + Send>,
}

/// Opens the camera's stream for a profile session; `None` when the camera is gone.
pub type InputOpener = Arc<dyn Fn() -> Option<ProfileInput> + Send + Sync>;

/// What every profile shares: the ffmpeg program, the cached encoder probe, the task group
/// of the sessions' helper tasks.
pub struct Transcoder {
    ffmpeg: PathBuf,
    probe: tokio::sync::OnceCell<encoders::Probe>,
    tasks: Tasks,
}

impl Transcoder {
    pub fn new(ffmpeg: impl Into<PathBuf>, tasks: Tasks) -> Arc<Transcoder> {
        Arc::new(Transcoder {
            ffmpeg: ffmpeg.into(),
            probe: tokio::sync::OnceCell::new(),
            tasks,
        })
    }

    /// The encoder for `wanted` (None = auto), probing ffmpeg the first time.
    pub async fn encoder(&self, wanted: Option<Encoder>) -> Result<Encoder, String> {
        let probe = self
            .probe
            .get_or_init(|| async {
                let p = encoders::probe(&self.ffmpeg).await;
                let names: Vec<&str> = p.working.iter().map(|e| e.ffmpeg_name()).collect();
                tracing::info!(working = ?names, notes = ?p.notes, "ffmpeg encoders probed");
                p
            })
            .await;
        if probe.working.is_empty() {
            return Err(probe
                .notes
                .first()
                .cloned()
                .unwrap_or_else(|| "ffmpeg has no H.264 encoder".into()));
        }
        probe.choose(wanted)
    }
}

/// Why spawning `ffmpeg` failed, in words an operator acts on.
pub(crate) fn spawn_error(ffmpeg: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "ffmpeg not found ({} is not on PATH); install ffmpeg to use transcode profiles",
            ffmpeg.display()
        )
    } else {
        format!("cannot start {}: {e}", ffmpeg.display())
    }
}

/// One profile of one camera as a `Source`.
pub struct FfmpegSource {
    pub transcoder: Arc<Transcoder>,
    pub profile: Profile,
    pub input: InputOpener,
    /// How long a session waits for the camera's first keyframe.
    pub first_frame_timeout: Duration,
}

impl Source for FfmpegSource {
    fn open(&self, spec: &SourceSpec) -> BoxFuture<'static, Result<FrameStream, IngestError>> {
        let id = spec.camera_id.clone();
        let transcoder = self.transcoder.clone();
        let profile = self.profile.clone();
        let input = self.input.clone();
        let wait = self.first_frame_timeout;
        Box::pin(async move {
            let fail = |kind, stage, msg: String| {
                IngestError::new(kind, stage, &id, format!("profile {}: {msg}", profile.name))
            };
            let Some(mut input) = input() else {
                return Err(fail(
                    FailureKind::Error,
                    Stage::Connect,
                    "the camera's stream is gone".into(),
                ));
            };
            let first = tokio::time::timeout(wait, async {
                while let Some(f) = input.frames.next().await {
                    if f.keyframe && f.video().is_some() {
                        return Some(f);
                    }
                }
                None
            })
            .await;
            let first = match first {
                Err(_) => {
                    return Err(fail(
                        FailureKind::Unreachable,
                        Stage::Connect,
                        format!("the camera sent no keyframe within {wait:?}"),
                    ));
                }
                Ok(None) => {
                    return Err(fail(
                        FailureKind::Error,
                        Stage::Connect,
                        "the camera's stream ended".into(),
                    ));
                }
                Ok(Some(f)) => f,
            };
            let codec = first.video().map(|p| p.codec);
            if profile.passthrough_h264 && codec == Some(Codec::H264) {
                // The camera already sends what every browser decodes: no ffmpeg, same frames.
                let keep = input.keep;
                let frames = stream::once(async move { first })
                    .chain(input.frames)
                    .map(move |f| {
                        let _still_connected = &keep;
                        Ok(f)
                    });
                return Ok(frames.boxed());
            }
            let encoder = transcoder
                .encoder(profile.encoder)
                .await
                .map_err(|m| fail(FailureKind::Error, Stage::Setup, m))?;
            let args = args::transcode_args(&profile, encoder);
            tracing::info!(camera = %id, profile = %profile.name, encoder = encoder.ffmpeg_name(), "starting ffmpeg");
            let mut child = spawn(&transcoder.ffmpeg, &args).map_err(|e| {
                fail(
                    FailureKind::Error,
                    Stage::Connect,
                    spawn_error(&transcoder.ffmpeg, &e),
                )
            })?;
            let (Some(mut stdin), Some(stdout), Some(stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(fail(
                    FailureKind::Error,
                    Stage::Connect,
                    "ffmpeg's pipes are missing".into(),
                ));
            };
            let codec = codec.unwrap_or(Codec::H264);
            let tail = Arc::new(Mutex::new(VecDeque::new()));
            let writer =
                transcoder
                    .tasks
                    .spawn(format!("ffmpeg input {id}~{}", profile.name), async move {
                        let keep = input.keep;
                        let mut mux = TsMuxer::new(codec);
                        let mut next = Some(first);
                        loop {
                            let Some(f) = next.take() else { break };
                            // A frame the muxer refuses (malformed framing) is skipped, not fatal.
                            if let Ok(ts) = mux.frame(&f)
                                && !ts.is_empty()
                                && stdin.write_all(&ts).await.is_err()
                            {
                                break; // ffmpeg is gone; its stdout ends and the session with it.
                            }
                            next = input.frames.next().await;
                        }
                        drop(keep);
                    });
            let tail_w = tail.clone();
            let errors = transcoder.tasks.spawn(
                format!("ffmpeg stderr {id}~{}", profile.name),
                async move {
                    let mut lines = BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let mut line = redact_url(line.trim());
                        if let Some((cut, _)) = line.char_indices().nth(300) {
                            line.truncate(cut);
                        }
                        let mut t = tail_w.lock().unwrap_or_else(|p| p.into_inner());
                        if t.len() == 5 {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                },
            );
            let run = Run {
                id: id.clone(),
                profile: profile.name.clone(),
                child,
                stdout,
                demux: TsDemuxer::new(),
                frames: AnnexBFrames::new(),
                queue: VecDeque::new(),
                tail,
                buf: vec![0; 64 * 1024],
                done: false,
                _tasks: [AbortOnDrop(writer), AbortOnDrop(errors)],
            };
            Ok(stream::unfold(run, Run::step).boxed())
        })
    }
}

fn spawn(ffmpeg: &Path, args: &[String]) -> std::io::Result<Child> {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; prctl is one.
    // The death signal follows the spawning thread, a runtime worker that lives as long as
    // the runtime, so ffmpeg dies with camgate even on `kill -9`.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

/// Aborts a helper task when the session's frame stream is dropped.
struct AbortOnDrop(TaskHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reading side of one ffmpeg session.
struct Run {
    id: String,
    profile: String,
    child: Child,
    stdout: ChildStdout,
    demux: TsDemuxer,
    frames: AnnexBFrames,
    queue: VecDeque<Frame>,
    tail: Arc<Mutex<VecDeque<String>>>,
    buf: Vec<u8>,
    done: bool,
    _tasks: [AbortOnDrop; 2],
}

impl Run {
    async fn step(mut self) -> Option<(Result<Frame, IngestError>, Run)> {
        loop {
            if let Some(f) = self.queue.pop_front() {
                return Some((Ok(f), self));
            }
            if self.done {
                return None;
            }
            // A read error ends the session like the end of output does.
            let n: usize = self.stdout.read(&mut self.buf).await.unwrap_or_default();
            if n == 0 {
                self.done = true;
                let e = self.exited().await;
                return Some((Err(e), self));
            }
            let now = SystemTime::now();
            for pes in self.demux.push(&self.buf[..n]) {
                match self.frames.frame(&pes, now) {
                    Ok(Some(f)) => self.queue.push_back(f),
                    Ok(None) => {}
                    Err(e) => {
                        self.done = true;
                        let msg = format!("ffmpeg wrote H.264 we cannot read: {e}");
                        return Some((Err(self.error(msg)), self));
                    }
                }
            }
        }
    }

    fn error(&self, msg: String) -> IngestError {
        IngestError::new(
            FailureKind::Error,
            Stage::Data,
            &self.id,
            format!("profile {}: {msg}", self.profile),
        )
    }

    /// The error for an ffmpeg whose output ended: its exit status and stderr's last lines.
    async fn exited(&mut self) -> IngestError {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(s)) => s.to_string(),
            _ => "still running".into(),
        };
        // stderr may trail stdout by a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let tail: Vec<String> = self
            .tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let said = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.join(" / "))
        };
        self.error(format!("ffmpeg ended ({status}){said}"))
    }
}
