//! Login throttling that stops password guessing without handing attackers a lockout.
//!
//! Three limits apply, all in fixed 15-minute windows:
//!
//! - **Per client address:** every attempt counts (`login_attempts_per_address`), whatever
//!   account it names.
//! - **Per account, from new addresses:** failures are counted per *resolved* account, so the
//!   user name and every alias share one budget (`login_attempts_per_account`). Once it is
//!   used up, addresses that have never signed in to that account are refused with 429
//!   before their password is even checked, until the window ends.
//! - **Per account, from known addresses:** an address that has signed in to the account
//!   successfully within [`KNOWN_ADDRESS_TTL`] keeps its own, separate failure budget. So a
//!   stranger failing on purpose cannot lock the owner out of their usual devices, while a
//!   known address that starts guessing is stopped just the same.
//!
//! Known addresses are remembered as a SHA-256 of (account, address) in the cache, never the
//! address itself. A name that matches no account is counted by the name typed, and is
//! refused after the same number of failures, so the answers do not reveal which accounts
//! exist.

use palisade_cache::{Cache, CacheError, RateDecision, scoped_key};
use palisade_model::UserId;
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Window over which login attempts are counted.
pub(crate) const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long an address stays trusted for an account after signing in to it; each successful
/// sign-in starts it again.
pub(crate) const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Whose failures an attempt counts against.
enum Subject {
    /// An existing account, attempted from an address that never signed in to it.
    NewAddress(UserId),
    /// An existing account, attempted from an address that signed in to it before; the
    /// hash of (account, address) names the pair.
    KnownAddress(UserId, String),
    /// A name that is no account's, counted as typed (already trimmed and lowercased).
    NoAccount(String),
}

/// The throttle for one login attempt: who it counts against.
pub(crate) struct LoginLimits {
    subject: Subject,
}

/// SHA-256 of (account, client address): names the pair without storing the address, and
/// differs per account so the same address cannot be linked across accounts.
fn pair_hash(user: UserId, client: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"palisade-login-known-address\0");
    digest.update(user.to_string().as_bytes());
    digest.update(b"\0");
    digest.update(client.as_bytes());
    hex::encode(digest.finalize())
}

