//! The delivery pipeline behind LMTP: resolve recipients, parse once, store per recipient.
//!
//! Parsing happens once per transaction, not once per recipient, and all recipients' writes
//! are issued together so the store's group commit can fold them into one fsync.
//!
//! When the job queue is separate from the store (Cassandra + RabbitMQ), a recipient's 250
//! also waits for the broker to confirm its jobs: if RabbitMQ cannot confirm, the recipient
//! gets 451, Postfix keeps the message, and the retry (an idempotent redelivery) publishes
//! again. Postfix's queue is the durable buffer; no second outbox is needed.

use async_trait::async_trait;
use chrono::Utc;
use palisade_cache::Cache;
use palisade_jobs::{JobKind, JobQueue, JobSpec};
use palisade_lmtp::{DeliveryBackend, IncomingMessage, RecipientStatus, Resolution};
use palisade_mime::{ParseLimits, parse_message};
use palisade_model::{Address, Envelope, MessageContent, MessageId, UserId};
use palisade_store::{Delivery, Store, raw_hash};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a new-mail notification may take before it is abandoned; it is only a hint.
const EVENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects the LMTP server to a [`Store`].
pub struct IngestBackend {
    store: Arc<dyn Store>,
    publisher: Option<Arc<dyn JobQueue>>,
    events: Option<Arc<dyn Cache>>,
    limits: ParseLimits,
    delivered: Arc<Notify>,
}

impl IngestBackend {
    /// A backend writing to `store`; `delivered` is notified after each stored message so
    /// in-process workers pick up its jobs at once.
    pub fn new(store: Arc<dyn Store>, limits: ParseLimits, delivered: Arc<Notify>) -> Self {
        IngestBackend {
            store,
            publisher: None,
            events: None,
            limits,
            delivered,
        }
    }

    /// Publishes each stored message's jobs to `queue` before acknowledging it; for stores
    /// that do not write jobs themselves.
    pub fn with_publisher(mut self, queue: Arc<dyn JobQueue>) -> Self {
        self.publisher = Some(queue);
        self
    }

    /// Announces new mail on `cache` pub/sub, best effort: a cache outage never affects ingest.
    pub fn with_events(mut self, cache: Arc<dyn Cache>) -> Self {
        self.events = Some(cache);
        self
    }
}

/// Stores one recipient's copy and, where needed, publishes its jobs.
async fn store_one(
    store: Arc<dyn Store>,
    publisher: Option<Arc<dyn JobQueue>>,
    delivery: Delivery,
) -> Result<MessageId, String> {
    let user = delivery.user_id;
    let receipt = store.deliver(delivery).await.map_err(|e| e.to_string())?;
    if let Some(queue) = publisher {
        // Also on a duplicate: the earlier attempt may have stored but failed to publish.
        let job = JobSpec {
            kind: JobKind::Index,
            user_id: user,
            message_id: receipt.message_id,
        };
        queue.publish(&[job]).await.map_err(|e| e.to_string())?;
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

#[async_trait]
impl DeliveryBackend for IngestBackend {
    type Recipient = UserId;

    async fn resolve(&self, address: &Address) -> Resolution<UserId> {
        match self.store.resolve_address(address).await {
            Ok(Some(user)) => Resolution::Accept(user),
            Ok(None) => Resolution::Unknown,
            Err(e) => Resolution::TemporaryFailure(e.to_string()),
        }
    }

    async fn deliver(
        &self,
        message: IncomingMessage,
        recipients: Vec<UserId>,
    ) -> Vec<RecipientStatus> {
        let raw = message.raw.clone();
        let limits = self.limits;
        let parsed = tokio::task::spawn_blocking(move || {
            let hash = raw_hash(&raw);
            (hash, parse_message(&raw, &limits))
        })
        .await;
        let (hash, content) = match parsed {
            Ok(pair) => pair,
            // The parser is panic-safe; this is a runtime failure. Retrying is safe.
            Err(e) => {
                let reason = format!("parse task failed: {e}");
                return vec![RecipientStatus::TemporaryFailure(reason); recipients.len()];
            }
        };
        if let Some(error) = &content.parse_error {
            tracing::info!(error = %error, size = message.raw.len(), "storing unparsable message raw");
        }
        let content: Arc<MessageContent> = Arc::new(content);
        let received_at = Utc::now();
        let mut writes = tokio::task::JoinSet::new();
        for (i, (user, rcpt)) in recipients.iter().zip(&message.rcpt_to).enumerate() {
            let store = self.store.clone();
            let publisher = self.publisher.clone();
            let delivery = Delivery {
                user_id: *user,
                raw: message.raw.clone(),
                raw_sha256: hash,
                content: content.clone(),
                envelope: Envelope {
                    mail_from: message.mail_from.clone(),
                    rcpt_to: rcpt.to_string(),
                    received_at,
                },
                flags: Default::default(),
            };
            writes.spawn(async move { (i, store_one(store, publisher, delivery).await) });
        }
        let mut statuses =
            vec![RecipientStatus::TemporaryFailure("not attempted".into()); recipients.len()];
        while let Some(joined) = writes.join_next().await {
            let Ok((i, result)) = joined else { continue };
            statuses[i] = match result {
                Ok(message_id) => {
                    tracing::debug!(user = %recipients[i], message = %message_id, "stored");
                    if let Some(cache) = &self.events {
                        tokio::spawn(announce(cache.clone(), recipients[i], message_id));
                    }
                    RecipientStatus::Delivered
                }
                Err(e) => {
                    tracing::warn!(user = %recipients[i], error = %e, "delivery failed; answering 451");
                    RecipientStatus::TemporaryFailure(e)
                }
            };
        }
        self.delivered.notify_one();
        statuses
    }
}
