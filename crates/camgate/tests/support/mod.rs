//! The one test harness of camgate's integration tests, split by concern:
//! - `camera`: GStreamer's RTSP server as the camera (`Camera`, `USER`, `PASSWORD`);
//! - `gateway`: camgate in-process on a free port (`Gateway`, its WebSocket and `/metrics`);
//! - `api`: the router without a socket (`TestApi`, `error_code`);
//! - `live`: the live layer without HTTP (camera specs, short settings, waiting for a state);
//! - `nats`: a real `nats-server` started by the test (`NatsServer`);
//! - `probe`: ffprobe reading what camgate serves (streams, codecs, decoded frames);
//! - `process`: child processes (output lines, signals, bounded waits);
//! - `serve`: the real `camgate serve` binary with its output kept, and a password's leak forms.
//!
//! Here: polling with a bound, a free port, an HTTP client. Every test binary compiles the whole
//! harness and uses part of it, hence unused code and re-exports are allowed. Nothing here
//! asserts what a test is about; helpers assert only what they need to go on.
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod camera;
pub mod gateway;
pub mod live;
pub mod nats;
pub mod probe;
pub mod process;
pub mod serve;

use std::time::Duration;

pub use api::{LOOPBACK, TestApi, error_code};
pub use camera::{Camera, PASSWORD, USER};
pub use gateway::{Gateway, Ws};

/// Polls `f` every 100 ms until it returns `Some`, or panics after `within` saying `what`.
pub async fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free TCP port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// An HTTP client for tests against a real socket: no proxy from the environment (tests talk
/// to 127.0.0.1 only) and a bound on every request so a hung server fails the test.
pub fn client() -> reqwest::Client {
    client_bounded(Duration::from_secs(10))
}

/// As [`client`], with another bound on each request.
pub fn client_bounded(bound: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(bound)
        .build()
        .expect("a reqwest client with only a timeout and no proxy always builds")
}

/// The body of a request's answer as text, whatever its status.
pub async fn text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}
