//! One simulated LL-HLS player on its own HTTP/1.1 connection, written for thousands per
//! core: a minimal keep-alive HTTP client (request line, Cookie, Content-Length bodies; what
//! camgate answers), one reusable buffer per player, and a playlist scan that reads only what
//! a player needs (media sequence, segment and part counts, part URIs).
//!
//! The player: GET the playlist (keeping the session cookie camgate hands out), GET the init
//! segment, then loop: blocking reload `?_HLS_msn=M&_HLS_part=P&_HLS_skip=YES` for the next
//! part, then GET every part newer than the last one it has, in order, with the URIs as the
//! playlist gives them (they carry `hls_session`). Parts are read to the end and discarded.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Slots of the first-seen table (part ids modulo this); a step sees a few hundred parts.
pub const RING: usize = 1 << 14;

/// Longest wait for one response: a blocking reload is held at most three target durations
/// (12 s with camgate's 4 s ceiling) before camgate answers 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// What every player of a step shares.
pub struct Shared {
    pub t0: Instant,
    /// Per part id (modulo RING): nanoseconds after `t0` at which some player's reload first
    /// returned a playlist listing it; `u64::MAX` until then.
    pub first_seen: Vec<AtomicU64>,
    /// Players record parts they finish at or after this (ns after `t0`).
    pub record_from: AtomicU64,
    pub stop: AtomicBool,
    /// Requests answered, all players.
    pub requests: AtomicU64,
    pub addr: SocketAddr,
    /// `/hls/{path}/`: playlist URIs are relative to it.
    pub base: String,
}

