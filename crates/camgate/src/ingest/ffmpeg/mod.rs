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
//!
//! Grids (grid.rs builds their arguments; live/grids.rs runs them) reuse the two halves:
//! [`spawn`], which can give ffmpeg extra input pipes (`pipe:3`, `pipe:4`, ... one per tile),
//! and [`output`], ffmpeg's stdout as our frames with its stderr tail as the error.

pub mod args;
pub mod encoders;
pub mod grid;

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

    /// The ffmpeg program started.
    pub fn ffmpeg_path(&self) -> PathBuf {
        self.ffmpeg.clone()
    }

    /// Where sessions' helper tasks run.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Probes ffmpeg's encoders now, in the background, so the first viewer of a profile or
    /// grid does not wait for it (a test encode per hardware encoder takes seconds, which can
    /// outlast a player's first playlist request). Must be called inside the runtime: the
    /// probe's ffmpeg children are spawned from a runtime worker (PR_SET_PDEATHSIG).
    pub fn warm_up(self: &Arc<Self>) {
        let me = self.clone();
        self.tasks.spawn("ffmpeg encoder probe", async move {
            // The choice itself is logged by the probe; an error resurfaces at first use.
            let _ = me.encoder(None).await;
        });
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
            let (mut child, _) = spawn(&transcoder.ffmpeg, &args, 0).map_err(|e| {
                fail(
                    FailureKind::Error,
                    Stage::Connect,
                    spawn_error(&transcoder.ffmpeg, &e),
                )
            })?;
            let Some(mut stdin) = child.stdin.take() else {
                return Err(fail(
                    FailureKind::Error,
                    Stage::Connect,
                    "ffmpeg's pipes are missing".into(),
                ));
            };
            let codec = codec.unwrap_or(Codec::H264);
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
            output(
                &transcoder,
                &id,
                format!("profile {}", profile.name),
                child,
                vec![writer],
            )
            .map_err(|m| fail(FailureKind::Error, Stage::Connect, m))
        })
    }
}

/// ffmpeg's output as our frames: stdout (H.264 in MPEG-TS) read by the returned stream,
/// stderr's last lines kept for the error when ffmpeg ends. `what` starts every error
/// ("profile 720p", "grid lobby"). The stream owns the child and `tasks` (aborted with it).
pub(crate) fn output(
    transcoder: &Transcoder,
    id: &str,
    what: String,
    mut child: Child,
    tasks: Vec<TaskHandle>,
) -> Result<FrameStream, String> {
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("ffmpeg's pipes are missing".into());
    };
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let tail_w = tail.clone();
    let errors = transcoder
        .tasks
        .spawn(format!("ffmpeg stderr {id} {what}"), async move {
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
        });
    let mut helpers: Vec<AbortOnDrop> = tasks.into_iter().map(AbortOnDrop).collect();
    helpers.push(AbortOnDrop(errors));
    let run = Run {
        id: id.to_owned(),
        what,
        child,
        stdout,
        demux: TsDemuxer::new(),
        frames: AnnexBFrames::new(),
        queue: VecDeque::new(),
        tail,
        buf: vec![0; 64 * 1024],
        done: false,
        _tasks: helpers,
    };
    Ok(stream::unfold(run, Run::step).boxed())
}

/// The first file descriptor of the extra input pipes (`pipe:3`, `pipe:4`, ...).
pub(crate) const FIRST_PIPE_FD: i32 = 3;

/// Starts ffmpeg with stdin, stdout and stderr piped and `extra` more pipes into it, which it
/// reads as `pipe:3`, `pipe:4`, ... (a grid's tiles); returns their writing ends. Must run on
/// a runtime worker thread (see below), never in `spawn_blocking`.
pub(crate) fn spawn(
    ffmpeg: &Path,
    args: &[String],
    extra: usize,
) -> std::io::Result<(Child, Vec<tokio::net::unix::pipe::Sender>)> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // The copies below are made into a fixed array: no allocation between fork and exec.
    if extra > 64 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "at most 64 extra pipes",
        ));
    }
    let mut reads: Vec<OwnedFd> = Vec::with_capacity(extra);
    let mut writes = Vec::with_capacity(extra);
    for _ in 0..extra {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills the two-element array we own. Close-on-exec, so no other child
        // inherits either end (a writing end left in another process would hide ffmpeg's EOF).
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        reads.push(r);
        writes.push(w);
    }
    let raw_reads: Vec<i32> = reads.iter().map(|r| r.as_raw_fd()).collect();
    let mut cmd = Command::new(ffmpeg);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; prctl, fcntl and
    // dup2 are. The death signal follows the spawning thread, a runtime worker that lives as
    // long as the runtime, so ffmpeg dies with camgate even on `kill -9`. The pipes' reading
    // ends are first copied above any target number, so placing one at 3+i cannot close
    // another still to be placed; dup2 clears close-on-exec on the copy ffmpeg keeps.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut high = [0i32; 64];
            for (i, fd) in raw_reads.iter().enumerate().take(64) {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 1000);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (target, fd) in (FIRST_PIPE_FD..).zip(high.iter().take(raw_reads.len())) {
                if libc::dup2(*fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // ffmpeg has its copies; ours of the reading ends close here.
    drop(reads);
    // tokio makes our ends non-blocking; ffmpeg's ends (other open file descriptions) stay
    // blocking, as it expects.
    let senders = writes
        .into_iter()
        .map(tokio::net::unix::pipe::Sender::from_owned_fd)
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok((child, senders))
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
    what: String,
    child: Child,
    stdout: ChildStdout,
    demux: TsDemuxer,
    frames: AnnexBFrames,
    queue: VecDeque<Frame>,
    tail: Arc<Mutex<VecDeque<String>>>,
    buf: Vec<u8>,
    done: bool,
    _tasks: Vec<AbortOnDrop>,
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
            format!("{}: {msg}", self.what),
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
