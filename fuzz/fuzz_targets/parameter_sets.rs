//! libFuzzer entry of `fuzz/bodies/parameter_sets.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/parameter_sets.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
