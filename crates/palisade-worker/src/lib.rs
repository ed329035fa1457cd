//! In-process workers that drain the job outbox written with each message.
//!
//! The outbox is durable, so a worker is only ever behind, never lossy: jobs are leased,
//! retried with exponential backoff, and dead-lettered after too many attempts, where an
//! admin can replay them. Nothing is dropped on the floor.
//!
//! Only failures that are the job's own fault count toward dead-lettering. While a backend
//! is down every job fails alike; those jobs keep retrying at the capped backoff, so the
//! index catches up by itself when the backend returns, without an admin replay.
//!
//! A batch's outcomes are written to the queue together at its end. When the queue cannot take
//! them (a full disk under SQLite), the worker keeps them and writes them again before its next
//! claim, so the jobs settle as soon as the queue is back rather than when their lease runs out.

use chrono::Utc;
use futures::FutureExt;
use futures::stream::{self, StreamExt};
use palisade_index::{IndexDocument, IndexError, SearchIndex};
use palisade_jobs::{Job, JobKind, JobQueue, QueueError};
use palisade_metrics::metrics::counter;
use palisade_model::{Message, UserId};
use palisade_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often an idle worker looks for due retries without being woken.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long a claimed job stays ours before another worker may take it over.
const LEASE: Duration = Duration::from_secs(300);
/// Prepared batches that may wait on the index at once.
const IN_FLIGHT: usize = 4;
/// Store reads, or users' address-book updates, a batch keeps in flight at once.
const CONCURRENCY: usize = 16;

/// Retry and batching policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a job is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled on each further attempt.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
    /// Jobs claimed at once.
    pub batch_size: usize,
}

impl RetryPolicy {
    /// Delay before retrying a job that has now failed `attempts` times.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Feeds the search index from the outbox.
pub struct IndexWorker {
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn Store>,
    index: Arc<dyn SearchIndex>,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    /// Outcomes the queue refused to record, written again before the next claim.
    unsettled: Mutex<Vec<Outcomes>>,
}

impl IndexWorker {
    /// A worker taking jobs from `queue`, messages from `store`, writing to `index`; `wake`
    /// is notified after deliveries.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        store: Arc<dyn Store>,
        index: Arc<dyn SearchIndex>,
        policy: RetryPolicy,
        wake: Arc<Notify>,
    ) -> Self {
        IndexWorker {
            queue,
            store,
            index,
            policy,
            wake,
            unsettled: Mutex::new(Vec::new()),
        }
    }

