//! libFuzzer entry of `fuzz/bodies/library_name.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/library_name.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
