//! retina, the RTSP client camgate ingests with, reads the simulator over TCP and UDP, with
//! Digest authentication, and sees keyframes at the GOP interval.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use retina::client::{Credentials, PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::CodecItem;
use sim::{AuthScheme, SimConfig};

async fn read_frames(sim: &sim::SimHandle, cam: u32, transport: &str, creds: Option<Credentials>) {
    let url = url::Url::parse(&sim.url(cam)).unwrap();
    let mut session = Session::describe(url, SessionOptions::default().creds(creds))
        .await
        .expect("DESCRIBE");
    let stream = &session.streams()[0];
    assert_eq!(stream.media(), "video");
    assert_eq!(stream.encoding_name(), "h264");
    session
        .setup(
            0,
            SetupOptions::default().transport(transport.parse().unwrap()),
        )
        .await
        .expect("SETUP");
    let session = session.play(PlayOptions::default()).await.expect("PLAY");
    assert_eq!(sim.playing(cam), 1);
    let mut demuxed = session.demuxed().expect("demuxed");
    let (mut frames, mut keyframes) = (0, 0);
    while frames < 25 {
        let item = tokio::time::timeout(Duration::from_secs(20), demuxed.next())
            .await
            .expect("a frame within 20 s")
            .expect("stream open")
            .expect("no error");
        if let CodecItem::VideoFrame(f) = item {
            if frames == 0 {
                assert!(f.is_random_access_point(), "first frame is an IDR");
            }
            frames += 1;
            keyframes += usize::from(f.is_random_access_point());
        }
    }
    // 25 frames at 10 fps with a 1 s GOP: frames 0, 10 and 20 are IDRs.
    assert_eq!(keyframes, 3, "{transport}");
    drop(demuxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_reads_tcp_and_udp() {
    let sim = start(small_config()).await;
    read_frames(&sim, 1, "tcp", None).await;
    read_frames(&sim, 2, "udp", None).await;
    assert!(eventually(Duration::from_secs(20), || sim.total_sessions() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_authenticates_with_digest() {
    let sim = start(SimConfig {
        credentials: Some(sim::Credentials {
            user: "cam".into(),
            password: "secret".into(),
        }),
        auth: AuthScheme::Digest,
        ..small_config()
    })
    .await;
    read_frames(
        &sim,
        1,
        "tcp",
        Some(Credentials {
            username: "cam".into(),
            password: "secret".into(),
        }),
    )
    .await;
    let url = url::Url::parse(&sim.url(1)).unwrap();
    let wrong = Session::describe(
        url,
        SessionOptions::default().creds(Some(Credentials {
            username: "cam".into(),
            password: "nope".into(),
        })),
    )
    .await;
    let err = wrong.err().expect("wrong password refused").to_string();
    assert!(err.contains("401"), "{err}");
}
