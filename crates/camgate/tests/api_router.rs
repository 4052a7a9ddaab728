//! The HTTP API through the router with `oneshot` (no socket): every endpoint, the bad-input
//! table, access control, and health degradation.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use camgate::config::Config;
use common::{TestApi, error_code};
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "s3cr3t-Pa55";

fn cam(id: Value) -> Value {
    json!({"camera_id": id, "rtsp_url": format!("rtsp://admin:{PASSWORD}@10.0.0.9:554/live")})
}

#[tokio::test]
async fn health_and_stats() {
    let api = TestApi::new();
    for path in ["/health", "/api/health"] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["active_streams"], 0);
        assert!(body["uptime_seconds"].is_u64());
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    }
    let (status, stats) = api.get("/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["cameras"], 0);
    api.post_json("/cameras/provision", &cam(json!("a"))).await;
    api.post_json("/cameras/provision", &cam(json!("b"))).await;
    let (_, stats) = api.get("/stats").await;
    for (key, want) in [
        ("cameras", 2),
        ("cameras_online", 0),
        ("active_streams", 0),
        ("total_viewers", 0),
        ("total_bytes_sent", 0),
        ("total_bytes_received", 0),
    ] {
        assert_eq!(stats[key], want, "{key} in {stats}");
    }
    assert!(stats["uptime_seconds"].is_u64());
}

