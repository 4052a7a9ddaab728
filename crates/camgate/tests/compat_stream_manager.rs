//! The Go stream manager's API (seed 003) and the Angular grid's HLS lookup (seed 004),
//! replayed as their users call them, against a GStreamer camera: the seed's curl requests
//! verbatim but for the host and the camera's address, ffprobe playing the returned path,
//! ten players sharing one camera session, stop, status, health, invalid links, and the
//! access rules of the state-changing GET.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Camera, Gateway, PASSWORD, client, eventually};

async fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    let r = client().get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(PASSWORD),
        "a password in the answer to {path}: {text}"
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn stop(gw: &Gateway, body: &str) -> (u16, Value) {
    // The seed: POST /api/stream/stop, Content-Type: application/json, {"indicator_id": "123"}
    let r = client()
        .post(gw.url("/api/stream/stop"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// ffprobe decodes frames from `path` (the `stream_path` of the start answer).
async fn ffprobe_frames(gw: &Gateway, path: &str) -> u64 {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args(["-read_intervals", "%+3"])
            .args(["-show_entries", "stream=width,height,nb_read_frames"])
            .args(["-of", "json"])
            .arg(gw.url(path))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffprobe finished within 90 s")
    .expect("ffprobe runs (apt-get install ffmpeg)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let s = &v["streams"][0];
    assert_eq!(s["width"], 320, "{v}");
    assert_eq!(s["height"], 240, "{v}");
    s["nb_read_frames"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_start_play_share_status_stop() {
    let mut cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    let link = cam.good_url();

    // GET /api/stream/start?indicator_id=123&rtsp_link=rtsp://example.com/stream
    let start = format!("/api/stream/start?indicator_id=123&rtsp_link={link}");
    let (status, body) = get(&gw, &start).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"stream_path": "/streams/123/stream.m3u8", "status": "started"})
    );
    // Provisioned as an on-demand camera, through the same registry as /cameras/provision.
    let info = gw.get_json("/cameras/123/info").await;
    assert_eq!(info["on_demand"], true, "{info}");
    assert!(info["rtsp_url"].as_str().unwrap().contains("***"), "{info}");

    // The returned path plays.
    let frames = ffprobe_frames(&gw, "/streams/123/stream.m3u8").await;
    assert!(frames > 10, "ffprobe decoded {frames} frames");

    // Ten players of one camera share one camera session.
    // Ten users on ten machines (loopback addresses 127.0.0.2-11): requests without a session
    // from one address share one provisional viewer (a defence against slot exhaustion), so
    // ten players from one address starting at the same instant would count as one.
    let players: Vec<reqwest::Client> = (2..12u8)
        .map(|n| {
            reqwest::Client::builder()
                .cookie_store(true)
                .local_address(std::net::IpAddr::from([127, 0, 0, n]))
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap()
        })
        .collect();
    let url = gw.url("/streams/123/stream.m3u8");
    let answers = futures::future::join_all(players.iter().map(|p| p.get(&url).send())).await;
    for a in answers {
        let a = a.unwrap();
        assert_eq!(a.status(), 200);
        assert!(a.text().await.unwrap().starts_with("#EXTM3U"));
    }
    let viewers = gw.get_json("/streams/cam_123/viewers").await;
    assert!(viewers["viewers"].as_u64().unwrap() >= 10, "{viewers}");
    assert_eq!(cam.sessions().0, 1, "one camera session for every player");

    // Asked again while it is live: the same path, "existing".
    let (status, body) = get(&gw, &start).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"stream_path": "/streams/123/stream.m3u8", "status": "existing"})
    );

    // GET /api/stream/status?indicator_id=123
    let (status, st) = get(&gw, "/api/stream/status?indicator_id=123").await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["indicator_id"], "123");
    assert_eq!(st["stream_path"], "/streams/123/stream.m3u8");
    assert_eq!(st["status"], "active");
    assert_eq!(st["state"], "live");
    assert_eq!(st["camera_stream_path"], "cam_123");
    assert_eq!(st["codec"], "h264");

    // GET /api/health: {"status": "healthy", "active_streams": N}
    let (status, health) = get(&gw, "/api/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["active_streams"], 1, "{health}");

    // The Angular grid's lookup (seed 004).
    let (status, hls) = get(&gw, "/api/stream/hls/123").await;
    assert_eq!(status, 200);
    assert_eq!(hls["camera_id"], "123");
    assert_eq!(
        hls["hls_url"],
        gw.url("/hls/cam_123/index.m3u8").as_str(),
        "{hls}"
    );
    let (status, missing) = get(&gw, "/api/stream/hls/nope").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "camera_not_found");

    // POST /api/stream/stop {"indicator_id": "123"}: the session ends now.
    let (status, body) = stop(&gw, r#"{"indicator_id": "123"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"indicator_id": "123", "status": "stopped"}));
    eventually("the camera session to end", Duration::from_secs(20), || {
        (cam.sessions().0 == 0).then_some(())
    })
    .await;
    let (_, st) = get(&gw, "/api/stream/status?indicator_id=123").await;
    assert_eq!(st["status"], "inactive", "{st}");
    assert_eq!(st["state"], "idle", "{st}");
    // Still provisioned; the next viewer starts it again.
    assert_eq!(gw.get_json("/cameras/123/info").await["camera_id"], "123");
    let frames = ffprobe_frames(&gw, "/streams/123/stream.m3u8").await;
    assert!(frames > 10);
    assert_eq!(cam.sessions(), (1, 2), "a second session, after the stop");
    // The seed's "user closes page": with no player left, the camera is let go by itself
    // (after the HLS idle window and [streams] idle_timeout, 2 s here).
    eventually(
        "the camera to be let go after the last player",
        Duration::from_secs(60),
        || (cam.sessions().0 == 0).then_some(()),
    )
    .await;
    gw.wait_state("123", "idle", Duration::from_secs(10)).await;

    // Unknown ids.
    let (status, body) = stop(&gw, r#"{"indicator_id": "999"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "camera_not_found");
    let (status, _) = get(&gw, "/api/stream/status?indicator_id=999").await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_link_updates_the_camera_and_invalid_links_are_errors_with_details() {
    let cam = Camera::start();
    let gw = Gateway::start(|_| {}).await;
    let first = format!("rtsp://{}:{}@127.0.0.1:1/old", support::USER, PASSWORD);
    let (status, body) = get(
        &gw,
        &format!("/api/stream/start?indicator_id=7&rtsp_link={first}"),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("started")));
    // The same id with another link: updated, like provisioning.
    let (status, body) = get(
        &gw,
        &format!(
            "/api/stream/start?indicator_id=7&rtsp_link={}",
            cam.good_url()
        ),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("started")));
    let info = gw.get_json("/cameras/7/info").await;
    assert!(
        info["rtsp_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("127.0.0.1:{}/cam", cam.port)),
        "{info}"
    );

    // Invalid links and ids: errors that say what is wrong, never echoing a password.
    for (query, code) in [
        (
            "indicator_id=8&rtsp_link=http://user:hunter2@cam/stream".to_owned(),
            "invalid_rtsp_url",
        ),
        (
            "indicator_id=8&rtsp_link=rtsp://".to_owned(),
            "invalid_rtsp_url",
        ),
        ("indicator_id=8".to_owned(), "missing_rtsp_link"),
        (
            "rtsp_link=rtsp://cam/stream".to_owned(),
            "missing_indicator_id",
        ),
        (
            "indicator_id=../x&rtsp_link=rtsp://cam/stream".to_owned(),
            "invalid_camera_id",
        ),
    ] {
        let (status, body) = get(&gw, &format!("/api/stream/start?{query}")).await;
        assert!(status == 400 || status == 422, "{query}: {status} {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.len() > 20, "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    let (status, body) = get(
        &gw,
        "/api/stream/start?indicator_id=8&rtsp_link=http://cam/stream",
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rtsp_link must start with rtsp://"),
        "{body}"
    );
    // Nothing was provisioned by the refused requests.
    let (status, _) = get(&gw, "/cameras/8/info").await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn the_state_changing_get_refuses_cross_site_browsers_and_needs_a_key() {
    const KEY: &str = "compat-test-key-0123456789";
    let gw = Gateway::start(|c| c.auth.api_keys = vec![KEY.into()]).await;
    let url = gw.url("/api/stream/start?indicator_id=5&rtsp_link=rtsp://127.0.0.1:1/s");
    // No key.
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A page of another site, even with a key (a browser may hold one in a header it was
    // told to send): refused, nothing provisioned.
    let r = client()
        .get(&url)
        .bearer_auth(KEY)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cross_site_request");
    let r = client()
        .get(gw.url("/cameras/5/info"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The backend's call (no Sec-Fetch-Site) and the server's own pages pass.
    for site in [None, Some("same-origin")] {
        let mut req = client().get(&url).bearer_auth(KEY);
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{site:?}");
    }
    // Cross-site reads of other routes are not this rule's business.
    let r = client()
        .get(gw.url("/api/stream/status?indicator_id=5"))
        .bearer_auth(KEY)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}
