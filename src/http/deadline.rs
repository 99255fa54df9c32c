//! Deadlines on one connection's socket, so that no client holds a slot by
//! doing nothing:
//! - **write**: once a write has to wait for the client to read, all the
//!   output buffered so far must reach the socket within `write_timeout`
//!   (progress in between does not extend it, so a client that reads a byte
//!   a second is closed too);
//! - **idle**: with no request in flight and no output waiting, a
//!   connection that reads nothing for `idle_timeout` is closed.
//!
//! A deadline that passes fails the socket's read or write with
//! `TimedOut`; hyper then drops the connection and its slot is free.
//! hyper flushes the socket only once its own buffer is empty, which is
//! when the write deadline is lifted.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the requests on a connection are doing, shared between its socket
/// and its service: a connection with a request in flight is not idle.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: AtomicUsize,
}

impl Activity {
    /// Marks a request in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }
}

/// A request in flight; see [`Activity::begin`].
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket with the write and idle deadlines.
pub struct DeadlineIo<T> {
    io: T,
    activity: Arc<Activity>,
    write_timeout: Duration,
    idle_timeout: Duration,
    /// When a write first had to wait since output was last flushed.
    write_blocked: Option<Instant>,
    /// The last byte read or written.
    last_active: Instant,
    /// Wakes the connection at the deadline that applies.
    timer: Pin<Box<Sleep>>,
}

impl<T> DeadlineIo<T> {
    pub fn new(io: T, activity: Arc<Activity>, write_timeout: Duration, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        let timer = Box::pin(tokio::time::sleep_until(now + idle_timeout));
        Self { io, activity, write_timeout, idle_timeout, write_blocked: None, last_active: now, timer }
    }

    /// `Pending` until `deadline`, then `TimedOut`; the timer wakes `cx`.
    fn wait_until(&mut self, deadline: Instant, what: &str, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer
            .as_mut()
            .poll(cx)
            .map(|()| io::Error::new(io::ErrorKind::TimedOut, format!("{what} deadline passed")))
    }

    /// A write that cannot proceed: pending until the write deadline.
    fn write_pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let since = *self.write_blocked.get_or_insert_with(Instant::now);
        self.wait_until(since + self.write_timeout, "write", cx).map(Err)
    }

    /// A read that finds nothing: pending, or the idle deadline.
    fn read_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.activity.busy() || self.write_blocked.is_some() {
            return Poll::Pending;
        }
        self.wait_until(self.last_active + self.idle_timeout, "idle", cx).map(Err)
    }

    fn wrote(&mut self, result: Poll<io::Result<usize>>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last_active = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.write_pending(cx),
            other => other,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.last_active = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.read_pending(cx),
            err => err,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.write_blocked = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.write_pending(cx),
            err => err,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const WRITE: Duration = Duration::from_millis(400);
    const IDLE: Duration = Duration::from_millis(200);

    fn wrap(io: tokio::io::DuplexStream, activity: &Arc<Activity>) -> DeadlineIo<tokio::io::DuplexStream> {
        DeadlineIo::new(io, activity.clone(), WRITE, IDLE)
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_fails_at_the_write_deadline() {
        let (ours, _peer) = tokio::io::duplex(64);
        let mut io = wrap(ours, &Arc::default());
        let start = Instant::now();
        let err = io.write_all(&[0; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= WRITE);
    }

    #[tokio::test]
    async fn a_peer_reading_slowly_does_not_extend_the_write_deadline() {
        let (ours, mut peer) = tokio::io::duplex(64);
        let mut io = wrap(ours, &Arc::default());
        tokio::spawn(async move {
            let mut byte = [0; 1];
            while peer.read(&mut byte).await.is_ok_and(|n| n > 0) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let start = Instant::now();
        let err = async {
            io.write_all(&[0; 1024]).await?;
            io.flush().await
        }
        .await
        .unwrap_err();
        // 1024 bytes at one per 20 ms would take 20 s.
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= WRITE);
    }

    #[tokio::test]
    async fn an_idle_connection_fails_at_the_idle_deadline_unless_a_request_is_in_flight() {
        let activity = Arc::default();
        let (ours, _peer) = tokio::io::duplex(64);
        let mut io = wrap(ours, &activity);
        let busy = activity.begin();
        let mut buf = [0; 8];
        assert!(tokio::time::timeout(IDLE * 3, io.read(&mut buf)).await.is_err(), "closed while busy");
        drop(busy);
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // A byte read restarts the idle time.
        let (ours, mut peer) = tokio::io::duplex(64);
        let mut io = wrap(ours, &activity);
        tokio::time::sleep(IDLE / 2).await;
        peer.write_all(b"x").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        let start = Instant::now();
        assert_eq!(io.read(&mut buf).await.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= IDLE / 2, "{:?}", start.elapsed());
    }
}
