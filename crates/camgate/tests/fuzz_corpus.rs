//! Replays every input of `fuzz/corpus/{target}/` through the body of camgate's fuzz targets
//! (`fuzz/bodies/`, the same function libFuzzer runs), so `cargo test` on stable checks the
//! kept corpus and keeps the bodies compiling with the workspace: the HTTP request head
//! (access check, media paths, forwarded client, `Host`, playlist tokens), viewer tokens,
//! WHEP bodies, video library names, and the snapshot decode entry (`h264_decode`: OpenH264,
//! scaling, JPEG answer a JPEG or an error, never a panic), whose seeds are also mutated a
//! few hundred times each (a small, seeded, reproducible fuzzer on stable).
//!
//! `cargo test -p camgate --test fuzz_corpus -- --ignored write_seeds` rewrites the
//! `h264_decode` seeds from the simulator's encoder (OpenH264, as a camera would send).

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/bodies/h264_decode.rs"]
mod h264_decode;
#[path = "../../../fuzz/bodies/http_request.rs"]
mod http_request;
#[path = "../../../fuzz/bodies/library_name.rs"]
mod library_name;
#[path = "../../../fuzz/bodies/viewer_token.rs"]
mod viewer_token;
#[path = "../../../fuzz/bodies/whep_offer.rs"]
mod whep_offer;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
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

fn check(what: &str, input: &[u8]) -> bool {
    let outcome = std::panic::catch_unwind(|| h264_decode::run(input));
    outcome.unwrap_or_else(|_| panic!("{what} panicked"))
}

#[test]
fn h264_decode_corpus() {
    let mut decoded = Vec::new();
    for (path, input) in corpus("h264_decode") {
        if check(&path.display().to_string(), &input) {
            decoded.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    // The real GOPs reach a picture (so mutations of them exercise the decoder, not only the
    // framing); a GOP without its keyframe does not.
    for name in ["gop_160x96", "gop_160x96_width_64"] {
        assert!(decoded.iter().any(|d| d == name), "{name}: {decoded:?}");
    }
    assert!(!decoded.iter().any(|d| d == "no_keyframe"), "{decoded:?}");
}

/// Byte flips, truncations, cut-outs and repeats of every seed, from a fixed seed: the same
/// inputs every run, so a failure reproduces (the message names seed and round).
#[test]
fn h264_decode_mutations() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut pictures = 0;
    for (path, seed) in corpus("h264_decode") {
        for round in 0..400 {
            let mut input = seed.clone();
            for _ in 0..1 + next() % 4 {
                if input.len() < 2 {
                    break;
                }
                let at = (next() as usize) % input.len();
                match next() % 5 {
                    0 | 1 => input[at] ^= 1 << (next() % 8),
                    2 => input[at] = next() as u8,
                    3 => input.truncate(at.max(1)),
                    _ => {
                        let end = (at + 1 + (next() as usize) % 64).min(input.len());
                        let piece = input[at..end].to_vec();
                        input.splice(at..at, piece);
                    }
                }
            }
            pictures += usize::from(check(&format!("{} round {round}", path.display()), &input));
        }
    }
    eprintln!("{pictures} of the mutated inputs still decoded to a picture");
}

/// The chunked input format of the body.
fn chunked(width: u8, sps: &[u8], pps: &[u8], units: &[(Vec<u8>, bool)]) -> Vec<u8> {
    let mut out = vec![width];
    let mut push = |b: &[u8]| {
        out.extend_from_slice(&(b.len() as u16).to_be_bytes());
        out.extend_from_slice(b);
    };
    push(sps);
    push(pps);
    for (data, key) in units {
        let mut u = vec![u8::from(*key)];
        u.extend_from_slice(data);
        push(&u);
    }
    out
}

#[test]
#[ignore = "rewrites fuzz/corpus/h264_decode from the simulator's encoder"]
fn write_seeds() {
    let mut enc = sim::encode::VideoEncoder::new(160, 96, 10, 5, 150_000).unwrap();
    let mut units = Vec::new();
    for i in 0..8 {
        let f = enc.encode_next(1_700_000_000_000 + i * 100).unwrap();
        let nals: Vec<Vec<u8>> = f.nals.iter().map(|n| n.to_vec()).collect();
        let data = media::annexb::to_length_prefixed(&nals);
        units.push((data.to_vec(), f.keyframe));
    }
    let (sps, pps) = enc.parameter_sets().unwrap();
    let dir = corpus_dir("h264_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let mut corrupt = units.clone();
    let mid = corrupt[2].0.len() / 2;
    for b in &mut corrupt[2].0[mid..] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("gop_160x96", chunked(0, &sps, &pps, &units)),
        ("gop_160x96_width_64", chunked(8, &sps, &pps, &units)),
        ("corrupt_third_frame", chunked(0, &sps, &pps, &corrupt)),
        ("no_keyframe", chunked(0, &sps, &pps, &units[1..])),
        (
            "keyframe_only_default_params",
            chunked(20, b"x", b"y", &units[..1]),
        ),
        ("lengths_lie", {
            let mut v = chunked(0, &sps, &pps, &units[..3]);
            let n = v.len();
            v[n - 40] = 0xff;
            v
        }),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
