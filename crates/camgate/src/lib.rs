//! camgate: one service between RTSP cameras and the people and programs that watch them.
//! docs/architecture.md describes every module, what it owns and what it may import.
//!
//! The composition root is `app`; `server` binds and runs it; `cli` and `demo` are the
//! commands. The model and storage: `config`, `cameras`, `db`, `provisioning` (store -> live
//! -> event). The live path: `ingest` (sources), `hub` (per-stream fan-out, the `LiveStream`
//! handle, the stream registry), `live` (per-camera supervisors). HTTP plumbing shared by every
//! router: `http`. Outputs: `hls`, `mse`, `webrtc`, `snapshot`, `restream` (RTSP), `record`
//! (continuous recording), `compat` (the compatibility routes of earlier systems). The rest:
//! `events` (bus, WebSocket feeds, NATS), `metrics` and `stats` (read-only figures), `api`
//! (control-plane routers, the one merge, `/openapi.json`), `web` (the embedded dashboard),
//! `tasks`, `timestamps`, `redact`, `logging`.

pub mod api;
pub mod app;
pub mod cameras;
pub mod cli;
pub mod compat;
pub mod config;
pub mod db;
pub mod demo;
pub mod events;
pub mod hls;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod mse;
pub mod provisioning;
pub mod record;
pub mod redact;
pub mod restream;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod tasks;
pub mod timestamps;
pub mod web;
pub mod webrtc;
