//! Palisade's follow-up job queue.
//!
//! Every stored message carries jobs (index it, and later: learn contacts, score privacy,
//! notify). A job is published durably before LMTP answers 250, and a [`JobQueue`] hands it
//! to workers with at-least-once semantics: claimed jobs are leased, failed ones come back
//! after a backoff, and poison ones are dead-lettered until an admin replays them. Consumers
//! must therefore be idempotent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_model::{MessageId, UserId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub mod amqp;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod metered;

/// Why a queue operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The queue backend could not be reached or refused the operation; retry later.
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
    /// The job is no longer held by this claim (already settled, or handed back to the queue
    /// by a closed connection); the queue delivers it again, so settling it again cannot help.
    #[error("job no longer held: {0}")]
    Stale(String),
    /// A stored job could not be decoded.
    #[error("corrupt job: {0}")]
    Corrupt(String),
}

/// Kinds of follow-up work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Put the message into the search index.
    Index,
}

impl JobKind {
    /// Stable name used in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Index => "index",
        }
    }

    /// Inverse of [`JobKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "index" => Some(JobKind::Index),
            _ => None,
        }
    }
}

/// The work a job asks for, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobSpec {
    /// What to do.
    pub kind: JobKind,
    /// Whose message.
    pub user_id: UserId,
    /// Which message.
    pub message_id: MessageId,
}

/// A claimed job: its spec plus what the backend needs to settle it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Backend-assigned handle, valid until the job is settled.
    pub id: u64,
    /// The work.
    pub spec: JobSpec,
    /// Failed attempts before this claim.
    pub attempts: u32,
}

/// Counts of jobs by state, for operators and the index freshness watermark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    /// Waiting for a first attempt, or claimed and running.
    pub pending: u64,
    /// Failed at least once and waiting for a retry.
    pub retrying: u64,
    /// Gave up after the maximum attempts; replayable by an admin.
    pub dead: u64,
    /// Completed (backends that do not keep finished jobs report 0).
    pub done: u64,
}

/// The consuming side of the job queue.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Publishes jobs durably; idempotent for the same spec where the backend can tell.
    async fn publish(&self, jobs: &[JobSpec]) -> Result<(), QueueError>;

    /// Claims up to `limit` due jobs, leased for `lease`: a job whose worker dies comes back.
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Job>, QueueError>;

    /// Settles claimed jobs as done.
    async fn complete(&self, jobs: &[Job]) -> Result<(), QueueError>;

    /// Settles a claimed job as failed: retried at `retry_at`, or dead-lettered when `None`.
    async fn fail(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError>;

    /// Job counts by state.
    async fn stats(&self) -> Result<JobStats, QueueError>;

    /// Moves every dead-lettered job back to the queue; returns how many.
    async fn replay_dead(&self) -> Result<u64, QueueError>;
}
