//! Replays every input of `fuzz/corpus/{target}/` through the body of camgate's fuzz targets
//! (`fuzz/bodies/`, the same function libFuzzer runs), so `cargo test` on stable checks the
//! kept corpus and keeps the bodies compiling with the workspace: the HTTP request head
//! (access check, media paths, forwarded client, `Host`, playlist tokens), viewer tokens,
//! WHEP bodies and video library names.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/bodies/http_request.rs"]
mod http_request;
#[path = "../../../fuzz/bodies/library_name.rs"]
mod library_name;
#[path = "../../../fuzz/bodies/viewer_token.rs"]
mod viewer_token;
#[path = "../../../fuzz/bodies/whep_offer.rs"]
mod whep_offer;

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
fn http_request_corpus() {
    replay("http_request", http_request::run);
}

#[test]
fn viewer_token_corpus() {
    replay("viewer_token", viewer_token::run);
}

#[test]
fn whep_offer_corpus() {
    replay("whep_offer", whep_offer::run);
}

#[test]
fn library_name_corpus() {
    replay("library_name", library_name::run);
}
