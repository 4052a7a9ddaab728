//! Router tests without a socket: `TestApi`, the application's router over a fresh data
//! directory seen from a chosen peer, with one-call request helpers for `oneshot`, and the
//! shape of an error answer. Starts no server and no camera.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use camgate::app::App;
use camgate::config::Config;
use camgate::db::Db;
use serde_json::Value;
use tower::ServiceExt;

pub const LOOPBACK: &str = "127.0.0.1:50000";

pub struct TestApi {
    pub app: Arc<App>,
    pub router: Router,
    _dir: tempfile::TempDir,
}

impl TestApi {
    /// A router in protected mode seen from a loopback client.
    pub fn new() -> Self {
        Self::with(Config::default(), LOOPBACK)
    }

    /// A router with `config`, every request coming from `peer`.
    pub fn with(mut config: Config, peer: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        config.data_dir = dir.path().to_owned();
        // The requests below name `gateway.test`; protected mode refuses other hosts.
        if config.http.allowed_hosts.is_empty() {
            config.http.allowed_hosts = vec!["gateway.test".to_owned()];
        }
        // Router tests need no RTSP listener, and must not all race for port 8554.
        if config.rtsp == camgate::config::RtspConfig::default() {
            config.rtsp.listen = "off".into();
        }
        let db = Db::open(&config.data_dir).expect("open db");
        let app = Arc::new(App::build(
            Arc::new(config),
            db,
            "127.0.0.1:8080".parse().unwrap(),
        ));
        let peer: SocketAddr = peer.parse().unwrap();
        let router = app.router().layer(MockConnectInfo(peer));
        TestApi {
            app,
            router,
            _dir: dir,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("answer is not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, headers, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        (s, b)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(Request::delete(path).body(Body::empty()).unwrap())
            .await;
        (s, b)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header("content-type", content_type)
            .header("host", "gateway.test:8080")
            .body(body.into())
            .unwrap();
        let (s, _, b) = self.send(req).await;
        (s, b)
    }
}

/// The error code of an error answer, asserting its shape on the way.
pub fn error_code(body: &Value) -> &str {
    let err = &body["error"];
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    err["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}
