//! The helper through a real axum router (`oneshot`, no socket): an entity of bytes and a
//! file range, every header case, and chunked bodies.

use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::routing::get;
use futures::StreamExt;
use tower::ServiceExt;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    router: Router,
    whole: Vec<u8>,
}

/// 10 bytes in memory, 200 000 bytes of a file from offset 7, 5 more bytes in memory.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let file: Vec<u8> = (0..200_010u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&file)
        .unwrap();
    let mut whole = b"0123456789".to_vec();
    whole.extend_from_slice(&file[7..200_007]);
    whole.extend_from_slice(b"abcde");
    let list = PieceList::new(vec![
        Piece::Bytes(Bytes::from_static(b"0123456789")),
        Piece::File {
            path: Arc::new(path),
            offset: 7,
            len: 200_000,
        },
        Piece::Bytes(Bytes::from_static(b"abcde")),
    ]);
    let modified = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let entity = Entity::new(list, "video/mp4")
        .with_etag("v1-abc")
        .with_last_modified(modified)
        .with_disposition("clip ä.mp4", true);
    let router = Router::new().route(
        "/e",
        get(move |method: Method, headers: HeaderMap| {
            let entity = entity.clone();
            async move { serve(entity, &method, &headers) }
        }),
    );
    Fixture {
        _dir: dir,
        router,
        whole,
    }
}

async fn send(
    f: &Fixture,
    method: Method,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<Vec<u8>>) {
    let mut req = Request::builder().method(method).uri("/e");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = f
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let mut chunks = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(c) = stream.next().await {
        chunks.push(c.unwrap().to_vec());
    }
    (parts.status, parts.headers, chunks)
}

