//! `GET /openapi.json`: an OpenAPI 3.1 document that lists exactly the routes the router
//! serves (same table, every operation answered by its handler rather than the 404/405
//! fallback, no route added behind the table's back), that names every route of docs/api.md,
//! and that an independent validator (@seriousme/openapi-schema-validator, from node) accepts.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{Gateway, client_bounded};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (method, path) of every operation in the document; WebSocket GETs as the table names them.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let m = if op["x-websocket"] == true {
                "GET (WebSocket)".to_owned()
            } else {
                method.to_ascii_uppercase()
            };
            out.insert((m, path.clone()));
        }
    }
    out
}

/// A concrete path for a template: every `{param}` becomes `x1`.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { "x1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_the_router() {
    let gw = Gateway::start(|_| {}).await;
    let r = client_bounded(Duration::from_secs(10))
        .get(gw.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // The same set as the table the router was built from, both ways.
    let (_, table) = gw.app.routes();
    let from_table: BTreeSet<(String, String)> = table
        .iter()
        .map(|d| (d.method.to_owned(), d.path.to_owned()))
        .collect();
    assert_eq!(from_table.len(), table.len(), "no route declared twice");
    assert_eq!(operations(&doc), from_table);
    for must in [
        ("GET", "/openapi.json"),
        ("GET", "/api/stream/start"),
        ("POST", "/api/stream/stop"),
        ("GET", "/streams/{path}/stream.m3u8"),
        ("GET (WebSocket)", "/api/ws/stream/{name}"),
    ] {
        assert!(
            from_table.contains(&(must.0.to_owned(), must.1.to_owned())),
            "{must:?}"
        );
    }

    // Declared query parameters are in the document.
    let start = &doc["paths"]["/api/stream/start"]["get"]["parameters"];
    let names: Vec<&str> = start
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["indicator_id", "rtsp_link"], "{start}");

    // Every operation is served: its handler answers, not the fallback's 404 or 405.
    let http = client_bounded(Duration::from_secs(30));
    for (method, path) in operations(&doc) {
        let m = if method.starts_with("GET") {
            "GET"
        } else {
            &method
        };
        let req = http.request(m.parse().unwrap(), gw.url(&concrete(&path)));
        let req = if m == "POST" || m == "PATCH" {
            req.header("content-type", "application/json").body("{}")
        } else {
            req
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        // The fallbacks' own answers (api::merge); handlers' 404s say what is missing.
        let code = body["error"]["code"].as_str().unwrap_or("");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(
            !(code == "not_found" && message.starts_with("no such endpoint"))
                && code != "method_not_allowed",
            "{method} {path}: the router does not serve it ({status} {body})"
        );
    }

    // Every route docs/api.md names is in the document.
    let api_md = std::fs::read_to_string(workspace_root().join("docs/api.md")).unwrap();
    let mut named = 0;
    for part in api_md.split('`') {
        let Some((method, path)) = part.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "DELETE", "PATCH", "OPTIONS"].contains(&method)
            || !path.starts_with('/')
        {
            continue;
        }
        let path = concrete(path.split(['?', ' ']).next().unwrap());
        named += 1;
        assert!(
            operations(&doc)
                .iter()
                .any(|(m, t)| m.starts_with(method) && matches(t, &path)),
            "docs/api.md names {method} {path}, which /openapi.json does not list"
        );
    }
    assert!(
        named >= 15,
        "docs/api.md names routes as `METHOD /path` ({named} found)"
    );
    gw.stop().await;
}

/// Every route reaches the router through `http::Routes`, which records it in the table: a
/// `.route(` anywhere else in the service would serve a route the document does not list.
#[test]
fn no_route_bypasses_the_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs")
                || path.ends_with("http/routes.rs")
                || path.to_string_lossy().contains("tests")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for needle in [
                "Router::new().route(",
                ".route(\"",
                ".nest(",
                ".nest_service(",
                ".route_service(",
                ".fallback_service(",
            ] {
                if text.contains(needle) {
                    offenders.push(format!("{}: {needle}", path.display()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "routes outside http::Routes: {offenders:?}"
    );
}

#[tokio::test]
async fn an_independent_validator_accepts_the_document() {
    let root = workspace_root();
    assert!(
        root.join("node_modules/@seriousme/openapi-schema-validator")
            .is_dir(),
        "run `npm ci` in {} first (the OpenAPI validator is a devDependency)",
        root.display()
    );
    let gw = Gateway::start(|_| {}).await;
    let text = support::text(support::client().get(gw.url("/openapi.json"))).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/openapi_validate.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (apt-get install nodejs)");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the validator finished within 60 s")
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(v["version"], "3.1", "{v}");
    assert_eq!(v["valid"], true, "the validator refused the document: {v}");
    gw.stop().await;
}
