//! Group commit: one thread owns the write connection and commits whatever queued up together.
//!
//! With `synchronous=FULL` every commit costs an fsync. Ten LMTP sessions delivering at once
//! would otherwise queue behind ten fsyncs; here they share one. Nobody hears "ok" before the
//! commit that made their write durable.
//!
//! One failing write must not take its batch-mates with it. A batch first runs every write
//! straight in one transaction; when one fails, that transaction is rolled back and the batch
//! runs again with each write in a savepoint of its own, so the failing one rolls back alone.
//! Writes therefore may run twice, and only the last run counts. Savepoints are not taken up
//! front because a savepoint journals the old image of every page it changes, and past
//! 64 KiB (which most deliveries pass) SQLite spills that journal to a temporary file: two
//! system calls per page, measured at 46 writes to `/var/tmp` per 1 KiB delivery, and
//! copies of mail pages in unlinked files there.
//!
//! Writes that erase a user's content run alone, in a transaction of their own
//! ([`Writer::write_alone`]): a batch-mate's failure would otherwise run them again in a
//! savepoint, whose spilled journal keeps the very pages being erased.

use crate::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// Most writes folded into one transaction; bounds the latency of the first one queued.
const MAX_BATCH: usize = 512;

/// One queued write: it can run (more than once: see the module doc), then tells its caller
/// the outcome of its last run, or the batch's error.
trait Op: Send {
    /// Runs the write; `true` when it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Sends the caller the last run's result, or `batch_error` when the batch failed.
    fn finish(self: Box<Self>, batch_error: Option<&StoreError>);
    /// Whether it must be committed in a batch of its own.
    fn alone(&self) -> bool;
}

/// A write and the channel its caller waits on.
struct Pending<R, F> {
    write: F,
    alone: bool,
    last: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> Op for Pending<R, F>
where
    R: Send,
    F: Fn(&Connection) -> Result<R, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.write)(conn);
        let ok = result.is_ok();
        self.last = Some(result);
        ok
    }

    fn finish(self: Box<Self>, batch_error: Option<&StoreError>) {
        let outcome = match (batch_error, self.last) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(result)) => result,
            (None, None) => Err(StoreError::Unavailable("write was not attempted".into())),
        };
        // The caller may have gone away (connection dropped); nothing to tell then.
        let _ = self.reply.send(outcome);
    }

    fn alone(&self) -> bool {
        self.alone
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<Box<dyn Op>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it stops when every handle is dropped.
    pub(crate) fn spawn(conn: Connection) -> std::io::Result<Writer> {
        let (queue, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))?;
        Ok(Writer { queue })
    }

    /// Runs `f` in the next group-committed transaction and returns its result after commit.
    ///
    /// `f` may run twice when a batch-mate fails; only its last run is committed. It is `Fn`
    /// so that the second run cannot see state left by the first.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// Runs `f` in a transaction of its own, committed before or after any other: for writes
    /// that erase content, which must never run again in a savepoint (see the module doc).
    /// It costs a commit of its own.
    pub(crate) async fn write_alone<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<R, F>(&self, f: F, alone: bool) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: Box<dyn Op> = Box::new(Pending {
            write: f,
            alone,
            last: None,
            reply,
        });
        self.queue
            .send(op)
            .map_err(|_| StoreError::Unavailable("sqlite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("sqlite writer dropped the request".into()))?
    }
}

/// The writer's queue and a write that must run alone, taken off it while a batch was being
/// gathered.
struct Queue {
    rx: mpsc::UnboundedReceiver<Box<dyn Op>>,
    held: Option<Box<dyn Op>>,
}

impl Queue {
    /// Waits for the next write; `None` once every handle is dropped.
    fn next(&mut self) -> Option<Box<dyn Op>> {
        self.held.take().or_else(|| self.rx.blocking_recv())
    }

    /// Moves the writes queued now into `batch`, up to [`MAX_BATCH`]; stops at one that must
    /// run alone, which is held for later.
    fn gather(&mut self, batch: &mut Vec<Box<dyn Op>>) {
        while self.held.is_none() && batch.len() < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(job) if job.alone() => self.held = Some(job),
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }
}

