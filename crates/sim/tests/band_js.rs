//! The browser-side band decoder (js/band.mjs, run with Node) agrees with `decode_band` on
//! the same frames: grey, RGB and RGBA, several sizes, and frames without a valid band.

use std::process::Command;

use sim::band::{band_rows, cell_columns};
use sim::decode_band;
use sim::picture::Picture;

fn node_decode(dir: &std::path::Path, frames: &[(Vec<u8>, usize, usize)]) -> Vec<String> {
    let mut args = Vec::new();
    for (i, (pixels, w, h)) in frames.iter().enumerate() {
        let path = dir.join(format!("frame{i}.raw"));
        std::fs::write(&path, pixels).unwrap();
        args.push(format!("{}:{w}:{h}", path.display()));
    }
    let module = format!("{}/js/band.mjs", env!("CARGO_MANIFEST_DIR"));
    let script = format!(
        "import {{ decodeBand }} from {module:?};\n\
         import {{ readFileSync }} from 'node:fs';\n\
         for (const arg of process.argv.slice(1)) {{\n\
           const [file, w, h] = arg.split(':');\n\
           const band = decodeBand(new Uint8Array(readFileSync(file)), Number(w), Number(h));\n\
           console.log(band === null ? 'none' : String(band));\n\
         }}"
    );
    let out = Command::new("node")
        .args(["--input-type=module", "-e", &script, "--"])
        .args(&args)
        .output()
        .expect("node is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn js_port_agrees_with_rust() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    for (w, h, ms) in [
        (320, 240, 1_763_771_234_567u64),
        (1280, 720, 42),
        (1920, 1080, (1 << 24) - 1),
        (64, 48, 0),
    ] {
        let mut p = Picture::new(w, h);
        p.draw(7, ms);
        let rgb: Vec<u8> = p.y.iter().flat_map(|v| [*v, *v, *v]).collect();
        let rgba: Vec<u8> = p.y.iter().flat_map(|v| [*v, *v, *v, 255]).collect();
        let mut i420 = p.y.clone();
        i420.extend_from_slice(&p.u);
        i420.extend_from_slice(&p.v);
        frames.push((p.y.clone(), w, h));
        frames.push((rgb, w, h));
        frames.push((rgba, w, h));
        frames.push((i420, w, h));
        // A damaged band (one data cell inverted) must be refused by both.
        let mut broken = p.y.clone();
        let (top, bottom) = band_rows(h);
        let (l, r) = cell_columns(w, 9);
        for y in top..bottom {
            for x in l..r {
                broken[y * w + x] = 255 - broken[y * w + x];
            }
        }
        frames.push((broken, w, h));
    }
    frames.push((vec![128; 320 * 240], 320, 240));
    frames.push((vec![0; 10], 320, 240));
    let js = node_decode(dir.path(), &frames);
    assert_eq!(js.len(), frames.len());
    for ((pixels, w, h), js) in frames.iter().zip(&js) {
        let rust = decode_band(pixels, *w, *h).map_or("none".to_string(), |v| v.to_string());
        assert_eq!(&rust, js, "{w}x{h}, {} bytes", pixels.len());
    }
    // And the cases are not all trivial: most frames carry a band.
    assert!(js.iter().filter(|v| *v != "none").count() >= 16, "{js:?}");
}
