//! The processes a benchmark runs: `camgate sim` ([`Sim`]), `camgate serve` ([`Camgate`]) and
//! any other child ([`command`]). Every child is killed when its guard drops, and also when
//! the bench itself dies (`PR_SET_PDEATHSIG`), so a Ctrl-C, a panic or a `timeout` leaves
//! nothing running. Every wait is bounded.

// Shared by every section; not every section uses every helper.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::ctx::Ctx;

/// Raises RLIMIT_NOFILE to its hard limit; children inherit it (hundreds of cameras and
/// thousands of viewers need many sockets).
pub fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                eprintln!("camgate-bench: cannot raise RLIMIT_NOFILE");
            }
        }
    }
}

/// A command for a child process of the bench: stdin null, killed when its `Child` drops and
/// when the bench dies (the parent-death signal), stdout/stderr discarded unless set again.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The bench died between fork and prctl: do not outlive it.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd
}

/// A free TCP port on 127.0.0.1 (bound and released; for tools that cannot take port 0).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a free port")?;
    Ok(l.local_addr()?.port())
}

/// A fresh log file under `OUT/logs/`, named `{name}-{n}.log`.
pub fn log_file(ctx: &Ctx, name: &str) -> Result<(PathBuf, std::fs::File)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed) + 1;
    let path = ctx.log_path(&format!("{name}-{n}"));
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok((path, file))
}

/// Kills `child` (SIGKILL) and waits for it to be gone, bounded.
pub async fn kill_and_wait(child: &mut Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}

/// The simulator's settings (`camgate sim` flags).
#[derive(Debug, Clone)]
pub struct SimOpts {
    pub cameras: usize,
    /// Width, height.
    pub size: (u32, u32),
    pub fps: u32,
    /// Encoder target, as `--bitrate` takes it (`2M`, `500k`).
    pub bitrate: String,
    /// Time between IDR frames.
    pub gop: Duration,
    /// Length of the looped clip (ignored with `live`).
    pub clip: Duration,
    /// Encode live (current burned-in clock) instead of looping a clip.
    pub live: bool,
    /// Further flags (faults, auth).
    pub extra_args: Vec<String>,
}

impl SimOpts {
    /// The camera as the report describes it: `1920x1080, 25 fps, 2Mbit/s, 1000 ms GOP,
    /// looped clip` (or `live-encoded`).
    pub fn describe(&self) -> String {
        format!(
            "{}x{}, {} fps, {}bit/s, {} ms GOP, {}",
            self.size.0,
            self.size.1,
            self.fps,
            self.bitrate,
            self.gop.as_millis(),
            if self.live {
                "live-encoded"
            } else {
                "looped clip"
            }
        )
    }
}

impl Default for SimOpts {
    /// The benchmark's camera: 1080p, 25 fps, 2 Mbit/s, 1 s GOP, a looped 2 s clip.
    fn default() -> SimOpts {
        SimOpts {
            cameras: 1,
            size: (1920, 1080),
            fps: 25,
            bitrate: "2M".to_string(),
            gop: Duration::from_secs(1),
            clip: Duration::from_secs(2),
            live: false,
            extra_args: Vec::new(),
        }
    }
}

