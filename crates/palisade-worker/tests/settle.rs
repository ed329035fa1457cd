//! Outcomes the queue could not record are written again before the next claim, so the jobs
//! settle as soon as the queue is back instead of waiting out their lease.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_index::tantivy_backend::TantivyIndex;
use palisade_jobs::{Job, JobQueue, JobSpec, JobStats, QueueError};
use palisade_model::MessageContent;
use palisade_store::contract::delivery;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Accounts, Mailbox};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

/// The embedded queue, refusing to settle jobs while `refuse` is set, as it does while its
/// disk is full; claims still succeed, as they did just before the disk filled.
struct Refusing {
    inner: Arc<SqliteStore>,
    refuse: AtomicBool,
}

impl Refusing {
    fn check(&self) -> Result<(), QueueError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("database or disk is full".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl JobQueue for Refusing {
    async fn publish(&self, jobs: &[JobSpec]) -> Result<(), QueueError> {
        self.inner.publish(jobs).await
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        self.inner.claim(limit, lease).await
    }

    async fn complete(&self, jobs: &[Job]) -> Result<(), QueueError> {
        self.check()?;
        self.inner.complete(jobs).await
    }

    async fn fail(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError> {
        self.check()?;
        self.inner.fail(job, error, retry_at).await
    }

    async fn stats(&self) -> Result<JobStats, QueueError> {
        self.inner.stats().await
    }

    async fn replay_dead(&self) -> Result<u64, QueueError> {
        self.inner.replay_dead().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_the_queue_could_not_settle_are_settled_on_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open"));
    let index = Arc::new(TantivyIndex::open(&dir.path().join("index")).expect("index"));
    let queue = Arc::new(Refusing {
        inner: store.clone(),
        refuse: AtomicBool::new(true),
    });
    let user = store.create_user("full", &[], None).await.expect("user");
    for n in 0..3u8 {
        store
            .deliver(delivery(
                user.id,
                &[b'm', n],
                MessageContent::default(),
                n.into(),
            ))
            .await
            .expect("deliver");
    }
    let worker = common::worker(queue.clone(), store.clone(), index);

    assert!(
        worker.run_once().await.is_err(),
        "the queue refused to settle"
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.pending, stats.done),
        (3, 0),
        "claimed, indexed, not settled: {stats:?}"
    );

    queue.refuse.store(false, Ordering::SeqCst);
    // Nothing is due: the three are leased for minutes. Only the kept outcomes settle them.
    assert_eq!(worker.run_once().await.expect("run"), 0);
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.pending, stats.retrying, stats.dead, stats.done),
        (0, 0, 0, 3),
        "settled as soon as the queue took them: {stats:?}"
    );
}
