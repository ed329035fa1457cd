//! Mailbox files in and out, one message at a time.
//!
//! Reading never holds more than one message (up to a size limit) in memory, so a mailbox of
//! any size imports in bounded memory. A message over the limit is reported by its position
//! and size and skipped; every other one comes out byte for byte as it was stored.

mod maildir;
mod mbox;

pub use maildir::{MaildirFlags, MaildirReader};
pub use mbox::{MboxReader, MboxVariant, write_mbox_message};

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One message read from a mailbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A message within the size limit.
    Message(Message),
    /// A message larger than the limit, skipped; nothing of it is kept.
    TooLarge {
        /// Its position in the mailbox, from 0.
        index: usize,
        /// Where it came from (mbox: the separator line's number; Maildir: the file name).
        origin: String,
        /// Its size in bytes, as far as it was read (at least the limit plus one).
        size: u64,
    },
}

/// A message and what the mailbox file said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its position in the mailbox, from 0.
    pub index: usize,
    /// Where it came from (mbox: the separator line's number; Maildir: the file name).
    pub origin: String,
    /// The message's bytes, unescaped.
    pub raw: Vec<u8>,
    /// The envelope sender of an mbox `From ` line (`MAILER-DAEMON` and empty are `None`).
    pub sender: Option<String>,
    /// When it was delivered: the mbox `From ` line's date, or the Maildir file's timestamp.
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Maildir flags from the file name; empty for mbox.
    pub flags: MaildirFlags,
}

/// A reader that counts the bytes read through it, so an import of an mbox can say how far
/// along the file it is while another thread reads it.
pub struct CountingReader<R> {
    /// The file.
    inner: R,
    /// Bytes read so far, shared with whoever reports progress.
    read: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    /// Counts what is read from `inner`, and the shared count.
    pub fn new(inner: R) -> (Self, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        let reader = CountingReader {
            inner,
            read: read.clone(),
        };
        (reader, read)
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
