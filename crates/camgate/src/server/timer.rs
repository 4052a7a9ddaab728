//! The header-read and idle keep-alive timeouts of one connection, through the one timer
//! hyper's HTTP/1 server consults (its `header_read_timeout`).
//!
//! hyper starts that timer whenever it waits for a request head, which includes the wait for
//! the next request on an idle keep-alive connection; on its own it would close every idle
//! connection after the (short) header timeout. So the timer of a connection knows how many
//! bytes the connection has read ([`ReadCounter`]): the first wait (a fresh connection) gets
//! the header timeout, and every later wait starts as an idle wait that becomes a header wait,
//! from that moment, once the next request's first byte arrives.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read so far on one connection, shared by its socket and its timer.
#[derive(Clone, Default)]
pub struct ReadCounter(Arc<AtomicU64>);

impl ReadCounter {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A socket that counts what it reads into a [`ReadCounter`].
pub struct Counted<T> {
    inner: T,
    reads: ReadCounter,
}

impl<T> Counted<T> {
    pub fn new(inner: T, reads: ReadCounter) -> Self {
        Counted { inner, reads }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before) as u64;
        if read > 0 {
            self.reads.0.fetch_add(read, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The timer of one connection (a fresh one per connection).
#[derive(Clone)]
pub struct ConnTimer {
    header: Duration,
    idle: Duration,
    reads: ReadCounter,
    /// Set once hyper has waited for a first request head.
    waited_before: Arc<AtomicBool>,
}

impl ConnTimer {
    pub fn new(header: Duration, idle: Duration, reads: ReadCounter) -> Self {
        ConnTimer {
            header,
            idle,
            reads,
            waited_before: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(HeadWait {
            sleep: Box::pin(tokio::time::sleep(duration)),
            idle_from: None,
            header: self.header,
            reads: self.reads.clone(),
        })
    }

    /// hyper's HTTP/1 server asks for this only to time a request head.
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        if !self.waited_before.swap(true, Ordering::Relaxed) {
            return Box::pin(HeadWait {
                sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
                idle_from: None,
                header: self.header,
                reads: self.reads.clone(),
            });
        }
        Box::pin(HeadWait {
            sleep: Box::pin(tokio::time::sleep(self.idle)),
            idle_from: Some(self.reads.get()),
            header: self.header,
            reads: self.reads.clone(),
        })
    }
}

/// A wait for a request head: while `idle_from` is set, an idle wait that turns into a
/// header wait when the connection reads past that count.
struct HeadWait {
    sleep: Pin<Box<tokio::time::Sleep>>,
    idle_from: Option<u64>,
    header: Duration,
    reads: ReadCounter,
}

impl Future for HeadWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this after every read that left the head incomplete, so the switch
        // happens when the first byte of the next request arrives.
        if let Some(from) = self.idle_from
            && self.reads.get() > from
        {
            self.idle_from = None;
            let deadline = tokio::time::Instant::now() + self.header;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl Sleep for HeadWait {}
