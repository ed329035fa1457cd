//! Account deletion: the one sequence that both `DELETE /api/v1/me` and
//! `palisade-admin delete-user` run.
//!
//! The steps are ordered so that a run cut short anywhere is finished by running it again:
//! first the user's sessions end (nobody acts for them any more), then their search
//! documents go, then the store deletes their addresses (mail to them is refused from then
//! on), their mail and everything else, and the user row last. The index is swept once more,
//! for a message a worker read just before the store deleted it and indexed after the first
//! sweep, and then the store, for a delivery that had resolved an address just before it
//! went. An import running on any node is asked to stop before the store is touched, and the
//! deletion waits for it: it stops between two messages, and runs the last sweep ([`sweep`])
//! itself, so nothing it stored outlives the account. The records of the user's imports (which
//! name senders and dates) go with it. Queued jobs need nothing more: the embedded queue's go
//! with the store rows, and a worker acknowledges and drops a job whose account no longer
//! exists.

use crate::sessions::Sessions;
use palisade_cache::{Cache, CacheError, scoped_prefix};
use palisade_index::{IndexError, SearchIndex};
use palisade_model::{User, UserId};
use palisade_store::{Store, StoreError};
use serde::Serialize;

/// What one deletion did, for the admin command's output and the logs.
#[derive(Debug, Clone, Serialize)]
pub struct DeletionReport {
    /// The account's id.
    pub user_id: String,
    /// The account's name.
    pub name: String,
    /// The addresses that now refuse mail.
    pub addresses: Vec<String>,
    /// Sessions that were still open and were ended.
    pub sessions_ended: usize,
    /// False when the store no longer had the user: an earlier run had finished its part.
    pub store_deleted: bool,
}

/// Why a deletion stopped; what ran before stays done, and running it again finishes it.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// Sessions could not be ended.
    #[error("ending sessions: {0}")]
    Cache(#[from] CacheError),
    /// The search index could not drop the user's documents.
    #[error("deleting search documents: {0}")]
    Index(#[from] IndexError),
    /// The store could not delete the user's data.
    #[error("deleting stored data: {0}")]
    Store(#[from] StoreError),
}

/// Deletes `user`'s account and everything of theirs (see the module documentation).
pub async fn delete_account(
    store: &dyn Store,
    index: &dyn SearchIndex,
    cache: &dyn Cache,
    sessions: &Sessions,
    user: &User,
) -> Result<DeletionReport, DeletionError> {
    let id = user.id;
    let sessions_ended = sessions.revoke_all(id).await?;
    crate::import_status::stop_all(cache, id).await?;
    // The devices that signed in, remembered to spare them from lockouts.
    for key in cache
        .keys_with_prefix(&scoped_prefix(&id.to_string(), "login-known"))
        .await?
    {
        cache.delete(&key).await?;
    }
    index.delete_user(id).await?;
    let store_deleted = store.delete_user(id).await?;
    // A delivery that had resolved an address just before it went lands after the store's
    // pass; its index job is dropped by the worker, and this removes its rows.
    sweep(store, index, cache, id).await?;
    tracing::info!(user = %id, sessions_ended, store_deleted, "account deleted");
    Ok(DeletionReport {
        user_id: id.to_string(),
        name: user.name.clone(),
        addresses: user.addresses.iter().map(ToString::to_string).collect(),
        sessions_ended,
        store_deleted,
    })
}

/// The last pass of a deletion, which whatever wrote for the user while it ran also calls
/// once it has stopped: the user's import records, search documents and stored rows.
pub(crate) async fn sweep(
    store: &dyn Store,
    index: &dyn SearchIndex,
    cache: &dyn Cache,
    id: UserId,
) -> Result<(), DeletionError> {
    crate::import_status::forget_all(cache, id).await?;
    index.delete_user(id).await?;
    store.delete_user(id).await?;
    Ok(())
}
