//! `GET /metrics`: Prometheus text exposition (format 0.0.4): the registry, the live totals,
//! and each camera's state and viewers from its runtime. Per-camera series carry the labels
//! `camera` and `stream`.

use std::fmt::{Display, Write};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::{AppError, AppState};
use crate::cameras::CameraStatus;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let cameras = state.db.cameras().await?;
    // The live runtime's status where a camera has one; a camera without a runtime has no
    // source and no viewers, which is what `idle` says.
    let statuses: Vec<CameraStatus> = cameras
        .iter()
        .map(|c| {
            state
                .streams
                .get(&c.camera_id)
                .map_or_else(|| CameraStatus::idle(c), |rt| rt.status())
        })
        .collect();
    let online = statuses.iter().filter(|s| s.online).count();

    let mut m = Exposition::default();
    m.family("camgate_build_info", "Always 1; the version is the label.");
    m.sample(
        "camgate_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    m.gauge(
        "camgate_uptime_seconds",
        "Seconds since the server started.",
        state.uptime_seconds(),
    );
    m.gauge("camgate_cameras", "Cameras in the registry.", cameras.len());
    m.gauge(
        "camgate_cameras_online",
        "Cameras currently receiving video.",
        online,
    );
    m.gauge(
        "camgate_active_streams",
        "Cameras with a running source.",
        state.active_streams(),
    );

    m.gauge(
        "camgate_viewers",
        "Players watching, all cameras.",
        state.streams.total_viewers(),
    );
    m.counter(
        "camgate_bytes_sent_total",
        "Media bytes sent to players.",
        state.streams.total_bytes_sent(),
    );
    m.counter(
        "camgate_bytes_received_total",
        "Media bytes received from cameras.",
        state.streams.total_bytes_received(),
    );

    m.family(
        "camgate_camera_online",
        "1 while the camera delivers video.",
    );
    for s in &statuses {
        m.sample("camgate_camera_online", &labels(s), u8::from(s.online));
    }
    m.family("camgate_camera_viewers", "Players watching the camera.");
    for s in &statuses {
        m.sample("camgate_camera_viewers", &labels(s), s.viewers);
    }
    m.family(
        "camgate_camera_state",
        "1 for the camera's current state (label `state`).",
    );
    for s in &statuses {
        let state = serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut l = labels(s).to_vec();
        l.push(("state", &state));
        m.sample("camgate_camera_state", &l, 1);
    }
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], m.out))
}

fn labels(s: &CameraStatus) -> [(&'static str, &str); 2] {
    [("camera", &s.camera_id), ("stream", &s.stream_path)]
}

/// Builds the text format. Label values here are camera ids, stream paths and fixed words,
/// all `[A-Za-z0-9_.-]`, so they need no escaping; `sample` escapes anyway to stay safe if
/// that ever changes.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str) {
        self.family_of(name, help, "gauge");
    }

    fn family_of(&mut self, name: &str, help: &str, kind: &str) {
        // Writing to a String cannot fail.
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn counter(&mut self, name: &str, help: &str, value: impl Display) {
        self.family_of(name, help, "counter");
        self.sample(name, &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("{k}=\"{v}\"")
                })
                .collect();
            let _ = write!(self.out, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }
}
