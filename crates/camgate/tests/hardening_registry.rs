//! Issue 16 #9 and #10 through the API: a `stream_path` or `camera_id` that would make a
//! `{path}` name two cameras is refused (409, naming the other camera) while a stored pair
//! keeps working and shows in `/health`; a failed registry write makes `/health` degraded at
//! once, until a write succeeds.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Gateway, client};

async fn provision(gw: &Gateway, body: Value) -> (StatusCode, Value) {
    let r = client()
        .post(gw.url("/cameras/provision"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn health(gw: &Gateway) -> (StatusCode, Value) {
    let r = client().get(gw.url("/health")).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_paths_are_refused_with_the_other_camera_named() {
    let gw = Gateway::start(|_| {}).await;
    let url = "rtsp://127.0.0.1:9/none";
    gw.provision("door", url, true).await;
    let (status, body) = provision(
        &gw,
        json!({"camera_id": "yard", "rtsp_url": url, "stream_path": "door"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "path_ambiguous");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("camera `door`"), "{message}");

    gw.provision_json(json!({"camera_id": "gate", "rtsp_url": url, "stream_path": "front"}))
        .await;
    let (status, body) = provision(&gw, json!({"camera_id": "front", "rtsp_url": url})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("camera `gate`"),
        "{body}"
    );
    // Nothing was stored by the refusals, and health has nothing to warn about.
    let cameras = gw.get_json("/cameras").await;
    assert_eq!(cameras.as_array().map(Vec::len), Some(2), "{cameras}");
    let (status, body) = health(&gw).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["warnings"], json!([]), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_ambiguous_pair_keeps_working_with_a_warning() {
    // Written as a database from before the check could hold it, before the server starts.
    let gw = Gateway::start_with(
        |_| {},
        async |server: &camgate::server::Server| {
            let db = &server.app().db;
            for id in ["door", "yard"] {
                let spec = camgate::cameras::parse_provision(
                    &json!({"camera_id": id, "rtsp_url": "rtsp://127.0.0.1:9/none"}),
                )
                .unwrap();
                db.upsert_camera(spec).await.unwrap();
            }
            db.call(|c| {
                Ok(c.execute(
                    "UPDATE cameras SET stream_path = 'door' WHERE camera_id = 'yard'",
                    [],
                )?)
            })
            .await
            .unwrap();
        },
    )
    .await;
    // The stream path wins: `door` is yard's stream.
    let streams = gw.get_json("/streams").await;
    let door = streams
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream_path"] == "door")
        .unwrap_or_else(|| panic!("{streams}"));
    assert_eq!(door["camera_id"], "yard", "{streams}");
    let viewers = gw.get_json("/streams/door/viewers").await;
    assert_eq!(viewers["stream_path"], "door", "{viewers}");
    let (status, body) = health(&gw).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let warnings = body["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("open camera `yard`")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_registry_write_degrades_health_at_once() {
    let gw = Gateway::start(|_| {}).await;
    let (status, _) = health(&gw).await;
    assert_eq!(status, StatusCode::OK);
    // The database may not grow any more: what a full disk does to writes that need a page,
    // while the health probe (one row rewritten) still fits.
    gw.app
        .db
        .call(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            Ok(c.pragma_update(None, "max_page_count", pages)?)
        })
        .await
        .unwrap();
    let mut refused = None;
    for i in 0..500 {
        let body = json!({
            "camera_id": format!("c{i}"),
            "rtsp_url": "rtsp://127.0.0.1:9/none",
            "name": "x".repeat(200),
        });
        let (status, body) = provision(&gw, body).await;
        if status.is_server_error() {
            refused = Some(body);
            break;
        }
    }
    let refused = refused.expect("a provision failed once the database could not grow");
    assert_eq!(refused["error"]["code"], "storage_error", "{refused}");
    let (status, body) = health(&gw).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "degraded");
    assert!(
        body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("registry write failed")),
        "{body}"
    );
    // Room again: the next write clears it.
    gw.app
        .db
        .call(|c| Ok(c.pragma_update(None, "max_page_count", 1_000_000)?))
        .await
        .unwrap();
    let (status, body) = provision(
        &gw,
        json!({"camera_id": "after", "rtsp_url": "rtsp://127.0.0.1:9/none"}),
    )
    .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = health(&gw).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "healthy");
}
