//! How mail enters Palisade: the [`Pipeline`] that stores every copy of a message (parse once,
//! store per user, publish jobs, announce), the LMTP backend that feeds it, and the reparse
//! that reads stored mail again after a parser change ([`Pipeline::reparse_mailbox`]).
//!
//! Parsing happens once per transaction, not once per recipient, and all recipients' writes
//! are issued together so the store's group commit can fold them into one fsync.

mod export;
mod import;
mod pipeline;
mod reparse;

pub use export::{
    EXPORT_FORMAT, EachExported, ExportError, ExportIndex, ExportMetadata, ExportReport,
    ExportedMessage, ExportedTag, export_mailbox,
};
pub use import::{ImportError, ImportProblem, ImportReport, read_ahead};
pub use pipeline::{MailboxCopy, Parsed, Pipeline, PipelineError, error_chain};
pub use reparse::{ContentTotals, FieldChanges, Progress, ReparseError, ReparseReport};

use async_trait::async_trait;
use chrono::Utc;
use palisade_lmtp::{DeliveryBackend, IncomingMessage, RecipientStatus, Resolution};
use palisade_model::{Address, UserId};
use palisade_store::Accounts;
use std::sync::Arc;

/// Connects the LMTP server to the accounts that resolve recipients and the pipeline that
/// stores their copies.
pub struct IngestBackend {
    accounts: Arc<dyn Accounts>,
    pipeline: Arc<Pipeline>,
}

impl IngestBackend {
    /// A backend resolving recipients with `accounts` and storing through `pipeline`.
    pub fn new(accounts: Arc<dyn Accounts>, pipeline: Arc<Pipeline>) -> Self {
        IngestBackend { accounts, pipeline }
    }
}

#[async_trait]
impl DeliveryBackend for IngestBackend {
    type Recipient = UserId;

    async fn resolve(&self, address: &Address) -> Resolution<UserId> {
        match self.accounts.resolve_address(address).await {
            Ok(Some(user)) => Resolution::Accept(user),
            Ok(None) => Resolution::Unknown,
            Err(e) => Resolution::TemporaryFailure(error_chain(&e)),
        }
    }

    async fn deliver(
        &self,
        message: IncomingMessage,
        recipients: Vec<UserId>,
    ) -> Vec<RecipientStatus> {
        let parsed = match self.pipeline.parse(message.raw).await {
            Ok(parsed) => parsed,
            Err(e) => {
                let reason = error_chain(&e);
                return vec![RecipientStatus::TemporaryFailure(reason); recipients.len()];
            }
        };
        let received_at = Utc::now();
        let copies = recipients
            .iter()
            .zip(&message.rcpt_to)
            .map(|(user, rcpt)| {
                MailboxCopy::received(
                    *user,
                    message.mail_from.clone(),
                    rcpt.to_string(),
                    received_at,
                )
            })
            .collect();
        self.pipeline
            .store(&parsed, copies)
            .await
            .into_iter()
            .map(|result| match result {
                Ok(_) => RecipientStatus::Delivered,
                // Every pipeline fault is temporary: the client keeps the message and retries.
                Err(e) => RecipientStatus::TemporaryFailure(error_chain(&e)),
            })
            .collect()
    }
}
