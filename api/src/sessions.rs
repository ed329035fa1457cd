//! Sessions: opaque random tokens, stored only as SHA-256 hashes in the cache with a sliding
//! TTL, listed per user as devices and revocable one by one.
//!
//! Each user's session ids are kept in a per-user cache set whose members expire with the
//! sessions, so listing a user's devices (and enforcing [`MAX_SESSIONS`] at every login)
//! reads that user's entries only, never the whole keyspace.

use chrono::{DateTime, Utc};
use palisade_cache::{Cache, CacheError, scoped_key};
use palisade_model::UserId;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Refresh a session's TTL at most this often, so reads do not turn into writes.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::minutes(1);
/// Longest user agent kept.
const USER_AGENT_CHARS: usize = 200;
/// Most live sessions per user; signing in once more ends the oldest, which keeps the device
/// list short enough to return whole.
pub const MAX_SESSIONS: usize = 50;

/// One signed-in device, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Public id, for listing and revoking; not usable as a credential.
    pub id: String,
    /// Owner.
    pub user_id: UserId,
    /// SHA-256 of the token, the lookup key.
    pub token_hash: String,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last use, to the minute.
    pub last_seen_at: DateTime<Utc>,
    /// Client address at login.
    pub client_address: String,
    /// User agent at login.
    pub user_agent: Option<String>,
}

/// Creates, finds and revokes sessions.
#[derive(Clone)]
pub struct Sessions {
    cache: std::sync::Arc<dyn Cache>,
    ttl: Duration,
}

fn token_key(hash: &str) -> String {
    format!("session-token:{hash}")
}

fn record_key(user: UserId, id: &str) -> String {
    scoped_key(&user.to_string(), "session", id)
}

