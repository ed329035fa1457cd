//! The one way a message enters a mailbox: parse once, store each user's copy, publish its
//! follow-up jobs, announce it.
//!
//! LMTP delivery, the sent copy of a message a user sends, and (later) import all call
//! [`Pipeline`], so a copy is stored the same way whoever brings it.
//!
//! When the store is also the job queue (SQLite), it writes a message's jobs in the same
//! transaction as the message. When it is not (Cassandra + RabbitMQ), the pipeline publishes
//! them after the store answers, and a copy only counts as stored once the broker has
//! confirmed: if it cannot, the caller gets an error, LMTP answers 451, Postfix keeps the
//! message, and the retry (an idempotent redelivery) publishes again.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use palisade_cache::Cache;
use palisade_jobs::{JobKind, JobQueue, JobSpec, QueueError};
use palisade_mime::{ParseLimits, parse_message};
use palisade_model::{Envelope, Flags, MessageContent, MessageId, RawHash, UserId};
use palisade_store::{Delivery, Mailbox, StoreError, raw_hash};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

/// How long a new-mail notification may take before it is abandoned; it is only a hint.
const EVENT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest message parsed on the async thread that received it: about 100 µs of parsing.
const PARSE_INLINE_BYTES: usize = 16 * 1024;

/// Why a copy was not stored. Every variant is temporary: retrying the same bytes is safe.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The parsing task could not run (the runtime is shutting down).
    #[error("parse task failed")]
    Parse(#[source] tokio::task::JoinError),
    /// The store refused or could not be reached.
    #[error("storing the message failed")]
    Store(#[from] StoreError),
    /// The message is stored but its jobs could not be published.
    #[error("publishing the message's jobs failed")]
    Publish(#[from] QueueError),
}

/// A message parsed once, ready to be stored for any number of users.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The exact bytes.
    pub raw: Bytes,
    /// SHA-256 of `raw`, the content key.
    pub hash: RawHash,
    /// What parsing found; for malformed mail, what could be read and the parse error.
    pub content: Arc<MessageContent>,
}

/// One copy to store: whose mailbox, with which envelope and starting flags.
#[derive(Debug, Clone)]
pub struct MailboxCopy {
    /// The receiving user.
    pub user: UserId,
    /// The envelope of this copy (its recipient, and when it arrived).
    pub envelope: Envelope,
    /// Default for received mail; `seen` and `sent` for the copy of a sent message.
    pub flags: Flags,
}

impl MailboxCopy {
    /// A received copy for `user`, addressed to `rcpt_to`.
    pub fn received(
        user: UserId,
        mail_from: Option<String>,
        rcpt_to: String,
        at: DateTime<Utc>,
    ) -> Self {
        MailboxCopy {
            user,
            envelope: Envelope {
                mail_from,
                rcpt_to,
                received_at: at,
            },
            flags: Flags::default(),
        }
    }
}

/// Parses, stores, publishes and announces copies of messages.
pub struct Pipeline {
    pub(crate) store: Arc<dyn Mailbox>,
    /// Where follow-up jobs go: written by the store itself, or published by the pipeline
    /// when the store does not queue them ([`Mailbox::queues_jobs`]).
    queue: Arc<dyn JobQueue>,
    events: Option<Arc<dyn Cache>>,
    limits: Arc<ParseLimits>,
    /// Notified after stored copies, so in-process workers pick up their jobs at once.
    stored: Arc<Notify>,
}

impl Pipeline {
    /// A pipeline into `store`, whose jobs go to `queue` unless the store queues them itself.
    pub fn new(
        store: Arc<dyn Mailbox>,
        queue: Arc<dyn JobQueue>,
        limits: ParseLimits,
        stored: Arc<Notify>,
    ) -> Self {
        Pipeline {
            store,
            queue,
            events: None,
            limits: Arc::new(limits),
            stored,
        }
    }

    /// The mailbox store copies go to.
    pub(crate) fn mailbox(&self) -> &Arc<dyn Mailbox> {
        &self.store
    }

    /// Announces new mail on `cache` pub/sub, best effort: a cache outage never affects
    /// storing.
    pub fn with_events(mut self, cache: Arc<dyn Cache>) -> Self {
        self.events = Some(cache);
        self
    }

    /// Hashes and parses `raw`, on a blocking thread unless it is small: parsing a large
    /// message must not stall the sessions sharing the async threads, and a small one takes
    /// less time than the hand-off to another thread and back.
    pub async fn parse(&self, raw: Bytes) -> Result<Parsed, PipelineError> {
        let (hash, content) = if raw.len() <= PARSE_INLINE_BYTES {
            (raw_hash(&raw), parse_message(&raw, &self.limits))
        } else {
            let limits = Arc::clone(&self.limits);
            let bytes = raw.clone();
            tokio::task::spawn_blocking(move || (raw_hash(&bytes), parse_message(&bytes, &limits)))
                .await
                .map_err(PipelineError::Parse)?
        };
        if let Some(error) = &content.parse_error {
            tracing::info!(error = %error, size = raw.len(), "storing unparsable message raw");
        }
        Ok(Parsed {
            raw,
            hash,
            content: Arc::new(content),
        })
    }

    /// Stores every copy of one parsed message, concurrently, so a store with group commit
    /// folds them into one sync; one result per copy, in order.
    pub async fn store(
        &self,
        parsed: &Parsed,
        copies: Vec<MailboxCopy>,
    ) -> Vec<Result<MessageId, PipelineError>> {
        let mut writes = tokio::task::JoinSet::new();
        let users: Vec<UserId> = copies.iter().map(|c| c.user).collect();
        let publisher = (!self.store.queues_jobs()).then_some(&self.queue);
        for (i, copy) in copies.into_iter().enumerate() {
            let store = self.store.clone();
            let publisher = publisher.cloned();
            let delivery = Delivery {
                user_id: copy.user,
                raw: parsed.raw.clone(),
                raw_sha256: parsed.hash,
                content: parsed.content.clone(),
                envelope: copy.envelope,
                flags: copy.flags,
            };
            // The copy's log lines stay in the transaction's or request's span.
            writes.spawn(
                async move { (i, store_copy(store, publisher, delivery).await) }
                    .instrument(tracing::Span::current()),
            );
        }
        let mut results: Vec<Option<Result<MessageId, PipelineError>>> =
            users.iter().map(|_| None).collect();
        while let Some(joined) = writes.join_next().await {
            let Ok((i, result)) = joined else {
                tracing::error!("a store task failed");
                continue;
            };
            match &result {
                Ok(id) => {
                    tracing::debug!(user = %users[i], message = %id, "stored");
                    if let Some(cache) = &self.events {
                        tokio::spawn(announce(cache.clone(), users[i], *id));
                    }
                }
                Err(e) => {
                    tracing::warn!(user = %users[i], error = %palisade_model::without_addresses(&error_chain(e)), "copy not stored");
                }
            }
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(result);
            }
        }
        self.stored.notify_one();
        results
            .into_iter()
            .map(|r| {
                // A task that died never answered: its copy is not stored, and a retry is safe.
                r.unwrap_or_else(|| {
                    Err(PipelineError::Store(StoreError::Unavailable(
                        "the store task did not finish".into(),
                    )))
                })
            })
            .collect()
    }

    /// Queues a stored message for the workers again, after a change that search must see
    /// (its tags, its deletion).
    pub async fn requeue(&self, user: UserId, message: MessageId) -> Result<(), PipelineError> {
        let job = JobSpec {
            kind: JobKind::Index,
            user_id: user,
            message_id: message,
        };
        self.queue.publish(&[job]).await?;
        self.stored.notify_one();
        Ok(())
    }

    /// Parses `raw` and stores one copy of it: the sent copy of a message, or an import.
    pub async fn store_one(
        &self,
        raw: Bytes,
        copy: MailboxCopy,
    ) -> Result<MessageId, PipelineError> {
        let parsed = self.parse(raw).await?;
        self.store(&parsed, vec![copy])
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(PipelineError::Store(StoreError::Unavailable(
                    "no result for the copy".into(),
                )))
            })
    }
}

/// Stores one copy and, where the store does not queue jobs itself, publishes its jobs.
async fn store_copy(
    store: Arc<dyn Mailbox>,
    publisher: Option<Arc<dyn JobQueue>>,
    delivery: Delivery,
) -> Result<MessageId, PipelineError> {
    let user = delivery.user_id;
    let receipt = store.deliver(delivery).await?;
    if let Some(queue) = publisher {
        // Also on a duplicate: the earlier attempt may have stored but failed to publish.
        let job = JobSpec {
            kind: JobKind::Index,
            user_id: user,
            message_id: receipt.message_id,
        };
        queue.publish(&[job]).await?;
    }
    Ok(receipt.message_id)
}

/// Tells live subscribers about new mail; failures are logged and forgotten.
async fn announce(cache: Arc<dyn Cache>, user: UserId, message: MessageId) {
    let (user, message) = (user.to_string(), message.to_string());
    let publish = palisade_cache::publish_new_mail(cache.as_ref(), &user, &message);
    match tokio::time::timeout(EVENT_TIMEOUT, publish).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "new-mail event not published"),
        Err(_) => tracing::debug!("new-mail event timed out"),
    }
}

/// An error and its causes on one line, for logs and for the reason a client is given.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
