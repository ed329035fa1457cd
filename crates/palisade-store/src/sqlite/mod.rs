//! Embedded store on SQLite: WAL, `synchronous=FULL`, and group commit.
//!
//! Writes go through one writer thread ([`writer`]) so concurrent deliveries share fsyncs,
//! and a checkpoint thread ([`checkpoint`]) copies the WAL home beside it;
//! reads use a small pool of connections on tokio's blocking threads.

mod accounts;
mod attachments;
mod book;
mod checkpoint;
mod content;
mod deliver;
mod drafts;
mod erase;
mod jobs;
mod mailbox;
mod organize;
mod remote_trust;
mod rows;
mod schema;
mod tags;
mod writer;

use crate::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use writer::Writer;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections kept open for reuse.
const READ_POOL: usize = 4;
/// WAL pages after which the writer copies them home itself, inside a commit. The
/// checkpoint thread ([`checkpoint`]) does that work beside the writer; under sustained load
/// it rarely finishes just as a commit starts, which is when SQLite can restart the WAL, so
/// this is the bound that restarts it: about 66 MiB of WAL, and the writer's own checkpoint
/// then finds little left to copy.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_000;

/// The embedded [`crate::Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Copies the WAL home beside the writer; stops when the store is dropped.
    _checkpointer: checkpoint::Checkpointer,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut conn = open_writer(path)?;
        schema::migrate(&mut conn).map_err(unavailable)?;
        // Only the writer commits, so only its connection checkpoints on commit, and only
        // past the bound (see `WAL_AUTOCHECKPOINT_PAGES`).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(unavailable)?;
        let writer = Writer::spawn(conn)
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer: {e}")))?;
        let checkpointer = checkpoint::Checkpointer::spawn(path)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            readers: Arc::new(Mutex::new(Vec::new())),
            _checkpointer: checkpointer,
        })
    }

    /// Returns every leased job to the queue. Call it at daemon start: the daemon is the only
    /// consumer of the embedded queue, so a lease still held then belongs to a process that
    /// died (kill -9, power loss), and waiting for it to expire would stall indexing.
    pub async fn release_leases(&self) -> Result<u64, StoreError> {
        self.writer
            .write(|conn| {
                let n = conn
                    .execute(
                        "UPDATE jobs SET state = 'pending', lease_until = NULL
                         WHERE state = 'running'",
                        [],
                    )
                    .map_err(unavailable)?;
                Ok(n as u64)
            })
            .await
    }

    /// Runs a read on a pooled connection, off the async threads.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let path = self.path.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || with_reader(&path, &readers, f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    /// Runs a short read on the calling thread: it costs less than the hand-off to the
    /// blocking pool and back. Only for lookups by an indexed key and reads bounded by a page
    /// size, whose pages stay cached; WAL readers never wait for the writer.
    fn read_now<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        with_reader(&self.path, &self.readers, f)
    }
}

/// Runs `f` on a connection from the pool, opening one when the pool is empty, and returns
/// it to the pool afterwards.
fn with_reader<R>(
    path: &Path,
    readers: &Mutex<Vec<Connection>>,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let pooled = readers.lock().ok().and_then(|mut pool| pool.pop());
    let conn = match pooled {
        Some(conn) => conn,
        None => open_connection(path)?,
    };
    let result = f(&conn);
    if let Ok(mut pool) = readers.lock()
        && pool.len() < READ_POOL
    {
        pool.push(conn);
    }
    result
}

/// Flags of every connection: each is used by one thread at a time.
const OPEN_FLAGS: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE
    .union(OpenFlags::SQLITE_OPEN_CREATE)
    .union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// A connection for reading, or for writing outside the writer thread (erasure's checkpoint).
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, OPEN_FLAGS).map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    // FULL: a commit is on disk when it returns, which is what an LMTP 250 promises.
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .map_err(unavailable)?;
    with_store_pragmas(conn)
}

/// The writer thread's connection: each commit's WAL frames go to the file in a few writes
/// instead of two per page (see `palisade_sqlite_wal`). Readers gain nothing from it, and
/// measured a few percent slower through it, so only the writer uses it. Its `open` sets the
/// busy timeout, WAL mode and `synchronous=FULL`, which its gathering depends on.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    with_store_pragmas(
        palisade_sqlite_wal::open(path, OPEN_FLAGS, BUSY_TIMEOUT).map_err(unavailable)?,
    )
}

/// What every connection of the store sets beside durability.
fn with_store_pragmas(conn: Connection) -> Result<Connection, StoreError> {
    // secure_delete: deleted rows, and the old copies an update leaves in free space, are
    // zeroed as they are freed, so a deleted account's mail is not left readable in the file.
    conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;")
        .map_err(unavailable)?;
    // Plans that do not depend on bound values. Without this, SQLite compiled every list
    // query again on every request: its planner had looked at a bound value, and any new
    // binding of that parameter then expires the statement (a fifth of the API's CPU when
    // listing). Our partial indexes' conditions are spelled in the queries themselves, so no
    // plan needs a bound value to find its index.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(unavailable)?;
    Ok(conn)
}

/// Deleted files this process holds open: SQLite's temporary files, which it creates
/// unnamed (`O_TMPFILE`) or unlinks at once, so only their descriptors show them.
#[cfg(test)]
pub(crate) fn open_temp_files() -> Vec<String> {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.ends_with(" (deleted)"))
        .collect()
}

/// Storage faults are reported as temporary: the LMTP client will retry.
pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
