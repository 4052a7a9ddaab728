//! libFuzzer entry of `fuzz/bodies/http_request.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/http_request.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