fn dur_arg(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// A running `camgate sim`; killed on drop.
pub struct Sim {
    child: Child,
    pid: u32,
    port: u16,
    pub opts: SimOpts,
    pub log: PathBuf,
}

impl Sim {
    /// Starts `camgate sim` on a free 127.0.0.1 port and waits (bounded) until it prints its
    /// URLs and answers an RTSP OPTIONS.
    pub async fn start(ctx: &Ctx, opts: SimOpts) -> Result<Sim> {
        let (log, log_file) = log_file(ctx, "sim")?;
        let mut cmd = command(&ctx.camgate);
        cmd.env_clear()
            .args(["sim", "--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(["--cameras", &opts.cameras.to_string()])
            .args(["--size", &format!("{}x{}", opts.size.0, opts.size.1)])
            .args(["--fps", &opts.fps.to_string()])
            .args(["--bitrate", &opts.bitrate])
            .args(["--gop", &dur_arg(opts.gop)])
            .args(["--clip", &dur_arg(opts.clip)])
            .args(&opts.extra_args)
            .stdout(Stdio::piped())
            .stderr(log_file);
        if opts.live {
            cmd.arg("--live");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {} sim", ctx.camgate.display()))?;
        let pid = child.id().context("camgate sim exited at once")?;
        let stdout = child.stdout.take().context("sim stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // It prints its URLs once the clip is encoded and it listens (a 1080p clip takes a
        // few seconds to encode; longer on a busy machine or in a debug build).
        let port = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.trim().strip_prefix("rtsp://127.0.0.1:")
                    && let Some((port, _)) = rest.split_once('/')
                {
                    return Ok(port.parse::<u16>()?);
                }
            }
            bail!("camgate sim exited before listening; see {}", log.display())
        })
        .await
        .with_context(|| format!("camgate sim did not start in 120 s; see {}", log.display()))??;
        // Keep reading stdout so the sim never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        rtsp_options(port)
            .await
            .with_context(|| format!("camgate sim does not answer OPTIONS on port {port}"))?;
        Ok(Sim {
            child,
            pid,
            port,
            opts,
            log,
        })
    }

    /// `rtsp://127.0.0.1:PORT/cam{i}`, `i` from 1.
    pub fn url(&self, i: usize) -> String {
        format!("rtsp://127.0.0.1:{}/cam{i}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it and waits until it is gone (so the next measurement does not see it).
    pub async fn stop(mut self) {
        kill_and_wait(&mut self.child).await;
    }
}

/// One RTSP OPTIONS request; Ok if the answer is `RTSP/1.0 200`.
async fn rtsp_options(port: u16) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let req = format!("OPTIONS rtsp://127.0.0.1:{port}/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await?;
        let head = String::from_utf8_lossy(&buf[..n]);
        if head.starts_with("RTSP/1.0 200") {
            Ok(())
        } else {
            bail!("unexpected answer {head:?}")
        }
    })
    .await
    .context("no answer in 10 s")?
}

/// How to run `camgate serve`.
#[derive(Debug, Clone)]
pub struct CamgateOpts {
    /// Extra environment (`CAMGATE_STREAMS_IDLE_TIMEOUT`, ...). The rest of the environment
    /// is cleared so no user setting leaks in.
    pub env: Vec<(String, String)>,
    /// `--log-level` (default `warn`; the bench reads the listening line regardless).
    pub log_level: String,
    /// A config file's text, passed as `--config` (sections with no variables, such as
    /// `[profiles.NAME]`); `None` = no file.
    pub config_toml: Option<String>,
}

impl Default for CamgateOpts {
    fn default() -> CamgateOpts {
        CamgateOpts {
            env: Vec::new(),
            log_level: "warn".to_string(),
            config_toml: None,
        }
    }
}

/// A running `camgate serve` with a fresh data directory; killed on drop.
pub struct Camgate {
    child: Child,
    pid: u32,
    base: String,
    http: reqwest::Client,
    pub log: PathBuf,
    // Dropped after the child (fields drop in order): the data directory.
    _data: tempfile::TempDir,
}

impl Camgate {
    /// Starts `camgate serve` on a free port (it binds 127.0.0.1:0 and logs the address) with
    /// a fresh temporary data directory, and waits (bounded) until `/health` answers 200.
    pub async fn start(ctx: &Ctx, opts: CamgateOpts) -> Result<Camgate> {
        let data = tempfile::Builder::new()
            .prefix("camgate-bench-")
            .tempdir()
            .context("cannot create a data directory")?;
        let (log, mut log_file) = log_file(ctx, "camgate")?;
        // The "listening" line is at info level from camgate::server; everything else at
        // the chosen level.
        let filter = format!("{},camgate::server=info", opts.log_level);
        let mut cmd = command(&ctx.camgate);
        cmd.env_clear()
            .envs(std::env::var_os("PATH").map(|p| ("PATH", p)))
            .envs(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .current_dir(data.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--log-level", &filter])
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .stderr(Stdio::piped());
        if let Some(text) = &opts.config_toml {
            let file = data.path().join("camgate.toml");
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
            cmd.arg("--config").arg(file);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {} serve", ctx.camgate.display()))?;
        let pid = child.id().context("camgate exited at once")?;
        let stderr = child.stderr.take().context("camgate stderr")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        // Copies every log line to the log file; hands the listening address over once.
        tokio::spawn(async move {
            use std::io::Write;
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(log_file, "{line}");
                if tx.is_some()
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                    && let Some(addr) = v["addr"].as_str()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .with_context(|| format!("camgate did not listen within 60 s; see {}", log.display()))?
            .with_context(|| format!("camgate exited before listening; see {}", log.display()))?;
        let gate = Camgate {
            child,
            pid,
            base: format!("http://{addr}"),
            http: ctx.http.clone(),
            log,
            _data: data,
        };
        gate.wait_healthy(Duration::from_secs(30)).await?;
        Ok(gate)
    }

    async fn wait_healthy(&self, bound: Duration) -> Result<()> {
        let deadline = Instant::now() + bound;
        loop {
            let url = format!("{}/health", self.base);
            match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if Instant::now() > deadline => bail!("{url} answers {}", r.status()),
                Err(e) if Instant::now() > deadline => bail!("{url}: {e}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Provisions camera `id` (`POST /cameras/provision`, transport TCP).
    pub async fn provision(&self, id: &str, rtsp_url: &str, on_demand: bool) -> Result<()> {
        self.provision_json(json!({
            "camera_id": id,
            "rtsp_url": rtsp_url,
            "on_demand": on_demand,
            "transport": "tcp",
        }))
        .await
    }

    /// Provisions a camera with any body `POST /cameras/provision` takes.
    pub async fn provision_json(&self, body: Value) -> Result<()> {
        let url = format!("{}/cameras/provision", self.base);
        let r = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status();
        if !status.is_success() {
            let text = r.text().await.unwrap_or_default();
            bail!("POST {url} answered {status}: {text}");
        }
        Ok(())
    }

    /// `DELETE /cameras/{id}`.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let url = format!("{}/cameras/{id}", self.base);
        let r = self.http.delete(&url).send().await?;
        if !r.status().is_success() {
            bail!("DELETE {url} answered {}", r.status());
        }
        Ok(())
    }

    /// The text of `/metrics`.
    /// Waits until camera `id` reports `live`, for at most `within`.
    pub async fn wait_live(&self, id: &str, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let state = self
                .get_json(&format!("/cameras/{id}/status"))
                .await
                .ok()
                .and_then(|v| v["state"].as_str().map(str::to_owned));
            if state.as_deref() == Some("live") {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "camera {id} not live after {within:?} (state {state:?}); see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn metrics(&self) -> Result<String> {
        self.get_text("/metrics").await
    }

    /// GET `path` (e.g. `/cameras/1/status`) as JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let r = self.http.get(&url).send().await?;
        if !r.status().is_success() {
            bail!("GET {url} answered {}", r.status());
        }
        Ok(r.json().await?)
    }

    /// GET `path` as text; an error unless 2xx.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let r = self.http.get(&url).send().await?;
        if !r.status().is_success() {
            bail!("GET {url} answered {}", r.status());
        }
        Ok(r.text().await?)
    }

    /// Kills it and waits until it is gone.
    pub async fn stop(mut self) {
        kill_and_wait(&mut self.child).await;
    }
}

/// A temporary directory for a baseline process's output, removed on drop.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("cannot create a temporary directory")
}

/// Waits until `path` exists, bounded.
pub async fn wait_for_file(path: &Path, bound: Duration) -> Result<()> {
    let deadline = Instant::now() + bound;
    while !path.exists() {
        if Instant::now() > deadline {
            bail!("{} did not appear within {bound:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
