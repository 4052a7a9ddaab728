//! The NATS publisher: `{prefix}.camera.status` on every state change and with every periodic
//! status, payload `{"camera_id","online","fps","bitrate_kbps","dropped_frames","uptime_seconds"}`
//! (API.md). One task, fed by its own bus subscription.
//!
//! Video never waits for NATS: the bus never blocks its publishers, and this task skips
//! messages while NATS is unreachable instead of queueing stale ones. The client (async-nats)
//! reconnects by itself; on every (re)connection, and after falling behind on the bus, the
//! task republishes every camera's current status, so subscribers converge on the truth.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State as ConnState;
use serde::Serialize;
use tokio::sync::mpsc;

use super::counters::{Metrics, NatsStatus};
use super::{Event, EventBus, Received};
use crate::cameras::{CameraStatus, StreamState};
use crate::config::NatsConfig;
use crate::hub::Registry;
use crate::redact::redact_url;

/// A publish that takes longer than this is given up (the server is too slow).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnect attempts back off up to this.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// The status payload of API.md, nothing more (subscribers may check it strictly).
#[derive(Debug, PartialEq, Serialize)]
pub struct StatusPayload {
    pub camera_id: String,
    pub online: bool,
    pub fps: f64,
    pub bitrate_kbps: u64,
    pub dropped_frames: u64,
    pub uptime_seconds: u64,
}

impl From<&CameraStatus> for StatusPayload {
    fn from(s: &CameraStatus) -> StatusPayload {
        StatusPayload {
            camera_id: s.camera_id.clone(),
            online: s.online,
            fps: s.fps,
            bitrate_kbps: s.bitrate_kbps,
            dropped_frames: s.dropped_frames,
            uptime_seconds: s.uptime_seconds,
        }
    }
}

/// A login found in `[nats] url`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum UrlLogin {
    /// `nats://user:password@host`.
    UserPassword(String, String),
    /// `nats://token@host` (NATS's convention for a token in the URL).
    Token(String),
}

/// The server addresses of `[nats] url` without their userinfo, and the login the first URL
/// with one carries (percent-decoded). async-nats (0.51) logs in only with what its
/// `ConnectOptions` hold, ignoring a URL's user and password, and prints server addresses,
/// password and all, in its debug logs; so credentials leave the URLs here and are given to
/// the options instead.
pub(super) fn servers_and_login(url: &str) -> (Vec<String>, Option<UrlLogin>) {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut login = None;
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match url::Url::parse(s) {
            Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                let found = match u.password() {
                    Some(p) => UrlLogin::UserPassword(decode(u.username()), decode(p)),
                    None => UrlLogin::Token(decode(u.username())),
                };
                login.get_or_insert(found);
                // Cannot fail: the URL has a host (it has userinfo).
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            _ => s.to_owned(),
        })
        .collect();
    (servers, login)
}

/// `options` with the URL's login; `[nats] token` wins over a token in the URL.
pub(super) fn with_login(
    options: async_nats::ConnectOptions,
    login: Option<UrlLogin>,
    config: &NatsConfig,
) -> async_nats::ConnectOptions {
    match login {
        Some(UrlLogin::UserPassword(user, password)) => options.user_and_password(user, password),
        Some(UrlLogin::Token(token)) if config.token.is_empty() => options.token(token),
        _ => options,
    }
}

