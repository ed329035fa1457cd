//! The behaviour every [`Cache`] backend must have, as runnable checks.
//!
//! Every check works under a fresh random prefix, so runs can share a backend (one Redis for
//! every test process) without seeing each other. Time-based checks poll with a generous
//! deadline rather than sleeping an exact amount, since a remote backend's clock and latency
//! are not ours.

use crate::{Cache, scoped_key, scoped_prefix};
use std::time::Duration;
use tokio::time::{Instant, sleep, timeout};

/// How long a check waits for something that should happen soon.
const PATIENCE: Duration = Duration::from_secs(5);
/// TTL of entries that must outlive a check; short enough to clean up after themselves.
const LONG_TTL: Duration = Duration::from_secs(60);
/// TTL of entries that must expire during a check.
const SHORT_TTL: Duration = Duration::from_millis(400);
/// How long a subscriber listens to conclude that nothing is coming.
const QUIET: Duration = Duration::from_millis(300);

/// Runs every check, each under its own fresh prefix.
pub async fn run_all(cache: &dyn Cache) {
    put_get_delete(cache, &fresh_prefix()).await;
    ttl_expiry(cache, &fresh_prefix()).await;
    prefix_listing(cache, &fresh_prefix()).await;
    rate_limit(cache, &fresh_prefix()).await;
    sets(cache, &fresh_prefix()).await;
    set_members_expire_one_by_one(cache, &fresh_prefix()).await;
    pub_sub(cache, &fresh_prefix()).await;
    resubscribe_after_everyone_left(cache, &fresh_prefix()).await;
}

/// A prefix no other run uses.
pub fn fresh_prefix() -> String {
    format!("contract-{}:", uuid::Uuid::new_v4().simple())
}

/// Values round-trip, overwrite, and are gone once deleted.
pub async fn put_get_delete(cache: &dyn Cache, ns: &str) {
    let key = format!("{ns}session");
    assert_eq!(cache.get(&key).await.expect("get"), None);
    cache.put(&key, b"one", LONG_TTL).await.expect("put");
    assert_eq!(cache.get(&key).await.expect("get"), Some(b"one".to_vec()));
    cache.put(&key, b"two", LONG_TTL).await.expect("put");
    assert_eq!(cache.get(&key).await.expect("get"), Some(b"two".to_vec()));
    let binary = [0u8, 255, 10, 13, 0];
    cache
        .put(&format!("{ns}binary"), &binary, LONG_TTL)
        .await
        .expect("put");
    assert_eq!(
        cache.get(&format!("{ns}binary")).await.expect("get"),
        Some(binary.to_vec())
    );
    assert!(cache.delete(&key).await.expect("delete"));
    assert_eq!(cache.get(&key).await.expect("get"), None);
    assert!(!cache.delete(&key).await.expect("delete"), "already gone");
    assert!(cache.delete(&format!("{ns}binary")).await.expect("delete"));
}

