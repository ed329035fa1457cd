//! Message bytes past a threshold go to a temporary file while they arrive.
//!
//! A session holds at most about `spill_bytes` of a message in memory; the rest waits on disk
//! until the message is complete and its turn to be parsed comes (see [`crate::MemoryBudget`]).
//! So ten clients each sending a 25 MB message cost disk, not ten times 25 MB of memory.
//! The file is unnamed (deleted on open), so a crash leaves nothing behind.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The on-disk part of one message, created at its first spill.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: Arc<PathBuf>,
    file: Option<tokio::fs::File>,
    len: usize,
}

impl Spool {
    /// An empty spool whose file, if ever needed, goes in `dir`.
    pub(crate) fn new(dir: Arc<PathBuf>) -> Self {
        Spool {
            dir,
            file: None,
            len: 0,
        }
    }

    /// Bytes on disk so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Moves `buf` to the end of the file and empties it, keeping its allocation for reuse.
    pub(crate) async fn spill(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let dir = self.dir.clone();
                let std_file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(&*dir))
                    .await
                    .map_err(std::io::Error::other)??;
                self.file.insert(tokio::fs::File::from_std(std_file))
            }
        };
        file.write_all(buf).await?;
        self.len = self.len.saturating_add(buf.len());
        buf.clear();
        Ok(())
    }

    /// The whole message: what is on disk followed by `tail`, the part still in memory.
    pub(crate) async fn read_all(self, tail: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let Some(mut file) = self.file else {
            return Ok(tail);
        };
        file.flush().await?;
        file.seek(SeekFrom::Start(0)).await?;
        let mut all = Vec::with_capacity(self.len.saturating_add(tail.len()));
        (&mut file)
            .take(self.len as u64)
            .read_to_end(&mut all)
            .await?;
        if all.len() != self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the spool file is shorter than what was written to it",
            ));
        }
        all.extend_from_slice(&tail);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spilled_bytes_come_back_in_order_with_the_tail() {
        let dir = Arc::new(std::env::temp_dir());
        let mut spool = Spool::new(dir);
        let mut buf = b"first ".to_vec();
        spool.spill(&mut buf).await.expect("spill");
        assert!(
            buf.is_empty() && buf.capacity() > 0,
            "the buffer is kept for reuse"
        );
        buf.extend_from_slice(b"second ");
        spool.spill(&mut buf).await.expect("spill");
        assert_eq!(spool.len(), 13);
        let all = spool.read_all(b"tail".to_vec()).await.expect("read back");
        assert_eq!(all, b"first second tail");
    }

    #[tokio::test]
    async fn a_spool_never_spilled_is_just_the_tail() {
        let spool = Spool::new(Arc::new(PathBuf::from("/nonexistent")));
        assert_eq!(spool.read_all(b"x".to_vec()).await.expect("no file"), b"x");
    }

    #[tokio::test]
    async fn a_spool_dir_that_cannot_hold_a_file_is_an_error_not_a_panic() {
        let mut spool = Spool::new(Arc::new(PathBuf::from("/nonexistent/dir")));
        let mut buf = b"bytes".to_vec();
        assert!(spool.spill(&mut buf).await.is_err());
    }
}
