//! ffmpeg's argument vector for a grid: one picture of `size` made of tiles (`xstack`), each
//! tile a camera read from its own pipe (`pipe:3`, `pipe:4`, ... as MPEG-TS, from our hub) or
//! a placeholder (a grey `color` source) while that camera is down. Built from the config
//! file's typed values only, passed without a shell.
//!
//! Which tiles are live is the caller's (live/grids.rs) business: it restarts ffmpeg with
//! other inputs when a camera goes down or comes back, because xstack waits for a frame from
//! every input and a silent pipe would stop the whole picture.

use super::{Encoder, FIRST_PIPE_FD, args};

/// What a grid produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridOutput {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub encoder: Option<Encoder>,
}

/// One tile's input in one ffmpeg run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileInput {
    /// The camera's frames on the `n`-th extra pipe (`pipe:{3+n}`).
    Pipe(usize),
    /// The camera is down (or not provisioned): a grey tile.
    Placeholder,
}

/// Columns and rows for `n` tiles: as square as it gets, wider than tall.
pub fn shape(n: usize) -> (u32, u32) {
    let n = n.max(1) as u32;
    let mut cols = 1;
    while cols * cols < n {
        cols += 1;
    }
    let rows = n.div_ceil(cols);
    (cols, rows)
}

/// A tile's size: the grid's divided by the shape, even (yuv420p needs it).
pub fn tile_size(out: &GridOutput, n: usize) -> (u32, u32) {
    let (cols, rows) = shape(n);
    let even = |v: u32| (v / 2 * 2).max(2);
    (even(out.width / cols), even(out.height / rows))
}

/// Grey, so a missing camera is not mistaken for a dark scene.
const PLACEHOLDER_COLOR: &str = "0x404040";

