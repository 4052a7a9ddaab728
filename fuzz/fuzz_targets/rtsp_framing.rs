//! libFuzzer entry of `fuzz/bodies/rtsp_framing.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/rtsp_framing.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
