//! Replays every input of `fuzz/corpus/{target}/` through the body of the rtsp fuzz targets
//! (`fuzz/bodies/`, the same function libFuzzer runs), so `cargo test` on stable checks the
//! kept corpus and keeps the bodies compiling with the workspace.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/bodies/rtsp_framing.rs"]
mod rtsp_framing;
#[path = "../../../fuzz/bodies/rtsp_request.rs"]
mod rtsp_request;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no input", dir.display());
    inputs
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, input) in corpus(target) {
        // A panic names the input that caused it.
        let outcome = std::panic::catch_unwind(|| run(&input));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
    }
}

#[test]
fn rtsp_framing_corpus() {
    replay("rtsp_framing", rtsp_framing::run);
}

#[test]
fn rtsp_request_corpus() {
    replay("rtsp_request", rtsp_request::run);
}