/// The cache entry that marks `client` as known for `user`.
fn known_key(user: UserId, pair: &str) -> String {
    scoped_key(&user.to_string(), "login-known", pair)
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Counts one attempt from `client` against the per-address limit.
pub(crate) async fn hit_address(
    cache: &dyn Cache,
    client: &str,
    limit: u32,
) -> Result<RateDecision, CacheError> {
    cache
        .hit(&format!("login:ip:{client}"), limit, LOGIN_WINDOW)
        .await
}

impl LoginLimits {
    /// The throttle for an attempt at `account` (`None`: no such account, `typed` names it)
    /// from `client`.
    pub(crate) async fn for_attempt(
        cache: &dyn Cache,
        account: Option<UserId>,
        typed: &str,
        client: &str,
    ) -> Result<Self, CacheError> {
        let subject = match account {
            Some(user) => {
                let pair = pair_hash(user, client);
                if cache.get(&known_key(user, &pair)).await?.is_some() {
                    Subject::KnownAddress(user, pair)
                } else {
                    Subject::NewAddress(user)
                }
            }
            None => Subject::NoAccount(typed.to_string()),
        };
        Ok(LoginLimits { subject })
    }

    /// Whether this attempt comes from an address that signed in to the account before.
    pub(crate) fn known_address(&self) -> bool {
        matches!(self.subject, Subject::KnownAddress(..))
    }

    /// The failure counter and the lock entry of this attempt's subject.
    fn keys(&self) -> (String, String) {
        match &self.subject {
            Subject::NewAddress(user) => (
                scoped_key(&user.to_string(), "login", "failures"),
                scoped_key(&user.to_string(), "login", "locked"),
            ),
            Subject::KnownAddress(user, pair) => (
                scoped_key(&user.to_string(), "login", &format!("failures:{pair}")),
                scoped_key(&user.to_string(), "login", &format!("locked:{pair}")),
            ),
            // Never starts with `u:`, so no typed name can reach an account's keys.
            Subject::NoAccount(name) => (
                format!("login:name-failures:{name}"),
                format!("login:name-locked:{name}"),
            ),
        }
    }

    /// How long this attempt must wait, if its subject has used up its failures; the
    /// password is not checked meanwhile, which is what stops the guessing.
    pub(crate) async fn locked_for(
        &self,
        cache: &dyn Cache,
    ) -> Result<Option<Duration>, CacheError> {
        let (_, lock) = self.keys();
        let Some(until) = cache.get(&lock).await? else {
            return Ok(None);
        };
        let wait = std::str::from_utf8(&until)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(|until| Duration::from_secs(until).saturating_sub(unix_now()))
            .unwrap_or(LOGIN_WINDOW);
        Ok(Some(wait.max(Duration::from_secs(1))))
    }

    /// Counts a wrong password; once `limit` failures are used up in the window, locks the
    /// subject until the window ends.
    pub(crate) async fn failed(&self, cache: &dyn Cache, limit: u32) -> Result<(), CacheError> {
        let (failures, lock) = self.keys();
        let decision = cache.hit(&failures, limit, LOGIN_WINDOW).await?;
        if !decision.allowed || decision.remaining == 0 {
            let wait = if decision.retry_after.is_zero() {
                LOGIN_WINDOW
            } else {
                decision.retry_after
            };
            // The unlock time rather than a flag, so refusals can say how long to wait.
            let until = (unix_now() + wait).as_secs().saturating_add(1);
            cache.put(&lock, until.to_string().as_bytes(), wait).await?;
        }
        Ok(())
    }

    /// Remembers that `client` signed in to `user`, so later failures by others do not
    /// lock it out; refreshed on every successful sign-in.
    pub(crate) async fn succeeded(
        cache: &dyn Cache,
        user: UserId,
        client: &str,
    ) -> Result<(), CacheError> {
        let pair = pair_hash(user, client);
        cache
            .put(&known_key(user, &pair), b"1", KNOWN_ADDRESS_TTL)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_cache::memory::MemoryCache;

    async fn limits(cache: &dyn Cache, user: UserId, client: &str) -> LoginLimits {
        LoginLimits::for_attempt(cache, Some(user), "typed", client)
            .await
            .expect("limits")
    }

    #[tokio::test]
    async fn failures_from_strangers_do_not_lock_out_a_known_address() {
        let cache = MemoryCache::new();
        let user = UserId::new_random();
        LoginLimits::succeeded(&cache, user, "192.0.2.1")
            .await
            .expect("succeeded");
        for _ in 0..3 {
            let stranger = limits(&cache, user, "198.51.100.7").await;
            assert!(!stranger.known_address());
            assert!(stranger.locked_for(&cache).await.expect("locked").is_none());
            stranger.failed(&cache, 3).await.expect("failed");
        }
        let wait = limits(&cache, user, "198.51.100.8")
            .await
            .locked_for(&cache)
            .await
            .expect("locked")
            .expect("another new address waits too");
        assert!(wait > Duration::from_secs(1) && wait <= LOGIN_WINDOW + Duration::from_secs(2));

        let owner = limits(&cache, user, "192.0.2.1").await;
        assert!(owner.known_address());
        assert_eq!(owner.locked_for(&cache).await.expect("locked"), None);
        // The known address has a budget of its own, so it cannot guess on forever either.
        for _ in 0..3 {
            owner.failed(&cache, 3).await.expect("failed");
        }
        assert!(owner.locked_for(&cache).await.expect("locked").is_some());
    }

    #[test]
    fn known_addresses_are_stored_hashed_and_per_account() {
        let (a, b) = (UserId::new_random(), UserId::new_random());
        let key = known_key(a, &pair_hash(a, "192.0.2.1"));
        assert!(!key.contains("192.0.2.1"));
        assert_ne!(pair_hash(a, "192.0.2.1"), pair_hash(b, "192.0.2.1"));
    }
}
