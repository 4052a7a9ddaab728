//! Compatibility routes: the HTTP surfaces of the systems our users come from, served by
//! camgate's own parts so their integrations keep working unchanged (docs/compat.md).
//!
//! - `stream_manager`: the Go stream manager's `/api/stream/start|stop|status` (seed 003) and
//!   the Angular grid's `/api/stream/hls/{camera_id}` (seed 004), over provisioning and the
//!   live path. Their playlist, `/streams/{id}/stream.m3u8`, is the HLS output's own route.
//! - `library`, `library_http`, `library_meter`: the video platform's file library over
//!   `[library] dir` (seed 002): listing, whole-file and Range streaming (through the one
//!   Range helper, `http::range`), WebSocket chunks, `/api/metrics`.
//!
//! An output folder: it imports `hub`, `live`, `cameras`, `provisioning`, `config` and `http`,
//! never another output, and checks no access itself (the one check in `http::access` does,
//! including the cross-site refusal of `GET /api/stream/start`).

mod library;
mod library_http;
mod library_meter;
mod stream_manager;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;

use crate::config::Config;
use crate::http::{RouteDoc, Routes};
use crate::live::Live;
use crate::provisioning::Provisioning;
use crate::tasks::Tasks;

pub use library::{Library, NameError};
pub use library_meter::LibraryMeter;

/// What the compatibility routes are built from (the composition root's parts).
pub struct CompatParts {
    pub config: Arc<Config>,
    pub provisioning: Arc<Provisioning>,
    pub live: Arc<Live>,
    /// Where the start route's short demand holds run (stopped with the outputs).
    pub tasks: Tasks,
    /// When the service started (`/api/metrics` uptime and throughput).
    pub started: Instant,
}

/// Every compatibility route.
pub fn router(parts: CompatParts) -> (Router, Vec<RouteDoc>) {
    let manager = stream_manager::StreamManager::new(
        parts.provisioning,
        parts.live,
        parts.tasks,
        hold_for(&parts.config),
    );
    let library = library_http::LibraryState {
        library: parts
            .config
            .library
            .dir()
            .map(|d| Arc::new(Library::new(d))),
        meter: Arc::new(LibraryMeter::new(parts.started)),
    };
    let (a, mut docs) = stream_manager::routes(Routes::new()).with_state(manager);
    let (b, more) = library_http::routes(Routes::new()).with_state(library);
    docs.extend(more);
    (a.merge(b), docs)
}

/// How long a start keeps an on-demand camera connected while its player is on the way: as
/// long as a player may wait for the first part.
fn hold_for(config: &Config) -> Duration {
    config.streams.start_timeout
}