#[tokio::test]
async fn health_degrades_when_storage_rejects_writes() {
    let api = TestApi::new();
    api.app
        .db
        .call(|c| Ok(c.pragma_update(None, "query_only", true)?))
        .await
        .unwrap();
    let (status, body) = api.get("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "degraded");
    let reasons = body["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("storage")),
        "{body}"
    );
}

#[tokio::test]
async fn provision_is_an_upsert_with_absolute_urls() {
    let api = TestApi::new();
    let (status, body) = api.post_json("/cameras/provision", &cam(json!(1))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({
            "success": true,
            "camera_id": "1",
            "stream_path": "cam_1",
            "hls_url": "http://gateway.test:8080/hls/cam_1/index.m3u8",
            "webrtc_url": "http://gateway.test:8080/webrtc/cam_1",
            "whep_url": "http://gateway.test:8080/webrtc/cam_1/whep",
            "mse_url": "ws://gateway.test:8080/mse/cam_1",
            "snapshot_url": "http://gateway.test:8080/cameras/1/snapshot.jpg",
            "ws_events_url": "ws://gateway.test:8080/ws/events/cam_1",
        })
    );
    // `1` and `"1"` are the same camera: the second provision updates it.
    let mut update = cam(json!("1"));
    update["name"] = json!("Loading dock");
    update["record"] = json!(true);
    update["on_demand"] = json!(false);
    update["transport"] = json!("tcp");
    update["stream_path"] = json!("dock");
    update["idle_timeout_seconds"] = json!(12);
    let (status, body) = api.post_json("/cameras/provision", &update).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stream_path"], "dock");
    assert_eq!(
        body["hls_url"],
        "http://gateway.test:8080/hls/dock/index.m3u8"
    );

    let (status, info) = api.get("/cameras/1/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["camera_id"], "1");
    assert_eq!(info["name"], "Loading dock");
    assert_eq!(info["rtsp_url"], "rtsp://admin:***@10.0.0.9:554/live");
    assert_eq!(info["stream_path"], "dock");
    assert_eq!(info["on_demand"], false);
    assert_eq!(info["record"], true);
    assert_eq!(info["transport"], "tcp");
    assert_eq!(info["idle_timeout_seconds"], 12.0);
    let created = info["created_at"].as_str().unwrap();
    let updated = info["updated_at"].as_str().unwrap();
    // One fixed-width format, so the timestamps compare correctly as text.
    assert_eq!(
        (created.len(), updated.len()),
        (24, 24),
        "{created} {updated}"
    );
    assert!(
        created <= updated && created.ends_with('Z'),
        "{created} {updated}"
    );
    assert_eq!(api.get("/cameras/1").await.1, info);
}

#[tokio::test]
async fn post_cameras_is_an_alias_and_list_shows_all() {
    let api = TestApi::new();
    let (status, _) = api.post_json("/cameras", &cam(json!("z-cam"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .post_json("/cameras/provision", &cam(json!("a_cam")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, list) = api.get("/cameras").await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|c| c["camera_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a_cam", "z-cam"]);
    for info in list {
        assert_eq!(info["rtsp_url"], "rtsp://admin:***@10.0.0.9:554/live");
        assert_eq!(info["on_demand"], true);
        assert_eq!(info["record"], false);
        assert_eq!(info["transport"], "auto");
        assert_eq!(info["idle_timeout_seconds"], Value::Null);
    }
}

#[tokio::test]
async fn status_is_idle_with_real_zeros() {
    let api = TestApi::new();
    api.post_json("/cameras/provision", &cam(json!("door")))
        .await;
    let (status, body) = api.get("/cameras/door/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "camera_id": "door", "stream_path": "cam_door", "state": "idle", "online": false,
            "fps": 0.0, "bitrate_kbps": 0, "dropped_frames": 0, "uptime_seconds": 0, "viewers": 0,
            "codec": null, "resolution": null, "last_error": null, "last_frame_at": null
        })
    );
}

#[tokio::test]
async fn delete_removes_and_unknown_is_404() {
    let api = TestApi::new();
    api.post_json("/cameras/provision", &cam(json!("gone")))
        .await;
    let (status, body) = api.delete("/cameras/gone").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    for (status, body) in [
        api.delete("/cameras/gone").await,
        api.get("/cameras/gone/info").await,
        api.get("/cameras/gone/status").await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&body), "camera_not_found");
    }
    assert_eq!(api.get("/cameras").await.1, json!([]));
}

/// At least 15 bad inputs, each with its status and code. Nothing is stored by any of them.
#[tokio::test]
async fn bad_inputs_get_clear_codes() {
    let api = TestApi::new();
    api.post_json(
        "/cameras/provision",
        &json!({"camera_id": "taken", "rtsp_url": "rtsp://h/s", "stream_path": "front"}),
    )
    .await;
    let url = "rtsp://h/s";
    let long_id = "x".repeat(65);
    let big = format!(
        "{{\"camera_id\":\"1\",\"rtsp_url\":\"rtsp://h/s\",\"name\":\"{}\"}}",
        "n".repeat(70 * 1024)
    );
    let json_cases: Vec<(Value, StatusCode, &str)> = vec![
        (json!([1, 2]), StatusCode::BAD_REQUEST, "invalid_body"),
        (json!("camera"), StatusCode::BAD_REQUEST, "invalid_body"),
        (
            json!({"camera_id": "1", "rtsp_url": url, "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            json!({"rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_camera_id",
        ),
        (
            json!({"camera_id": null, "rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_camera_id",
        ),
        (
            json!({"camera_id": "a b", "rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_camera_id",
        ),
        (
            json!({"camera_id": "../etc", "rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_camera_id",
        ),
        (
            json!({"camera_id": long_id, "rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_camera_id",
        ),
        (
            json!({"camera_id": "", "rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_camera_id",
        ),
        (
            json!({"camera_id": 1.5, "rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_camera_id",
        ),
        (
            json!({"camera_id": true, "rtsp_url": url}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_camera_id",
        ),
        (
            json!({"camera_id": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_rtsp_url",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": "http://h/s"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rtsp_url",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": "rtsp:///s"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rtsp_url",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": "rtsp://h/s\r\nX: y"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rtsp_url",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": "rtsp://h/a b"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rtsp_url",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rtsp_url",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "stream_path": "a/b"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_stream_path",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "stream_path": "front"}),
            StatusCode::CONFLICT,
            "stream_path_in_use",
        ),
        (
            json!({"camera_id": "cam_x", "rtsp_url": url, "stream_path": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_stream_path",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "transport": "sctp"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transport",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "on_demand": "yes"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "record": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "name": 7}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "idle_timeout_seconds": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_idle_timeout",
        ),
        (
            json!({"camera_id": "1", "rtsp_url": url, "password": "pw"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_credentials",
        ),
    ];
    let mut checked = 0;
    for (body, want_status, want_code) in &json_cases {
        let (status, answer) = api.post_json("/cameras/provision", body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (*want_status, *want_code),
            "body {body}: {answer}"
        );
        checked += 1;
    }

    let raw_cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "application/json",
            "{\"camera_id\":".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "application/json",
            "".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "application/json",
            "{\"camera_id\":\"1\",}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "application/json",
            big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "text/plain",
            "{}".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "camera_id=1".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (content_type, body, want_status, want_code) in raw_cases {
        let (status, answer) = api.post_raw("/cameras/provision", content_type, body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (want_status, want_code),
            "{content_type}: {answer}"
        );
        checked += 1;
    }
    let no_type = Request::post("/cameras").body(Body::from("{}")).unwrap();
    let (status, _, answer) = api.send(no_type).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    let path_cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "GET",
            "/cameras/bad!id/info".into(),
            StatusCode::BAD_REQUEST,
            "invalid_camera_id",
        ),
        (
            "GET",
            format!("/cameras/{long_id}/status"),
            StatusCode::BAD_REQUEST,
            "invalid_camera_id",
        ),
        (
            "DELETE",
            "/cameras/a%20b".into(),
            StatusCode::BAD_REQUEST,
            "invalid_camera_id",
        ),
        (
            "GET",
            "/cameras/a%2Fb/info".into(),
            StatusCode::BAD_REQUEST,
            "invalid_camera_id",
        ),
        (
            "GET",
            "/cameras/%FF/info".into(),
            StatusCode::BAD_REQUEST,
            "invalid_camera_id",
        ),
        (
            "GET",
            "/cameras/unknown/info".into(),
            StatusCode::NOT_FOUND,
            "camera_not_found",
        ),
        (
            "GET",
            "/no/such/route".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "PUT",
            "/cameras".into(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, want_status, want_code) in path_cases {
        let req = Request::builder()
            .method(method)
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let (status, _, answer) = api.send(req).await;
        assert_eq!(
            (status, error_code(&answer)),
            (want_status, want_code),
            "{method} {path}: {answer}"
        );
        checked += 1;
    }
    assert!(checked >= 15);
    // None of it was stored: only the one good camera exists.
    let (_, list) = api.get("/cameras").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn unknown_field_is_named() {
    let api = TestApi::new();
    let (_, answer) = api
        .post_json(
            "/cameras/provision",
            &json!({"camera_id": "1", "rtsp_url": "rtsp://h/", "rtsp_uri": "x"}),
        )
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`rtsp_uri`"),
        "{answer}"
    );
}

#[tokio::test]
async fn error_messages_never_echo_the_password() {
    let api = TestApi::new();
    for body in [
        json!({"camera_id": "1", "rtsp_url": format!("http://admin:{PASSWORD}@h/")}),
        json!({"camera_id": "1 2", "rtsp_url": format!("rtsp://admin:{PASSWORD}@h/")}),
        json!({"camera_id": "1", "rtsp_url": format!("rtsp://admin:{PASSWORD}@h/ x")}),
        json!({"camera_id": "1", "rtsp_url": format!("rtsp://admin:{PASSWORD}@/x")}),
    ] {
        let (status, answer) = api.post_json("/cameras/provision", &body).await;
        assert!(status.is_client_error());
        assert!(!answer.to_string().contains(PASSWORD), "{answer}");
    }
}

#[tokio::test]
async fn protected_mode_refuses_remote_clients_with_instructions() {
    let api = TestApi::with(Config::default(), "192.168.1.50:40000");
    for path in ["/health", "/cameras", "/nope"] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(error_code(&body), "protected_mode");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("[auth] api_keys")
        );
    }
    let (status, _) = api.post_json("/cameras/provision", &cam(json!(1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Loopback through a local reverse proxy is refused too: the real client may be remote.
    let local = TestApi::new();
    let req = Request::get("/health")
        .header("x-forwarded-for", "203.0.113.5")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = local.send(req).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "protected_mode")
    );
}

#[tokio::test]
async fn api_keys_by_bearer_or_header() {
    let mut config = Config::default();
    config.auth.api_keys = vec!["key-one-0123456789".into(), "key-two-0123456789".into()];
    for peer in [common::LOOPBACK, "198.51.100.7:5555"] {
        let api = TestApi::with(config.clone(), peer);
        let (status, headers, body) = api
            .send(Request::get("/cameras").body(Body::empty()).unwrap())
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "missing_api_key")
        );
        assert_eq!(headers["www-authenticate"], "Bearer");
        let wrong = Request::get("/cameras")
            .header("authorization", "Bearer key-one-012345678")
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = api.send(wrong).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_api_key")
        );
        let wrong = Request::get("/cameras")
            .header("x-api-key", "nope")
            .body(Body::empty())
            .unwrap();
        assert_eq!(api.send(wrong).await.0, StatusCode::UNAUTHORIZED);

        let bearer = Request::get("/cameras")
            .header("authorization", "Bearer key-one-0123456789")
            .body(Body::empty())
            .unwrap();
        assert_eq!(api.send(bearer).await.0, StatusCode::OK, "{peer}");
        let header = Request::get("/cameras")
            .header("x-api-key", "key-two-0123456789")
            .body(Body::empty())
            .unwrap();
        assert_eq!(api.send(header).await.0, StatusCode::OK, "{peer}");
        let provision = Request::post("/cameras/provision")
            .header("x-api-key", "key-two-0123456789")
            .header("content-type", "application/json")
            .body(Body::from(cam(json!(1)).to_string()))
            .unwrap();
        assert!(api.send(provision).await.0.is_success());
    }
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let mut config = Config::default();
    config.http.cors_origins = vec!["https://ops.example.com".into()];
    let api = TestApi::with(config, common::LOOPBACK);
    let req = Request::get("/health")
        .header("origin", "https://ops.example.com")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = api.send(req).await;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://ops.example.com"
    );
    let req = Request::get("/health")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = api.send(req).await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    // Without configured origins no CORS header is ever sent.
    let plain = TestApi::new();
    let req = Request::get("/health")
        .header("origin", "https://ops.example.com")
        .body(Body::empty())
        .unwrap();
    assert!(
        !plain
            .send(req)
            .await
            .1
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn racing_provisions_for_one_stream_path_have_one_winner() {
    let api = std::sync::Arc::new(TestApi::new());
    let mut tasks = Vec::new();
    for i in 0..10 {
        let api = std::sync::Arc::clone(&api);
        tasks.push(tokio::spawn(async move {
            let body = json!({"camera_id": format!("c{i}"), "rtsp_url": "rtsp://h/s", "stream_path": "shared"});
            api.post_json("/cameras/provision", &body).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert_eq!(error_code(&body), "stream_path_in_use"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(api.get("/cameras").await.1.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn metrics_in_prometheus_text_format() {
    let api = TestApi::new();
    api.post_json("/cameras/provision", &cam(json!("door")))
        .await;
    api.post_json(
        "/cameras/provision",
        &json!({"camera_id": 2, "rtsp_url": "rtsp://h/s", "stream_path": "yard"}),
    )
    .await;
    let response = api
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "camgate_cameras 2",
        "camgate_cameras_online 0",
        "camgate_active_streams 0",
        "camgate_camera_up{camera=\"door\",stream=\"cam_door\"} 0",
        "camgate_camera_viewers{camera=\"2\",stream=\"yard\"} 0",
        "# TYPE camgate_uptime_seconds gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    assert!(!text.contains(PASSWORD));
    assert!(
        text.lines()
            .any(|l| l == "# TYPE camgate_sent_bytes_total counter"),
        "{text}"
    );
    // Per-camera state agrees with the status endpoint.
    for (id, stream) in [("door", "cam_door"), ("2", "yard")] {
        let (_, status) = api.get(&format!("/cameras/{id}/status")).await;
        let line = format!(
            "camgate_camera_state{{camera=\"{id}\",stream=\"{stream}\",state={}}} 1",
            status["state"]
        );
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    // Every sample line is `name{labels} value` with a numeric value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}
