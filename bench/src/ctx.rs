//! `Ctx`: what every section gets: the mode (quick or full), where to write, which camgate
//! binary to run, the repository root and one shared HTTP client.

// Sections use what they need of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

pub struct Ctx {
    /// `--quick`: short windows and small N; the figures only prove the harness works.
    pub quick: bool,
    /// `--out`: report.md, results.json, and `logs/` with every process's stderr.
    pub out: PathBuf,
    /// The camgate binary under test (also runs `camgate sim`).
    pub camgate: PathBuf,
    /// The repository root (bench/REPORT.md, bench/glass/...), fixed at build time.
    pub root: PathBuf,
    /// For the bench's own requests (provisioning, /metrics, playlists). No proxy: the
    /// processes under test listen on 127.0.0.1 only.
    pub http: reqwest::Client,
}

impl Ctx {
    pub fn new(quick: bool, out: PathBuf, camgate: PathBuf) -> Result<Ctx> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(16)
            .build()
            .context("cannot build the HTTP client")?;
        // bench/ is one level below the workspace root.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        // Children run in their own temporary directories, so a relative `--camgate` path
        // would name nothing there.
        let camgate = std::path::absolute(&camgate)
            .with_context(|| format!("cannot resolve {}", camgate.display()))?;
        Ok(Ctx {
            quick,
            out,
            camgate,
            root,
            http,
        })
    }

    /// `full` normally, `quick` with `--quick`.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// A log file path under `OUT/logs/` for a process named `name`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.out.join("logs").join(format!("{name}.log"))
    }
}
