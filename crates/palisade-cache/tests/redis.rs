//! The Redis backend against a real server (PALISADE_REDIS_URL, default localhost).
//!
//! These tests fail, never skip, when Redis is unreachable: a silently skipped backend is an
//! untested one. Start it with `devtools/services up redis`.

use palisade_cache::redis::RedisCache;
use palisade_cache::{Cache, CacheError, contract};
use std::time::{Duration, Instant};

fn url() -> String {
    std::env::var("PALISADE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

async fn connect() -> RedisCache {
    match RedisCache::connect(&url()).await {
        Ok(cache) => cache,
        Err(e) => panic!(
            "Redis is unreachable at PALISADE_REDIS_URL (default redis://127.0.0.1:6379/); \
             start it with `devtools/services up redis`: {e}"
        ),
    }
}

#[tokio::test]
async fn contract_suite() {
    contract::run_all(&connect().await).await;
}

#[tokio::test]
async fn two_clients_share_state() {
    let (a, b) = (connect().await, connect().await);
    let ns = contract::fresh_prefix();
    let key = format!("{ns}shared");
    a.put(&key, b"v", Duration::from_secs(30))
        .await
        .expect("put");
    assert_eq!(b.get(&key).await.expect("get"), Some(b"v".to_vec()));
    let mut sub = b.subscribe(&ns).await.expect("subscribe");
    a.publish(&ns, b"hello").await.expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("delivered");
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    assert!(b.delete(&key).await.expect("delete"));
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_promptly() {
    let started = Instant::now();
    let result = RedisCache::connect("redis://127.0.0.1:1/").await;
    assert!(
        matches!(result, Err(CacheError::Unavailable(_))),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
}
