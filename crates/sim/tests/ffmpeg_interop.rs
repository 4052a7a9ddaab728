//! An independent RTSP client (ffprobe/ffmpeg) reads the simulator over TCP and UDP, with
//! and without authentication, and the clock band survives encode -> RTSP -> decode.

mod common;

use std::time::Duration;

use common::*;
use sim::{AuthScheme, BAND_PERIOD_MS, Credentials, SimConfig, band_age_ms, decode_band};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_and_ffmpeg_read_every_transport() {
    let sim = start(small_config()).await;
    for (cam, transport) in [(1, "tcp"), (2, "udp")] {
        let url = sim.url(cam);
        let probe = ffprobe_stream(&url, transport).await;
        assert!(
            probe.status.success(),
            "ffprobe {transport}: {}",
            String::from_utf8_lossy(&probe.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&probe.stdout).trim(),
            "h264,320,240"
        );

        let frames = 12;
        let out = ffmpeg_frames(&url, transport, frames, "gray").await;
        assert!(
            out.status.success(),
            "ffmpeg {transport}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (w, h) = (320usize, 240usize);
        assert_eq!(out.stdout.len(), frames as usize * w * h, "{transport}");
        // Every decoded frame carries a readable band; the clip's frames are 100 ms apart.
        let bands: Vec<u64> = out
            .stdout
            .chunks(w * h)
            .map(|f| decode_band(f, w, h).expect("band decodes"))
            .collect();
        for pair in bands.windows(2) {
            let step = band_age_ms(pair[0], pair[1]);
            if transport == "tcp" {
                // Consecutive frames, or the loop back to the start of the 2 s clip.
                assert!(step == 100 || step == BAND_PERIOD_MS - 1900, "{bands:?}");
            } else {
                // UDP on a busy machine may lose a frame: still frames of the clip, in order
                // or looping, never a band that is not one of the clip's.
                let back = BAND_PERIOD_MS - step;
                assert!(
                    step > 0
                        && (step.is_multiple_of(100) || back.is_multiple_of(100))
                        && (step < 2000 || back < 2000),
                    "{bands:?}"
                );
            }
        }
    }
    // ffmpeg tears its sessions down when it is done.
    assert!(eventually(Duration::from_secs(10), || sim.total_sessions() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_band_decodes_to_the_capture_time() {
    let sim = start(SimConfig {
        live: true,
        ..small_config()
    })
    .await;
    let before = unix_ms();
    let out = ffmpeg_frames(&sim.url(3), "tcp", 1, "rgb24").await;
    let after = unix_ms();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 320 * 240 * 3);
    let band = decode_band(&out.stdout, 320, 240).expect("band decodes");
    // The frame was captured after the client asked for it and before it got it back.
    // (A small allowance below `before`: the first IDR may be encoded a frame early.)
    let age = band_age_ms(band, after);
    assert!(
        age <= after - before + 200,
        "band {band} is {age} ms old; request took {} ms",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_authenticates_with_basic_and_digest() {
    for scheme in [AuthScheme::Basic, AuthScheme::Digest] {
        let sim = start(SimConfig {
            credentials: Some(Credentials {
                user: "viewer".into(),
                password: "pa55word".into(),
            }),
            auth: scheme,
            cameras: 1,
            ..small_config()
        })
        .await;
        for transport in ["tcp", "udp"] {
            let good =
                ffprobe_stream(&with_creds(&sim.url(1), "viewer", "pa55word"), transport).await;
            assert!(
                good.status.success(),
                "{scheme:?}/{transport}: {}",
                String::from_utf8_lossy(&good.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&good.stdout).trim(), "h264,320,240");
        }
        let bad = ffprobe_stream(&with_creds(&sim.url(1), "viewer", "wrong"), "tcp").await;
        assert!(!bad.status.success(), "{scheme:?}: wrong password accepted");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains("401"), "{scheme:?}: {stderr}");
        let none = ffprobe_stream(&sim.url(1), "tcp").await;
        assert!(!none.status.success(), "{scheme:?}: no password accepted");
    }
}
