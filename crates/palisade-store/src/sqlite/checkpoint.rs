//! Checkpoints on a thread of their own, so that no commit waits for one.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: every
//! delivery of that batch waited while thousands of pages were copied into the database and
//! synced, a quarter of the writer's time. A passive checkpoint from another connection copies
//! them while the writer goes on committing; it never blocks the writer or a reader, and
//! SQLite makes it crash-safe as it does its own.

use super::open_connection;
use crate::StoreError;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::warn;

/// How often the WAL is copied home: at 4,000 deliveries a second, some 4,000 pages each time,
/// as many as the automatic checkpoint copied before ("Embedded ingest: checkpoints beside
/// the writer" in `docs/benchmarks.md`).
const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint thread; stops when dropped.
pub(crate) struct Checkpointer {
    /// Set by `drop`, which then wakes the thread.
    stop: Arc<AtomicBool>,
    /// Joined by `drop`, so the connection is closed before the store is gone.
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` every [`INTERVAL`].
    pub(crate) fn spawn(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = open_connection(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut failing = false;
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::park_timeout(INTERVAL);
                    // A failure (a full disk) leaves the frames in the WAL, where readers
                    // still find them; the next interval, or the writer's bound, tries again.
                    // Logged once per run of failures, not ten times a second.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            warn!(error = %e, "checkpoint failed; retrying every interval");
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start checkpointer: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // A thread that panicked has nothing left to stop.
            let _ = t.join();
        }
    }
}
