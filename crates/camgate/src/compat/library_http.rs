//! The video library's routes (seed 002): `GET /api/videos`, `GET /api/stream/{name}` (the
//! whole file, chunked), `GET|HEAD /api/stream-range/{name}` (Range, ETag, conditional GET:
//! all of it `http::range`'s, the one helper), `WS /api/ws/stream/{name}` (binary chunks of
//! 64 KiB, then a close frame) and `GET /api/metrics`. Files are read in chunks of
//! `range::CHUNK` (64 KiB) whatever their size, so memory stays constant.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use super::library::{Library, NameError};
use super::library_meter::{ActiveStream, LibraryMeter, LibraryMetrics};
use crate::http::range::{self, Piece};
use crate::http::{AppError, Routes};

#[derive(Clone)]
pub struct LibraryState {
    /// `None`: `[library] dir` is not set.
    pub library: Option<Arc<Library>>,
    pub meter: Arc<LibraryMeter>,
}

pub fn routes(r: Routes<LibraryState>) -> Routes<LibraryState> {
    r.get(
        "/api/videos",
        "Video library: the media files of [library] dir",
        videos,
    )
    .get(
        "/api/stream/{name}",
        "Video library: one whole file, streamed in chunks",
        whole_file,
    )
    .get(
        "/api/stream-range/{name}",
        "Video library: one file with Range (206/416), HEAD and ETag",
        ranged_file,
    )
    .websocket(
        "/api/ws/stream/{name}",
        "Video library: one file as binary WebSocket messages of 64 KiB, then a close",
        ws_file,
    )
    .get(
        "/api/metrics",
        "Video library: bytes, chunks, streams, memory and CPU",
        metrics,
    )
}

fn library(state: &LibraryState) -> Result<Arc<Library>, AppError> {
    state.library.clone().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "library_off",
            "the video library is off; set [library] dir (CAMGATE_LIBRARY_DIR) to a directory of videos",
        )
    })
}

impl From<NameError> for AppError {
    fn from(e: NameError) -> Self {
        match e {
            NameError::Invalid(why) => AppError::bad_request("invalid_video_name", why),
            NameError::NotFound => AppError::new(
                StatusCode::NOT_FOUND,
                "video_not_found",
                "no such video; GET /api/videos lists them",
            ),
            NameError::Io(e) => {
                tracing::warn!(error = %e, "the video library cannot be read");
                AppError::internal(
                    "library_unreadable",
                    "the library directory cannot be read; see the server log",
                )
            }
        }
    }
}

/// Resolves a name off the async threads (it touches the filesystem).
async fn open(
    state: &LibraryState,
    name: String,
) -> Result<(std::path::PathBuf, std::fs::Metadata, &'static str), AppError> {
    let lib = library(state)?;
    // Refused names never reach the blocking pool.
    Library::check_name(&name)?;
    tokio::task::spawn_blocking(move || lib.open(&name))
        .await
        .map_err(|_| AppError::internal("internal_error", "the file lookup failed"))?
        .map_err(AppError::from)
}

async fn videos(State(state): State<LibraryState>) -> Result<axum::Json<Value>, AppError> {
    let lib = library(&state)?;
    let names = tokio::task::spawn_blocking(move || lib.list())
        .await
        .map_err(|_| AppError::internal("internal_error", "the listing failed"))?
        .map_err(NameError::Io)?;
    Ok(axum::Json(json!({ "videos": names, "status": "ok" })))
}

/// Counts every chunk a body hands on; the stream counts as active until the body is dropped
/// (sent or abandoned by the client).
fn metered<E>(
    body: impl Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    active: ActiveStream,
) -> impl Stream<Item = Result<bytes::Bytes, E>> + Send + 'static {
    body.map(move |chunk| {
        if let Ok(c) = &chunk {
            active.sent(c.len());
        }
        chunk
    })
}

async fn whole_file(
    State(state): State<LibraryState>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let (path, meta, content_type) = open(&state, name).await?;
    let pieces = vec![Piece::File {
        path: Arc::new(path),
        offset: 0,
        len: meta.len(),
    }];
    // No Content-Length: chunked transfer, as the seed's StreamingResponse sends it.
    let body = metered(range::stream_pieces(pieces), state.meter.begin());
    let mut r = Body::from_stream(body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(r)
}

async fn ranged_file(
    State(state): State<LibraryState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (path, meta, content_type) = open(&state, name).await?;
    let entity = range::Entity::file(&path, &meta, content_type);
    let (parts, body) = range::serve(entity, &method, &headers).into_parts();
    let body = metered(body.into_data_stream(), state.meter.begin());
    Ok(Response::from_parts(parts, Body::from_stream(body)))
}

async fn ws_file(
    State(state): State<LibraryState>,
    Path(name): Path<String>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let ws = ws.map_err(|_| {
        AppError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "this endpoint speaks WebSocket; connect with a WebSocket client (ws://...)",
        )
    })?;
    // Checked before the upgrade, so a bad name is a JSON error, not a closed socket.
    let (path, meta, _) = open(&state, name).await?;
    let meter = state.meter.clone();
    Ok(ws.on_upgrade(move |socket| send_file(socket, path, meta.len(), meter)))
}

async fn send_file(
    mut socket: WebSocket,
    path: std::path::PathBuf,
    len: u64,
    meter: Arc<LibraryMeter>,
) {
    let active = meter.begin();
    let pieces = vec![Piece::File {
        path: Arc::new(path),
        offset: 0,
        len,
    }];
    let mut chunks = std::pin::pin!(range::stream_pieces(pieces));
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 1011,
                    reason: "the file could not be read".into(),
                })))
                .await;
            return;
        };
        let n = chunk.len();
        if socket.send(Message::Binary(chunk)).await.is_err() {
            return;
        }
        active.sent(n);
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "end of file".into(),
        })))
        .await;
}

async fn metrics(State(state): State<LibraryState>) -> axum::Json<LibraryMetrics> {
    axum::Json(state.meter.report())
}
