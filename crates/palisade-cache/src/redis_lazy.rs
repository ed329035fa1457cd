//! Redis reached lazily: the daemon starts whether or not Redis is up, and a call made while
//! Redis is down fails at once with [`CacheError::Unavailable`] instead of blocking; the
//! next call tries to connect again.

use crate::redis::RedisCache;
use crate::{Cache, CacheError, RateDecision, Subscription};
use async_trait::async_trait;
use std::time::Duration;
use tokio::sync::OnceCell;

/// A Redis cache that connects on first use and retries on later calls until it succeeds.
pub struct LazyRedis {
    url: String,
    cache: OnceCell<RedisCache>,
}

/// How long one connection attempt may take on a caller's path.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl LazyRedis {
    /// A cache for the Redis at `url`; nothing is connected until the first call.
    pub fn new(url: String) -> Self {
        LazyRedis {
            url,
            cache: OnceCell::new(),
        }
    }

    async fn connected(&self) -> Result<&RedisCache, CacheError> {
        self.cache
            .get_or_try_init(|| async {
                tokio::time::timeout(REDIS_CONNECT_TIMEOUT, RedisCache::connect(&self.url))
                    .await
                    .map_err(|_| CacheError::Unavailable("redis connect timed out".into()))?
            })
            .await
    }
}

#[async_trait]
impl Cache for LazyRedis {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.connected().await?.put(key, value, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.connected().await?.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.connected().await?.delete(key).await
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
        self.connected().await?.keys_with_prefix(prefix).await
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        self.connected().await?.set_add(key, member, ttl).await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        self.connected().await?.set_members(key).await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError> {
        self.connected().await?.set_remove(key, member).await
    }

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CacheError> {
        self.connected().await?.hit(key, limit, window).await
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError> {
        self.connected().await?.publish(channel, payload).await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        self.connected().await?.subscribe(channel).await
    }
}
