//! Group commit: one thread owns the write connection and commits whatever queued up together.
//!
//! With `synchronous=FULL` every commit costs an fsync. Ten LMTP sessions delivering at once
//! would otherwise queue behind ten fsyncs; here they share one. Each write runs inside its
//! own savepoint, so one failing delivery rolls back alone and never takes its batch-mates
//! with it, and nobody hears "ok" before the commit that made their write durable.

use crate::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// Most writes folded into one transaction; bounds the latency of the first one queued.
const MAX_BATCH: usize = 512;

/// Sends the caller its result once the batch's outcome is known (`Some` = the batch failed).
type Finisher = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One queued write. Given a connection it runs and says whether it succeeded; given `None`
/// it does not run, so a batch that cannot start still answers every caller.
type WriteFn = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finisher) + Send>;

/// Handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<WriteFn>,
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
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: WriteFn = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Unavailable("write was not attempted".into())),
            };
            let ok = result.is_ok();
            let finish: Finisher = Box::new(move |batch_error| {
                let outcome = match batch_error {
                    Some(e) => Err(e.clone()),
                    None => result,
                };
                // The caller may have gone away (connection dropped); nothing to tell then.
                let _ = tx.send(outcome);
            });
            (ok, finish)
        });
        self.queue
            .send(job)
            .map_err(|_| StoreError::Unavailable("sqlite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("sqlite writer dropped the request".into()))?
    }
}

fn run(conn: Connection, mut rx: mpsc::UnboundedReceiver<WriteFn>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, batch);
    }
}

fn commit_batch(conn: &Connection, batch: Vec<WriteFn>) {
    let unavailable =
        |what: &str, e: rusqlite::Error| StoreError::Unavailable(format!("{what}: {e}"));
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = unavailable("begin", e);
        for job in batch {
            job(None).1(Some(&err));
        }
        return;
    }
    let mut finishers = Vec::with_capacity(batch.len());
    let mut fatal: Option<StoreError> = None;
    for job in batch {
        if fatal.is_some() {
            finishers.push(job(None).1);
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT op") {
            fatal = Some(unavailable("savepoint", e));
            finishers.push(job(None).1);
            continue;
        }
        let (ok, finish) = job(Some(conn));
        finishers.push(finish);
        let end = if ok {
            "RELEASE op"
        } else {
            "ROLLBACK TO op; RELEASE op"
        };
        if let Err(e) = conn.execute_batch(end) {
            // The savepoint is in an unknown state: fail the whole batch to stay atomic.
            fatal = Some(unavailable("release", e));
        }
    }
    let outcome = match fatal {
        Some(e) => Some(e),
        None => conn
            .execute_batch("COMMIT")
            .err()
            .map(|e| unavailable("commit", e)),
    };
    if outcome.is_some() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for finish in finishers {
        finish(outcome.as_ref());
    }
}
