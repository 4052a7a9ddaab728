//! ffmpeg's argument vector for one profile: MPEG-TS on stdin (our frames), H.264 in MPEG-TS on
//! stdout. Built from typed values only (never a string from the API), passed to `Command`
//! without a shell, so there is nothing to inject into.

use super::{Encoder, Profile};

/// The arguments after the program name.
pub fn transcode_args(p: &Profile, encoder: Encoder) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    push(&["-hide_banner", "-nostdin", "-loglevel", "error"]);
    if encoder == Encoder::Vaapi {
        push(&["-vaapi_device", "/dev/dri/renderD128"]);
    }
    // Our stream starts at a keyframe with its parameter sets: a short probe is enough and
    // keeps the start fast.
    push(&[
        "-fflags",
        "+nobuffer+genpts",
        "-probesize",
        "1000000",
        "-analyzeduration",
        "1000000",
        "-f",
        "mpegts",
        "-i",
        "pipe:0",
        "-map",
        "0:v:0",
        "-an",
        "-sn",
    ]);
    let gop = p.gop();
    let mut filters = Vec::new();
    match (p.height, p.max_height) {
        (0, Some(cap)) => filters.push(format!("scale=-2:min(ih\\,{cap})")),
        (0, None) => {}
        (h, _) => filters.push(format!("scale=-2:{h}")),
    }
    if p.fps > 0 {
        filters.push(format!("fps={}", p.fps));
    }
    match encoder {
        Encoder::Vaapi => {
            filters.push("format=nv12".into());
            filters.push("hwupload".into());
        }
        _ => filters.push("format=yuv420p".into()),
    }
    a.push("-vf".into());
    a.push(filters.join(","));
    if p.fps == 0 {
        a.extend(["-fps_mode".into(), "passthrough".into()]);
    }
    encode_to_stdout(&mut a, encoder, p.bitrate_kbps, gop);
    a
}

/// The encoder's options and the output: H.264 at `kbps` with a keyframe every `gop` frames,
/// in MPEG-TS on stdout. Shared by profiles and grids.
pub(crate) fn encode_to_stdout(a: &mut Vec<String>, encoder: Encoder, kbps: u32, gop: u32) {
    a.extend(["-c:v".into(), encoder.ffmpeg_name().into()]);
    match encoder {
        Encoder::Libx264 => a.extend(
            [
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-profile:v",
                "high",
                "-sc_threshold",
                "0",
            ]
            .map(String::from),
        ),
        Encoder::Nvenc => {
            a.extend(["-preset", "p2", "-tune", "ll", "-zerolatency", "1"].map(String::from))
        }
        Encoder::Vaapi => {}
        Encoder::Qsv => a.extend(["-preset", "veryfast", "-look_ahead", "0"].map(String::from)),
    }
    // No B-frames: decode order is presentation order, which keeps latency and every output
    // simple. A keyframe every `gop` frames, forced, so HLS segments cut where we expect.
    a.extend([
        "-bf".into(),
        "0".into(),
        "-g".into(),
        gop.to_string(),
        "-keyint_min".into(),
        gop.to_string(),
        "-b:v".into(),
        format!("{kbps}k"),
        "-maxrate".into(),
        format!("{kbps}k"),
        "-bufsize".into(),
        format!("{}k", kbps.saturating_mul(2)),
        "-f".into(),
        "mpegts".into(),
        "-muxdelay".into(),
        "0".into(),
        "-muxpreload".into(),
        "0".into(),
        "-flush_packets".into(),
        "1".into(),
        "pipe:1".into(),
    ]);
}

/// A one-frame test encode with `encoder` (the probe of `auto`): succeeds only where the
/// encoder works on this machine (driver, device), not merely where ffmpeg was built with it.
pub fn probe_args(encoder: Encoder) -> Vec<String> {
    let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    if encoder == Encoder::Vaapi {
        a.extend(["-vaapi_device", "/dev/dri/renderD128"].map(String::from));
    }
    a.extend(
        [
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=256x144:r=25:d=0.04",
            "-frames:v",
            "1",
        ]
        .map(String::from),
    );
    if encoder == Encoder::Vaapi {
        a.extend(["-vf", "format=nv12,hwupload"].map(String::from));
    }
    a.extend(["-c:v", encoder.ffmpeg_name(), "-f", "null", "-"].map(String::from));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(height: u32, fps: u32) -> Profile {
        Profile {
            name: "720p".into(),
            height,
            max_height: None,
            fps,
            bitrate_kbps: 1500,
            gop: 0,
            encoder: None,
            passthrough_h264: false,
        }
    }

    fn after<'a>(a: &'a [String], flag: &str) -> &'a str {
        let i = a
            .iter()
            .position(|x| x == flag)
            .unwrap_or_else(|| panic!("{flag} in {a:?}"));
        &a[i + 1]
    }

    #[test]
    fn libx264_has_no_b_frames_and_forced_keyframes() {
        let a = transcode_args(&profile(720, 15), Encoder::Libx264);
        assert_eq!(after(&a, "-c:v"), "libx264");
        assert_eq!(after(&a, "-preset"), "veryfast");
        assert_eq!(after(&a, "-tune"), "zerolatency");
        assert_eq!(after(&a, "-bf"), "0");
        assert_eq!(after(&a, "-g"), "15");
        assert_eq!(after(&a, "-keyint_min"), "15");
        assert_eq!(after(&a, "-sc_threshold"), "0");
        assert_eq!(after(&a, "-b:v"), "1500k");
        assert_eq!(after(&a, "-vf"), "scale=-2:720,fps=15,format=yuv420p");
        assert_eq!(after(&a, "-i"), "pipe:0");
        assert_eq!(a.last().map(String::as_str), Some("pipe:1"));
        assert!(!a.iter().any(|x| x == "-fps_mode"));
    }

    #[test]
    fn camera_rate_and_capped_height() {
        let mut p = profile(0, 0);
        p.max_height = Some(1080);
        let a = transcode_args(&p, Encoder::Libx264);
        assert_eq!(after(&a, "-vf"), "scale=-2:min(ih\\,1080),format=yuv420p");
        assert_eq!(after(&a, "-fps_mode"), "passthrough");
        // One keyframe per second at 25 fps when neither the gop nor the rate is set.
        assert_eq!(after(&a, "-g"), "25");
    }

    #[test]
    fn hardware_encoders_get_their_own_options() {
        let a = transcode_args(&profile(360, 0), Encoder::Nvenc);
        assert_eq!(after(&a, "-c:v"), "h264_nvenc");
        assert_eq!(after(&a, "-tune"), "ll");
        let a = transcode_args(&profile(360, 0), Encoder::Vaapi);
        assert_eq!(after(&a, "-vaapi_device"), "/dev/dri/renderD128");
        assert_eq!(after(&a, "-vf"), "scale=-2:360,format=nv12,hwupload");
        let a = transcode_args(&profile(360, 0), Encoder::Qsv);
        assert_eq!(after(&a, "-c:v"), "h264_qsv");
        let a = probe_args(Encoder::Nvenc);
        assert_eq!(after(&a, "-c:v"), "h264_nvenc");
        assert_eq!(after(&a, "-frames:v"), "1");
    }
}
