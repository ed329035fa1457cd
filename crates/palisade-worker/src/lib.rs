//! In-process workers that drain the job outbox written with each message.
//!
//! The outbox is durable, so a worker is only ever behind, never lossy: jobs are leased,
//! retried with exponential backoff, and dead-lettered after too many attempts, where an
//! admin can replay them. Nothing is dropped on the floor.
//!
//! Only failures that are the job's own fault count toward dead-lettering. While a backend
//! is down every job fails alike; those jobs keep retrying at the capped backoff, so the
//! index catches up by itself when the backend returns, without an admin replay.

use chrono::Utc;
use palisade_index::{IndexDocument, IndexError, SearchIndex};
use palisade_jobs::{Job, JobKind, JobQueue, QueueError};
use palisade_metrics::metrics::counter;
use palisade_model::{Address, Message, ParticipantRole, UserId};
use palisade_store::{Store, StoreError};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often an idle worker looks for due retries without being woken.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long a claimed job stays ours before another worker may take it over.
const LEASE: Duration = Duration::from_secs(300);

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
        }
    }

    /// Processes jobs until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut store_failures = 0u32;
        while !shutdown.is_cancelled() {
            let pause = match self.run_once().await {
                Ok(0) => {
                    store_failures = 0;
                    Some(IDLE_POLL)
                }
                Ok(_) => {
                    store_failures = 0;
                    None
                }
                Err(e) => {
                    store_failures = store_failures.saturating_add(1);
                    tracing::warn!(error = %e, "job queue unavailable");
                    Some(self.policy.backoff(store_failures))
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }

    /// Claims and processes one batch; returns how many jobs it handled.
    pub async fn run_once(&self) -> Result<usize, QueueError> {
        let jobs = self.queue.claim(self.policy.batch_size, LEASE).await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let count = jobs.len();
        let mut done = Vec::with_capacity(count);
        let mut batch = Vec::with_capacity(count);
        // A batch is mostly one user's mail arriving together: look their addresses up once.
        // `None`: the account was deleted since.
        let mut own_addresses: HashMap<UserId, Option<Vec<Address>>> = HashMap::new();
        for job in jobs {
            // Every log line about a job names it; the ids are not personal.
            let span = tracing::info_span!(
                "job",
                id = job.id,
                kind = job.spec.kind.as_str(),
                message = %job.spec.message_id
            );
            if let Some(ready) = self
                .prepare(job, &mut own_addresses, &mut done)
                .instrument(span)
                .await?
            {
                batch.push(ready);
            }
        }
        if !batch.is_empty() {
            let ids: Vec<u64> = batch.iter().map(|(job, _)| job.id).collect();
            self.index_batch(batch, &mut done)
                .instrument(tracing::info_span!("jobs", ids = ?ids))
                .await?;
        }
        if !done.is_empty() {
            self.queue.complete(&done).await?;
            // Which node did which share of the work, when several workers compete.
            tracing::debug!(completed = done.len(), "jobs completed");
            for job in &done {
                counter!(palisade_metrics::JOBS_PROCESSED, "kind" => job.spec.kind.as_str(), "outcome" => "done")
                    .increment(1);
            }
        }
        Ok(count)
    }

    /// Reads what one job needs; returns its document when it is to be indexed, having
    /// settled it already otherwise.
    async fn prepare(
        &self,
        job: Job,
        own_addresses: &mut HashMap<UserId, Option<Vec<Address>>>,
        done: &mut Vec<Job>,
    ) -> Result<Option<(Job, IndexDocument)>, QueueError> {
        let spec = job.spec;
        match spec.kind {
            JobKind::Index => match self.store.get_message(spec.user_id, spec.message_id).await {
                Ok(Some(message)) => match self.learn_contacts(&message, own_addresses).await {
                    Ok(true) => return Ok(Some((job, IndexDocument::from_message(&message)))),
                    // Read just before its account was deleted: neither index nor learn.
                    Ok(false) => done.push(job),
                    Err(e) => self.fail(&job, &e.to_string(), Fault::of_store(&e)).await?,
                },
                // The account was deleted since: its deletion cleared the index, and a
                // queue that cannot drop one user's jobs (RabbitMQ) brings them here. Each
                // is acknowledged, so they neither retry nor pile up as errors.
                Ok(None) if self.user_is_gone(spec.user_id).await => {
                    tracing::debug!("job of a deleted account dropped");
                    done.push(job);
                }
                // Deleted since: take it out of the index too.
                Ok(None) => match self
                    .index
                    .delete_message(spec.user_id, spec.message_id)
                    .await
                {
                    Ok(()) => done.push(job),
                    Err(e) => {
                        let fault = match e {
                            IndexError::Unavailable(_) => Fault::Outage,
                            _ => Fault::Job,
                        };
                        self.fail(&job, &e.to_string(), fault).await?
                    }
                },
                Err(e) => self.fail(&job, &e.to_string(), Fault::of_store(&e)).await?,
            },
        }
        Ok(None)
    }

    /// Whether the user no longer exists. A store fault counts as "exists", so the job takes
    /// the ordinary path and is retried there.
    async fn user_is_gone(&self, user: UserId) -> bool {
        matches!(self.store.get_user(user).await, Ok(None))
    }

    /// Indexes the documents of a batch at once, isolating a document the index refuses.
    async fn index_batch(
        &self,
        batch: Vec<(Job, IndexDocument)>,
        done: &mut Vec<Job>,
    ) -> Result<(), QueueError> {
        let docs = batch.iter().map(|(_, d)| d.clone()).collect();
        match self.index.index(docs).await {
            Ok(()) => done.extend(batch.into_iter().map(|(job, _)| job)),
            Err(e @ IndexError::Unavailable(_)) => {
                tracing::warn!(error = %e, jobs = batch.len(), "search index unavailable; will retry");
                for (job, _) in &batch {
                    self.fail(job, &e.to_string(), Fault::Outage).await?;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "batch indexing failed; isolating");
                // One poison document must not hold back the rest: retry one by one.
                for (job, doc) in batch {
                    match self.index.index(vec![doc]).await {
                        Ok(()) => done.push(job),
                        Err(e) => self.fail(&job, &e.to_string(), Fault::of(&e)).await?,
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the people the user corresponds with to their address book: the authors of
    /// received mail, the recipients of sent mail; then records received mail in its
    /// author's contact (history, Autocrypt). Retries are harmless.
    /// `false` when the account no longer exists, so nothing is written for it.
    async fn learn_contacts(
        &self,
        message: &Message,
        own_addresses: &mut HashMap<UserId, Option<Vec<Address>>>,
    ) -> Result<bool, StoreError> {
        let user = message.user_id;
        if let Entry::Vacant(slot) = own_addresses.entry(user) {
            let found = self.store.get_user(user).await?;
            slot.insert(found.map(|u| u.addresses));
        }
        let Some(Some(own)) = own_addresses.get(&user) else {
            return Ok(false);
        };
        let wanted: &[ParticipantRole] = if message.flags.sent {
            &[
                ParticipantRole::To,
                ParticipantRole::Cc,
                ParticipantRole::Bcc,
            ]
        } else {
            &[ParticipantRole::From]
        };
        // Spam is not a correspondent.
        if message.content.privacy.spam.is_spam == Some(true) {
            return Ok(true);
        }
        let people: Vec<_> = message
            .content
            .participants
            .iter()
            .filter(|p| wanted.contains(&p.role))
            .cloned()
            .collect();
        if !people.is_empty() {
            let at = message.envelope.received_at;
            palisade_store::learn_contacts(self.store.as_ref(), user, &people, own, at).await?;
        }
        // The author's record as a sender, and the Autocrypt key their authenticated mail
        // carries; the user's own mail teaches nothing about a correspondent.
        if !message.flags.sent {
            palisade_store::record_sender(self.store.as_ref(), message).await?;
        }
        Ok(true)
    }

    async fn fail(&self, job: &Job, error: &str, fault: Fault) -> Result<(), QueueError> {
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
        self.queue.fail(job, error, retry_at).await?;
        let outcome = if retry_at.is_some() { "retry" } else { "dead" };
        counter!(palisade_metrics::JOBS_PROCESSED, "kind" => job.spec.kind.as_str(), "outcome" => outcome)
            .increment(1);
        Ok(())
    }
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
