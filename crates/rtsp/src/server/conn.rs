//! The tokio task of one control connection: reads requests and interleaved frames into the
//! sans-IO decoder, lets `control::Conn` answer, binds the UDP pairs it asks for, and writes
//! answers and interleaved RTP through one ordered queue. Decides nothing about RTSP itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Notify;

use super::{Inner, Out, UdpPair, play, stopped};
use crate::control::{Conn, Step};
use crate::framing::{Decoder, Item};
use crate::message::{Message, Response};
use crate::session::lock;
use crate::source::Source;

/// Depth of the outgoing queue (answers and interleaved bursts) of a connection.
const OUT_QUEUE: usize = 1024;

/// Binds an even/odd UDP port pair (RTP, RTCP) on `ip`, as RFC 3550 suggests; falls back to
/// any two ports when the pair is hard to get.
async fn bind_udp_pair(ip: std::net::IpAddr) -> std::io::Result<UdpPair> {
    for _ in 0..20 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port % 2 == 0
            && port < u16::MAX
            && let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await
        {
            return Ok(UdpPair { rtp, rtcp });
        }
    }
    let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    Ok(UdpPair { rtp, rtcp })
}

/// Serves one accepted connection until the client leaves, the source aborts it, or shutdown.
pub(crate) async fn serve<S: Source>(inner: Arc<Inner<S>>, stream: TcpStream, id: u64) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let label = inner.core.settings.label;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = Out::new(OUT_QUEUE);
    let queued = tx.counter();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            let ok = wr.write_all(&b).await.is_ok();
            queued.fetch_sub(b.len(), std::sync::atomic::Ordering::Relaxed);
            if !ok {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut conn = Conn::new(id, peer, local);
    let kill = Arc::new(Notify::new());
    lock(&inner.conns).insert(id, kill.clone());
    let mut shutdown = inner.shutdown.subscribe();
    let mut decoder = Decoder::new();
    decoder.buffer_mut().reserve(4096);
    tracing::debug!(server = label, %peer, conn = id, "rtsp: connection opened");
    let mut killed = false;
    'conn: loop {
        loop {
            match decoder.next_item() {
                Ok(None) => break,
                Ok(Some(Item::Message(Message::Request(req)))) => {
                    if let Some(name) = conn.prepare_target(&inner.core, &req) {
                        tokio::select! {
                            _ = inner.core.source.prepare(&name) => {}
                            _ = kill.notified() => { killed = true; break 'conn; }
                            _ = stopped(&mut shutdown) => break 'conn,
                        }
                    }
                    let (resp, play) = match conn.handle(&inner.core, &req, Instant::now()) {
                        Step::Reply(r) => (r, None),
                        Step::Play(r, s) => (r, Some(s)),
                        Step::BindUdp(plan) => {
                            let bound = match bind_udp_pair(local.ip()).await {
                                Ok(pair) => {
                                    let port = |s: &UdpSocket| {
                                        s.local_addr().map(|a| a.port()).unwrap_or(0)
                                    };
                                    let (a, b) = (port(&pair.rtp), port(&pair.rtcp));
                                    Some((a, b, Arc::new(pair)))
                                }
                                Err(e) => {
                                    tracing::warn!(server = label, error = %e,
                                        "rtsp: cannot bind UDP ports");
                                    None
                                }
                            };
                            let pair = bound.as_ref().map(|b| b.2.clone());
                            let (r, s) =
                                conn.finish_udp_setup(&inner.core, plan, bound, Instant::now());
                            if let (Some(s), Some(pair)) = (s, pair) {
                                let stop = s.stop.subscribe();
                                tokio::spawn(play::watch_udp_rtcp(s, pair, stop));
                            }
                            (r, None)
                        }
                    };
                    if !tx.send(Bytes::from(resp.to_bytes())).await {
                        break 'conn;
                    }
                    // After the answer is queued, so RTP follows the PLAY answer.
                    if let Some(s) = play {
                        tokio::spawn(play::play(inner.clone(), s, tx.clone()));
                    }
                }
                // A response to a request we never sent: nothing to do.
                Ok(Some(Item::Message(Message::Response { .. }))) => {}
                Ok(Some(Item::Data { channel, .. })) => {
                    conn.on_data(&inner.core, channel, Instant::now())
                }
                Err(e) => {
                    tracing::info!(server = label, %peer, error = %e,
                        "rtsp: unparseable request; closing");
                    let resp = Response::new(400).with_body("text/plain", format!("{e}\r\n"));
                    tx.send(Bytes::from(resp.to_bytes())).await;
                    break 'conn;
                }
            }
        }
        tokio::select! {
            n = rd.read_buf(decoder.buffer_mut()) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = kill.notified() => { killed = true; break; }
            _ = stopped(&mut shutdown) => break,
        }
    }
    lock(&inner.conns).remove(&id);
    conn.close(&inner.core, killed);
    drop(tx);
    if killed {
        // A dropped camera connection ends abruptly; do not flush queued video.
        writer.abort();
    } else {
        let _ = writer.await;
    }
    tracing::debug!(server = label, %peer, conn = id, "rtsp: connection closed");
}
