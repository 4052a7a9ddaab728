//! camgate: one service between RTSP cameras and the people and programs that watch them.
//! See docs/architecture.md for how the modules fit together.
//!
//! Modules: `config` (settings), `db` (SQLite registry), `cameras` (the camera model and its
//! validation), `redact` (secrets out of everything printed), `api` (HTTP), `server` (listener
//! and shutdown), `logging`, `cli`. The live path: `hub` (per-camera fan-out), `ingest`
//! (sources: RTSP), `streams` (per-camera runtime: lifecycle, viewers, status), `hls` (LL-HLS
//! serving) and `mse` (fMP4 over WebSocket). `events`: the event bus, WebSocket event feeds,
//! NATS publisher and metrics counters.
//!
//! `demo` wires the simulator and the server together for `camgate demo`; `web` serves the
//! embedded dashboard.

pub mod api;
pub mod cameras;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod events;
pub mod hls;
pub mod hub;
pub mod ingest;
pub mod logging;
pub mod mse;
pub mod redact;
pub mod server;
pub mod streams;
pub mod web;
pub mod webrtc;