fn run(conn: Connection, rx: mpsc::UnboundedReceiver<Box<dyn Op>>) {
    let mut queue = Queue { rx, held: None };
    while let Some(first) = queue.next() {
        // A write that must run alone takes nobody in with it.
        let joiners = (!first.alone()).then_some(&mut queue);
        commit_batch(&conn, vec![first], joiners);
    }
}

/// Commits `batch`, and with `queue`, the writes that queue while it runs.
fn commit_batch(conn: &Connection, mut batch: Vec<Box<dyn Op>>, queue: Option<&mut Queue>) {
    let outcome = match run_straight(conn, &mut batch, queue) {
        Ok(true) => None,
        // Alone in its batch, the failing write has its own error already.
        Ok(false) if batch.len() == 1 => None,
        Ok(false) => run_isolated(conn, &mut batch).err(),
        Err(e) => Some(e),
    };
    for op in batch {
        op.finish(outcome.as_ref());
    }
}

/// Runs the batch in one transaction without savepoints and commits it when every write
/// succeeded: `Ok(false)`, rolled back, when one failed.
///
/// With `queue`, writes that queued while the batch ran join it before the commit, until none
/// is waiting: their callers would otherwise wait for this commit and then pay for one more,
/// and under load the writer is the one thread every delivery waits for. The batch stays
/// bounded by [`MAX_BATCH`].
fn run_straight(
    conn: &Connection,
    batch: &mut Vec<Box<dyn Op>>,
    mut queue: Option<&mut Queue>,
) -> Result<bool, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| unavailable("begin", e))?;
    let mut ran = 0;
    let all_ran = loop {
        if let Some(q) = queue.as_deref_mut() {
            q.gather(batch);
        }
        if ran == batch.len() {
            break true;
        }
        if !batch[ran..].iter_mut().all(|op| op.run(conn)) {
            break false;
        }
        ran = batch.len();
    };
    if !all_ran {
        // Some errors (a full disk, I/O) make SQLite roll the transaction back itself.
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")
                .map_err(|e| unavailable("rollback", e))?;
        }
        return Ok(false);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(unavailable("commit", e));
    }
    Ok(true)
}

