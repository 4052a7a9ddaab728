//! libFuzzer entry of `fuzz/bodies/viewer_token.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/viewer_token.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
