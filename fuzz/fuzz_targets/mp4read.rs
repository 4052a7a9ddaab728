//! libFuzzer entry of `fuzz/bodies/mp4read.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/mp4read.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
