//! What the worker's tests share: a worker that retries at once.

use palisade_index::SearchIndex;
use palisade_jobs::JobQueue;
use palisade_store::Store;
use palisade_worker::{IndexWorker, RetryPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A worker over `queue`, `store` and `index`, retrying after a millisecond.
pub(crate) fn worker(
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn Store>,
    index: Arc<dyn SearchIndex>,
) -> IndexWorker {
    IndexWorker::new(
        queue,
        store,
        index,
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            batch_size: 10,
        },
        Arc::new(Notify::new()),
    )
}
