//! libFuzzer entry of `fuzz/bodies/whep_offer.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/whep_offer.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
