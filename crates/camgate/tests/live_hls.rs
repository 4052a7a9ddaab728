//! LL-HLS served from GStreamer's RTSP server: real players (ffprobe), the LL-HLS rules on the
//! served playlists, on-demand start and idle, one camera session for many viewers, limits.

mod support;

use std::time::Duration;

use support::{Camera, Gateway, closed_port};

/// A client with its own cookie jar, like a separate player.
fn player() -> reqwest::Client {
    player_at(1)
}

/// A player on its own loopback address `127.0.0.{n}`: first requests without a session
/// from one address share one provisional viewer (issue 16 #8), so players counted apart
/// come from addresses apart, as players on different machines do.
fn player_at(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `#EXT-X-PART-INF:PART-TARGET=0.2` -> 0.2, and friends.
fn attr(playlist: &str, tag: &str, name: &str) -> Option<f64> {
    let line = playlist.lines().find(|l| l.starts_with(tag))?;
    let rest = &line[line.find(&format!("{name}="))? + name.len() + 1..];
    rest.split(',').next()?.parse().ok()
}

/// (msn, part index) of the part the preload hint names: the next one to appear.
fn next_part(playlist: &str) -> (u64, u64) {
    let seq: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let mut complete = 0;
    let mut parts_after = 0;
    for l in playlist.lines() {
        if l.starts_with("#EXTINF") {
            complete += 1;
            parts_after = 0;
        } else if l.starts_with("#EXT-X-PART:") {
            parts_after += 1;
        }
    }
    let skipped: u64 = attr(playlist, "#EXT-X-SKIP", "SKIPPED-SEGMENTS").unwrap_or(0.0) as u64;
    (seq + skipped + complete, parts_after)
}

fn preload_hint(playlist: &str) -> String {
    let l = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .expect("a preload hint");
    l.split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_players_one_camera_session_and_ll_hls_rules() {
    let mut cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("h1", &cam.good_url(), true).await;
    assert_eq!(gw.state_of("h1").await, "idle");
    assert_eq!(cam.sessions(), (0, 0));

    // Ten players ask at once for a cold on-demand camera: all wait for the first part.
    let url = gw.url("/hls/cam_h1/index.m3u8");
    let players: Vec<_> = (2..12).map(player_at).collect();
    let answers = futures::future::join_all(players.iter().map(|p| p.get(&url).send())).await;
    let mut playlist = String::new();
    for a in answers {
        let a = a.unwrap();
        assert_eq!(a.status(), 200);
        assert_eq!(a.headers()["cache-control"], "no-cache");
        assert_eq!(a.headers()["content-type"], "application/vnd.apple.mpegurl");
        playlist = a.text().await.unwrap();
    }
    assert_eq!(cam.sessions(), (1, 1), "ten players, one RTSP session");
    let v = gw.get_json("/streams/cam_h1/viewers").await;
    assert_eq!(v["by_protocol"]["hls"], 10, "{v}");
    // The same player reloading is still one viewer.
    for _ in 0..5 {
        let r = players[0].get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let v = gw.get_json("/streams/cam_h1/viewers").await;
    assert_eq!(v["viewers"], 10, "{v}");

    // LL-HLS rules.
    assert!(playlist.contains("CAN-BLOCK-RELOAD=YES"), "{playlist}");
    let part_target = attr(&playlist, "#EXT-X-PART-INF", "PART-TARGET").unwrap();
    let hold_back = attr(&playlist, "#EXT-X-SERVER-CONTROL", "PART-HOLD-BACK").unwrap();
    assert!(hold_back >= 3.0 * part_target, "{playlist}");
    assert!(playlist.contains("#EXT-X-MAP:URI="), "{playlist}");
    assert!(playlist.contains("#EXT-X-PART:"), "{playlist}");

    // A part is immutable and cacheable; bytes are an fMP4 fragment.
    let part_uri = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PART:"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = players[0]
        .get(gw.url(&format!("/hls/cam_h1/{part_uri}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"moof");

    // Blocking reload: ask for the next part; the answer comes when it exists and lists it.
    let p = support::text(players[0].get(&url)).await;
    let (msn, part) = next_part(&p);
    let hint = preload_hint(&p);
    let blocked = players[0]
        .get(format!("{url}?_HLS_msn={msn}&_HLS_part={part}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 200);
    let newer = blocked.text().await.unwrap();
    assert!(
        newer.contains(&format!("URI=\"{hint}\""))
            && !newer.contains(&format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"")),
        "the hinted part {hint} is now a listed part:\n{newer}"
    );
    // The preload-hinted part can be requested before it exists and arrives when ready.
    let hint2 = preload_hint(&newer);
    let r = players[0]
        .get(gw.url(&format!("/hls/cam_h1/{hint2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Bad blocking-reload parameters are 400 with a JSON error.
    for q in [
        "_HLS_msn=abc",
        "_HLS_part=1",
        "_HLS_msn=-1",
        "_HLS_msn=999999&_HLS_part=0",
    ] {
        let r = players[0].get(format!("{url}?{q}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_hls_param", "{q}: {body}");
    }

    // Aliases: the camera id as path, and the compat playlist route.
    for alias in ["/hls/h1/index.m3u8", "/streams/h1/stream.m3u8"] {
        let r = players[0].get(gw.url(alias)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{alias}");
        assert!(r.text().await.unwrap().starts_with("#EXTM3U"));
    }
    assert_eq!(cam.sessions(), (1, 1));

    // Everyone leaves: after the viewer idle window and idle_timeout, no session, `idle`.
    drop(players);
    gw.wait_state("h1", "idle", Duration::from_secs(30)).await;
    support::eventually(
        "the camera to close the session",
        Duration::from_secs(10),
        || (cam.sessions().0 == 0).then_some(()),
    )
    .await;
    let v = gw.get_json("/streams/cam_h1/viewers").await;
    assert_eq!(v["viewers"], 0, "{v}");
}

/// ffprobe reads the playlist and decodes at least 3 s of frames; returns the stream entry.
async fn ffprobe(gw: &Gateway, path: &str) -> serde_json::Value {
    let s = support::probe::video(&gw.url(&format!("/hls/{path}/index.m3u8")), 4).await;
    assert_eq!(s["width"], 320, "{s}");
    assert_eq!(s["height"], 240, "{s}");
    let frames: u64 = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(
        frames >= 75,
        "at least 3 s at 25 fps decoded, got {frames}: {s}"
    );
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_decodes_three_seconds_at_the_camera_resolution() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("h2", &cam.good_url(), true).await;
    let s = ffprobe(&gw, "cam_h2").await;
    assert_eq!(s["codec_name"], "h264", "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_camera_is_served_as_hevc() {
    let cam = Camera::start_h265();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("h265", &cam.good_url(), true).await;
    let s = ffprobe(&gw, "cam_h265").await;
    assert_eq!(s["codec_name"], "hevc", "{s}");
    let st = gw.get_json("/cameras/h265/status").await;
    assert_eq!(st["codec"], "h265", "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_camera_answers_504_with_the_reason_and_limits_give_429() {
    let cam = Camera::start();
    let gw = Gateway::start(|c| {
        c.streams.start_timeout = Duration::from_secs(6);
        c.streams.max_viewers_per_stream = 2;
    })
    .await;
    gw.provision(
        "dead",
        &format!("rtsp://127.0.0.1:{}/x", closed_port()),
        true,
    )
    .await;
    let r = player()
        .get(gw.url("/hls/cam_dead/index.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let body: serde_json::Value = r.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("camera dead") && msg.contains("unreachable"),
        "{msg}"
    );

    gw.provision("full", &cam.good_url(), true).await;
    let url = gw.url("/hls/cam_full/index.m3u8");
    let (a, b) = (player_at(2), player_at(3));
    assert_eq!(a.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(b.get(&url).send().await.unwrap().status(), 200);
    let third = player_at(4).get(&url).send().await.unwrap();
    assert_eq!(third.status(), 429);
    // Known players keep working.
    assert_eq!(a.get(&url).send().await.unwrap().status(), 200);

    let r = player()
        .get(gw.url("/hls/nope/index.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = player()
        .get(gw.url("/hls/bad%20path/index.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_camera_comes_back_live_within_backoff() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    let url = cam.good_url();
    let port = cam.port;
    let r = support::client()
        .post(gw.url("/cameras/provision"))
        .json(&serde_json::json!({"camera_id": "f1", "rtsp_url": url, "on_demand": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    gw.wait_state("f1", "live", Duration::from_secs(20)).await;
    let s = gw.get_json("/cameras/f1/status").await;
    assert_eq!(s["online"], true, "{s}");
    assert_eq!(s["resolution"], "320x240", "{s}");
    assert_eq!(s["codec"], "h264", "{s}");
    let streams = gw.get_json("/streams").await;
    assert_eq!(streams[0]["state"], "live", "{streams}");
    let health = gw.get_json("/health").await;
    assert_eq!(health["active_streams"], 1, "{health}");

    cam.stop();
    gw.wait_state("f1", "reconnecting", Duration::from_secs(10))
        .await;
    let s = gw.get_json("/cameras/f1/status").await;
    assert!(
        s["last_error"].as_str().unwrap().contains("camera f1"),
        "{s}"
    );
    let _cam = Camera::start_on(port);
    // reconnect_max is 2 s in the test gateway: live again within backoff + 2 s.
    gw.wait_state("f1", "live", Duration::from_secs(4)).await;

    let r = support::client()
        .delete(gw.url("/cameras/f1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(gw.app.live.list().len(), 0);
}