pub async fn run(config: NatsConfig, bus: EventBus, streams: Arc<Registry>, metrics: Arc<Metrics>) {
    let shown_url = config
        .url
        .split(',')
        .map(redact_url)
        .collect::<Vec<_>>()
        .join(",");
    // Subscribed first: nothing published while connecting is lost to us.
    let mut sub = bus.subscribe();
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<()>();
    let cb_metrics = metrics.clone();
    let mut options = async_nats::ConnectOptions::new()
        .name("camgate")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            let exp = attempts.min(10) as u32;
            (Duration::from_millis(100) * 2u32.pow(exp)).min(RECONNECT_MAX)
        })
        .event_callback(move |event| {
            let metrics = cb_metrics.clone();
            let connected_tx = connected_tx.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        metrics.set_nats_status(NatsStatus::Connected);
                        tracing::info!("nats: connected");
                        let _ = connected_tx.send(());
                    }
                    async_nats::Event::Disconnected => {
                        metrics.set_nats_status(NatsStatus::Disconnected);
                        metrics.nats_error("connection lost; reconnecting".into());
                        tracing::warn!("nats: disconnected; reconnecting");
                    }
                    async_nats::Event::ClientError(e) => {
                        metrics.nats_error(e.to_string());
                        tracing::warn!(error = %e, "nats: client error");
                    }
                    async_nats::Event::ServerError(e) => {
                        metrics.nats_error(e.to_string());
                        tracing::warn!(error = %e, "nats: server error");
                    }
                    other => tracing::debug!(event = %other, "nats"),
                }
            }
        });
    if !config.token.is_empty() {
        options = options.token(config.token.clone());
    }
    if !config.credentials_file.is_empty() {
        options = match options.credentials_file(&config.credentials_file).await {
            Ok(o) => o,
            Err(e) => {
                let msg = format!(
                    "cannot read nats.credentials_file {}: {e}",
                    config.credentials_file
                );
                tracing::error!("{msg}; events are not published to NATS");
                metrics.nats_error(msg);
                return;
            }
        };
    }
    let (servers, login) = servers_and_login(&config.url);
    let options = with_login(options, login, &config);
    let client = match options.connect(servers).await {
        Ok(c) => c,
        Err(e) => {
            // With retry_on_initial_connect this is only a malformed address.
            let msg = format!("cannot use NATS at {shown_url}: {e}");
            tracing::error!("{msg}; events are not published to NATS");
            metrics.nats_error(msg);
            return;
        }
    };
    tracing::info!(url = %shown_url, "nats: publishing camera status");
    let subject = format!("{}.camera.status", config.subject_prefix);
    let publisher = Publisher {
        client,
        subject,
        metrics,
    };

    loop {
        tokio::select! {
            Some(()) = connected_rx.recv() => publisher.republish_all(&streams).await,
            got = sub.recv() => match got {
                None => return,
                Some(Received::Lagged(n)) => {
                    // We fell behind (NATS slow); the current state replaces what was lost.
                    publisher.metrics.nats_skipped(n);
                    publisher.republish_all(&streams).await;
                }
                Some(Received::Event(e)) => match &*e {
                    Event::Status(s) => publisher.publish(&StatusPayload::from(&s.status)).await,
                    Event::State(s) => {
                        // The figures as they are now; `online` exactly as the change says.
                        let mut payload = streams
                            .by_camera(&s.camera_id)
                            .map(|rt| StatusPayload::from(&rt.status()))
                            .unwrap_or_else(|| StatusPayload {
                                camera_id: s.camera_id.clone(),
                                online: false,
                                fps: 0.0,
                                bitrate_kbps: 0,
                                dropped_frames: 0,
                                uptime_seconds: 0,
                            });
                        payload.online = s.state == StreamState::Live;
                        if !payload.online {
                            payload.fps = 0.0;
                            payload.bitrate_kbps = 0;
                            payload.uptime_seconds = 0;
                        }
                        publisher.publish(&payload).await;
                    }
                    Event::Camera(_) | Event::Viewers(_) | Event::Recording(_) | Event::Webrtc(_) => {}
                },
            },
        }
    }
}

struct Publisher {
    client: async_nats::Client,
    subject: String,
    metrics: Arc<Metrics>,
}

impl Publisher {
    async fn republish_all(&self, streams: &Registry) {
        for rt in streams.cameras() {
            self.publish(&StatusPayload::from(&rt.status())).await;
        }
    }

    async fn publish(&self, payload: &StatusPayload) {
        if self.client.connection_state() != ConnState::Connected {
            // Queued messages would arrive stale after the reconnect; the reconnect
            // republishes the current state instead.
            self.metrics.nats_skipped(1);
            return;
        }
        let Ok(body) = serde_json::to_vec(payload) else {
            return; // plain numbers and strings always serialize
        };
        match tokio::time::timeout(
            PUBLISH_TIMEOUT,
            self.client.publish(self.subject.clone(), body.into()),
        )
        .await
        {
            Ok(Ok(())) => self.metrics.nats_published(),
            Ok(Err(e)) => self.metrics.nats_error(format!("publish failed: {e}")),
            Err(_) => self
                .metrics
                .nats_error(format!("publish took longer than {PUBLISH_TIMEOUT:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_server_urls_decoded() {
        let (servers, login) =
            servers_and_login("nats://svc:p%40ss%3Aw0rd@10.0.0.5:4222, nats://10.0.0.6:4222");
        assert_eq!(servers, ["nats://10.0.0.5:4222", "nats://10.0.0.6:4222"]);
        assert_eq!(
            login,
            Some(UrlLogin::UserPassword("svc".into(), "p@ss:w0rd".into()))
        );
        let (servers, login) = servers_and_login("tls://s3cr3t-token@nats.example");
        assert_eq!(servers, ["tls://nats.example"]);
        assert_eq!(login, Some(UrlLogin::Token("s3cr3t-token".into())));
        let (servers, login) = servers_and_login("nats://127.0.0.1:4222");
        assert_eq!(servers, ["nats://127.0.0.1:4222"]);
        assert_eq!(login, None);
    }
}
