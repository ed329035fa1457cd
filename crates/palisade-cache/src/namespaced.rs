//! A namespace in front of another cache, so several Palisade installations (or test runs)
//! can share one Redis without seeing each other's sessions, limits or events.

use crate::{Cache, CacheError, RateDecision, Subscription};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Prefixes every key and channel of `inner` with a fixed namespace.
pub struct Namespaced {
    inner: Arc<dyn Cache>,
    namespace: String,
}

impl Namespaced {
    /// `inner` seen through `namespace` (for example `"prod:"`).
    pub fn new(inner: Arc<dyn Cache>, namespace: impl Into<String>) -> Self {
        Namespaced {
            inner,
            namespace: namespace.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }
}

#[async_trait]
impl Cache for Namespaced {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.inner.put(&self.key(key), value, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.inner.get(&self.key(key)).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.inner.delete(&self.key(key)).await
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
        let keys = self.inner.keys_with_prefix(&self.key(prefix)).await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.namespace).map(str::to_owned))
            .collect())
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        self.inner.set_add(&self.key(key), member, ttl).await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        self.inner.set_members(&self.key(key)).await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError> {
        self.inner.set_remove(&self.key(key), member).await
    }

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CacheError> {
        self.inner.hit(&self.key(key), limit, window).await
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError> {
        self.inner.publish(&self.key(channel), payload).await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        self.inner.subscribe(&self.key(channel)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryCache;

    #[tokio::test]
    async fn namespaces_do_not_see_each_other() {
        let shared: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let a = Namespaced::new(shared.clone(), "a:");
        let b = Namespaced::new(shared.clone(), "b:");
        a.put("k", b"1", Duration::from_secs(60))
            .await
            .expect("put");
        assert_eq!(b.get("k").await.expect("get"), None);
        assert_eq!(a.get("k").await.expect("get"), Some(b"1".to_vec()));
        assert_eq!(
            a.keys_with_prefix("").await.expect("keys"),
            vec!["k".to_string()]
        );
        assert!(b.keys_with_prefix("").await.expect("keys").is_empty());
        a.set_add("s", "m", Duration::from_secs(60))
            .await
            .expect("set_add");
        assert!(b.set_members("s").await.expect("members").is_empty());
        assert_eq!(a.set_members("s").await.expect("members"), vec!["m"]);
        assert!(
            a.hit("r", 1, Duration::from_secs(60))
                .await
                .expect("hit")
                .allowed
        );
        assert!(
            b.hit("r", 1, Duration::from_secs(60))
                .await
                .expect("hit")
                .allowed
        );
    }
}
