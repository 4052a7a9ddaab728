//! The service's totals, read when asked: `GET /stats`, the dashboard's `stats` message and
//! the totals of `/metrics` all come from [`Totals::collect`], so they always agree.
//!
//! It owns no counter: it reads the store, the stream registry and the event counters.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::db::{Db, DbError};
use crate::events::counters::{Metrics, WsEndpoint};
use crate::hub::{ByProtocol, Registry};

/// Where the totals come from. Cheap to clone.
#[derive(Clone)]
pub struct Totals {
    pub db: Db,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
}

/// `GET /stats` and the dashboard's `stats` message. Every number is also in `/metrics`
/// under the name given (docs/events.md), read from the same source.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// `camgate_active_streams`
    pub active_streams: u64,
    /// `camgate_viewers` (summed over `protocol`)
    pub total_viewers: u64,
    /// `camgate_sent_bytes_total`
    pub total_bytes_sent: u64,
    /// `camgate_received_bytes_total`
    pub total_bytes_received: u64,
    /// `camgate_uptime_seconds`
    pub uptime_seconds: u64,
    /// `camgate_cameras`
    pub cameras: u64,
    /// `camgate_cameras_online`
    pub cameras_online: u64,
    /// `camgate_viewers{protocol}`
    pub viewers_by_protocol: ByProtocol,
    /// `camgate_websocket_clients{endpoint}` summed
    pub websocket_clients: u64,
    /// `camgate_nats_up` (`disabled`, `connecting`, `connected`, `disconnected`)
    pub nats: &'static str,
}

impl Totals {
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Streams whose video is flowing.
    pub fn active_streams(&self) -> u64 {
        self.registry.active_streams() as u64
    }

    pub async fn collect(&self) -> Result<Stats, DbError> {
        let state = self;
        let cameras = state.db.camera_count().await?;
        let by = state.registry.viewers();
        let active = state.active_streams();
        Ok(Stats {
            active_streams: active,
            total_viewers: u64::from(by.total()),
            total_bytes_sent: state.registry.total_bytes_sent(),
            total_bytes_received: state.registry.total_bytes_received(),
            uptime_seconds: state.uptime_seconds(),
            cameras,
            // Online means video is flowing, the same as an active stream.
            cameras_online: active,
            viewers_by_protocol: by,
            websocket_clients: state.metrics.ws_clients(WsEndpoint::Events)
                + state.metrics.ws_clients(WsEndpoint::Dashboard),
            nats: state.metrics.nats_status().as_str(),
        })
    }
}
