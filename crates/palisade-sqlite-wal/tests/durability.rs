//! What a commit through the VFS leaves on disk, read back by SQLite's default VFS.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

fn open(path: &Path) -> Connection {
    palisade_sqlite_wal::open(path, OpenFlags::default(), Duration::from_secs(5)).expect("open")
}

/// The database as a process that died right now would leave it: its files, copied while the
/// connection that wrote them is still open, opened by the default VFS.
fn as_left_by_a_crash(dir: &Path) -> Connection {
    let copy = dir.join("copy");
    std::fs::create_dir(&copy).expect("copy dir");
    for name in ["mail.db", "mail.db-wal"] {
        std::fs::copy(dir.join(name), copy.join(name)).expect("copy a file");
    }
    Connection::open(copy.join("mail.db")).expect("open the copy")
}

#[test]
fn a_commit_is_in_the_files_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = open(&dir.path().join("mail.db"));
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint=0;
         CREATE TABLE m (id INTEGER PRIMARY KEY, body BLOB);
         BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO m SELECT i, randomblob(3000) FROM n;
         COMMIT;",
    )
    .expect("commit");
    let wal = std::fs::metadata(dir.path().join("mail.db-wal")).expect("the WAL");
    assert!(
        wal.len() > 500 * 3000,
        "the WAL holds the commit: {} bytes",
        wal.len()
    );

    let copy = as_left_by_a_crash(dir.path());
    let (rows, sum): (i64, i64) = copy
        .query_row("SELECT COUNT(*), SUM(length(body)) FROM m", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("read the copy");
    assert_eq!((rows, sum), (500, 500 * 3000));
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    drop(conn);
}

#[test]
fn pages_rewritten_inside_a_transaction_read_back_as_last_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = open(&dir.path().join("mail.db"));
    // A cache of a few pages makes SQLite spill changed pages into the WAL mid-transaction
    // and then write the same pages again, in place, before the commit.
    conn.execute_batch(
        "PRAGMA cache_size=4;
         CREATE TABLE m (id INTEGER PRIMARY KEY, n INTEGER, body BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
         INSERT INTO m SELECT i, 0, zeroblob(1000) FROM n;
         BEGIN;",
    )
    .expect("setup");
    for round in 1..=5 {
        conn.execute("UPDATE m SET n = n + ?1, body = randomblob(1000)", [round])
            .expect("update");
    }
    conn.execute_batch("COMMIT;").expect("commit");

    for db in [&conn, &as_left_by_a_crash(dir.path())] {
        let (total, distinct): (i64, i64) = db
            .query_row("SELECT SUM(n), COUNT(DISTINCT n) FROM m", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("read");
        assert_eq!((total, distinct), (400 * 15, 1));
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok");
    }

    // A checkpoint reads the WAL back through the same file and truncates it.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let total: i64 = conn
        .query_row("SELECT SUM(n) FROM m", [], |r| r.get(0))
        .expect("read");
    assert_eq!(total, 400 * 15);
}
