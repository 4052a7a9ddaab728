//! Helpers shared by the simulator's integration tests: small configurations and bounded
//! runs of the real ffmpeg/ffprobe binaries.

#![allow(dead_code)]

use std::process::Output;
use std::time::Duration;

use sim::{SimConfig, SimHandle, SimServer};

/// Bound on any external client run; generous for a busy 2-core CI machine.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn small_config() -> SimConfig {
    SimConfig {
        cameras: 4,
        width: 320,
        height: 240,
        fps: 10,
        gop: Duration::from_secs(1),
        clip: Duration::from_secs(2),
        bitrate: 400_000,
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    SimServer::start(config).await.expect("simulator starts")
}

/// Runs a program with a time bound; the child is killed if the bound passes.
pub async fn run(program: &str, args: &[String]) -> Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    tokio::time::timeout(CLIENT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish in {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// `url` with `user:password@` inserted after the scheme.
pub fn with_creds(url: &str, user: &str, password: &str) -> String {
    url.replacen("rtsp://", &format!("rtsp://{user}:{password}@"), 1)
}

/// Decodes `frames` frames of `url` with ffmpeg into raw pixels of `pix_fmt` on stdout.
pub async fn ffmpeg_frames(url: &str, transport: &str, frames: u32, pix_fmt: &str) -> Output {
    let args: Vec<String> = [
        "-nostdin",
        "-v",
        "error",
        "-rtsp_transport",
        transport,
        "-i",
        url,
        "-frames:v",
        &frames.to_string(),
        "-f",
        "rawvideo",
        "-pix_fmt",
        pix_fmt,
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run("ffmpeg", &args).await
}

/// ffprobe's view of the first video stream of `url`: `codec_name,width,height`.
pub async fn ffprobe_stream(url: &str, transport: &str) -> Output {
    let args: Vec<String> = [
        "-v",
        "error",
        "-rtsp_transport",
        transport,
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run("ffprobe", &args).await
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Polls `f` every 50 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}