/// The set of `user`'s session ids.
fn index_key(user: UserId) -> String {
    scoped_key(&user.to_string(), "sessions", "index")
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

impl Sessions {
    /// Sessions kept in `cache`, expiring after `ttl` without use.
    pub fn new(cache: std::sync::Arc<dyn Cache>, ttl: Duration) -> Self {
        Sessions { cache, ttl }
    }

    /// How long an unused session lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session and returns it with its token, which is never stored.
    pub async fn create(
        &self,
        user: UserId,
        client_address: String,
        user_agent: Option<&str>,
    ) -> Result<(Session, String), CacheError> {
        let token = random_hex(32);
        let now = Utc::now();
        let session = Session {
            id: random_hex(12),
            user_id: user,
            token_hash: hash_token(&token),
            created_at: now,
            last_seen_at: now,
            client_address,
            user_agent: user_agent.map(|ua| ua.chars().take(USER_AGENT_CHARS).collect()),
        };
        self.store(&session).await?;
        let live = self.list(user).await?;
        for old in live.iter().take(live.len().saturating_sub(MAX_SESSIONS)) {
            self.revoke(user, &old.id).await?;
        }
        Ok((session, token))
    }

    async fn store(&self, session: &Session) -> Result<(), CacheError> {
        let record = serde_json::to_vec(session)
            .map_err(|e| CacheError::Unavailable(format!("encode session: {e}")))?;
        self.cache
            .put(&record_key(session.user_id, &session.id), &record, self.ttl)
            .await?;
        let pointer = serde_json::to_vec(&(session.user_id, &session.id))
            .map_err(|e| CacheError::Unavailable(format!("encode session: {e}")))?;
        self.cache
            .put(&token_key(&session.token_hash), &pointer, self.ttl)
            .await?;
        // Indexed last, so a listed id always has its record (unless it just expired).
        self.cache
            .set_add(&index_key(session.user_id), &session.id, self.ttl)
            .await
    }

    /// The live session a token opens, refreshing its TTL; `None` for unknown or expired.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Session>, CacheError> {
        let hash = hash_token(token);
        let Some(pointer) = self.cache.get(&token_key(&hash)).await? else {
            return Ok(None);
        };
        let Ok((user, id)) = serde_json::from_slice::<(UserId, String)>(&pointer) else {
            return Ok(None);
        };
        let Some(mut session) = self.get(user, &id).await? else {
            return Ok(None);
        };
        if session.token_hash != hash {
            return Ok(None);
        }
        let now = Utc::now();
        if now - session.last_seen_at >= TOUCH_EVERY {
            session.last_seen_at = now;
            self.store(&session).await?;
        }
        Ok(Some(session))
    }

    async fn get(&self, user: UserId, id: &str) -> Result<Option<Session>, CacheError> {
        Ok(self
            .cache
            .get(&record_key(user, id))
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// The user's live sessions, oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<Session>, CacheError> {
        let ids = self.cache.set_members(&index_key(user)).await?;
        let records =
            futures::future::try_join_all(ids.iter().map(|id| self.get(user, id))).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, record) in ids.iter().zip(records) {
            match record {
                Some(session) => out.push(session),
                // The record expired a moment before its index entry, or was revoked
                // halfway; drop the stale entry.
                None => {
                    self.cache.set_remove(&index_key(user), id).await?;
                }
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// Ends every session of the user but `keep`; how many it ended.
    pub async fn revoke_others(&self, user: UserId, keep: &str) -> Result<usize, CacheError> {
        let ids = self.cache.set_members(&index_key(user)).await?;
        let mut ended = 0;
        for id in ids.iter().filter(|id| id.as_str() != keep) {
            if self.revoke(user, id).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends every session of the user (an account being deleted); how many it ended.
    pub async fn revoke_all(&self, user: UserId) -> Result<usize, CacheError> {
        let ids = self.cache.set_members(&index_key(user)).await?;
        let mut ended = 0;
        for id in &ids {
            if self.revoke(user, id).await? {
                ended += 1;
            } else {
                // Its record had already expired.
                self.cache.set_remove(&index_key(user), id).await?;
            }
        }
        Ok(ended)
    }

    /// Ends one of the user's sessions; `false` when the user has no such session.
    pub async fn revoke(&self, user: UserId, id: &str) -> Result<bool, CacheError> {
        let Some(session) = self.get(user, id).await? else {
            return Ok(false);
        };
        self.cache.delete(&token_key(&session.token_hash)).await?;
        self.cache.delete(&record_key(user, id)).await?;
        self.cache.set_remove(&index_key(user), id).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_cache::memory::MemoryCache;
    use std::sync::Arc;

    #[tokio::test]
    async fn tokens_authenticate_until_revoked_and_are_stored_hashed() {
        let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let sessions = Sessions::new(cache.clone(), Duration::from_secs(60));
        let user = UserId::new_random();
        let (s, token) = sessions
            .create(user, "192.0.2.1".into(), Some("test"))
            .await
            .expect("create");
        let found = sessions.authenticate(&token).await.expect("auth");
        assert_eq!(found.map(|f| f.id), Some(s.id.clone()));
        for key in cache.keys_with_prefix("").await.expect("keys") {
            assert!(!key.contains(&token), "the token itself is never a key");
            let value = cache.get(&key).await.expect("get").unwrap_or_default();
            assert!(!String::from_utf8_lossy(&value).contains(&token));
        }
        assert!(
            sessions
                .authenticate("wrong")
                .await
                .expect("auth")
                .is_none()
        );
        assert!(
            !sessions
                .revoke(UserId::new_random(), &s.id)
                .await
                .expect("other")
        );
        assert!(sessions.revoke(user, &s.id).await.expect("revoke"));
        assert!(sessions.authenticate(&token).await.expect("auth").is_none());
    }

    /// A cache that fails the test if anything scans it: a login must read only the
    /// user's own entries, however many other keys a shared Redis holds.
    struct NoScan(MemoryCache);

    #[async_trait::async_trait]
    impl Cache for NoScan {
        async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
            self.0.put(key, value, ttl).await
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            self.0.get(key).await
        }
        async fn delete(&self, key: &str) -> Result<bool, CacheError> {
            self.0.delete(key).await
        }
        async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
            panic!("sessions scanned the keyspace for {prefix:?}")
        }
        async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
            self.0.set_add(key, member, ttl).await
        }
        async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
            self.0.set_members(key).await
        }
        async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError> {
            self.0.set_remove(key, member).await
        }
        async fn hit(
            &self,
            key: &str,
            limit: u32,
            window: Duration,
        ) -> Result<palisade_cache::RateDecision, CacheError> {
            self.0.hit(key, limit, window).await
        }
        async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError> {
            self.0.publish(channel, payload).await
        }
        async fn subscribe(
            &self,
            channel: &str,
        ) -> Result<palisade_cache::Subscription, CacheError> {
            self.0.subscribe(channel).await
        }
    }

    #[tokio::test]
    async fn sessions_are_found_through_the_users_index_without_scanning() {
        let sessions = Sessions::new(
            Arc::new(NoScan(MemoryCache::new())),
            Duration::from_secs(60),
        );
        let (alice, bob) = (UserId::new_random(), UserId::new_random());
        let (a1, _) = sessions
            .create(alice, "192.0.2.1".into(), None)
            .await
            .expect("create");
        let (a2, _) = sessions
            .create(alice, "192.0.2.2".into(), None)
            .await
            .expect("create");
        sessions
            .create(bob, "192.0.2.3".into(), None)
            .await
            .expect("create");
        let ids = |list: Vec<Session>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(sessions.list(alice).await.expect("list")),
            vec![a1.id.clone(), a2.id.clone()]
        );
        assert!(sessions.revoke(alice, &a1.id).await.expect("revoke"));
        assert_eq!(ids(sessions.list(alice).await.expect("list")), vec![a2.id]);
        assert_eq!(sessions.list(bob).await.expect("list").len(), 1);
    }

    #[tokio::test]
    async fn revoking_all_ends_every_session_of_the_user_only() {
        let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let sessions = Sessions::new(cache.clone(), Duration::from_secs(60));
        let (alice, bob) = (UserId::new_random(), UserId::new_random());
        let mut tokens = Vec::new();
        for i in 0..3 {
            let (_, token) = sessions
                .create(alice, format!("192.0.2.{i}"), None)
                .await
                .expect("create");
            tokens.push(token);
        }
        let (_, kept) = sessions
            .create(bob, "192.0.2.9".into(), None)
            .await
            .expect("create");

        assert_eq!(sessions.revoke_all(alice).await.expect("revoke all"), 3);

        for token in &tokens {
            assert!(sessions.authenticate(token).await.expect("auth").is_none());
        }
        assert!(sessions.list(alice).await.expect("list").is_empty());
        assert!(
            cache
                .set_members(&index_key(alice))
                .await
                .expect("index")
                .is_empty()
        );
        assert!(sessions.authenticate(&kept).await.expect("auth").is_some());
        assert_eq!(sessions.revoke_all(alice).await.expect("again"), 0);
    }

    #[tokio::test]
    async fn expired_sessions_leave_the_index() {
        let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let sessions = Sessions::new(cache.clone(), Duration::from_millis(50));
        let user = UserId::new_random();
        sessions
            .create(user, "192.0.2.1".into(), None)
            .await
            .expect("create");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(sessions.list(user).await.expect("list").is_empty());
        assert!(
            cache
                .set_members(&index_key(user))
                .await
                .expect("members")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn signing_in_past_the_cap_ends_the_oldest_session() {
        let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let sessions = Sessions::new(cache, Duration::from_secs(60));
        let user = UserId::new_random();
        let (_, first) = sessions
            .create(user, "192.0.2.1".into(), None)
            .await
            .expect("first");
        let mut last = String::new();
        for _ in 0..MAX_SESSIONS {
            last = sessions
                .create(user, "192.0.2.1".into(), None)
                .await
                .expect("create")
                .1;
        }
        assert_eq!(sessions.list(user).await.expect("list").len(), MAX_SESSIONS);
        assert!(sessions.authenticate(&first).await.expect("auth").is_none());
        assert!(sessions.authenticate(&last).await.expect("auth").is_some());
    }
}