/// Entries vanish after their TTL, and a new `put` replaces the TTL.
pub async fn ttl_expiry(cache: &dyn Cache, ns: &str) {
    let short = format!("{ns}short");
    let extended = format!("{ns}extended");
    let long = format!("{ns}long");
    cache.put(&short, b"s", SHORT_TTL).await.expect("put");
    cache.put(&extended, b"e", SHORT_TTL).await.expect("put");
    cache.put(&extended, b"e", LONG_TTL).await.expect("put");
    cache.put(&long, b"l", LONG_TTL).await.expect("put");
    assert_eq!(cache.get(&short).await.expect("get"), Some(b"s".to_vec()));

    let deadline = Instant::now() + SHORT_TTL + PATIENCE;
    while cache.get(&short).await.expect("get").is_some() {
        assert!(
            Instant::now() < deadline,
            "an entry outlived its TTL by {PATIENCE:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.get(&long).await.expect("get"), Some(b"l".to_vec()));
    assert_eq!(
        cache.get(&extended).await.expect("get"),
        Some(b"e".to_vec()),
        "a later put replaces the TTL"
    );
    assert!(
        !cache.delete(&short).await.expect("delete"),
        "expired entries do not count as deleted"
    );
    assert_eq!(
        cache.keys_with_prefix(ns).await.expect("list"),
        vec![extended.clone(), long.clone()],
        "expired entries are not listed"
    );
    cache.delete(&extended).await.expect("delete");
    cache.delete(&long).await.expect("delete");
}

/// Prefix listing returns exactly the live keys under the prefix, taken literally.
pub async fn prefix_listing(cache: &dyn Cache, ns: &str) {
    let put = |key: String| async move {
        cache.put(&key, b"x", LONG_TTL).await.expect("put");
        key
    };
    let pa = put(format!("{ns}p:a")).await;
    let pb = put(format!("{ns}p:b")).await;
    let pcd = put(format!("{ns}p:c:d")).await;
    put(format!("{ns}q:a")).await;
    put(format!("{ns}pp")).await;
    assert_eq!(
        cache
            .keys_with_prefix(&format!("{ns}p:"))
            .await
            .expect("list"),
        vec![pa, pb, pcd]
    );
    assert!(
        cache
            .keys_with_prefix(&format!("{ns}none:"))
            .await
            .expect("list")
            .is_empty()
    );

    // Glob characters are literal: a prefix cannot widen itself into a wildcard.
    let star = put(format!("{ns}g*:1")).await;
    put(format!("{ns}gx:2")).await;
    put(format!("{ns}g?:3")).await;
    put(format!("{ns}g[ab]:4")).await;
    assert_eq!(
        cache
            .keys_with_prefix(&format!("{ns}g*"))
            .await
            .expect("list"),
        vec![star]
    );
    assert_eq!(
        cache
            .keys_with_prefix(&format!("{ns}g["))
            .await
            .expect("list"),
        vec![format!("{ns}g[ab]:4")]
    );

    // Tenant isolation: one user's sessions, not a user whose id merely starts alike.
    let (alice, alicia) = (format!("{ns}u1"), format!("{ns}u10"));
    let s1 = put(scoped_key(&alice, "session", "s1")).await;
    let s2 = put(scoped_key(&alice, "session", "s2")).await;
    put(scoped_key(&alicia, "session", "s1")).await;
    put(scoped_key(&alice, "device", "d1")).await;
    let mut expected = vec![s1, s2];
    expected.sort();
    assert_eq!(
        cache
            .keys_with_prefix(&scoped_prefix(&alice, "session"))
            .await
            .expect("list"),
        expected
    );

    // Rate-limit counters live apart from values.
    cache
        .hit(&format!("{ns}p:counter"), 5, LONG_TTL)
        .await
        .expect("hit");
    assert_eq!(
        cache
            .keys_with_prefix(&format!("{ns}p:c"))
            .await
            .expect("list"),
        vec![format!("{ns}p:c:d")]
    );

    for key in cache.keys_with_prefix(ns).await.expect("list") {
        cache.delete(&key).await.expect("delete");
    }
    assert!(cache.keys_with_prefix(ns).await.expect("list").is_empty());
}

/// A fixed window allows `limit` hits, refuses the next, and allows again once it ends.
pub async fn rate_limit(cache: &dyn Cache, ns: &str) {
    let key = format!("{ns}login");
    let window = Duration::from_millis(800);
    for remaining in [2, 1, 0] {
        let decision = cache.hit(&key, 3, window).await.expect("hit");
        assert!(decision.allowed, "{decision:?}");
        assert_eq!(decision.remaining, remaining, "{decision:?}");
        assert!(decision.retry_after <= window, "{decision:?}");
    }
    let refused = cache.hit(&key, 3, window).await.expect("hit");
    assert!(!refused.allowed, "{refused:?}");
    assert_eq!(refused.remaining, 0);
    assert!(
        refused.retry_after > Duration::ZERO && refused.retry_after <= window,
        "{refused:?}"
    );

    let other = cache
        .hit(&format!("{ns}other"), 3, window)
        .await
        .expect("hit");
    assert!(
        other.allowed && other.remaining == 2,
        "keys are independent"
    );

    sleep(refused.retry_after).await;
    let deadline = Instant::now() + PATIENCE;
    let recovered = loop {
        let decision = cache.hit(&key, 3, window).await.expect("hit");
        if decision.allowed || Instant::now() >= deadline {
            break decision;
        }
        sleep(Duration::from_millis(50)).await;
    };
    assert!(recovered.allowed, "the window never ended: {recovered:?}");
    assert_eq!(recovered.remaining, 2, "a new window starts from zero");

    let closed = cache
        .hit(&format!("{ns}closed"), 0, window)
        .await
        .expect("hit");
    assert!(!closed.allowed, "a zero limit refuses everything");
}

/// Sets hold distinct members, list them sorted, remove them one by one, and live apart
/// from values.
pub async fn sets(cache: &dyn Cache, ns: &str) {
    let (key, other) = (format!("{ns}index"), format!("{ns}other"));
    assert!(cache.set_members(&key).await.expect("members").is_empty());
    for member in ["b", "a", "c", "a"] {
        cache
            .set_add(&key, member, LONG_TTL)
            .await
            .expect("set_add");
    }
    cache.set_add(&other, "z", LONG_TTL).await.expect("set_add");
    assert_eq!(
        cache.set_members(&key).await.expect("members"),
        vec!["a", "b", "c"],
        "members are distinct and sorted"
    );
    assert_eq!(cache.set_members(&other).await.expect("members"), vec!["z"]);

    assert!(cache.set_remove(&key, "b").await.expect("remove"));
    assert!(
        !cache.set_remove(&key, "b").await.expect("remove"),
        "already gone"
    );
    assert!(
        !cache
            .set_remove(&format!("{ns}none"), "a")
            .await
            .expect("remove")
    );
    assert_eq!(
        cache.set_members(&key).await.expect("members"),
        vec!["a", "c"]
    );

    assert_eq!(
        cache.get(&key).await.expect("get"),
        None,
        "sets are not values"
    );
    assert!(
        cache.keys_with_prefix(ns).await.expect("list").is_empty(),
        "sets are not listed as values"
    );
    for member in ["a", "c"] {
        assert!(cache.set_remove(&key, member).await.expect("remove"));
    }
    assert!(cache.set_remove(&other, "z").await.expect("remove"));
    assert!(cache.set_members(&key).await.expect("members").is_empty());
}

/// Each member expires after its own TTL, and adding it again replaces that TTL.
pub async fn set_members_expire_one_by_one(cache: &dyn Cache, ns: &str) {
    let key = format!("{ns}index");
    cache
        .set_add(&key, "short", SHORT_TTL)
        .await
        .expect("set_add");
    cache
        .set_add(&key, "extended", SHORT_TTL)
        .await
        .expect("set_add");
    cache
        .set_add(&key, "extended", LONG_TTL)
        .await
        .expect("set_add");
    cache
        .set_add(&key, "long", LONG_TTL)
        .await
        .expect("set_add");
    let deadline = Instant::now() + SHORT_TTL + PATIENCE;
    loop {
        let members = cache.set_members(&key).await.expect("members");
        if members == ["extended", "long"] {
            break;
        }
        assert_eq!(members, vec!["extended", "long", "short"]);
        assert!(
            Instant::now() < deadline,
            "a member outlived its TTL by {PATIENCE:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !cache.set_remove(&key, "short").await.expect("remove"),
        "expired members do not count as removed"
    );
    // A member added after others expired keeps the set alive for its own TTL.
    cache
        .set_add(&key, "late", LONG_TTL)
        .await
        .expect("set_add");
    assert_eq!(
        cache.set_members(&key).await.expect("members"),
        vec!["extended", "late", "long"]
    );
    for member in ["extended", "late", "long"] {
        cache.set_remove(&key, member).await.expect("remove");
    }
}

/// Payloads reach every subscriber of their channel, and no other channel.
pub async fn pub_sub(cache: &dyn Cache, ns: &str) {
    let (a, b) = (format!("{ns}a"), format!("{ns}b"));
    cache
        .publish(&a, b"nobody listens")
        .await
        .expect("publishing without subscribers is fine");
    let mut a1 = cache.subscribe(&a).await.expect("subscribe");
    let mut a2 = cache.subscribe(&a).await.expect("subscribe");
    let mut b1 = cache.subscribe(&b).await.expect("subscribe");

    cache.publish(&a, b"one").await.expect("publish");
    cache.publish(&a, b"two").await.expect("publish");
    for sub in [&mut a1, &mut a2] {
        for expected in [&b"one"[..], &b"two"[..]] {
            let got = timeout(PATIENCE, sub.recv()).await.expect("delivered");
            assert_eq!(got.as_deref(), Some(expected));
        }
    }
    assert!(
        timeout(QUIET, b1.recv()).await.is_err(),
        "nothing crosses channels"
    );

    cache.publish(&b, b"three").await.expect("publish");
    let got = timeout(PATIENCE, b1.recv()).await.expect("delivered");
    assert_eq!(got.as_deref(), Some(&b"three"[..]));
    assert!(
        timeout(QUIET, a1.recv()).await.is_err(),
        "nothing crosses channels"
    );

    drop(a2);
    cache
        .publish(&a, b"four")
        .await
        .expect("a departed subscriber does not break publishing");
    let got = timeout(PATIENCE, a1.recv()).await.expect("delivered");
    assert_eq!(got.as_deref(), Some(&b"four"[..]));
}

/// A channel whose subscribers have all left can be subscribed again and delivers again,
/// while a channel that keeps one subscriber keeps delivering throughout.
pub async fn resubscribe_after_everyone_left(cache: &dyn Cache, ns: &str) {
    let (a, b) = (format!("{ns}a"), format!("{ns}b"));
    let mut kept = cache.subscribe(&b).await.expect("subscribe");
    for round in 0..3 {
        let first = cache.subscribe(&a).await.expect("subscribe");
        let second = cache.subscribe(&a).await.expect("subscribe");
        drop((first, second));
        // Give a backend's clean-up of the departed subscribers time to run, so the next
        // subscribe races it rather than always winning.
        sleep(Duration::from_millis(20 * round)).await;
        let mut again = cache.subscribe(&a).await.expect("subscribe again");
        cache.publish(&a, b"back").await.expect("publish");
        let got = timeout(PATIENCE, again.recv()).await.expect("delivered");
        assert_eq!(got.as_deref(), Some(&b"back"[..]), "round {round}");
        cache.publish(&b, b"still").await.expect("publish");
        let got = timeout(PATIENCE, kept.recv()).await.expect("delivered");
        assert_eq!(got.as_deref(), Some(&b"still"[..]), "round {round}");
    }
}
