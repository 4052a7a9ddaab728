//! Events and observability against peers nobody here wrote: GStreamer's RTSP server as the
//! camera, tokio-tungstenite as the WebSocket client, the `prometheus-parse` crate reading
//! `/metrics`. camgate runs in-process on a free 127.0.0.1 port.

mod support;

use std::time::Duration;

use camgate::hub::Protocol;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use support::{Camera, Gateway, Ws, client};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// Reads until a JSON message satisfies `want` (others are skipped), or panics after `within`.
async fn next_where(
    ws: &mut Ws,
    what: &str,
    within: Duration,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    // The last few skipped messages, for the failure message.
    let mut seen = std::collections::VecDeque::new();
    loop {
        if seen.len() > 8 {
            seen.pop_front();
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(other) => panic!("socket ended while waiting for {what}: {other:?}; seen {seen:?}"),
            Err(_) => panic!("no {what} within {within:?}; seen {seen:?}"),
        };
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("events are JSON");
            if want(&v) {
                return v;
            }
            seen.push_back(v);
        }
    }
}

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind
}

fn state_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "state" && v["state"] == state
}

fn viewers_are(n: u64) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "viewers" && v["viewers"] == n
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_socket_follows_a_camera_through_viewers_live_and_drop() {
    let cam = Camera::start();
    let gw = Gateway::start_for_events(|_| {}).await;
    gw.provision("1", &cam.good_url(), true).await;
    let mut ws = gw.ws("/ws/events/cam_1").await;

    send(&mut ws, "ping").await;
    let pong = next_where(&mut ws, "pong", WAIT, is("pong")).await;
    assert_eq!(pong["stream_path"], "cam_1");
    send(&mut ws, "status").await;
    let status = next_where(&mut ws, "status", WAIT, is("status")).await;
    assert_eq!(status["camera_id"], "1");
    assert_eq!(status["stream_path"], "cam_1");
    assert_eq!(status["state"], "idle");
    assert!(status["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
    // JSON form of the same command, and a command we do not know.
    send(&mut ws, r#"{"type":"ping"}"#).await;
    next_where(&mut ws, "pong", WAIT, is("pong")).await;
    send(&mut ws, "reboot").await;
    let err = next_where(&mut ws, "error", WAIT, is("error")).await;
    assert!(err["message"].as_str().unwrap().contains("status"), "{err}");

    // A player arrives (the viewer registry is what HLS, MSE and WebRTC join).
    let rt = gw.app.live.get("1").unwrap();
    let viewer = rt.join(Protocol::Hls).unwrap();
    // The viewer count and the start come from different tasks: either may be first.
    let first = next_where(&mut ws, "viewers 1 or state starting", WAIT, |v| {
        viewers_are(1)(v) || state_is("starting")(v)
    })
    .await;
    let (v, starting) = if first["type"] == "viewers" {
        let s = next_where(&mut ws, "state starting", WAIT, state_is("starting")).await;
        (first, s)
    } else {
        let v = next_where(&mut ws, "viewers 1", WAIT, viewers_are(1)).await;
        (v, first)
    };
    assert_eq!(v["by_protocol"]["hls"], 1);
    assert_eq!(starting["previous"], "idle");
    assert_eq!(starting["reason"], "a viewer asked for the camera");
    let live = next_where(&mut ws, "state live", WAIT, state_is("live")).await;
    assert_eq!(live["previous"], "starting");
    assert_eq!(live["online"], true);
    assert_eq!(live["camera_id"], "1");

    // The camera loses power: the drop is announced with its reason.
    let port = cam.stop();
    let down = next_where(
        &mut ws,
        "state reconnecting",
        WAIT,
        state_is("reconnecting"),
    )
    .await;
    assert_eq!(down["previous"], "live");
    assert_eq!(down["online"], false);
    let reason = down["reason"].as_str().unwrap();
    assert!(reason.contains("camera 1"), "{reason}");
    assert!(!reason.contains(support::PASSWORD), "{reason}");
    // It comes back.
    let _cam = Camera::start_on(port);
    next_where(&mut ws, "state live again", WAIT, state_is("live")).await;

    // The player leaves: count 0, then the on-demand camera goes idle.
    drop(viewer);
    next_where(&mut ws, "viewers 0", WAIT, viewers_are(0)).await;
    let idle = next_where(&mut ws, "state idle", WAIT, state_is("idle")).await;
    assert!(
        idle["reason"].as_str().unwrap().contains("no viewers"),
        "{idle}"
    );

    // Deleting the camera ends the feed with a clear close.
    let r = client().delete(gw.url("/cameras/1")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let deleted = next_where(&mut ws, "camera deleted", WAIT, is("camera")).await;
    assert_eq!(deleted["action"], "deleted");
    expect_close(&mut ws, 4410, "camera deleted").await;
}

async fn expect_close(ws: &mut Ws, code: u16, reason_has: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(frame.code, CloseCode::from(code));
                assert!(frame.reason.contains(reason_has), "{}", frame.reason);
                return;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame {code}, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_invalid_streams_are_refused_clearly() {
    let gw = Gateway::start_for_events(|_| {}).await;
    let mut ws = gw.ws("/ws/events/no_such_stream").await;
    expect_close(&mut ws, 4404, "unknown stream no_such_stream").await;

    // A path that is not a stream path never becomes a socket: 400 with our error code.
    let err = tokio_tungstenite::connect_async(gw.ws_url("/ws/events/bad%20path"))
        .await
        .expect_err("invalid path refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status(), 400);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "invalid_stream_path");
        }
        other => panic!("{other:?}"),
    }
    // Plain HTTP on a WebSocket endpoint: a JSON error, not a hang.
    let r = client().get(gw.url("/ws/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 426);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sends_stats_at_the_interval_and_every_cameras_state() {
    let cam = Camera::start();
    let gw = Gateway::start_for_events(|_| {}).await;
    let mut dash = gw.ws("/ws/dashboard").await;
    let first = next_where(&mut dash, "stats", WAIT, is("stats")).await;
    for key in [
        "active_streams",
        "total_viewers",
        "cameras",
        "cameras_online",
        "total_bytes_sent",
        "uptime_seconds",
    ] {
        assert!(first["data"][key].is_u64(), "{key} in {first}");
    }
    assert_eq!(first["data"]["cameras"], 0);
    // Several more arrive on their own: it is periodic, not a one-off.
    for _ in 0..3 {
        next_where(&mut dash, "stats", WAIT, is("stats")).await;
    }

    gw.provision("7", &cam.good_url(), false).await;
    let provisioned = next_where(&mut dash, "camera event", WAIT, is("camera")).await;
    assert_eq!(provisioned["action"], "provisioned");
    let live = next_where(&mut dash, "state live", WAIT, state_is("live")).await;
    assert_eq!(live["stream_path"], "cam_7");
    let stats = next_where(&mut dash, "stats with the camera online", WAIT, |v| {
        v["type"] == "stats" && v["data"]["cameras_online"] == 1
    })
    .await;
    assert_eq!(stats["data"]["cameras"], 1);
    assert_eq!(stats["data"]["active_streams"], 1);
    send(&mut dash, "ping").await;
    next_where(&mut dash, "pong", WAIT, is("pong")).await;
}

/// The values a test looks at, by metric name and camera label.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match s.value {
        prometheus_parse::Value::Counter(v) => {
            assert!(
                name.ends_with("_total"),
                "{name} is a counter without _total"
            );
            v
        }
        prometheus_parse::Value::Gauge(v) => {
            assert!(
                !name.ends_with("_total"),
                "{name} is a gauge named like a counter"
            );
            v
        }
        ref other => panic!("{name} has no TYPE line: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_with_the_camera() {
    let cam = Camera::start();
    let gw = Gateway::start_for_events(|_| {}).await;
    gw.provision("m1", &cam.good_url(), true).await;
    let cam_labels = [("camera", "m1"), ("stream", "cam_m1")];

    let before = gw.metrics().await;
    assert_eq!(sample(&before, "camgate_camera_up", &cam_labels), 0.0);
    assert_eq!(
        sample(&before, "camgate_camera_frames_total", &cam_labels),
        0.0
    );
    let idle_state = [("camera", "m1"), ("stream", "cam_m1"), ("state", "idle")];
    assert_eq!(sample(&before, "camgate_camera_state", &idle_state), 1.0);
    assert_eq!(
        sample(
            &before,
            "camgate_websocket_clients",
            &[("endpoint", "events")]
        ),
        0.0
    );
    assert!(sample(&before, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(sample(&before, "process_open_fds", &[]) > 0.0);
    assert!(sample(&before, "process_cpu_seconds_total", &[]) >= 0.0);
    assert_eq!(sample(&before, "camgate_nats_enabled", &[]), 0.0);

    let rt = gw.app.live.get("m1").unwrap();
    let viewer = rt.join(Protocol::Hls).unwrap();
    // A client that keeps reading (and so answers the server's pings) stays counted.
    let mut ws = gw.ws("/ws/events/cam_m1").await;
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    let mut rx = rt.watch_state();
    tokio::time::timeout(
        WAIT,
        rx.wait_for(|s| s.state == camgate::cameras::StreamState::Live),
    )
    .await
    .expect("live")
    .unwrap();
    // Let frames accumulate past the first ones.
    support::eventually("50 frames", WAIT, || {
        (rt.hub().stats().frames_received >= 50).then_some(())
    })
    .await;

    let during = gw.metrics().await;
    assert_eq!(sample(&during, "camgate_camera_up", &cam_labels), 1.0);
    let frames = sample(&during, "camgate_camera_frames_total", &cam_labels);
    assert!(frames >= 50.0, "{frames}");
    assert!(sample(&during, "camgate_camera_received_bytes_total", &cam_labels) > 0.0);
    assert!(sample(&during, "camgate_camera_fps", &cam_labels) > 0.0);
    assert!(sample(&during, "camgate_camera_bitrate_kbps", &cam_labels) > 0.0);
    let live_state = [("camera", "m1"), ("stream", "cam_m1"), ("state", "live")];
    assert_eq!(sample(&during, "camgate_camera_state", &live_state), 1.0);
    assert_eq!(sample(&during, "camgate_camera_state", &idle_state), 0.0);
    let hls = [("camera", "m1"), ("stream", "cam_m1"), ("protocol", "hls")];
    assert_eq!(
        sample(&during, "camgate_camera_viewers_by_protocol", &hls),
        1.0
    );
    assert_eq!(
        sample(&during, "camgate_viewers", &[("protocol", "hls")]),
        1.0
    );
    assert_eq!(sample(&during, "camgate_cameras_online", &[]), 1.0);
    assert_eq!(
        sample(
            &during,
            "camgate_websocket_clients",
            &[("endpoint", "events")]
        ),
        1.0
    );

    // /stats says the same as /metrics.
    let stats: Value = client()
        .get(gw.url("/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["cameras_online"], 1);
    assert_eq!(stats["total_viewers"], 1);
    assert_eq!(stats["viewers_by_protocol"]["hls"], 1);
    assert_eq!(stats["websocket_clients"], 1);
    // More frames arrive; the next scrape shows them.
    support::eventually("more frames", WAIT, || {
        (rt.hub().stats().frames_received as f64 > frames).then_some(())
    })
    .await;
    let later = gw.metrics().await;
    let received_stats = stats["total_bytes_received"].as_f64().unwrap();
    let received_before = sample(&during, "camgate_received_bytes_total", &[]);
    let received_after = sample(&later, "camgate_received_bytes_total", &[]);
    assert!(received_before <= received_stats && received_stats <= received_after);
    assert!(sample(&later, "camgate_camera_frames_total", &cam_labels) > frames);

    // The camera drops: a failure is counted and `up` goes to 0.
    cam.stop();
    support::eventually("a reconnect counted", WAIT, || {
        (rt.reconnects() >= 1).then_some(())
    })
    .await;
    let after = gw.metrics().await;
    assert_eq!(sample(&after, "camgate_camera_up", &cam_labels), 0.0);
    assert!(sample(&after, "camgate_camera_reconnects_total", &cam_labels) >= 1.0);
    drop(viewer);
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_pings_is_closed() {
    let cam = Camera::start();
    let gw = Gateway::start_for_events(|_| {}).await;
    gw.provision("p1", &cam.good_url(), true).await;
    let metrics = gw.app.metrics.clone();
    let counted = |n: u64| {
        let m = metrics.clone();
        move || (m.ws_clients(camgate::events::counters::WsEndpoint::Events) == n).then_some(())
    };
    // Connected, then silent: the library answers pings only while it is read, and this
    // client is never read, like a peer whose network went away.
    let silent = gw.ws("/ws/events/cam_p1").await;
    support::eventually("the client counted", WAIT, counted(1)).await;
    // Two ping intervals (1 s each in this gateway) without an answer close it.
    support::eventually("the silent client closed", WAIT, counted(0)).await;
    drop(silent);

    // A client that reads (and so answers pings) stays connected past those intervals.
    let mut alive = gw.ws("/ws/events/cam_p1").await;
    let mut pings = 0;
    while pings < 4 {
        match tokio::time::timeout(WAIT, alive.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("the live client lost its socket: {other:?}"),
        }
    }
    assert_eq!(
        metrics.ws_clients(camgate::events::counters::WsEndpoint::Events),
        1
    );
}

/// A real HLS player (ffprobe reading the LL-HLS playlist for a few seconds) on an on-demand
/// camera: `viewers` 1 when it starts, `viewers` 0 when its session expires after it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_player_starting_and_stopping_is_a_viewers_event() {
    let cam = Camera::start();
    // The test reads the socket only between steps: long pings keep it open meanwhile.
    let gw =
        Gateway::start_for_events(|c| c.events.ws_ping_interval = Duration::from_secs(60)).await;
    gw.provision("h1", &cam.good_url(), true).await;
    let mut ws = gw.ws("/ws/events/cam_h1").await;

    let url = gw.url("/hls/cam_h1/index.m3u8");
    let player = tokio::spawn(async move {
        tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
                .args(["-read_intervals", "%+2"])
                .args(["-show_entries", "stream=nb_read_frames", "-of", "json"])
                .arg(url)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("ffprobe finished within 60 s")
        .expect("run ffprobe")
    });
    let joined = next_where(&mut ws, "viewers 1", WAIT, viewers_are(1)).await;
    assert_eq!(joined["by_protocol"]["hls"], 1, "{joined}");
    next_where(&mut ws, "state live", WAIT, state_is("live")).await;
    // A blocking reload (what LL-HLS players do): ask for the part after the newest.
    let text = support::text(client().get(gw.url("/hls/cam_h1/index.m3u8"))).await;
    // The segment being written now is MEDIA-SEQUENCE + the complete ones; ask for part 0
    // of the one after it, which cannot exist yet.
    let first: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .expect("a media sequence")
        .trim()
        .parse()
        .unwrap();
    let complete = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    let newest = first + complete;
    let r = client()
        .get(gw.url(&format!(
            "/hls/cam_h1/index.m3u8?_HLS_msn={}&_HLS_part=0",
            newest + 1
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let out = player.await.unwrap();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The player is gone; its session expires after the HLS idle window.
    let left = next_where(
        &mut ws,
        "viewers 0",
        Duration::from_secs(40),
        viewers_are(0),
    )
    .await;
    assert_eq!(left["by_protocol"]["hls"], 0, "{left}");

    let m = gw.metrics().await;
    assert!(sample(&m, "camgate_hls_blocking_reload_waits_total", &[]) >= 1.0);
    assert!(sample(&m, "camgate_hls_requests_total", &[("kind", "playlist")]) >= 1.0);
    assert!(sample(&m, "camgate_hls_requests_total", &[("kind", "init")]) >= 1.0);
    let media = sample(&m, "camgate_hls_requests_total", &[("kind", "segment")])
        + sample(&m, "camgate_hls_requests_total", &[("kind", "part")]);
    assert!(media >= 1.0, "{media}");
    assert!(sample(&m, "camgate_hls_sent_bytes_total", &[]) > 0.0);
    assert!(
        sample(&m, "camgate_sent_bytes_total", &[])
            >= sample(&m, "camgate_hls_sent_bytes_total", &[])
    );
}