    /// Processes jobs until `shutdown` fires.
    ///
    /// Batches are prepared one at a time, but up to [`IN_FLIGHT`] wait on the index at once:
    /// Elasticsearch answers a write only once a refresh has made it visible, up to a second
    /// later, and the next batches need not wait for that.
    pub async fn run(self, shutdown: CancellationToken) {
        let worker = Arc::new(self);
        let mut finishing: JoinSet<Result<(), QueueError>> = JoinSet::new();
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let mut finish_failed = false;
            while finishing.len() >= IN_FLIGHT {
                finish_failed |= failed(finishing.join_next().await);
            }
            while let Some(finished) = finishing.try_join_next() {
                finish_failed |= failed(Some(finished));
            }
            let resettled = match worker.resettle().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "job queue unavailable");
                    false
                }
            };
            let pause = if finish_failed || !resettled {
                failures = failures.saturating_add(1);
                Some(worker.policy.backoff(failures))
            } else {
                match worker.prepare_batch().await {
                    Ok(prepared) if prepared.handled == 0 => {
                        failures = 0;
                        Some(IDLE_POLL)
                    }
                    Ok(prepared) => {
                        failures = 0;
                        let short = prepared.handled < worker.policy.batch_size;
                        let finisher = Arc::clone(&worker);
                        finishing.spawn(async move { finisher.finish_batch(prepared).await });
                        // A short batch means the backlog is drained and mail trickles in:
                        // each claim would then index a few messages in a call of their own,
                        // which costs some backends a commit each. Let them gather.
                        let gather = worker.index.gather();
                        if short && !gather.is_zero() {
                            tokio::select! {
                                _ = tokio::time::sleep(gather) => {}
                                _ = shutdown.cancelled() => {}
                            }
                        }
                        None
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(error = %e, "job queue unavailable");
                        Some(worker.policy.backoff(failures))
                    }
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = worker.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
        // Batches already claimed finish, or their jobs would wait out their lease.
        while let Some(finished) = finishing.join_next().await {
            failed(Some(finished));
        }
        if let Err(e) = worker.resettle().await {
            tracing::warn!(error = %e, "job queue unavailable; unsettled jobs wait out their lease");
        }
    }

    /// Claims and processes one batch; returns how many jobs it handled.
    pub async fn run_once(&self) -> Result<usize, QueueError> {
        self.resettle().await?;
        let prepared = self.prepare_batch().await?;
        let handled = prepared.handled;
        self.finish_batch(prepared).await?;
        Ok(handled)
    }

    /// Claims a batch, reads its messages and learns from them: everything before indexing.
    /// Only the run loop calls it, one batch at a time, so no two batches learn at once.
    async fn prepare_batch(&self) -> Result<Prepared, QueueError> {
        let claimed = Instant::now();
        let jobs = self.queue.claim(self.policy.batch_size, LEASE).await?;
        if jobs.is_empty() {
            return Ok(Prepared::default());
        }
        let count = jobs.len();
        let mut outcomes = Outcomes::new(claimed);
        let fetched = self.fetch_all(jobs).await;
        // A batch is mostly one user's mail arriving together: their share is learned at once.
        let mut by_user: Vec<(UserId, Vec<(Job, Message)>)> = Vec::new();
        let mut slot_of = HashMap::new();
        for (job, read) in fetched {
            match read {
                Ok(Some(message)) => {
                    let user = message.user_id;
                    let slot = *slot_of.entry(user).or_insert_with(|| {
                        by_user.push((user, Vec::new()));
                        by_user.len() - 1
                    });
                    by_user[slot].1.push((job, message));
                }
                Ok(None) => {
                    let span = job_span(&job);
                    self.settle_missing(job, &mut outcomes)
                        .instrument(span)
                        .await
                }
                Err(e) => {
                    let _span = job_span(&job).entered();
                    self.fail(job, &e.to_string(), Fault::of_store(&e), &mut outcomes)
                }
            }
        }
        let lessons: Vec<_> = by_user
            .into_iter()
            .map(|(user, share)| self.learn(user, share).boxed())
            .collect();
        let learned: Vec<_> = stream::iter(lessons)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut batch = Vec::with_capacity(count);
        for share in learned {
            for (job, message, outcome) in share {
                match outcome {
                    Ok(true) => batch.push((job, IndexDocument::from_message(&message))),
                    // Read just before its account was deleted: neither index nor learn.
                    Ok(false) => outcomes.done.push(job),
                    Err(e) => {
                        let _span = job_span(&job).entered();
                        self.fail(job, &e.to_string(), Fault::of_store(&e), &mut outcomes)
                    }
                }
            }
        }
        Ok(Prepared {
            handled: count,
            batch,
            outcomes,
        })
    }

    /// Indexes a prepared batch and settles its jobs.
    async fn finish_batch(&self, prepared: Prepared) -> Result<(), QueueError> {
        let Prepared {
            batch,
            mut outcomes,
            ..
        } = prepared;
        if !batch.is_empty() {
            let ids: Vec<u64> = batch.iter().map(|(job, _)| job.id).collect();
            self.index_batch(batch, &mut outcomes)
                .instrument(tracing::info_span!("jobs", ids = ?ids))
                .await;
        }
        self.settle(outcomes).await
    }

    /// Writes a batch's outcomes to the queue. What the queue refuses is kept, and written
    /// again by [`Self::resettle`] before the next claim.
    async fn settle(&self, mut outcomes: Outcomes) -> Result<(), QueueError> {
        let written = self.write(&mut outcomes).await;
        if written.is_err() {
            self.unsettled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(outcomes);
        }
        written
    }

    /// Writes again the outcomes the queue refused before. Those whose lease has run out are
    /// dropped: the queue has handed their jobs out again, and they are settled on that claim.
    async fn resettle(&self) -> Result<(), QueueError> {
        let pending = std::mem::take(
            &mut *self
                .unsettled
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut pending = pending.into_iter();
        while let Some(outcomes) = pending.next() {
            if outcomes.claimed.elapsed() >= LEASE {
                tracing::debug!(
                    jobs = outcomes.len(),
                    "unsettled jobs past their lease dropped"
                );
                continue;
            }
            if let Err(e) = self.settle(outcomes).await {
                self.unsettled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(pending);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes `outcomes` to the queue, removing each as it is written; stops at the first
    /// refusal. A job the queue no longer holds ([`QueueError::Stale`]) is dropped, since the
    /// queue hands it out again.
    async fn write(&self, outcomes: &mut Outcomes) -> Result<(), QueueError> {
        if !outcomes.done.is_empty() {
            match self.queue.complete(&outcomes.done).await {
                Ok(()) => {
                    // Which node did which share of the work, when several workers compete.
                    tracing::debug!(completed = outcomes.done.len(), "jobs completed");
                    for job in &outcomes.done {
                        counter!(palisade_metrics::JOBS_PROCESSED, "kind" => job.spec.kind.as_str(), "outcome" => "done")
                            .increment(1);
                    }
                }
                Err(e @ QueueError::Stale(_)) => {
                    tracing::debug!(error = %e, "completed jobs not settled")
                }
                Err(e) => return Err(e),
            }
            outcomes.done.clear();
        }
        while let Some(failure) = outcomes.failed.last() {
            let Failure {
                job,
                error,
                retry_at,
            } = failure;
            match self.queue.fail(job, error, *retry_at).await {
                Ok(()) => {
                    let outcome = if retry_at.is_some() { "retry" } else { "dead" };
                    counter!(palisade_metrics::JOBS_PROCESSED, "kind" => job.spec.kind.as_str(), "outcome" => outcome)
                        .increment(1);
                }
                Err(e @ QueueError::Stale(_)) => {
                    tracing::debug!(error = %e, "failed job not settled")
                }
                Err(e) => return Err(e),
            }
            outcomes.failed.pop();
        }
        Ok(())
    }

    /// Reads the messages the jobs name, in one call to the store. When that call fails for
    /// a message's sake (a corrupt row), they are read again one by one, so only that job
    /// fails; an outage fails them all without asking again.
    async fn fetch_all(&self, jobs: Vec<Job>) -> Vec<(Job, Result<Option<Message>, StoreError>)> {
        let keys: Vec<_> = jobs
            .iter()
            .map(|job| {
                // Index jobs are the only kind; another kind must be handled here first.
                let JobKind::Index = job.spec.kind;
                (job.spec.user_id, job.spec.message_id)
            })
            .collect();
        match self.store.get_messages(&keys).await {
            Ok(messages) if messages.len() == jobs.len() => {
                return jobs.into_iter().zip(messages.into_iter().map(Ok)).collect();
            }
            Ok(messages) => tracing::warn!(
                asked = jobs.len(),
                read = messages.len(),
                "the store answered a batch read with the wrong count; reading one by one"
            ),
            Err(e @ StoreError::Unavailable(_)) => {
                return jobs.into_iter().map(|job| (job, Err(e.clone()))).collect();
            }
            Err(e) => tracing::warn!(error = %e, "batch read failed; reading one by one"),
        }
        // Reads in flight together: on Cassandra each is a round trip. Boxed, because the
        // compiler cannot otherwise prove a spawned task holding these futures `Send`.
        let reads: Vec<_> = jobs
            .into_iter()
            .map(|job| self.fetch(job).boxed())
            .collect();
        stream::iter(reads).buffered(CONCURRENCY).collect().await
    }

    /// Reads the message a job names.
    async fn fetch(&self, job: Job) -> (Job, Result<Option<Message>, StoreError>) {
        // Index jobs are the only kind; another kind must be handled here first.
        let JobKind::Index = job.spec.kind;
        let read = self
            .store
            .get_message(job.spec.user_id, job.spec.message_id)
            .await;
        (job, read)
    }

    /// Settles a job whose message is no longer stored.
    async fn settle_missing(&self, job: Job, outcomes: &mut Outcomes) {
        let spec = &job.spec;
        // The account was deleted since: its deletion cleared the index, and a queue that
        // cannot drop one user's jobs (RabbitMQ) brings them here. Each is acknowledged, so
        // they neither retry nor pile up as errors.
        if self.user_is_gone(spec.user_id).await {
            tracing::debug!("job of a deleted account dropped");
            outcomes.done.push(job);
            return;
        }
        // Deleted since: take it out of the index too.
        match self
            .index
            .delete_message(spec.user_id, spec.message_id)
            .await
        {
            Ok(()) => outcomes.done.push(job),
            Err(e) => self.fail(job, &e.to_string(), Fault::of(&e), outcomes),
        }
    }

    /// Whether the user no longer exists. A store fault counts as "exists", so the job takes
    /// the ordinary path and is retried there.
    async fn user_is_gone(&self, user: UserId) -> bool {
        matches!(self.store.get_user(user).await, Ok(None))
    }

    /// Indexes the documents of a batch at once, isolating a document the index refuses.
    async fn index_batch(&self, batch: Vec<(Job, IndexDocument)>, outcomes: &mut Outcomes) {
        let docs = batch.iter().map(|(_, d)| d.clone()).collect();
        match self.index.index(docs).await {
            Ok(()) => outcomes.done.extend(batch.into_iter().map(|(job, _)| job)),
            Err(e @ IndexError::Unavailable(_)) => {
                tracing::warn!(error = %e, jobs = batch.len(), "search index unavailable; will retry");
                for (job, _) in batch {
                    self.fail(job, &e.to_string(), Fault::Outage, outcomes);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "batch indexing failed; isolating");
                // One poison document must not hold back the rest: retry one by one.
                for (job, doc) in batch {
                    match self.index.index(vec![doc]).await {
                        Ok(()) => outcomes.done.push(job),
                        Err(e) => self.fail(job, &e.to_string(), Fault::of(&e), outcomes),
                    }
                }
            }
        }
    }

    /// Teaches the user's address book what their share of the batch says
    /// ([`palisade_store::learn_from_mail`]); gives back each job and message with whether to
    /// index it (`false`: the account no longer exists, so nothing is written for it).
    async fn learn(
        &self,
        user: UserId,
        share: Vec<(Job, Message)>,
    ) -> Vec<(Job, Message, Result<bool, StoreError>)> {
        let store = self.store.as_ref();
        let messages: Vec<&Message> = share.iter().map(|(_, m)| m).collect();
        let outcomes = match store.get_user(user).await {
            Ok(Some(found)) => {
                let own = found.addresses;
                match palisade_store::learn_from_mail(store, user, &own, &messages).await {
                    Ok(()) => vec![Ok(true); messages.len()],
                    // One message's contact the store refuses must not hold back the rest of
                    // the user's mail: learn again one by one, so only that message fails.
                    Err(e) if messages.len() > 1 && Fault::of_store(&e) != Fault::Outage => {
                        tracing::warn!(error = %palisade_model::without_addresses(&e.to_string()), messages = messages.len(), "learning contacts failed; isolating");
                        let mut outcomes = Vec::with_capacity(messages.len());
                        for message in &messages {
                            let one =
                                palisade_store::learn_from_mail(store, user, &own, &[message])
                                    .await;
                            outcomes.push(one.map(|()| true));
                        }
                        outcomes
                    }
                    Err(e) => vec![Err(e); messages.len()],
                }
            }
            Ok(None) => vec![Ok(false); messages.len()],
            Err(e) => vec![Err(e); messages.len()],
        };
        share
            .into_iter()
            .zip(outcomes)
            .map(|((job, message), outcome)| (job, message, outcome))
            .collect()
    }

    /// Records a failed attempt: retried after the backoff, or dead-lettered.
    fn fail(&self, job: Job, error: &str, fault: Fault, outcomes: &mut Outcomes) {
        let attempts = job.attempts.saturating_add(1);
        let give_up = match fault {
            Fault::Outage => false,
            Fault::Job => attempts >= self.policy.max_attempts,
            Fault::Poison => true,
        };
        let retry_at = (!give_up).then(|| {
            let delay = self.policy.backoff(attempts);
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
        });
        let logged = palisade_model::without_addresses(error);
        if retry_at.is_none() {
            tracing::error!(job = job.id, attempts, error = %logged, "job dead-lettered");
        } else {
            tracing::debug!(job = job.id, attempts, error = %logged, "job failed; will retry");
        }
        outcomes.failed.push(Failure {
            job,
            error: error.to_owned(),
            retry_at,
        });
    }
}

/// What became of a claimed batch's jobs, to be written to the queue.
struct Outcomes {
    /// When the batch was claimed: its lease runs from then.
    claimed: Instant,
    /// Jobs to complete.
    done: Vec<Job>,
    /// Jobs to retry or dead-letter.
    failed: Vec<Failure>,
}

impl Outcomes {
    fn new(claimed: Instant) -> Self {
        Outcomes {
            claimed,
            done: Vec::new(),
            failed: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.done.len() + self.failed.len()
    }
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes::new(Instant::now())
    }
}

/// A failed attempt, with when to retry it (`None`: dead-letter it).
struct Failure {
    job: Job,
    error: String,
    retry_at: Option<chrono::DateTime<Utc>>,
}

/// A claimed batch, read and learned from, waiting to be indexed and its jobs completed.
#[derive(Default)]
struct Prepared {
    /// Jobs claimed.
    handled: usize,
    /// Documents to index, with their jobs.
    batch: Vec<(Job, IndexDocument)>,
    /// Jobs already decided without indexing.
    outcomes: Outcomes,
}

/// Whether a batch's finishing failed (the job queue was unavailable), logging why.
fn failed(finished: Option<Result<Result<(), QueueError>, tokio::task::JoinError>>) -> bool {
    match finished {
        None | Some(Ok(Ok(()))) => false,
        Some(Ok(Err(e))) => {
            tracing::warn!(error = %e, "job queue unavailable");
            true
        }
        Some(Err(e)) => {
            tracing::error!(error = %e, "indexing a batch failed");
            true
        }
    }
}

/// The span every log line about a job carries; the ids are not personal.
fn job_span(job: &Job) -> tracing::Span {
    tracing::info_span!(
        "job",
        id = job.id,
        kind = job.spec.kind.as_str(),
        message = %job.spec.message_id
    )
}

/// Whose fault a failed attempt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A backend was unreachable: every job would fail alike, so never give up.
    Outage,
    /// Something about this job: give up after the maximum attempts.
    Job,
    /// The job's stored data cannot be decoded: no retry can succeed, so give up at once.
    Poison,
}

impl Fault {
    fn of(e: &IndexError) -> Fault {
        match e {
            IndexError::Unavailable(_) => Fault::Outage,
            _ => Fault::Job,
        }
    }

    fn of_store(e: &StoreError) -> Fault {
        match e {
            StoreError::Unavailable(_) => Fault::Outage,
            StoreError::Corrupt(_) => Fault::Poison,
            StoreError::Conflict(_) | StoreError::NotFound(_) => Fault::Job,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only while the worker's future is `Send` for every lifetime, which a daemon
    /// spawning it needs; borrowing closures in its streams have broken that before.
    #[allow(dead_code)]
    fn the_worker_can_be_spawned(worker: IndexWorker) {
        drop(tokio::spawn(worker.run(CancellationToken::new())));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            batch_size: 10,
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(400));
        assert_eq!(p.backoff(4), Duration::from_millis(500));
        assert_eq!(p.backoff(100), Duration::from_millis(500));
    }
}
