//! Buffered connection I/O with pipelining-friendly reply batching and an idle timeout.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Longest command line accepted (RFC 5321 allows 512; extensions make it longer).
pub(crate) const MAX_LINE: usize = 4096;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum ReadStop {
    /// The peer closed the connection.
    Eof,
    /// The peer was silent for too long.
    Idle,
    /// The server is shutting down and the session may be dropped here.
    Shutdown,
    /// The socket failed.
    Io(std::io::Error),
}

/// A line read in command phase.
pub(crate) enum Line {
    /// A complete line including its LF.
    Complete(Vec<u8>),
    /// A line over [`MAX_LINE`], already discarded up to its LF.
    TooLong,
}

/// A client connection with a read buffer and a pending-reply buffer.
pub(crate) struct Conn<S> {
    stream: S,
    rbuf: Vec<u8>,
    start: usize,
    wbuf: Vec<u8>,
    idle: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(stream: S, idle: Duration) -> Self {
        Conn {
            stream,
            rbuf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            wbuf: Vec::with_capacity(512),
            idle,
        }
    }

    /// Queues a reply line; it is sent before the next read or on [`Conn::flush`].
    pub(crate) fn reply(&mut self, line: &str) {
        // The last line of a reply (`250 ...`, not `250-...`) counts it, by its code only.
        if let Some(code) = line
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            && line.as_bytes().get(3) != Some(&b'-')
        {
            palisade_metrics::metrics::counter!(
                palisade_metrics::LMTP_REPLIES,
                "code" => code.to_string()
            )
            .increment(1);
        }
        self.wbuf.extend_from_slice(line.as_bytes());
        self.wbuf.extend_from_slice(b"\r\n");
    }

    /// Sends queued replies.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Unconsumed buffered bytes.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.rbuf[self.start..]
    }

    /// Marks `n` buffered bytes as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.rbuf.len() {
            self.rbuf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes. Replies are flushed first: once the client's pipelined commands are
    /// used up, it is waiting for them. `stop` interrupts the wait when it fires.
    pub(crate) async fn fill(&mut self, stop: Option<&CancellationToken>) -> Result<(), ReadStop> {
        self.flush().await.map_err(ReadStop::Io)?;
        if self.start > 0 {
            self.rbuf.drain(..self.start);
            self.start = 0;
        }
        // Read into spare capacity: zeroing 64 KiB before every read was measurable at small
        // messages. `read_buf` is cancel-safe, so the select below loses no bytes.
        self.rbuf.reserve(READ_CHUNK);
        let read = tokio::time::timeout(self.idle, self.stream.read_buf(&mut self.rbuf));
        let result = match stop {
            Some(token) => tokio::select! {
                r = read => Some(r),
                _ = token.cancelled() => None,
            },
            None => Some(read.await),
        };
        match result {
            None => Err(ReadStop::Shutdown),
            Some(Err(_elapsed)) => Err(ReadStop::Idle),
            Some(Ok(Err(e))) => Err(ReadStop::Io(e)),
            Some(Ok(Ok(0))) => Err(ReadStop::Eof),
            Some(Ok(Ok(_))) => Ok(()),
        }
    }

    /// Reads one command line.
    pub(crate) async fn read_line(
        &mut self,
        stop: Option<&CancellationToken>,
    ) -> Result<Line, ReadStop> {
        let mut too_long = false;
        loop {
            if let Some(pos) = memchr::memchr(b'\n', self.buffered()) {
                let line = self.buffered()[..=pos].to_vec();
                self.consume(pos + 1);
                return Ok(if too_long || line.len() > MAX_LINE {
                    Line::TooLong
                } else {
                    Line::Complete(line)
                });
            }
            if self.buffered().len() > MAX_LINE {
                // Drop what we have; keep discarding until the line ends.
                too_long = true;
                let n = self.buffered().len();
                self.consume(n);
            }
            self.fill(stop).await?;
        }
    }

    /// Reads exactly `n` bytes, handing them to `sink` as they arrive (BDAT chunks).
    pub(crate) async fn read_exact_into(
        &mut self,
        mut n: usize,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), ReadStop> {
        while n > 0 {
            if self.buffered().is_empty() {
                self.fill(None).await?;
            }
            let take = n.min(self.buffered().len());
            sink(&self.buffered()[..take]);
            self.consume(take);
            n -= take;
        }
        Ok(())
    }
}