impl Shared {
    pub fn new(addr: SocketAddr, path: &str) -> Shared {
        Shared {
            t0: Instant::now(),
            first_seen: (0..RING).map(|_| AtomicU64::new(u64::MAX)).collect(),
            record_from: AtomicU64::new(u64::MAX),
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            addr,
            base: format!("/hls/{path}/"),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Forgets the parts seen in a previous step.
    pub fn reset(&self) {
        for s in &self.first_seen {
            s.store(u64::MAX, Ordering::Relaxed);
        }
        self.record_from.store(u64::MAX, Ordering::Relaxed);
        self.stop.store(false, Ordering::Relaxed);
    }

    pub fn first_seen(&self, part: u64) -> Option<u64> {
        let v = self.first_seen[(part as usize) % RING].load(Ordering::Relaxed);
        (v != u64::MAX).then_some(v)
    }
}

/// What one player did.
#[derive(Default)]
pub struct PlayerOut {
    /// (part id, ns after t0 when its last byte arrived), for parts finished after
    /// `record_from`.
    pub parts: Vec<(u64, u64)>,
    /// The first thing that went wrong (the player stops there).
    pub error: Option<String>,
    /// Got its first playlist.
    pub started: bool,
}

/// Runs a player from `start_at` until `stop`.
pub async fn player(sh: Arc<Shared>, start_at: Instant) -> PlayerOut {
    tokio::time::sleep_until(start_at.into()).await;
    let mut out = PlayerOut::default();
    if let Err(e) = play(&sh, &mut out).await {
        out.error = Some(format!("{e:#}"));
    }
    out
}

async fn play(sh: &Shared, out: &mut PlayerOut) -> Result<()> {
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(sh.addr))
        .await
        .context("connect timed out")?
        .context("connect")?;
    stream.set_nodelay(true)?;
    let mut c = Conn {
        s: stream,
        buf: Vec::with_capacity(32 * 1024),
        req: Vec::with_capacity(256),
    };
    let mut path = String::with_capacity(256);
    path.push_str(&sh.base);
    path.push_str("index.m3u8");
    let head = c.get(&path, None, true, true).await?;
    sh.requests.fetch_add(1, Ordering::Relaxed);
    expect_ok(&c, &head, "first playlist")?;
    let cookie = head
        .cookie
        .clone()
        .context("the first playlist set no session cookie")?;
    out.started = true;
    let mut scan = Scan::default();
    scan.read(&c.buf[head.body.clone()], 0);
    // Start at the live edge, as a player does after its hold-back.
    let mut last_part = scan.newest_part.unwrap_or(0);
    if let Some(r) = scan.map_uri.clone() {
        path.truncate(sh.base.len());
        path.push_str(std::str::from_utf8(
            &c.buf[head.body.start + r.start..head.body.start + r.end],
        )?);
        let h = c.get(&path, Some(&cookie), false, false).await?;
        sh.requests.fetch_add(1, Ordering::Relaxed);
        expect_ok(&c, &h, "init segment")?;
    }
    // URIs of the parts to fetch after a reload (the buffer is reused by the next request).
    let mut todo: Vec<(u64, Range<usize>)> = Vec::with_capacity(16);
    let mut uris = String::with_capacity(1024);
    while !sh.stop.load(Ordering::Relaxed) {
        path.truncate(sh.base.len());
        use std::fmt::Write;
        let _ = write!(
            path,
            "index.m3u8?_HLS_msn={}&_HLS_part={}&_HLS_skip=YES",
            scan.next_msn(),
            scan.next_part()
        );
        let head = c.get(&path, Some(&cookie), true, true).await?;
        sh.requests.fetch_add(1, Ordering::Relaxed);
        expect_ok(&c, &head, "blocking reload")?;
        let seen = sh.now_ns();
        scan.read(&c.buf[head.body.clone()], last_part);
        let body = &c.buf[head.body.clone()];
        todo.clear();
        uris.clear();
        for (id, r) in &scan.new_parts {
            sh.first_seen[(*id as usize) % RING].fetch_min(seen, Ordering::Relaxed);
            let start = uris.len();
            uris.push_str(std::str::from_utf8(&body[r.clone()])?);
            todo.push((*id, start..uris.len()));
        }
        for (id, r) in &todo {
            path.truncate(sh.base.len());
            path.push_str(&uris[r.clone()]);
            let h = c.get(&path, Some(&cookie), false, false).await?;
            sh.requests.fetch_add(1, Ordering::Relaxed);
            expect_ok(&c, &h, "part")?;
            let done = sh.now_ns();
            if done >= sh.record_from.load(Ordering::Relaxed) {
                out.parts.push((*id, done));
            }
            last_part = *id;
        }
    }
    Ok(())
}

fn expect_ok(c: &Conn, head: &Head, what: &str) -> Result<()> {
    if head.status == 200 {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&c.buf[head.body.clone()]);
    bail!(
        "{what}: HTTP {}: {}",
        head.status,
        body.chars().take(200).collect::<String>()
    )
}

/// A parsed response head; `body` indexes the connection's buffer (when kept).
struct Head {
    status: u16,
    body: Range<usize>,
    cookie: Option<String>,
}

struct Conn {
    s: TcpStream,
    /// The current response (head, and the body when kept).
    buf: Vec<u8>,
    req: Vec<u8>,
}

impl Conn {
    /// GET `path` on the keep-alive connection. With `keep_body` the body stays in `buf`
    /// (playlists); otherwise it is read and discarded (media), unless the status is not 200.
    async fn get(
        &mut self,
        path: &str,
        cookie: Option<&str>,
        keep_body: bool,
        want_cookie: bool,
    ) -> Result<Head> {
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.exchange(path, cookie, keep_body, want_cookie),
        )
        .await
        .with_context(|| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    async fn exchange(
        &mut self,
        path: &str,
        cookie: Option<&str>,
        keep_body: bool,
        want_cookie: bool,
    ) -> Result<Head> {
        self.req.clear();
        self.req.extend_from_slice(b"GET ");
        self.req.extend_from_slice(path.as_bytes());
        self.req
            .extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(c) = cookie {
            self.req.extend_from_slice(b"Cookie: ");
            self.req.extend_from_slice(c.as_bytes());
            self.req.extend_from_slice(b"\r\n");
        }
        self.req.extend_from_slice(b"\r\n");
        self.s.write_all(&self.req).await.context("send")?;

        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                bail!("response head over {MAX_HEAD} bytes");
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).context("response head")?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .context("bad status line")?;
        let mut len = None;
        let mut set_cookie = None;
        for line in head.split("\r\n").skip(1) {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse::<usize>().ok();
            } else if want_cookie && k.eq_ignore_ascii_case("set-cookie") {
                set_cookie = v.split(';').next().map(str::to_owned);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked responses are not expected from camgate");
            }
        }
        let len = len.context("response without Content-Length")?;
        if keep_body || status != 200 {
            while self.buf.len() < head_end + len {
                self.read_more().await?;
            }
        } else {
            // Media: count the bytes, keep none (the buffer never grows past one read).
            let mut left = len - (self.buf.len() - head_end).min(len);
            self.buf.truncate(head_end);
            while left > 0 {
                let n = self.read_more().await?;
                left -= n.min(left);
                self.buf.truncate(head_end);
            }
        }
        let end = (head_end + len).min(self.buf.len());
        Ok(Head {
            status,
            body: head_end..end,
            cookie: set_cookie,
        })
    }

