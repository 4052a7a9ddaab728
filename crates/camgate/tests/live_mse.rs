//! `WS /mse/{path}` against GStreamer's RTSP server: codec string, init segment, fragments,
//! viewer counting while the socket is open.

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::{Camera, Gateway};
use tokio_tungstenite::tungstenite::Message;

fn box_type(b: &[u8]) -> &[u8] {
    &b[4..8]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mse_socket_gets_codec_init_and_fragments_and_counts_as_a_viewer() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("m1", &cam.good_url(), true).await;
    assert_eq!(gw.state_of("m1").await, "idle");

    let ws_url = gw.ws_url("/mse/cam_m1");
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .expect("socket open")
            .expect("no socket error")
    };
    let Message::Text(mime) = next().await else {
        panic!("first message must be the codec string")
    };
    assert!(mime.starts_with("video/mp4; codecs=\"avc1."), "{mime}");
    let Message::Binary(init) = next().await else {
        panic!("then the init segment")
    };
    assert_eq!(box_type(&init), b"ftyp");
    let Message::Binary(first) = next().await else {
        panic!("then a fragment")
    };
    assert_eq!(box_type(&first), b"moof");
    // Fragments keep coming: count moof headers over the next messages.
    let mut moofs = 1;
    while moofs < 25 {
        if let Message::Binary(b) = next().await
            && b.len() >= 8
            && box_type(&b) == b"moof"
        {
            moofs += 1;
        }
    }
    let v = gw.get_json("/streams/cam_m1/viewers").await;
    assert_eq!(v["by_protocol"]["mse"], 1, "{v}");
    assert_eq!(v["viewers"], 1, "{v}");
    assert_eq!(gw.state_of("m1").await, "live");

    drop(ws);
    support::eventually("the MSE viewer to leave", Duration::from_secs(10), || {
        (gw.app.live.total_viewers() == 0).then_some(())
    })
    .await;
    gw.wait_state("m1", "idle", Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mse_refuses_unknown_streams_and_viewers_past_the_limit() {
    let cam = Camera::start();
    let gw = Gateway::start(|c| c.streams.max_viewers_per_stream = 1).await;
    gw.provision("m2", &cam.good_url(), true).await;
    let ws_url = gw.ws_url("/mse/cam_m2");
    let (_first, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let err = tokio_tungstenite::connect_async(&ws_url).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 429),
        e => panic!("expected 429, got {e}"),
    }
    let missing = gw.ws_url("/mse/nope");
    match tokio_tungstenite::connect_async(&missing)
        .await
        .unwrap_err()
    {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 404),
        e => panic!("expected 404, got {e}"),
    }
}

/// Players send nothing we read, so a client message is capped at 4 KiB (as on `/ws/events`):
/// a small one is ignored and the video keeps flowing, a larger one ends the socket and frees
/// the viewer slot, instead of making the server buffer whatever a client sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mse_ignores_small_client_messages_and_closes_on_one_over_4_kib() {
    use futures::SinkExt;
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("m3", &cam.good_url(), true).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&gw.ws_url("/mse/cam_m3"))
        .await
        .unwrap();
    let next = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| {
        tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
    };
    // Codec string, init segment, first fragment.
    for _ in 0..3 {
        next(&mut ws).await.expect("open").expect("no error");
    }
    ws.send(Message::text("x".repeat(100))).await.unwrap();
    let mut moofs = 0;
    while moofs < 5 {
        if let Message::Binary(b) = next(&mut ws).await.expect("open").expect("no error")
            && b.len() >= 8
            && box_type(&b) == b"moof"
        {
            moofs += 1;
        }
    }
    assert_eq!(gw.app.live.total_viewers(), 1);

    ws.send(Message::binary(vec![0u8; 5000])).await.unwrap();
    // The server ends the socket: a close frame, an error or the end of the stream.
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "a 5000-byte client message must end the MSE socket"
    );
    support::eventually("the MSE viewer to leave", Duration::from_secs(10), || {
        (gw.app.live.total_viewers() == 0).then_some(())
    })
    .await;
}
