//! Replays every input of `fuzz/corpus/{target}/` through the body of the media fuzz targets
//! (`fuzz/bodies/`, the same function libFuzzer runs), so `cargo test` on stable checks the
//! kept corpus and keeps the bodies compiling with the workspace.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/bodies/annexb.rs"]
mod annexb;
#[path = "../../../fuzz/bodies/dts.rs"]
mod dts;
#[path = "../../../fuzz/bodies/mp4read.rs"]
mod mp4read;
#[path = "../../../fuzz/bodies/parameter_sets.rs"]
mod parameter_sets;
#[path = "../../../fuzz/bodies/segmenter.rs"]
mod segmenter;

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
fn annexb_corpus() {
    replay("annexb", annexb::run);
}

#[test]
fn dts_corpus() {
    replay("dts", dts::run);
}

#[test]
fn mp4read_corpus() {
    replay("mp4read", mp4read::run);
}

#[test]
fn parameter_sets_corpus() {
    replay("parameter_sets", parameter_sets::run);
}

#[test]
fn segmenter_corpus() {
    replay("segmenter", segmenter::run);
}
