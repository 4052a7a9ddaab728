//! Issue 16 #8: requests without an HLS session (no cookie, no known `hls_session`) count one
//! provisional viewer per client address, so a page firing playlist GETs cannot give every
//! real viewer `429`. Before the fix each such request took a viewer slot for 10 s.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::Gateway;

fn from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn hls_viewers(gw: &Gateway) -> u64 {
    gw.get_json("/streams/cam_1/viewers").await["by_protocol"]["hls"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookieless_playlist_requests_hold_one_slot_per_address() {
    let gw = Gateway::start(|c| {
        c.streams.max_viewers_per_stream = 3;
        // No camera answers: every playlist request waits this long, then 504; its session
        // (if it made one) stays counted for the session idle time.
        c.streams.start_timeout = Duration::from_millis(300);
    })
    .await;
    gw.provision(
        "1",
        &format!("rtsp://127.0.0.1:{}/none", support::closed_port()),
        true,
    )
    .await;
    let url = gw.url("/hls/cam_1/index.m3u8");
    let page = from("127.0.0.1");
    let made_up = gw.url("/hls/cam_1/index.m3u8?hls_session=0123456789abcdef0123456789abcdef");
    let requests = (0..20).map(|i| {
        let target = if i % 2 == 0 {
            url.clone()
        } else {
            made_up.clone()
        };
        page.get(target).send()
    });
    for answer in futures::future::join_all(requests).await {
        let status = answer.unwrap().status();
        assert_ne!(status, 429, "one address filled the stream");
    }
    assert_eq!(hls_viewers(&gw).await, 1);
    // Other addresses still get their place.
    for source in ["127.0.0.2", "127.0.0.3"] {
        let status = from(source).get(&url).send().await.unwrap().status();
        assert_ne!(status, 429, "{source}");
    }
    assert_eq!(hls_viewers(&gw).await, 3);
    // The limit itself still holds.
    let status = from("127.0.0.4").get(&url).send().await.unwrap().status();
    assert_eq!(status, 429);
}
