//! The one Range and conditional-GET helper of the service: an entity (a length, a validator
//! and a list of pieces: bytes in memory or byte ranges of files) served with `HEAD`,
//! `Range` (206, 416, several ranges as multipart/byteranges), `ETag`, `Last-Modified`,
//! `If-None-Match`, `If-Modified-Since`, `If-Match`, `If-Unmodified-Since`, `If-Range`,
//! `Accept-Ranges` and an optional `Content-Disposition`. Bodies are streamed in chunks of at
//! most `CHUNK` bytes, files read with tokio, so memory stays constant whatever the size.
//!
//! The header logic is http-serve's (`Entity`, `serve`), not ours; this module supplies the
//! entity, repairs the suffix ranges where http-serve departs from RFC 9110 (`bytes=-N`
//! longer than the entity is all of it, `bytes=-0` is a 416), and turns its plain-text refusals into
//! our JSON errors. A malformed `Range` is ignored (RFC 9110 §14.2): the answer is 200 with
//! the whole entity.
//!
//! Users: the video library (`/api/stream-range/{name}`) and recording export
//! (`/recordings/{path}/export.mp4`, a progressive MP4 mapped onto recorded files through
//! [`PieceMap`]). It owns no route and imports only `http::AppError`.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::AppError;

/// Largest body chunk sent at once.
pub const CHUNK: usize = 64 * 1024;

/// A part of an entity's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes held in memory.
    Bytes(Bytes),
    /// `len` bytes of the file at `path` from `offset`.
    File {
        path: Arc<PathBuf>,
        offset: u64,
        len: u64,
    },
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where an entity's bytes come from: any byte range maps to pieces, without building the
/// whole entity. Recording export implements it over a `media::progressive::Progressive`.
pub trait PieceMap: Send + Sync + 'static {
    /// Total length in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The pieces holding `range` (within `0..len()`), in order; their lengths add up to the
    /// range's length.
    fn pieces(&self, range: Range<u64>) -> Vec<Piece>;
}

/// A fixed list of pieces, one after another.
#[derive(Clone, Debug, Default)]
pub struct PieceList {
    pieces: Vec<Piece>,
    /// Where each piece starts.
    starts: Vec<u64>,
    len: u64,
}

impl PieceList {
    pub fn new(pieces: Vec<Piece>) -> Self {
        let mut starts = Vec::with_capacity(pieces.len());
        let mut len = 0;
        for p in &pieces {
            starts.push(len);
            len += p.len();
        }
        PieceList {
            pieces,
            starts,
            len,
        }
    }

    /// The whole of one file of `len` bytes.
    pub fn file(path: impl Into<PathBuf>, len: u64) -> Self {
        Self::new(vec![Piece::File {
            path: Arc::new(path.into()),
            offset: 0,
            len,
        }])
    }
}

impl PieceMap for PieceList {
    fn len(&self) -> u64 {
        self.len
    }

    fn pieces(&self, range: Range<u64>) -> Vec<Piece> {
        let end = range.end.min(self.len);
        let mut out = Vec::new();
        let mut pos = range.start;
        let first = self.starts.partition_point(|&s| s <= pos).saturating_sub(1);
        for (p, &start) in self.pieces.iter().zip(&self.starts).skip(first) {
            if pos >= end {
                break;
            }
            let skip = pos.saturating_sub(start);
            let take = (p.len() - skip.min(p.len())).min(end - pos);
            if take == 0 {
                continue;
            }
            out.push(match p {
                Piece::Bytes(b) => {
                    // skip + take <= b.len(), a usize.
                    Piece::Bytes(b.slice(skip as usize..(skip + take) as usize))
                }
                Piece::File { path, offset, .. } => Piece::File {
                    path: path.clone(),
                    offset: offset + skip,
                    len: take,
                },
            });
            pos += take;
        }
        out
    }
}

/// What is served: the bytes and what describes them.
#[derive(Clone)]
pub struct Entity {
    map: Arc<dyn PieceMap>,
    content_type: HeaderValue,
    etag: Option<HeaderValue>,
    last_modified: Option<SystemTime>,
    disposition: Option<HeaderValue>,
}

