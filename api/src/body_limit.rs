//! The body limit for requests that do not declare their length (chunked uploads): the body
//! is read through [`Capped`], which fails the read past the limit and remembers it, so the
//! request is answered 413 like one whose `Content-Length` is too large, instead of a parse
//! error about a cut body.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, ReadBuf};

/// A request body that may yield at most a given number of bytes.
pub(crate) struct Capped<R> {
    /// The body.
    inner: R,
    /// Bytes it may still yield.
    left: u64,
    /// Set once it yielded more; read by the middleware after the handler ran.
    exceeded: Arc<AtomicBool>,
}

impl<R> Capped<R> {
    /// `inner`, limited to `limit` bytes, and the flag that says whether it went past them.
    pub(crate) fn new(inner: R, limit: u64) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let capped = Capped {
            inner,
            left: limit,
            exceeded: exceeded.clone(),
        };
        (capped, exceeded)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Capped<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = (buf.filled().len() - before) as u64;
        match this.left.checked_sub(read) {
            Some(left) => {
                this.left = left;
                Poll::Ready(Ok(()))
            }
            None => {
                // A failed read hands back nothing.
                buf.set_filled(before);
                this.exceeded.store(true, Ordering::Relaxed);
                Poll::Ready(Err(io::Error::other("the request body is over the limit")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn bodies_within_the_limit_pass_and_longer_ones_fail_and_say_so() {
        let (mut fits, flag) = Capped::new(&b"12345"[..], 5);
        let mut out = Vec::new();
        fits.read_to_end(&mut out).await.expect("fits");
        assert_eq!(out, b"12345");
        assert!(!flag.load(Ordering::Relaxed));

        let (mut over, flag) = Capped::new(&b"123456"[..], 5);
        assert!(over.read_to_end(&mut Vec::new()).await.is_err());
        assert!(flag.load(Ordering::Relaxed));
    }
}
