//! Per-user locks, for the few checks that span several requests (count, then insert).
//!
//! Cassandra has no transactions; a lightweight transaction on one row is its compare-and-set.
//! A lock is that row, written with `IF NOT EXISTS` and a TTL: its holder deletes it when done,
//! and a holder that dies frees it when the TTL runs out.

use super::CassandraStore;
use crate::StoreError;
use std::time::Duration;
use tracing::warn;
use uuid::Uuid;

/// How long a lock outlives a holder that never releases it.
pub(super) const USER_LOCK_TTL: Duration = Duration::from_secs(30);
/// How long a caller waits for a lock before the request fails as a temporary fault.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Pause between attempts; short, since the critical sections are a few requests long.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// A held lock, to hand back to [`CassandraStore::unlock_user`].
#[must_use = "a lock must be released"]
pub(super) struct UserLock {
    user: Uuid,
    name: &'static str,
    holder: Uuid,
}

impl CassandraStore {
    /// Takes the user's lock called `name`, waiting up to [`LOCK_WAIT`] for its holder.
    pub(super) async fn lock_user(
        &self,
        user: Uuid,
        name: &'static str,
    ) -> Result<UserLock, StoreError> {
        let st = self.statements().await?;
        let holder = Uuid::new_v4();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            if self.lwt(&st.lock_user, (user, name, holder)).await?.applied {
                return Ok(UserLock { user, name, holder });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "the {name} of this user are being changed by another request; try again"
                )));
            }
            tokio::time::sleep(LOCK_RETRY).await;
        }
    }

    /// Releases a lock; a failure only delays the next holder until the TTL frees it.
    pub(super) async fn unlock_user(&self, lock: UserLock) {
        let released = match self.statements().await {
            Ok(st) => self
                .lwt(&st.unlock_user, (lock.user, lock.name, lock.holder))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = released {
            warn!(lock = lock.name, error = %e, "could not release a user lock; it expires by itself");
        }
    }
}
