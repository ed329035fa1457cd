//! An RFC 2033 LMTP server.
//!
//! The crate knows the protocol and nothing of storage: a [`DeliveryBackend`] resolves
//! recipients and stores messages, and the session turns its per-recipient outcomes into
//! per-recipient replies. Commands are parsed with `smtp-proto`; message data is read by our
//! own strict unstuffer ([`data`]), because only `CRLF . CRLF` may end a message.

mod budget;
mod data;
mod io;
mod server;
mod session;
#[cfg(test)]
mod session_tests;
mod spool;

pub use budget::MemoryBudget;
pub use server::{ServerConfig, serve, serve_stream};

use async_trait::async_trait;
use bytes::Bytes;
use palisade_model::Address;
use std::net::SocketAddr;
use std::time::Duration;

/// Protocol limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message accepted, in bytes; also announced as SIZE.
    pub max_message_bytes: usize,
    /// Most recipients in one transaction.
    pub max_recipients: usize,
    /// Largest header section accepted, in bytes.
    pub max_header_bytes: usize,
    /// How long a client may stay silent.
    pub idle_timeout: Duration,
}

/// What the backend says about a RCPT address.
#[derive(Debug, Clone)]
pub enum Resolution<R> {
    /// A local mailbox; `R` is whatever the backend needs to deliver to it.
    Accept(R),
    /// No such mailbox (550 5.1.1).
    Unknown,
    /// The lookup failed; the client should retry later (451 4.3.0).
    TemporaryFailure(String),
}

/// The outcome of delivering to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientStatus {
    /// Stored durably (250).
    Delivered,
    /// Not stored, retry later (451 4.3.0).
    TemporaryFailure(String),
    /// Not stored, never will be (550 5.x).
    PermanentFailure(String),
}

/// A message received in one LMTP transaction.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    /// The exact bytes, unstuffed.
    pub raw: Bytes,
    /// MAIL FROM, `None` for the null reverse-path.
    pub mail_from: Option<String>,
    /// The accepted RCPT addresses, in the same order as the recipients passed alongside.
    pub rcpt_to: Vec<Address>,
    /// The real client (after PROXY protocol, if any).
    pub client: SocketAddr,
}

/// Where LMTP hands recipients and messages.
#[async_trait]
pub trait DeliveryBackend: Send + Sync + 'static {
    /// Backend handle of an accepted recipient.
    type Recipient: Clone + Send + Sync + 'static;

    /// Looks up a RCPT address.
    async fn resolve(&self, address: &Address) -> Resolution<Self::Recipient>;

    /// Stores `message` for each recipient; returns one status per recipient, in order.
    /// `Delivered` must only be returned once the message is durable for that recipient.
    async fn deliver(
        &self,
        message: IncomingMessage,
        recipients: Vec<Self::Recipient>,
    ) -> Vec<RecipientStatus>;
}
