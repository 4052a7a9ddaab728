//! libFuzzer entry of `fuzz/bodies/h264_decode.rs` (the body is shared with the corpus replay test).
#![no_main]

#[path = "../bodies/h264_decode.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    body::run(data);
});
