//! A SQLite VFS that writes each commit's WAL frames in one system call.
//!
//! SQLite appends a WAL frame as two writes, its 24-byte header and then its page, so every
//! frame straddles two pages of the file system's cache and a commit of `n` pages costs `2n`
//! system calls that each dirty, lock and account a cache page. On the embedded store's writer
//! that was a quarter of the thread's time. This VFS wraps the platform's default one and, for
//! WAL files only, gathers contiguous writes in memory and hands them to the default VFS as one
//! write before anything that could observe them: a sync, a read, the file's size, a
//! truncation, a file control or the close. Database and journal files are the default VFS's
//! own, untouched, and the files on disk are SQLite's usual ones.
//!
//! This is only correct because the WAL is synced at every commit (`synchronous=FULL`): SQLite
//! syncs before it publishes a commit to other connections in the wal-index, so the sync is
//! what hands the gathered frames over, and a commit is on disk when it returns, as before.
//! With `synchronous=NORMAL` SQLite would publish frames still held here, and other
//! connections would read past the end of the file. So connections are opened by [`open`],
//! which sets WAL mode and `synchronous=FULL`, and must not lower it.
//!
//! ```no_run
//! let flags = rusqlite::OpenFlags::default();
//! let conn = palisade_sqlite_wal::open("mail.db", flags, std::time::Duration::from_secs(5))?;
//! # Ok::<(), rusqlite::Error>(())
//! ```

mod vfs;

pub use vfs::wal_writes;

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Opens a connection whose WAL writes are gathered, in WAL mode with `synchronous=FULL`,
/// waiting up to `busy_timeout` for locks (the mode change is the first to need one).
pub fn open(
    path: impl AsRef<Path>,
    flags: OpenFlags,
    busy_timeout: Duration,
) -> rusqlite::Result<Connection> {
    let vfs = vfs::register().map_err(|code| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some("the WAL-gathering SQLite VFS could not be registered".into()),
        )
    })?;
    let conn = Connection::open_with_flags_and_vfs(path, flags, vfs)?;
    conn.busy_timeout(busy_timeout)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
    Ok(conn)
}