fn h(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn full_body_in_bounded_chunks_with_validators() {
    let f = fixture();
    let (status, headers, chunks) = send(&f, Method::GET, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chunks.concat(), f.whole);
    assert!(chunks.len() >= 4, "streamed in several chunks");
    assert!(chunks.iter().all(|c| c.len() <= CHUNK));
    assert_eq!(h(&headers, header::CONTENT_LENGTH), "200015");
    assert_eq!(h(&headers, header::ACCEPT_RANGES), "bytes");
    assert_eq!(h(&headers, header::ETAG), "\"v1-abc\"");
    assert_eq!(h(&headers, header::CONTENT_TYPE), "video/mp4");
    assert_eq!(
        h(&headers, header::LAST_MODIFIED),
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    assert_eq!(
        h(&headers, header::CONTENT_DISPOSITION),
        "attachment; filename=\"clip _.mp4\"; filename*=UTF-8''clip%20%C3%A4.mp4"
    );
}

#[tokio::test]
async fn head_has_the_headers_and_no_body() {
    let f = fixture();
    let (status, headers, chunks) = send(&f, Method::HEAD, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h(&headers, header::CONTENT_LENGTH), "200015");
    assert!(chunks.concat().is_empty());
    let (status, headers, chunks) = send(&f, Method::HEAD, &[("range", "bytes=5-9")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h(&headers, header::CONTENT_RANGE), "bytes 5-9/200015");
    assert!(chunks.concat().is_empty());
}

#[tokio::test]
async fn ranges_across_pieces() {
    let f = fixture();
    let n = f.whole.len();
    let cases: &[(&str, std::ops::Range<usize>)] = &[
        ("bytes=0-0", 0..1),
        ("bytes=5-14", 5..15),
        ("bytes=9-200010", 9..200_011),
        ("bytes=100000-", 100_000..n),
        ("bytes=-3", n - 3..n),
        ("bytes=-8", n - 8..n),
        ("bytes=199990-999999999", 199_990..n),
        // A suffix as long as the entity or longer is all of it (RFC 9110 §14.1.2).
        ("bytes=-200015", 0..n),
        ("bytes=-999999999", 0..n),
    ];
    for (range, want) in cases {
        let (status, headers, chunks) = send(&f, Method::GET, &[("range", range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            h(&headers, header::CONTENT_RANGE),
            format!("bytes {}-{}/{n}", want.start, want.end - 1),
            "{range}"
        );
        assert_eq!(chunks.concat(), &f.whole[want.clone()], "{range}");
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
    }
}

#[tokio::test]
async fn unsatisfiable_is_416_with_json_and_the_length() {
    let f = fixture();
    for range in ["bytes=200015-", "bytes=300000-300010", "bytes=-0"] {
        let (status, headers, body) = send(&f, Method::GET, &[("range", range)]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(h(&headers, header::CONTENT_RANGE), "bytes */200015");
        let v: serde_json::Value = serde_json::from_slice(&body.concat()).unwrap();
        assert_eq!(v["error"]["code"], "range_not_satisfiable");
    }
}

#[tokio::test]
async fn malformed_ranges_are_ignored() {
    let f = fixture();
    for range in ["bytes=abc", "items=0-5", "bytes=1-x", "bytes", "bytes=--5"] {
        let (status, _, body) = send(&f, Method::GET, &[("range", range)]).await;
        assert_eq!(status, StatusCode::OK, "{range}");
        assert_eq!(body.concat().len(), f.whole.len(), "{range}");
    }
}

#[tokio::test]
async fn several_ranges_are_multipart() {
    let f = fixture();
    let (status, headers, body) = send(&f, Method::GET, &[("range", "bytes=0-1,12-13")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(h(&headers, header::CONTENT_TYPE).starts_with("multipart/byteranges"));
    let body = String::from_utf8_lossy(&body.concat()).into_owned();
    assert!(body.contains("Content-Range: bytes 0-1/200015\r\n"));
    assert!(body.contains("Content-Range: bytes 12-13/200015\r\n"));
}

#[tokio::test]
async fn conditional_requests() {
    let f = fixture();
    let (_, headers, _) = send(&f, Method::GET, &[]).await;
    let last_modified = h(&headers, header::LAST_MODIFIED).to_owned();

    let (status, _, body) = send(&f, Method::GET, &[("if-none-match", "\"v1-abc\"")]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.concat().is_empty());
    let (status, _, _) = send(&f, Method::GET, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&f, Method::GET, &[("if-modified-since", &last_modified)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, body) = send(&f, Method::GET, &[("if-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let v: serde_json::Value = serde_json::from_slice(&body.concat()).unwrap();
    assert_eq!(v["error"]["code"], "precondition_failed");

    // If-Range: the range only while the ETag still matches; else the whole, new entity.
    let (status, _, body) = send(
        &f,
        Method::GET,
        &[("range", "bytes=0-3"), ("if-range", "\"v1-abc\"")],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.concat(), b"0123");
    let (status, headers, body) = send(
        &f,
        Method::GET,
        &[("range", "bytes=0-3"), ("if-range", "\"v0-old\"")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::CONTENT_RANGE).is_none());
    assert_eq!(body.concat(), f.whole);
    // A date in If-Range never matches (strong validation): the whole entity.
    let (status, _, _) = send(
        &f,
        Method::GET,
        &[("range", "bytes=0-3"), ("if-range", &last_modified)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_file_entity_from_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mp4");
    std::fs::write(&path, b"hello world").unwrap();
    let e = Entity::file(&path, &std::fs::metadata(&path).unwrap(), "video/mp4");
    assert_eq!(e.len(), 11);
    let tag = e.etag().unwrap().to_str().unwrap().to_owned();
    assert!(tag.starts_with("\"b-"), "{tag}");
    std::fs::write(&path, b"hello world, again").unwrap();
    let again = Entity::file(&path, &std::fs::metadata(&path).unwrap(), "video/mp4");
    assert_ne!(
        again.etag().unwrap().to_str().unwrap(),
        tag,
        "new content, new ETag"
    );
    let body: Vec<u8> = stream_pieces(again.map.pieces(6..11))
        .map(|c| c.unwrap().to_vec())
        .concat()
        .await;
    assert_eq!(body, b"world");
}

#[tokio::test]
async fn a_file_shorter_than_its_piece_fails_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.bin");
    std::fs::write(&path, b"abc").unwrap();
    let items: Vec<_> = stream_pieces(vec![Piece::File {
        path: Arc::new(path),
        offset: 0,
        len: 10,
    }])
    .collect()
    .await;
    assert!(items.last().unwrap().is_err());
}

#[test]
fn etags_and_names_are_sanitised() {
    let e = Entity::new(PieceList::default(), "video/mp4").with_etag("a\"b\nc");
    assert_eq!(e.etag().unwrap(), "\"a_b_c\"");
    let e = e.with_disposition("x\"y\r\n.mp4", false);
    assert_eq!(
        e.disposition.unwrap(),
        "inline; filename=\"x_y__.mp4\"; filename*=UTF-8''x%22y%0D%0A.mp4"
    );
}
