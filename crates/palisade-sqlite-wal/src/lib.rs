//! A SQLite VFS that writes each commit's WAL frames in one system call.
//!
//! SQLite appends a WAL frame as two writes, its 24-byte header and then its page, so every
//! frame straddles two pages of the file system's cache and a commit of `n` pages costs `2n`
//! system calls that each dirty, lock and account a cache page. On the embedded store's writer
//! that was a quarter of the thread's time. This VFS wraps the platform's default one and, for
//! WAL files only, gathers contiguous writes in memory and hands them to the default VFS as one
//! write before anything that could observe them: a sync, a read, the file's size, a
//! truncation, a file control or the close. SQLite syncs the WAL before it publishes a commit
//! to other connections (in the wal-index), so with `synchronous=FULL` a commit is on disk,
//! exactly as before, when it returns; only the number of calls that put it there changes.
//! Database and journal files are the default VFS's own, untouched.
//!
//! ```no_run
//! let vfs = palisade_sqlite_wal::register().expect("SQLite has a default VFS");
//! let flags = rusqlite::OpenFlags::default();
//! let conn = rusqlite::Connection::open_with_flags_and_vfs("mail.db", flags, vfs)?;
//! # Ok::<(), rusqlite::Error>(())
//! ```

mod vfs;

pub use vfs::{Unavailable, register, wal_writes};
