//! The video library's counters, as the seed's `/api/metrics` reports them: bytes and chunks
//! the library handed to its clients (HTTP bodies and WebSocket frames), streams in flight,
//! and the process's memory and CPU (read from /proc by `metrics::process`, never estimated).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

/// Counters shared by every library route.
#[derive(Debug)]
pub struct LibraryMeter {
    started: Instant,
    bytes_sent: AtomicU64,
    chunks_sent: AtomicU64,
    active: AtomicU64,
    /// The previous CPU reading (wall clock, CPU seconds), so `cpu_percent` is the use since
    /// the last report rather than the lifetime average.
    last_cpu: Mutex<Option<(Instant, f64)>>,
}

/// One stream in flight; dropping it ends the stream.
#[derive(Debug)]
pub struct ActiveStream(Arc<LibraryMeter>);

impl ActiveStream {
    pub fn sent(&self, bytes: usize) {
        self.0.sent(bytes);
    }
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The `/api/metrics` answer (seed 002's fields).
#[derive(Debug, Serialize)]
pub struct LibraryMetrics {
    pub uptime_seconds: u64,
    pub bytes_sent: u64,
    pub mb_sent: f64,
    pub chunks_sent: u64,
    pub throughput_mbps: f64,
    pub active_streams: u64,
    /// `null` where the system does not say (not Linux).
    pub memory_mb: Option<f64>,
    pub cpu_percent: Option<f64>,
}

impl LibraryMeter {
    pub fn new(started: Instant) -> LibraryMeter {
        LibraryMeter {
            started,
            bytes_sent: AtomicU64::new(0),
            chunks_sent: AtomicU64::new(0),
            active: AtomicU64::new(0),
            last_cpu: Mutex::new(None),
        }
    }

    pub fn begin(self: &Arc<Self>) -> ActiveStream {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveStream(self.clone())
    }

    pub fn sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.chunks_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn report(&self) -> LibraryMetrics {
        let uptime = self.started.elapsed().as_secs_f64();
        let bytes = self.bytes_sent.load(Ordering::Relaxed);
        let process = crate::metrics::process::read();
        let now = Instant::now();
        let cpu_percent = process.cpu_seconds.map(|cpu| {
            let mut last = self.last_cpu.lock().unwrap_or_else(|p| p.into_inner());
            let (since, cpu_then) = last.unwrap_or((self.started, 0.0));
            *last = Some((now, cpu));
            let wall = now.duration_since(since).as_secs_f64();
            if wall > 0.0 {
                round1((cpu - cpu_then).max(0.0) / wall * 100.0)
            } else {
                0.0
            }
        });
        LibraryMetrics {
            uptime_seconds: uptime as u64,
            bytes_sent: bytes,
            mb_sent: round1(bytes as f64 / (1024.0 * 1024.0)),
            chunks_sent: self.chunks_sent.load(Ordering::Relaxed),
            throughput_mbps: if uptime > 0.0 {
                round1(bytes as f64 * 8.0 / 1e6 / uptime)
            } else {
                0.0
            },
            active_streams: self.active.load(Ordering::Relaxed),
            memory_mb: process
                .resident_memory_bytes
                .map(|b| round1(b as f64 / (1024.0 * 1024.0))),
            cpu_percent,
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
