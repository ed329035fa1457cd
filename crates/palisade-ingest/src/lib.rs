//! The delivery pipeline behind LMTP: resolve recipients, parse once, store per recipient.
//!
//! Parsing happens once per transaction, not once per recipient, and all recipients' writes
//! are issued together so the store's group commit can fold them into one fsync.

use async_trait::async_trait;
use chrono::Utc;
use palisade_lmtp::{DeliveryBackend, IncomingMessage, RecipientStatus, Resolution};
use palisade_mime::{ParseLimits, parse_message};
use palisade_model::{Address, Envelope, MessageContent, UserId};
use palisade_store::{Delivery, Store, raw_hash};
use std::sync::Arc;
use tokio::sync::Notify;

/// Connects the LMTP server to a [`Store`].
pub struct IngestBackend {
    store: Arc<dyn Store>,
    limits: ParseLimits,
    delivered: Arc<Notify>,
}

impl IngestBackend {
    /// A backend writing to `store`; `delivered` is notified after each stored message so
    /// workers pick up its jobs at once.
    pub fn new(store: Arc<dyn Store>, limits: ParseLimits, delivered: Arc<Notify>) -> Self {
        IngestBackend {
            store,
            limits,
            delivered,
        }
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
            };
            writes.spawn(async move { (i, store.deliver(delivery).await) });
        }
        let mut statuses =
            vec![RecipientStatus::TemporaryFailure("not attempted".into()); recipients.len()];
        while let Some(joined) = writes.join_next().await {
            let Ok((i, result)) = joined else { continue };
            statuses[i] = match result {
                Ok(receipt) => {
                    tracing::debug!(user = %recipients[i], message = %receipt.message_id, duplicate = receipt.duplicate, "stored");
                    RecipientStatus::Delivered
                }
                Err(e) => {
                    tracing::warn!(user = %recipients[i], error = %e, "store failed; answering 451");
                    RecipientStatus::TemporaryFailure(e.to_string())
                }
            };
        }
        self.delivered.notify_one();
        statuses
    }
}