impl Entity {
    /// An entity of `content_type` made of `map`'s bytes.
    pub fn new(map: impl PieceMap, content_type: &'static str) -> Self {
        Entity {
            map: Arc::new(map),
            content_type: HeaderValue::from_static(content_type),
            etag: None,
            last_modified: None,
            disposition: None,
        }
    }

    /// A file on disk as it is now: its length, and a strong ETag and Last-Modified from its
    /// metadata (length, modification time, inode), so a rewritten file gets a new ETag.
    pub fn file(path: &Path, meta: &std::fs::Metadata, content_type: &'static str) -> Self {
        let modified = meta.modified().ok();
        let nanos = modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let ino = 0u64;
        let mut e = Entity::new(PieceList::file(path, meta.len()), content_type)
            .with_etag(&format!("{:x}-{:x}-{:x}", meta.len(), nanos, ino));
        e.last_modified = modified;
        e
    }

    /// A strong ETag from an opaque tag: quoted here; characters outside the ETag grammar
    /// (RFC 9110 §8.8.3: `"` and controls) are replaced by `_`.
    pub fn with_etag(mut self, tag: &str) -> Self {
        let clean: String = tag
            .chars()
            .map(|c| {
                if c == '"' || !(c.is_ascii_graphic()) {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        self.etag = HeaderValue::from_str(&format!("\"{clean}\"")).ok();
        self
    }

    pub fn with_last_modified(mut self, at: SystemTime) -> Self {
        self.last_modified = Some(at);
        self
    }

    /// `Content-Disposition: attachment` with this file name (`inline` when `attachment`
    /// is false). The name is sent as a quoted ASCII fallback plus RFC 8187 `filename*`.
    pub fn with_disposition(mut self, file_name: &str, attachment: bool) -> Self {
        let kind = if attachment { "attachment" } else { "inline" };
        let ascii: String = file_name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let encoded: String = file_name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        self.disposition = HeaderValue::from_str(&format!(
            "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
        ))
        .ok();
        self
    }

    pub fn len(&self) -> u64 {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn etag(&self) -> Option<&HeaderValue> {
        self.etag.as_ref()
    }
}

impl http_serve::Entity for Entity {
    type Error = http_serve::BoxError;
    type Data = Bytes;

    fn len(&self) -> u64 {
        self.map.len()
    }

    fn get_range(
        &self,
        range: Range<u64>,
    ) -> std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, Self::Error>> + Send + Sync>> {
        Box::pin(stream_pieces(self.map.pieces(range)))
    }

    fn add_headers(&self, h: &mut HeaderMap) {
        h.insert(header::CONTENT_TYPE, self.content_type.clone());
        if let Some(d) = &self.disposition {
            h.insert(header::CONTENT_DISPOSITION, d.clone());
        }
    }

    fn etag(&self) -> Option<HeaderValue> {
        self.etag.clone()
    }

    fn last_modified(&self) -> Option<SystemTime> {
        self.last_modified
    }
}

/// Reading state of a body: the pieces left and the file being read.
struct Reader {
    pieces: VecDeque<Piece>,
    /// The open file, its path and the position it is at, reused while consecutive pieces
    /// come from the same file.
    open: Option<(Arc<PathBuf>, tokio::fs::File, u64)>,
}

/// The bytes of `pieces`, at most `CHUNK` at a time. A file that is shorter than its piece
/// says (truncated while being served) ends the stream with an error, which aborts the
/// response rather than sending a short body.
pub fn stream_pieces(
    pieces: Vec<Piece>,
) -> impl Stream<Item = Result<Bytes, http_serve::BoxError>> + Send + Sync + 'static {
    let reader = Reader {
        pieces: pieces.into(),
        open: None,
    };
    futures::stream::try_unfold(reader, |mut r| async move {
        loop {
            let Some(piece) = r.pieces.pop_front() else {
                return Ok(None);
            };
            match piece {
                Piece::Bytes(mut b) => {
                    if b.is_empty() {
                        continue;
                    }
                    if b.len() > CHUNK {
                        r.pieces.push_front(Piece::Bytes(b.split_off(CHUNK)));
                    }
                    return Ok(Some((b, r)));
                }
                Piece::File { path, offset, len } => {
                    if len == 0 {
                        continue;
                    }
                    let n = len.min(CHUNK as u64) as usize;
                    let chunk = read_at(&mut r.open, &path, offset, n).await?;
                    if (n as u64) < len {
                        r.pieces.push_front(Piece::File {
                            path,
                            offset: offset + n as u64,
                            len: len - n as u64,
                        });
                    }
                    return Ok(Some((chunk, r)));
                }
            }
        }
    })
}

async fn read_at(
    open: &mut Option<(Arc<PathBuf>, tokio::fs::File, u64)>,
    path: &Arc<PathBuf>,
    offset: u64,
    n: usize,
) -> Result<Bytes, http_serve::BoxError> {
    let reuse = matches!(open, Some((p, _, _)) if p == path);
    if !reuse {
        *open = Some((
            path.clone(),
            tokio::fs::File::open(path.as_path()).await?,
            0,
        ));
    }
    let Some((_, file, pos)) = open.as_mut() else {
        unreachable!("set just above")
    };
    if *pos != offset {
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        *pos = offset;
    }
    let mut buf = BytesMut::zeroed(n);
    file.read_exact(&mut buf).await?;
    *pos += n as u64;
    Ok(buf.freeze())
}

/// Answers a GET or HEAD request for `entity` with everything the module header lists.
pub fn serve(entity: Entity, method: &Method, headers: &HeaderMap) -> Response {
    let len = entity.len();
    let mut req = Request::new(());
    *req.method_mut() = method.clone();
    *req.headers_mut() = headers.clone();
    repair_suffix(req.headers_mut(), len);
    let res = http_serve::serve(entity, &req);
    let (parts, body) = res.into_parts();
    if !(parts.status.is_client_error() || parts.status.is_server_error()) {
        return Response::from_parts(parts, Body::new(body));
    }
    let error = match parts.status {
        StatusCode::RANGE_NOT_SATISFIABLE => AppError::new(
            parts.status,
            "range_not_satisfiable",
            format!("the Range asks for bytes outside the {len} bytes of this resource"),
        ),
        StatusCode::PRECONDITION_FAILED => AppError::new(
            parts.status,
            "precondition_failed",
            "If-Match or If-Unmodified-Since does not hold for this resource",
        ),
        StatusCode::METHOD_NOT_ALLOWED => AppError::new(
            parts.status,
            "method_not_allowed",
            "this resource only supports GET and HEAD",
        ),
        StatusCode::BAD_REQUEST => AppError::bad_request(
            "bad_conditional_header",
            "a conditional header (If-Match, If-None-Match, If-Modified-Since, \
             If-Unmodified-Since) does not parse",
        ),
        other => AppError::new(other, "request_refused", "the request was refused"),
    };
    let mut answer = error.into_response();
    for name in [
        header::CONTENT_RANGE,
        header::ACCEPT_RANGES,
        header::ALLOW,
        header::ETAG,
        header::LAST_MODIFIED,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer
}

/// RFC 9110 §14.1.2: a suffix range as long as the representation or longer selects all of
/// it, and `bytes=-0` selects nothing (416). http-serve answers 416 for the first and an
/// empty 206 for the second, so a lone suffix range is rewritten before it sees it:
/// `bytes=-N` with N >= len becomes `bytes=0-`, `bytes=-0` becomes `bytes={len}-`.
fn repair_suffix(headers: &mut HeaderMap, len: u64) {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let Some(suffix) = v.trim().strip_prefix("bytes=-") else {
        return;
    };
    let Ok(n) = suffix.trim().parse::<u64>() else {
        return;
    };
    let repaired = if n == 0 {
        format!("bytes={len}-")
    } else if n >= len && len > 0 {
        "bytes=0-".to_owned()
    } else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&repaired) {
        headers.insert(header::RANGE, v);
    }
}

#[cfg(test)]
mod tests;
