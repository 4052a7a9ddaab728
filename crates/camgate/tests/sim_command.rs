//! `camgate sim`: the real binary serves simulated cameras that ffprobe reads over TCP and
//! UDP, honours the global `--listen`, and stops cleanly on SIGTERM.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::process::{self, KillOnDrop};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");
const BOUND: Duration = Duration::from_secs(60);

#[test]
fn camgate_sim_serves_cameras_to_ffprobe() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .env_clear()
        .current_dir(dir.path())
        .args([
            "sim",
            "--cameras",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--size",
            "320x240",
            "--fps",
            "10",
            "--bitrate",
            "300k",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn camgate sim");
    let stdout = child.stdout.take().unwrap();
    let mut guard = KillOnDrop(child);
    let rx = process::lines(stdout);
    // It prints one URL per camera once it serves.
    let mut urls = Vec::new();
    while urls.len() < 2 {
        let line = rx
            .recv_timeout(BOUND)
            .expect("camgate sim prints its camera URLs");
        if let Some(url) = line.trim().strip_prefix("rtsp://") {
            urls.push(format!("rtsp://{url}"));
        }
    }
    assert!(urls[1].ends_with("/cam2"), "{urls:?}");
    for transport in ["tcp", "udp"] {
        let probe = Command::new("ffprobe")
            .args([
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
                &urls[1],
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffprobe is installed (.ci/run installs it)");
        let out = process::wait_output(probe, BOUND, "ffprobe");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "h264,320,240");
    }
    // SIGTERM stops it cleanly.
    process::signal(&guard.0, "TERM");
    let exit = process::wait_exit(&mut guard.0, BOUND, "camgate sim ignored SIGTERM");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn sim_help_lists_its_options() {
    let out = Command::new(BIN)
        .env_clear()
        .args(["sim", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--cameras",
        "--listen",
        "--size",
        "--fps",
        "--gop",
        "--bitrate",
        "--live",
        "--user",
        "--password",
        "--drop-every",
        "--stall-every",
        "--stall-for",
        "--garbage-every",
        "--jump-every",
        "--session-timeout",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
