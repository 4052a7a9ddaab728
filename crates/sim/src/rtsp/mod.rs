//! The RTSP protocol pieces the server is built from, each sans-IO: message parsing and
//! writing, interleaved framing, Transport negotiation, authentication and the SDP.

pub mod auth;
pub mod framing;
pub mod message;
pub mod sdp;
pub mod transport;
