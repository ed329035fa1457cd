//! Palisade's cache: sessions, rate limits and pub/sub for the HTTP API.
//!
//! Two backends share one [`Cache`] trait and one [`contract`] suite: [`memory::MemoryCache`]
//! for embedded (single-process) deployments, and [`redis::RedisCache`] for distributed ones,
//! where every API node must see the same sessions, counters and notifications.
//!
//! The cache holds nothing that cannot be lost: sessions can be re-established, counters
//! restart, and pub/sub is best-effort (at most once, live subscribers only). Callers scope
//! every key by user with [`scoped_key`], so one tenant can never read, list or exhaust
//! another's entries.

use async_trait::async_trait;
use futures::Stream;
use futures::stream::BoxStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::broadcast;

#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod memory;
pub mod metered;
pub mod namespaced;
pub mod redis;
pub mod redis_lazy;
mod redis_pubsub;

/// Why a cache operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The backend could not be reached or refused the operation; retry later.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
}

/// The outcome of counting one request against a fixed-window rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether this request is within the limit.
    pub allowed: bool,
    /// Requests still allowed in the current window.
    pub remaining: u32,
    /// Time until the current window ends (the `Retry-After` when refused).
    pub retry_after: Duration,
}

/// A live subscription to one channel: an async stream of payloads.
///
/// It ends (`None`) when the backend connection is lost; subscribers should resubscribe and
/// resynchronise, since messages published meanwhile are not replayed.
pub struct Subscription {
    payloads: BoxStream<'static, Vec<u8>>,
}

impl Subscription {
    /// Wraps a backend's stream of payloads.
    pub fn new(payloads: impl Stream<Item = Vec<u8>> + Send + 'static) -> Self {
        Subscription {
            payloads: Box::pin(payloads),
        }
    }

    /// The next payload, or `None` once the subscription has ended.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        futures::StreamExt::next(&mut self.payloads).await
    }
}

impl Stream for Subscription {
    type Item = Vec<u8>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        self.payloads.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

/// Payloads a slow subscriber may fall behind by before it starts losing the oldest.
pub(crate) const FANOUT_CAPACITY: usize = 256;

/// One subscriber's end of an in-process fan-out channel, and what to do when it leaves.
struct FanoutReader {
    /// `None` only while dropping: it goes first, so `on_leave` sees the receiver count
    /// without this reader.
    receiver: Option<broadcast::Receiver<Arc<[u8]>>>,
    /// For the lag warning.
    channel: String,
    /// Called once when the subscription is dropped or ends (for example to UNSUBSCRIBE
    /// upstream when the last reader of a channel has left).
    on_leave: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for FanoutReader {
    fn drop(&mut self) {
        self.receiver = None;
        if let Some(leave) = self.on_leave.take() {
            leave();
        }
    }
}

/// A [`Subscription`] reading `receiver`, one subscriber of an in-process fan-out; both
/// backends deliver through it, so lag and closing behave the same on each.
pub(crate) fn fanout_subscription(
    receiver: broadcast::Receiver<Arc<[u8]>>,
    channel: String,
    on_leave: Option<Box<dyn FnOnce() + Send>>,
) -> Subscription {
    let reader = FanoutReader {
        receiver: Some(receiver),
        channel,
        on_leave,
    };
    Subscription::new(futures::stream::unfold(reader, |mut reader| async move {
        loop {
            match reader.receiver.as_mut()?.recv().await {
                Ok(payload) => return Some((payload.to_vec(), reader)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(channel = %reader.channel, missed, "slow subscriber lost messages");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }))
}

/// Expiring key-value entries, rate-limit counters and pub/sub channels.
///
/// Values, counters, sets and channels live in separate namespaces: a counter or a set never
/// shows up in [`Cache::get`] or [`Cache::keys_with_prefix`]. TTLs and windows are rounded to
/// whole milliseconds, at least one.
#[async_trait]
pub trait Cache: Send + Sync {
    /// Stores `value` under `key` for `ttl`, replacing any previous value and TTL.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    /// The value under `key`, or `None` if absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Removes `key`; returns whether it existed (and had not expired).
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;

    /// Every live key starting with `prefix`, sorted.
    ///
    /// On Redis this walks the whole keyspace (SCAN), so it is for tests and maintenance
    /// tools only; request paths keep an index with [`Cache::set_add`] instead.
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError>;

    /// Adds `member` to the set `key` for `ttl`, replacing that member's previous expiry.
    ///
    /// Sets index small groups of entries (a user's session ids) so they can be listed
    /// without scanning; each member expires on its own, like the entry it points at.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError>;

    /// The live members of the set `key`, sorted; empty when there is no such set.
    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError>;

    /// Removes `member` from the set `key`; returns whether it was there (and live).
    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError>;

    /// Counts one request against `limit` requests per fixed `window` for `key`.
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CacheError>;

    /// Sends `payload` to the current subscribers of `channel`; nobody listening is fine.
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError>;

    /// Subscribes to `channel`; messages published after this returns are delivered.
    ///
    /// Every subscription of one cache shares one backend connection (on Redis, one pub/sub
    /// connection per node), so open event streams cost memory, not connections.
    async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError>;
}

/// Escapes the separator so no component can forge another user's scope.
fn escape_component(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

/// The key of `user`'s entry `name` of kind `kind` (e.g. `session`), scoped for isolation.
pub fn scoped_key(user: &str, kind: &str, name: &str) -> String {
    format!("{}{}", scoped_prefix(user, kind), escape_component(name))
}

/// The pub/sub channel carrying one user's new-mail events, shared by ingest (publisher) and
/// the API (subscriber).
pub fn mail_events_channel(user: &str) -> String {
    scoped_key(user, "events", "mail")
}

/// Announces a new message of `user`'s on [`mail_events_channel`]; ingest and the API's sent
/// copies both use it, and the API's event stream reads this payload.
pub async fn publish_new_mail(
    cache: &dyn Cache,
    user: &str,
    message_id: &str,
) -> Result<(), CacheError> {
    let payload = serde_json::json!({ "type": "new_mail", "message_id": message_id }).to_string();
    cache
        .publish(&mail_events_channel(user), payload.as_bytes())
        .await
}

/// The prefix shared by every [`scoped_key`] of `user` and `kind`, for listing them.
pub fn scoped_prefix(user: &str, kind: &str) -> String {
    format!("u:{}:{}:", escape_component(user), escape_component(kind))
}

/// A TTL or window as whole milliseconds, at least one, so both backends round alike.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_keys_cannot_cross_users() {
        let a = scoped_key("u1", "session", "x");
        assert_eq!(a, "u:u1:session:x");
        assert!(a.starts_with(&scoped_prefix("u1", "session")));
        assert!(!scoped_key("u10", "session", "x").starts_with(&scoped_prefix("u1", "session")));
        // A user id containing the separator cannot reach into another user's scope.
        assert!(!scoped_key("u1:session", "x", "y").starts_with(&scoped_prefix("u1", "session")));
        assert_ne!(scoped_key("a:b", "c", "d"), scoped_key("a", "b:c", "d"));
    }

    #[test]
    fn millis_rounds_up_to_one() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }
}