/// Runs the batch in one transaction with each write in a savepoint, so a failing write
/// rolls back alone, and commits it.
fn run_isolated(conn: &Connection, batch: &mut [Box<dyn Op>]) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| unavailable("begin", e))?;
    let mut result = Ok(());
    for op in batch.iter_mut() {
        if let Err(e) = conn.execute_batch("SAVEPOINT op") {
            result = Err(unavailable("savepoint", e));
            break;
        }
        let end = if op.run(conn) {
            "RELEASE op"
        } else {
            "ROLLBACK TO op; RELEASE op"
        };
        if let Err(e) = conn.execute_batch(end) {
            // The savepoint is in an unknown state: fail the whole batch to stay atomic.
            result = Err(unavailable("release", e));
            break;
        }
    }
    let result = result.and_then(|()| {
        conn.execute_batch("COMMIT")
            .map_err(|e| unavailable("commit", e))
    });
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// A statement of the batch's own that failed.
fn unavailable(what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::open_temp_files;
    use std::time::Duration;

    fn writer_on_new_database(dir: &tempfile::TempDir) -> Writer {
        let conn = super::super::open_connection(&dir.path().join("store.sqlite3"))
            .expect("database opens");
        conn.execute_batch("CREATE TABLE t (x INTEGER UNIQUE, data BLOB)")
            .expect("table created");
        Writer::spawn(conn).expect("writer starts")
    }

    /// Fills the table `filler` with 400 rows of 3,000 bytes from `blob` (an SQL function),
    /// one page each.
    async fn fill(writer: &Writer, blob: &'static str) {
        writer
            .write(move |conn| {
                conn.execute_batch(&format!(
                    "CREATE TABLE filler (data BLOB);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
                     INSERT INTO filler SELECT {blob}(3000) FROM n;"
                ))
                .map_err(|e| unavailable("fill", e))
            })
            .await
            .expect("rows written");
    }

    fn insert(conn: &Connection, x: i64) -> Result<(), StoreError> {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [x])
            .map(|_| ())
            .map_err(|e| unavailable("insert", e))
    }

    /// Writes queued behind a slow one join its batch; the one that fails leaves nothing
    /// behind, and every other is committed exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_rolls_back_alone_and_its_batch_mates_commit_once() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let writer = writer_on_new_database(&dir);
        let spawn_write = |write: fn(&Connection, i64) -> Result<(), StoreError>, x: i64| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.write(move |conn| write(conn, x)).await })
        };
        let slow = spawn_write(
            |conn, x| {
                std::thread::sleep(Duration::from_millis(300));
                insert(conn, x)
            },
            0,
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut queued = Vec::new();
        for x in 1..=20 {
            queued.push(spawn_write(insert, x));
        }
        // Inserts 100, then fails on a duplicate of 0, committed first: 100 must not stay.
        let failing = spawn_write(
            |conn, x| {
                insert(conn, x)?;
                insert(conn, 0)
            },
            100,
        );
        slow.await.expect("task").expect("slow write");
        for write in queued {
            write.await.expect("task").expect("batch-mate committed");
        }
        assert!(failing.await.expect("task").is_err());
        let rows = writer
            .write(|conn| {
                let mut stmt = conn
                    .prepare("SELECT x FROM t ORDER BY x")
                    .map_err(|e| unavailable("select", e))?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, i64>(0))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| unavailable("select", e))?;
                Ok(rows)
            })
            .await
            .expect("rows read");
        assert_eq!(rows, (0..=20).collect::<Vec<i64>>());
    }

    /// A write queued while a batch runs joins that batch: it runs before the batch commits,
    /// so another connection does not yet see what the batch wrote.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_queued_while_a_batch_runs_joins_its_commit() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let writer = writer_on_new_database(&dir);
        let slow = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .write(|conn| {
                        insert(conn, 0)?;
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let path = dir.path().join("store.sqlite3");
        let sees_the_slow_write = writer.write(move |_| {
            let other = Connection::open(&path).map_err(|e| unavailable("open", e))?;
            other
                .query_row("SELECT count(*) FROM t WHERE x = 0", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| unavailable("select", e))
        });
        assert_eq!(sees_the_slow_write.await.expect("queued write"), 0);
        slow.await.expect("task").expect("slow write");
    }

    /// An erasing write queued behind a failing one is not run again in a savepoint, whose
    /// journal of the erased pages would spill to an unlinked file in `/var/tmp`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erasing_write_never_shares_a_failing_batch() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let writer = writer_on_new_database(&dir);
        fill(&writer, "randomblob").await;
        let slow = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .write(|conn| {
                        std::thread::sleep(Duration::from_millis(300));
                        insert(conn, 0)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let failing = {
            let writer = writer.clone();
            tokio::spawn(async move { writer.write(|conn| insert(conn, 0)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let erase = writer.write_alone(|conn| {
            conn.execute("DELETE FROM filler", [])
                .map_err(|e| unavailable("erase", e))?;
            Ok(open_temp_files())
        });
        let spilled = erase.await.expect("erased");
        slow.await.expect("task").expect("slow write");
        assert!(failing.await.expect("task").is_err(), "a duplicate of 0");
        assert_eq!(spilled, Vec::<String>::new());
    }

    /// A write whose statements change a few hundred existing pages, one row each as a
    /// delivery's do, opens no temporary file: a savepoint around it would journal their old
    /// images and spill them to one past 64 KiB. (One statement changing many rows still
    /// journals them, so that it can fail halfway without a trace.)
    #[tokio::test]
    async fn a_write_of_hundreds_of_pages_opens_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let writer = writer_on_new_database(&dir);
        fill(&writer, "zeroblob").await;
        let spilled = writer
            .write(|conn| {
                let mut rewrite = conn
                    .prepare("UPDATE filler SET data = zeroblob(3001) WHERE rowid = ?1")
                    .map_err(|e| unavailable("rewrite", e))?;
                for row in 1..=400 {
                    rewrite
                        .execute([row])
                        .map_err(|e| unavailable("rewrite", e))?;
                }
                Ok(open_temp_files())
            })
            .await
            .expect("rows rewritten");
        assert_eq!(spilled, Vec::<String>::new());
    }
}
