//! The Redis backend against a real server (PALISADE_REDIS_URL, default localhost).
//!
//! These tests fail, never skip, when Redis is unreachable: a silently skipped backend is an
//! untested one. Start it with `devtools/services up redis`.

use palisade_cache::redis::RedisCache;
use palisade_cache::redis_lazy::LazyRedis;
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

/// How many Redis connections are subscribed to `channel` (the raw, namespaced name).
async fn subscribers_of(channel: &str) -> i64 {
    let client = redis::Client::open(url()).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut con)
        .await
        .expect("PUBSUB NUMSUB");
    count
}

#[tokio::test]
async fn subscriptions_share_one_connection_and_unsubscribe_when_all_leave() {
    let cache = connect().await;
    let ns = contract::fresh_prefix();
    let (a, b) = (format!("{ns}a"), format!("{ns}b"));
    let raw_a = format!("palisade:ps:{a}");
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(cache.subscribe(&a).await.expect("subscribe"));
    }
    let mut other = cache.subscribe(&b).await.expect("subscribe");
    assert_eq!(
        subscribers_of(&raw_a).await,
        1,
        "five streams on one channel use one Redis subscription"
    );
    cache.publish(&a, b"hi").await.expect("publish");
    for stream in &mut streams {
        let got = tokio::time::timeout(Duration::from_secs(5), stream.recv())
            .await
            .expect("delivered");
        assert_eq!(got.as_deref(), Some(&b"hi"[..]));
    }

    streams.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(subscribers_of(&raw_a).await, 1, "others still listen");
    streams.clear();
    let deadline = Instant::now() + Duration::from_secs(5);
    while subscribers_of(&raw_a).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the channel stayed subscribed after every stream left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cache.publish(&b, b"on").await.expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), other.recv())
        .await
        .expect("delivered");
    assert_eq!(
        got.as_deref(),
        Some(&b"on"[..]),
        "other channels are unaffected"
    );
}

#[tokio::test]
async fn the_lazy_client_meets_the_contract() {
    contract::run_all(&LazyRedis::new(url())).await;
}

#[tokio::test]
async fn the_lazy_client_fails_calls_promptly_while_redis_is_unreachable() {
    let lazy = LazyRedis::new("redis://127.0.0.1:1/".into());
    for _ in 0..2 {
        let started = Instant::now();
        let result = lazy.get("any").await;
        assert!(
            matches!(result, Err(CacheError::Unavailable(_))),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "took {:?}",
            started.elapsed()
        );
    }
}
