//! The camera: GStreamer's RTSP server (tests/support/rtsp_camera.py) on a free 127.0.0.1
//! port, driven over its stdin/stdout. Owns that process only; knows nothing of camgate.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const USER: &str = "viewer";
pub const PASSWORD: &str = "s3cr3t-pw";

/// GStreamer's RTSP server serving H.264 320x240 at 25 fps on `/cam`, Digest auth unless
/// [`CameraOptions`] say otherwise.
pub struct Camera {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    pub port: u16,
}

impl Camera {
    pub fn start() -> Camera {
        Camera::options().start()
    }

    /// On a given port (0: any free one), e.g. to restart a stopped camera where it was.
    pub fn start_on(port: u16) -> Camera {
        Camera::options().port(port).start()
    }

    /// An H.265 camera (x265enc, rtph265pay).
    pub fn start_h265() -> Camera {
        Camera::options().codec("h265").start()
    }

    /// An H.264 camera with an IDR every `gop` frames (the default is one a second): a
    /// keyframe that arrives sooner was made for someone, e.g. in answer to a PLI.
    pub fn start_with_gop(gop: u32) -> Camera {
        Camera::options().gop(gop).start()
    }

    /// The defaults (H.264, Digest, any port, TCP and UDP), to adjust and `start`.
    pub fn options() -> CameraOptions {
        CameraOptions {
            port: 0,
            codec: "h264",
            gop: 0,
            auth: "digest",
            udp_only: false,
            audio: Audio::None,
        }
    }

    fn spawn_with(o: &CameraOptions) -> Camera {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rtsp_camera.py");
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(script)
            .args([
                "--port",
                &o.port.to_string(),
                "--user",
                USER,
                "--password",
                PASSWORD,
            ])
            .args(["--codec", o.codec, "--gop", &o.gop.to_string()])
            .args(["--auth", o.auth])
            .args(["--audio", o.audio.arg()]);
        if o.udp_only {
            command.arg("--udp-only");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start /usr/bin/python3 tests/support/rtsp_camera.py (GStreamer)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = super::process::lines(stdout);
        let mut cam = Camera {
            child,
            stdin,
            lines,
            port: 0,
        };
        let first = cam.expect_line("PORT ", Duration::from_secs(20));
        cam.port = first["PORT ".len()..].trim().parse().unwrap();
        cam
    }

    fn expect_line(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => continue,
                Err(_) => panic!("camera did not print {prefix:?} within {within:?}"),
            }
        }
    }

    fn command(&mut self, cmd: &str, reply: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        self.expect_line(reply, Duration::from_secs(10))
    }

    /// (active sessions, sessions ever created), counted by the server.
    pub fn sessions(&mut self) -> (u32, u32) {
        let c = self.counts();
        (c["active"], c["total"])
    }

    /// RTSP connections ever accepted (every DESCRIBE of a new attempt opens one).
    pub fn connections(&mut self) -> u32 {
        self.counts()["clients"]
    }

    /// SETUP requests the server refused (e.g. 461 for a transport it does not offer).
    pub fn refused_setups(&mut self) -> u32 {
        self.counts()["refused_setups"]
    }

    fn counts(&mut self) -> std::collections::HashMap<String, u32> {
        let l = self.command("sessions", "SESSIONS ");
        l["SESSIONS ".len()..]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
            .collect()
    }

    /// Stop sending video while keeping the session open.
    pub fn stall(&mut self) {
        self.command("stall", "OK stall");
    }

    /// Send video again after [`Camera::stall`].
    pub fn resume(&mut self) {
        self.command("resume", "OK resume");
    }

    pub fn url(&self, user: &str, password: &str) -> String {
        format!("rtsp://{user}:{password}@127.0.0.1:{}/cam", self.port)
    }

    pub fn good_url(&self) -> String {
        self.url(USER, PASSWORD)
    }

    /// Kills the server (connections drop as if the camera lost power).
    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start a [`Camera`]: `Camera::options().basic_auth().start()`.
#[derive(Clone, Debug)]
pub struct CameraOptions {
    port: u16,
    codec: &'static str,
    gop: u32,
    auth: &'static str,
    udp_only: bool,
    audio: Audio,
}

impl CameraOptions {
    /// On a given port (0: any free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// `h264` or `h265`.
    pub fn codec(mut self, codec: &'static str) -> Self {
        self.codec = codec;
        self
    }

    /// An IDR every `gop` frames (0: one a second).
    pub fn gop(mut self, gop: u32) -> Self {
        self.gop = gop;
        self
    }

    /// Basic instead of Digest: the camera offers only Basic, and a client must send
    /// `Authorization: Basic base64(user:password)` on every request.
    pub fn basic_auth(mut self) -> Self {
        self.auth = "basic";
        self
    }

    /// Offer only RTP over UDP: a SETUP asking for TCP interleaved is refused (461).
    pub fn udp_only(mut self) -> Self {
        self.udp_only = true;
        self
    }

    /// A second stream with audio.
    pub fn audio(mut self, audio: Audio) -> Self {
        self.audio = audio;
        self
    }

    pub fn start(self) -> Camera {
        Camera::spawn_with(&self)
    }
}

/// The audio stream a test camera sends next to its video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audio {
    None,
    /// AAC-LC 48 kHz mono (voaacenc, `mpeg4-generic`, pt 97).
    Aac,
    /// G.711 A-law 8 kHz (alawenc, `PCMA`, pt 8).
    Pcma,
    /// G.711 mu-law 8 kHz (mulawenc, `PCMU`, pt 0).
    Pcmu,
    /// Opus 48 kHz (opusenc, pt 98): a codec the RTSP client has no depacketizer for.
    Opus,
}

impl Audio {
    fn arg(self) -> &'static str {
        match self {
            Audio::None => "none",
            Audio::Aac => "aac",
            Audio::Pcma => "pcma",
            Audio::Pcmu => "pcmu",
            Audio::Opus => "opus",
        }
    }
}
