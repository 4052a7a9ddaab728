//! `camgate sim`: the real binary serves simulated cameras that ffprobe reads over TCP and
//! UDP, honours the global `--listen`, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");
const BOUND: Duration = Duration::from_secs(60);

/// Waits for `child` with a bound; kills it if the bound passes.
fn wait_bounded(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > BOUND {
            let _ = child.kill();
            panic!("{what} did not finish within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
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
        let out = wait_bounded(probe, "ffprobe");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "h264,320,240");
    }
    // SIGTERM (the shell's built-in kill) stops it cleanly.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", guard.0.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = guard.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < BOUND, "camgate sim ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
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
