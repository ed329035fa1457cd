//! A cache that records the latency and failures of every operation, by backend and
//! operation, around any other cache: installed once where the daemon opens its backend.
//!
//! A subscription is timed until it is open; the messages it then carries are not.

use crate::{Cache, CacheError, RateDecision, Subscription};
use async_trait::async_trait;
use palisade_metrics::observe;
use std::sync::Arc;
use std::time::Duration;

/// A cache whose operations are timed and whose failures are counted.
pub struct Metered {
    inner: Arc<dyn Cache>,
    /// The `backend` label: `memory` or `redis`.
    backend: &'static str,
}

impl Metered {
    /// Meters `inner`, labelled `backend`.
    pub fn new(inner: Arc<dyn Cache>, backend: &'static str) -> Self {
        Metered { inner, backend }
    }
}

/// The `error` label of a failure.
fn error_kind(e: &CacheError) -> &'static str {
    match e {
        CacheError::Unavailable(_) => "unavailable",
    }
}

#[async_trait]
impl Cache for Metered {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        observe(
            self.backend,
            "put",
            error_kind,
            self.inner.put(key, value, ttl),
        )
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        observe(self.backend, "get", error_kind, self.inner.get(key)).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        observe(self.backend, "delete", error_kind, self.inner.delete(key)).await
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
        observe(
            self.backend,
            "keys_with_prefix",
            error_kind,
            self.inner.keys_with_prefix(prefix),
        )
        .await
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        observe(
            self.backend,
            "set_add",
            error_kind,
            self.inner.set_add(key, member, ttl),
        )
        .await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        observe(
            self.backend,
            "set_members",
            error_kind,
            self.inner.set_members(key),
        )
        .await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError> {
        observe(
            self.backend,
            "set_remove",
            error_kind,
            self.inner.set_remove(key, member),
        )
        .await
    }

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CacheError> {
        observe(
            self.backend,
            "hit",
            error_kind,
            self.inner.hit(key, limit, window),
        )
        .await
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError> {
        observe(
            self.backend,
            "publish",
            error_kind,
            self.inner.publish(channel, payload),
        )
        .await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        observe(
            self.backend,
            "subscribe",
            error_kind,
            self.inner.subscribe(channel),
        )
        .await
    }
}