/// The arguments after the program name. `tiles` are the cameras in order; the empty slots
/// of the last row are black.
pub fn grid_args(out: &GridOutput, tiles: &[TileInput], encoder: Encoder) -> Vec<String> {
    let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    if encoder == Encoder::Vaapi {
        a.extend(["-vaapi_device", "/dev/dri/renderD128"].map(String::from));
    }
    let (cols, rows) = shape(tiles.len());
    let (tw, th) = tile_size(out, tiles.len());
    let fps = out.fps.max(1);
    let slots = (cols * rows) as usize;
    for i in 0..slots {
        match tiles.get(i) {
            Some(TileInput::Pipe(n)) => a.extend([
                // Our stream starts at a keyframe with its parameter sets: a short probe.
                "-fflags".into(),
                "+nobuffer+genpts".into(),
                "-probesize".into(),
                "500000".into(),
                "-analyzeduration".into(),
                "500000".into(),
                "-f".into(),
                "mpegts".into(),
                "-i".into(),
                format!("pipe:{}", FIRST_PIPE_FD as usize + n),
            ]),
            // A generated tile at the real rate (`-re`): with every camera down it alone
            // paces the grid, which must not run faster than the clock.
            other => {
                let color = if other.is_some() {
                    PLACEHOLDER_COLOR
                } else {
                    "black"
                };
                a.extend([
                    "-re".into(),
                    "-f".into(),
                    "lavfi".into(),
                    "-i".into(),
                    format!("color=c={color}:s={tw}x{th}:r={fps}"),
                ]);
            }
        }
    }
    // Every input to the tile's size (aspect kept, padded), one rate, then stacked.
    let mut graph = String::new();
    for i in 0..slots {
        graph.push_str(&format!(
            "[{i}:v]scale={tw}:{th}:force_original_aspect_ratio=decrease,\
             pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps},format=yuv420p[t{i}];"
        ));
    }
    for i in 0..slots {
        graph.push_str(&format!("[t{i}]"));
    }
    if slots == 1 {
        graph.push_str("null");
    } else {
        let layout: Vec<String> = (0..slots as u32)
            .map(|i| format!("{}_{}", (i % cols) * tw, (i / cols) * th))
            .collect();
        graph.push_str(&format!(
            "xstack=inputs={slots}:layout={}",
            layout.join("|")
        ));
    }
    match encoder {
        Encoder::Vaapi => graph.push_str(",format=nv12,hwupload[grid]"),
        _ => graph.push_str("[grid]"),
    }
    a.extend([
        "-filter_complex".into(),
        graph,
        "-map".into(),
        "[grid]".into(),
        "-an".into(),
        "-sn".into(),
    ]);
    args::encode_to_stdout(&mut a, encoder, out.bitrate_kbps, fps);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out() -> GridOutput {
        GridOutput {
            width: 640,
            height: 480,
            fps: 10,
            bitrate_kbps: 800,
            encoder: None,
        }
    }

    fn after<'a>(a: &'a [String], flag: &str) -> &'a str {
        let i = a.iter().position(|x| x == flag).unwrap();
        &a[i + 1]
    }

    #[test]
    fn shapes() {
        assert_eq!(shape(1), (1, 1));
        assert_eq!(shape(2), (2, 1));
        assert_eq!(shape(3), (2, 2));
        assert_eq!(shape(4), (2, 2));
        assert_eq!(shape(5), (3, 2));
        assert_eq!(shape(9), (3, 3));
        assert_eq!(tile_size(&out(), 4), (320, 240));
        assert_eq!(tile_size(&out(), 3), (320, 240));
        assert_eq!(tile_size(&out(), 2), (320, 480));
    }

    #[test]
    fn four_tiles_one_down() {
        let tiles = [
            TileInput::Pipe(0),
            TileInput::Placeholder,
            TileInput::Pipe(1),
            TileInput::Pipe(2),
        ];
        let a = grid_args(&out(), &tiles, Encoder::Libx264);
        let inputs: Vec<&str> = a
            .iter()
            .enumerate()
            .filter(|(_, x)| *x == "-i")
            .map(|(i, _)| a[i + 1].as_str())
            .collect();
        assert_eq!(
            inputs,
            [
                "pipe:3",
                "color=c=0x404040:s=320x240:r=10",
                "pipe:4",
                "pipe:5"
            ]
        );
        let graph = after(&a, "-filter_complex");
        assert!(
            graph.contains("xstack=inputs=4:layout=0_0|320_0|0_240|320_240[grid]"),
            "{graph}"
        );
        assert!(graph.contains("[3:v]scale=320:240:force_original_aspect_ratio=decrease"));
        assert_eq!(after(&a, "-map"), "[grid]");
        assert_eq!(after(&a, "-c:v"), "libx264");
        assert_eq!(after(&a, "-g"), "10");
        assert_eq!(after(&a, "-b:v"), "800k");
        assert_eq!(a.last().map(String::as_str), Some("pipe:1"));
        // The generated tile is paced by the clock; camera pipes are not.
        let re = a.iter().position(|x| x == "-re").unwrap();
        assert_eq!(a[re + 4], "color=c=0x404040:s=320x240:r=10");
        assert_eq!(a.iter().filter(|x| *x == "-re").count(), 1);
    }

    #[test]
    fn three_tiles_fill_the_last_slot_black_and_vaapi_uploads() {
        let tiles = [TileInput::Pipe(0), TileInput::Pipe(1), TileInput::Pipe(2)];
        let a = grid_args(&out(), &tiles, Encoder::Vaapi);
        assert!(a.contains(&"color=c=black:s=320x240:r=10".to_string()));
        assert_eq!(after(&a, "-vaapi_device"), "/dev/dri/renderD128");
        assert!(after(&a, "-filter_complex").ends_with(",format=nv12,hwupload[grid]"));
        let a = grid_args(&out(), &[TileInput::Placeholder], Encoder::Libx264);
        assert!(after(&a, "-filter_complex").ends_with("[t0]null[grid]"));
    }
}
