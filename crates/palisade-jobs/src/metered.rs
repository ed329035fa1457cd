//! A job queue that records the latency and failures of every operation, by backend and
//! operation, around any other queue: installed once where the daemon opens its backend.

use crate::{Job, JobQueue, JobSpec, JobStats, QueueError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_metrics::observe;
use std::sync::Arc;
use std::time::Duration;

/// A job queue whose operations are timed and whose failures are counted.
pub struct Metered {
    inner: Arc<dyn JobQueue>,
    /// The `backend` label: `sqlite-jobs` or `rabbitmq`.
    backend: &'static str,
}

impl Metered {
    /// Meters `inner`, labelled `backend`.
    pub fn new(inner: Arc<dyn JobQueue>, backend: &'static str) -> Self {
        Metered { inner, backend }
    }
}

/// The `error` label of a failure.
fn error_kind(e: &QueueError) -> &'static str {
    match e {
        QueueError::Unavailable(_) => "unavailable",
        QueueError::Stale(_) => "stale",
        QueueError::Corrupt(_) => "corrupt",
    }
}

#[async_trait]
impl JobQueue for Metered {
    async fn publish(&self, jobs: &[JobSpec]) -> Result<(), QueueError> {
        observe(
            self.backend,
            "publish",
            error_kind,
            self.inner.publish(jobs),
        )
        .await
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        observe(
            self.backend,
            "claim",
            error_kind,
            self.inner.claim(limit, lease),
        )
        .await
    }

    async fn complete(&self, jobs: &[Job]) -> Result<(), QueueError> {
        observe(
            self.backend,
            "complete",
            error_kind,
            self.inner.complete(jobs),
        )
        .await
    }

    async fn fail(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError> {
        observe(
            self.backend,
            "fail",
            error_kind,
            self.inner.fail(job, error, retry_at),
        )
        .await
    }

    async fn stats(&self) -> Result<JobStats, QueueError> {
        observe(self.backend, "stats", error_kind, self.inner.stats()).await
    }

    async fn replay_dead(&self) -> Result<u64, QueueError> {
        observe(
            self.backend,
            "replay_dead",
            error_kind,
            self.inner.replay_dead(),
        )
        .await
    }
}
