//! libFuzzer entry of `fuzz/bodies/annexb.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/annexb.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