    async fn read_more(&mut self) -> Result<usize> {
        self.buf.reserve(16 * 1024);
        let n = self.s.read_buf(&mut self.buf).await.context("receive")?;
        if n == 0 {
            bail!("connection closed by camgate");
        }
        Ok(n)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What a player reads from a playlist.
#[derive(Default)]
pub struct Scan {
    media_sequence: u64,
    /// Complete segments listed, plus those skipped by a delta update.
    segments: u64,
    /// Parts after the last complete segment (the segment being built).
    open_parts: u64,
    pub newest_part: Option<u64>,
    pub map_uri: Option<Range<usize>>,
    /// Parts newer than the `after` given to `read`, in playlist order, as URI ranges of
    /// the body.
    pub new_parts: Vec<(u64, Range<usize>)>,
}

impl Scan {
    /// Reads a playlist body, collecting parts with ids above `after`.
    pub fn read(&mut self, body: &[u8], after: u64) {
        self.media_sequence = 0;
        self.segments = 0;
        self.open_parts = 0;
        self.newest_part = None;
        self.map_uri = None;
        self.new_parts.clear();
        let mut pos = 0;
        for line in body.split(|&b| b == b'\n') {
            let start = pos;
            pos += line.len() + 1;
            if let Some(rest) = line.strip_prefix(b"#EXT-X-PART:") {
                self.open_parts += 1;
                let Some(r) = quoted_uri(rest) else { continue };
                let abs = start + 12 + r.start..start + 12 + r.end;
                if let Some(id) = part_id(&body[abs.clone()]) {
                    self.newest_part = Some(id);
                    if id > after {
                        self.new_parts.push((id, abs));
                    }
                }
            } else if line.starts_with(b"#EXTINF:") {
                self.segments += 1;
                self.open_parts = 0;
            } else if let Some(v) = line.strip_prefix(b"#EXT-X-MEDIA-SEQUENCE:") {
                self.media_sequence = number(v).unwrap_or(0);
            } else if let Some(v) = line.strip_prefix(b"#EXT-X-SKIP:SKIPPED-SEGMENTS=") {
                let end = v.iter().position(|&b| b == b',').unwrap_or(v.len());
                self.segments += number(&v[..end]).unwrap_or(0);
            } else if let Some(rest) = line.strip_prefix(b"#EXT-X-MAP:")
                && let Some(r) = quoted_uri(rest)
            {
                self.map_uri = Some(start + 11 + r.start..start + 11 + r.end);
            }
        }
    }

    /// The `_HLS_msn` of the next part: the segment being built.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.segments
    }

    /// The `_HLS_part` of the next part within it.
    pub fn next_part(&self) -> u64 {
        self.open_parts
    }
}

/// The range of the value of `URI="..."` within `attrs`.
fn quoted_uri(attrs: &[u8]) -> Option<Range<usize>> {
    let at = find(attrs, b"URI=\"")? + 5;
    let len = attrs[at..].iter().position(|&b| b == b'"')?;
    Some(at..at + len)
}

/// The part id of `part-{instance}-{id}.m4s[?query]`.
fn part_id(uri: &[u8]) -> Option<u64> {
    let name = uri.split(|&b| b == b'?').next()?;
    let stem = name.strip_suffix(b".m4s")?;
    let dash = stem.iter().rposition(|&b| b == b'-')?;
    number(&stem[dash + 1..])
}

fn number(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n\
#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"init-5-0.mp4?hls_session=ab\"\n\
#EXT-X-PART:DURATION=0.20000,URI=\"part-5-40.m4s?hls_session=ab\",INDEPENDENT=YES\n\
#EXT-X-PART:DURATION=0.20000,URI=\"part-5-41.m4s?hls_session=ab\"\n\
#EXTINF:0.40000,\nseg-5-7.m4s?hls_session=ab\n\
#EXT-X-PART:DURATION=0.20000,URI=\"part-5-42.m4s?hls_session=ab\",INDEPENDENT=YES\n\
#EXT-X-PART:DURATION=0.20000,URI=\"part-5-43.m4s?hls_session=ab\"\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-5-44.m4s?hls_session=ab\"\n";

    #[test]
    fn scan_finds_the_next_part_and_new_uris() {
        let mut s = Scan::default();
        s.read(PLAYLIST.as_bytes(), 41);
        assert_eq!((s.next_msn(), s.next_part()), (8, 2));
        assert_eq!(s.newest_part, Some(43));
        let body = PLAYLIST.as_bytes();
        let uris: Vec<(u64, &[u8])> = s
            .new_parts
            .iter()
            .map(|(id, r)| (*id, &body[r.clone()]))
            .collect();
        assert_eq!(
            uris,
            vec![
                (42, &b"part-5-42.m4s?hls_session=ab"[..]),
                (43, &b"part-5-43.m4s?hls_session=ab"[..])
            ]
        );
        assert_eq!(
            &body[s.map_uri.clone().unwrap()],
            b"init-5-0.mp4?hls_session=ab"
        );
        // A delta playlist counts the skipped segments; no open part means part 0 next.
        let delta = "#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n\
#EXT-X-PART:DURATION=0.2,URI=\"part-5-90.m4s\"\n#EXTINF:0.2,\nseg-5-10.m4s\n";
        s.read(delta.as_bytes(), 0);
        assert_eq!((s.next_msn(), s.next_part()), (11, 0));
    }
}
