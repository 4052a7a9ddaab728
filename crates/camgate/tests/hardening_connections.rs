//! Issue 16 #5 over real sockets: a client that never finishes its headers, an idle
//! keep-alive connection and one address opening too many connections are all closed, while
//! other clients are served. Before our accept loop, `axum::serve` held all three open.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use support::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Bounds every wait on the server so a connection held open fails the test instead of
/// hanging it (not a measure of speed: the configured timeouts are far shorter).
const HANG: Duration = Duration::from_secs(30);

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

fn request(gw: &Gateway, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", gw.addr)
}

/// Reads one answer (head and a `Content-Length` body): its status and body, or `None` when
/// the server closed the connection (or reset it) first.
async fn read_answer(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = tokio::time::timeout(HANG, stream.read(&mut chunk))
                    .await
                    .expect("body never came")
                    .ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some((
                status,
                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned(),
            ));
        }
        let n = tokio::time::timeout(HANG, stream.read(&mut chunk))
            .await
            .expect("the server neither answered nor closed the connection")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes `stream` without sending anything more.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(HANG, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("the connection was still open after {HANG:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_header_is_closed_after_the_header_timeout() {
    let gw = Gateway::start(|c| c.http.header_read_timeout = Duration::from_millis(500)).await;
    let mut slow = connect_from("127.0.0.1", gw.addr).await;
    slow.write_all(format!("GET /health HTTP/1.1\r\nHost: {}\r\nX-A:", gw.addr).as_bytes())
        .await
        .unwrap();
    assert!(closed_by_server(&mut slow).await);
    // Nothing sent at all: the same.
    let mut silent = connect_from("127.0.0.1", gw.addr).await;
    assert!(closed_by_server(&mut silent).await);
    // A client that sends its request is served.
    let mut ok = connect_from("127.0.0.1", gw.addr).await;
    ok.write_all(request(&gw, "/health", "").as_bytes())
        .await
        .unwrap();
    assert!(read_answer(&mut ok).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_outlives_the_header_timeout_and_then_idles_out() {
    let gw = Gateway::start(|c| {
        c.http.header_read_timeout = Duration::from_millis(300);
        c.http.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let mut conn = connect_from("127.0.0.1", gw.addr).await;
    conn.write_all(request(&gw, "/health", "").as_bytes())
        .await
        .unwrap();
    assert!(read_answer(&mut conn).await.is_some());
    // Idle for longer than the header timeout: still open (the idle timeout applies), and
    // the next request is served on the same connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    conn.write_all(request(&gw, "/health", "").as_bytes())
        .await
        .unwrap();
    assert!(
        read_answer(&mut conn).await.is_some(),
        "an idle keep-alive connection was closed by the header timeout"
    );
    // Then idle with nothing sent: closed.
    assert!(closed_by_server(&mut conn).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_connections() {
    let gw = Gateway::start(|c| c.http.max_connections_per_client = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from("127.0.0.1", gw.addr).await;
        c.write_all(request(&gw, "/health", "").as_bytes())
            .await
            .unwrap();
        assert!(read_answer(&mut c).await.is_some());
        held.push(c);
    }
    let mut extra = connect_from("127.0.0.1", gw.addr).await;
    let _ = extra
        .write_all(request(&gw, "/health", "").as_bytes())
        .await;
    assert_eq!(
        read_answer(&mut extra).await,
        None,
        "the 4th connection was served"
    );
    // Another address (loopback too, so allowed in protected mode) is still served.
    let mut other = connect_from("127.0.0.2", gw.addr).await;
    other
        .write_all(request(&gw, "/health", "").as_bytes())
        .await
        .unwrap();
    assert!(read_answer(&mut other).await.is_some());
    // Closing one gives the address its slot back.
    held.pop();
    let mut again = None;
    for _ in 0..50 {
        let mut c = connect_from("127.0.0.1", gw.addr).await;
        let _ = c.write_all(request(&gw, "/health", "").as_bytes()).await;
        if read_answer(&mut c).await.is_some() {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a freed slot was never given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_capped() {
    let gw = Gateway::start(|c| {
        c.http.max_connections_per_client = 2;
        c.http.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let from = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.1", gw.addr).await;
        c.write_all(request(&gw, "/health", &from("127.0.0.1")).as_bytes())
            .await
            .unwrap();
        assert!(read_answer(&mut c).await.is_some());
        held.push(c);
    }
    let mut third = connect_from("127.0.0.1", gw.addr).await;
    third
        .write_all(request(&gw, "/health", &from("127.0.0.1")).as_bytes())
        .await
        .unwrap();
    let (status, body) = read_answer(&mut third).await.expect("a JSON refusal");
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    assert!(closed_by_server(&mut third).await);
    // The proxy's other clients are not that client.
    let mut other = connect_from("127.0.0.1", gw.addr).await;
    other
        .write_all(request(&gw, "/health", &from("127.0.0.9")).as_bytes())
        .await
        .unwrap();
    let (status, _) = read_answer(&mut other).await.unwrap();
    assert_ne!(status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_headers_get_a_json_431() {
    let gw = Gateway::start(|_| {}).await;
    let extra: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let mut c = connect_from("127.0.0.1", gw.addr).await;
    c.write_all(request(&gw, "/health", &extra).as_bytes())
        .await
        .unwrap();
    let (status, body) = read_answer(&mut c).await.unwrap();
    assert_eq!(status, 431);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
}
