//! Ownership of a user's unique keys and of short critical sections, through lightweight
//! transactions: Cassandra's compare-and-set on one row.
//!
//! A claim (a tag name, a contact address) is a row written with `IF NOT EXISTS` before the
//! row that uses the key; a claim whose holder does not use the key is taken over once it is
//! older than [`CLAIM_GRACE`]. A lock is a row with a TTL, taken the same way and deleted by
//! its holder; a holder that dies frees it when the TTL runs out. Locks serve the few checks
//! that span several requests (count, then insert).

use super::{CassandraStore, timestamp};
use crate::StoreError;
use chrono::Utc;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlValue;
use std::time::Duration;
use tracing::{debug, warn};
use uuid::Uuid;

/// Claims on a user's unique keys (tag names, contact addresses) younger than this are
/// assumed to belong to a write in progress, even when the row they point at is not there.
pub(super) const CLAIM_GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// The outcome of claiming a unique key with `INSERT ... IF NOT EXISTS`.
pub(super) enum Claim {
    /// The key is ours now, or already was.
    Ours,
    /// Someone else holds it, since the given time (milliseconds).
    Held { owner: Uuid, since: Option<i64> },
}

impl CassandraStore {
    /// Claims `key` of `user` for `owner` with a `(user, key, owner, claimed_at)` LWT insert;
    /// `owner_column` names the holder's column in the LWT's answer.
    pub(super) async fn claim(
        &self,
        statement: &PreparedStatement,
        user: Uuid,
        key: &str,
        owner: Uuid,
        owner_column: &str,
    ) -> Result<Claim, StoreError> {
        let now = timestamp(Utc::now());
        let lwt = self.lwt(statement, (user, key, owner, now)).await?;
        if lwt.applied {
            return Ok(Claim::Ours);
        }
        let holder = match lwt.column(owner_column) {
            Some(CqlValue::Uuid(holder)) => *holder,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "claim on {key:?} without owner"
                )));
            }
        };
        if holder == owner {
            return Ok(Claim::Ours);
        }
        let since = match lwt.column("claimed_at") {
            Some(CqlValue::Timestamp(t)) => Some(t.0),
            _ => None,
        };
        Ok(Claim::Held {
            owner: holder,
            since,
        })
    }

    /// Takes over a claim whose holder does not use it: a write that failed half-way. Recent
    /// claims are left alone, since their write may still be under way.
    pub(super) async fn take_over(
        &self,
        statement: &PreparedStatement,
        user: Uuid,
        key: &str,
        owner: Uuid,
        stale_owner: Uuid,
        since: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let settled = (now - CLAIM_GRACE).timestamp_millis();
        if since.is_some_and(|t| t > settled) {
            return Ok(false);
        }
        debug!(key, stale = %stale_owner, "taking over an abandoned claim");
        Ok(self
            .lwt(statement, (owner, timestamp(now), user, key, stale_owner))
            .await?
            .applied)
    }

    /// Releases a claim if `owner` still holds it; failures only leave a stale claim, which
    /// [`Self::take_over`] clears later, so they are logged rather than returned.
    pub(super) async fn release(
        &self,
        statement: &PreparedStatement,
        user: Uuid,
        key: &str,
        owner: Uuid,
    ) {
        if let Err(e) = self.lwt(statement, (user, key, owner)).await {
            warn!(key, error = %e, "could not release a claim");
        }
    }
}

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
