//! The NATS frame publisher: `{prefix}.camera.frame` messages, payload
//! `{"camera_id","timestamp","frame_number","resolution","fps","url"}` (API.md). The snapshot
//! output picks the frames and keeps them (it owns `url`); this file only carries the payloads
//! to NATS, on a connection of its own so frame messages never delay status messages.
//!
//! Video never waits for NATS: payloads go through a bounded queue that drops (and counts)
//! when full, and messages are skipped, not queued, while NATS is unreachable (a frame message
//! is worth nothing late). It must not import outputs.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State as ConnState;
use serde::Serialize;
use tokio::sync::mpsc;

use super::counters::Metrics;
use crate::config::NatsConfig;
use crate::redact::redact_url;
use crate::tasks::Tasks;

/// Payloads waiting for NATS; past this they are dropped (counted as skipped).
const QUEUE: usize = 1024;
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// The frame payload of API.md, nothing more (subscribers may check it strictly).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FramePayload {
    pub camera_id: String,
    /// Capture wall-clock time, Unix seconds with milliseconds.
    pub timestamp: f64,
    /// The camera's frames counted since this process started receiving it.
    pub frame_number: u64,
    /// `WIDTHxHEIGHT`.
    pub resolution: String,
    pub fps: f64,
    /// Fetches this frame as JPEG for `[nats] frame_keep`.
    pub url: String,
}

/// Where outputs hand frame payloads; cheap to clone.
#[derive(Clone)]
pub struct FrameSender {
    tx: mpsc::Sender<FramePayload>,
    metrics: Arc<Metrics>,
}

impl FrameSender {
    /// Queues one message; never waits.
    pub fn send(&self, payload: FramePayload) {
        if self.tx.try_send(payload).is_err() {
            self.metrics.nats_skipped(1);
        }
    }
}

/// Starts the publisher when NATS is configured: frame messages may be on for every camera
/// (`[nats] frame_interval`) or for some (their provisioning). It connects with the first
/// message, so a deployment without frame messages has no second connection.
pub fn start(tasks: &Tasks, config: &NatsConfig, metrics: Arc<Metrics>) -> Option<FrameSender> {
    if !config.enabled() {
        return None;
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let sender = FrameSender {
        tx,
        metrics: metrics.clone(),
    };
    tasks.spawn("nats frames", run(config.clone(), rx, metrics));
    Some(sender)
}

async fn run(config: NatsConfig, mut rx: mpsc::Receiver<FramePayload>, metrics: Arc<Metrics>) {
    let Some(first) = rx.recv().await else {
        return;
    };
    let shown_url = config
        .url
        .split(',')
        .map(redact_url)
        .collect::<Vec<_>>()
        .join(",");
    let mut options = async_nats::ConnectOptions::new()
        .name("camgate-frames")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            let exp = attempts.min(10) as u32;
            (Duration::from_millis(100) * 2u32.pow(exp)).min(Duration::from_secs(2))
        });
    if !config.token.is_empty() {
        options = options.token(config.token.clone());
    }
    if !config.credentials_file.is_empty() {
        options = match options.credentials_file(&config.credentials_file).await {
            Ok(o) => o,
            // The status publisher reports this one to the operator already.
            Err(_) => return,
        };
    }
    let (servers, login) = super::nats::servers_and_login(&config.url);
    let options = super::nats::with_login(options, login, &config);
    let client = match options.connect(servers).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(url = %shown_url, error = %e, "nats: frame messages are not published");
            return;
        }
    };
    let subject = format!("{}.camera.frame", config.subject_prefix);
    tracing::info!(url = %shown_url, subject, "nats: publishing frame messages");
    // The first message waits (bounded) for the connection it opened.
    let connecting = async {
        while client.connection_state() != ConnState::Connected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(PUBLISH_TIMEOUT, connecting).await;
    let mut pending = Some(first);
    loop {
        let payload = match pending.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => break,
            },
        };
        if client.connection_state() != ConnState::Connected {
            metrics.nats_skipped(1);
            continue;
        }
        let Ok(body) = serde_json::to_vec(&payload) else {
            continue; // plain numbers and strings always serialize
        };
        match tokio::time::timeout(
            PUBLISH_TIMEOUT,
            client.publish(subject.clone(), body.into()),
        )
        .await
        {
            Ok(Ok(())) => metrics.nats_published(),
            Ok(Err(e)) => metrics.nats_error(format!("frame publish failed: {e}")),
            Err(_) => metrics.nats_error(format!(
                "frame publish took longer than {PUBLISH_TIMEOUT:?}"
            )),
        }
    }
}
