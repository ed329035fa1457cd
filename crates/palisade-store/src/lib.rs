//! Palisade's storage: one trait shaped by the domain, one module per backend.
//!
//! Every method that touches mail names the [`UserId`] it works for; backends partition by
//! it, so a bug in a caller cannot reach across tenants by forgetting a filter.
//! [`Store::deliver`] is the durability point of the LMTP path: when it returns `Ok`, the raw
//! bytes, the message row and its follow-up jobs are all on disk, together or not at all.

use async_trait::async_trait;
use palisade_model::{
    Address, Envelope, Message, MessageContent, MessageId, MessageSummary, RawHash, User, UserId,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub mod cassandra;
pub mod contract;
pub mod sqlite;
mod threading;

/// SHA-256 of raw message bytes, the content key of the raw store.
pub fn raw_hash(raw: &[u8]) -> RawHash {
    use sha2::{Digest, Sha256};
    RawHash(Sha256::digest(raw).into())
}

/// Why a storage call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or could not write; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The request conflicts with existing data (a taken user name or address).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The named record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data could not be decoded; a bug or corruption, not a transient fault.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// One message to store for one user, as accepted by LMTP.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The receiving user.
    pub user_id: UserId,
    /// The exact bytes received.
    pub raw: Arc<[u8]>,
    /// SHA-256 of `raw`, computed once per message rather than per recipient.
    pub raw_sha256: RawHash,
    /// What parsing found, shared between the recipients of one transaction.
    pub content: Arc<MessageContent>,
    /// The envelope for this recipient.
    pub envelope: Envelope,
}

/// What [`Store::deliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The message's id in the user's mailbox.
    pub message_id: MessageId,
    /// True when the same bytes were already stored for this user, so nothing changed.
    pub duplicate: bool,
}

/// A page request for lists; cursors are opaque strings handed back by the previous page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Continue after this cursor; `None` starts at the newest.
    pub after: Option<String>,
    /// Most items to return.
    pub limit: usize,
}

/// One page of results and the cursor of the next page, if there is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageOf<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Cursor for the next page.
    pub next: Option<String>,
}

/// The storage backend contract.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates a user owning `addresses`; fails with `Conflict` if the name or an address is taken.
    async fn create_user(
        &self,
        name: &str,
        addresses: &[Address],
        password_hash: Option<String>,
    ) -> Result<User, StoreError>;

    /// All users, by name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// Finds a user by name or by one of their addresses.
    async fn find_user(&self, name_or_address: &str) -> Result<Option<User>, StoreError>;

    /// The user an address delivers to.
    async fn resolve_address(&self, address: &Address) -> Result<Option<UserId>, StoreError>;

    /// Durably stores raw bytes, message, thread placement and the message's follow-up jobs
    /// (see [`palisade_jobs`]), idempotently: redelivery of the same bytes changes nothing.
    async fn deliver(&self, delivery: Delivery) -> Result<DeliveryReceipt, StoreError>;

    /// The user's messages, newest arrival first.
    async fn list_messages(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError>;

    /// One message of the user's.
    async fn get_message(&self, user: UserId, id: MessageId)
    -> Result<Option<Message>, StoreError>;

    /// The exact bytes of one of the user's messages.
    async fn get_raw(&self, user: UserId, id: MessageId) -> Result<Option<Vec<u8>>, StoreError>;
}
