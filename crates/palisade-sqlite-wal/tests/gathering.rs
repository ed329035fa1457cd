//! The VFS's reason to exist: a commit's WAL frames reach the file system in a few writes.
//! Its own test binary, so that no other test's writes move the process-wide count.

use rusqlite::OpenFlags;
use std::time::Duration;

#[test]
fn a_commit_of_many_pages_is_a_few_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = palisade_sqlite_wal::open(
        dir.path().join("mail.db"),
        OpenFlags::default(),
        Duration::from_secs(5),
    )
    .expect("open");
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint=0;
         CREATE TABLE m (id INTEGER PRIMARY KEY, body BLOB);",
    )
    .expect("setup");
    let before = palisade_sqlite_wal::wal_writes();
    // About 300 pages, 1.2 MiB: SQLite alone writes each as a header and a page, 600 calls;
    // gathered, they are ten or so writes of at most 124 KiB.
    conn.execute_batch(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO m SELECT i, randomblob(3000) FROM n;
         COMMIT;",
    )
    .expect("commit");
    let writes = palisade_sqlite_wal::wal_writes() - before;
    assert!((1..=15).contains(&writes), "{writes} writes for one commit");
}
