//! camgate's RTSP 1.0 server (RFC 2326), generic over what it serves.
//!
//! The core is sans-IO and never panics on input: `framing::Decoder` (feed bytes, take
//! requests and interleaved frames), `message` (requests in, responses out), `auth` (Basic
//! and Digest), `transport` (the SETUP `Transport` header), `sdp`, `rtcp` (sender reports)
//! and `control`, the per-connection request state machine over the shared `session`
//! registry. `server` is the thin tokio layer: sockets, tasks, timers.
//!
//! What is served comes from a `Source`: streams by name, their tracks (the SDP is built
//! from them), and per playing session a `Play` that writes RTP packets into a `Burst`
//! (one interleaved write per burst over TCP, datagrams over UDP). The simulator's picture
//! is one source; camgate's restream of its hub is another. docs/rtsp.md has the details.
//!
//! ```no_run
//! # async fn f<S: rtsp::Source>(source: S, settings: rtsp::Settings) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8554").await?;
//! let server = rtsp::serve(listener, settings, source);
//! println!("rtsp://{}/", server.local_addr());
//! # Ok(()) }
//! ```

pub mod auth;
pub mod control;
pub mod framing;
pub mod message;
pub mod rtcp;
pub mod sdp;
mod server;
pub mod session;
pub mod source;
pub mod transport;

pub use auth::{Authenticator, Schemes, SingleUser, Verifier};
pub use control::Settings;
pub use sdp::{MediaKind, Track};
pub use server::{ServerHandle, UdpPair, serve};
pub use source::{Burst, Clock, Next, Play, PlayStart, Source, StreamInfo, TrackStart};
