//! Where an import stands, for any API node to answer: a JSON record in the cache, scoped by
//! user and import id, and the slots that bound how many imports run at once.
//!
//! The import itself runs on the node that received the upload (the file is on its disk). It
//! writes its record to the cache as it goes, so `GET /me/imports/{id}` works from every
//! node, and a short-lived marker of the user's import, set before the upload is read, has
//! every node refuse a second upload meanwhile. Should that node stop, the record stops changing and the
//! marker expires; the import can be uploaded again and resumes idempotently.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use palisade_cache::{Cache, CacheError, scoped_key, scoped_prefix};
use palisade_ingest::ImportReport;
use palisade_model::UserId;
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// How long an import's record stays readable after its last change.
const STATUS_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long the running-import marker outlives the last sign of life of its import: long
/// enough for a store retrying one message, short enough that a stopped node frees the user.
const MARKER_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a deletion's request that the user's imports stop stays visible: longer than any
/// upload still being received when the account went.
const STOP_TTL: Duration = Duration::from_secs(60 * 60);
/// How long a deletion waits for the user's running import to stop before it goes on: an
/// import stops after the message it is storing, so only a node that died mid-import (whose
/// marker outlives it) makes it wait this long.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Longest problem description kept in a record, in characters.
const MAX_PROBLEM_CHARS: usize = 300;
/// Longest origin kept in a record, in characters.
const MAX_ORIGIN_CHARS: usize = 100;

/// How `From ` lines inside messages of an uploaded mbox were escaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MboxFormat {
    /// Every `>*From ` line got one more `>` (what Palisade's export writes; exact).
    #[default]
    Mboxrd,
    /// Only `From ` lines got a `>` (older tools; a `>From ` the sender wrote loses its `>`).
    Mboxo,
}

impl From<MboxFormat> for palisade_mbox::MboxVariant {
    fn from(format: MboxFormat) -> Self {
        match format {
            MboxFormat::Mboxrd => palisade_mbox::MboxVariant::Rd,
            MboxFormat::Mboxo => palisade_mbox::MboxVariant::O,
        }
    }
}

/// Whether an import is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ImportState {
    /// Messages are being stored.
    Running,
    /// Every message of the file was read; the counts are final.
    Done,
    /// It stopped early (see `error`); uploading the file again resumes it, since messages
    /// already stored are not stored twice.
    Failed,
}

/// One message that was not imported as it was, and why.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct ImportProblemView {
    /// Where it was in the file: the line of its `From ` separator.
    pub origin: String,
    /// What happened: `stored raw: …` (it could not be parsed, and is in the mailbox as
    /// received) or `… over the size limit` (not imported).
    pub problem: String,
}

/// Where an import stands, and at the end what it did.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct ImportStatus {
    /// The import's id, for `GET /me/imports/{id}`.
    pub id: Uuid,
    /// Running, done or failed.
    pub state: ImportState,
    /// How the mbox was read.
    pub format: MboxFormat,
    /// Whether the metadata of a Palisade export came with it (flags, tags and envelopes).
    pub with_metadata: bool,
    /// Size of the uploaded mbox, in bytes.
    pub bytes_total: u64,
    /// How much of it has been read: progress is `bytes_read / bytes_total`.
    pub bytes_read: u64,
    /// Messages found so far.
    pub messages: u64,
    /// Messages stored, including those the mailbox already held (same bytes).
    pub stored: u64,
    /// Stored messages that could not be parsed: kept raw, shown as such.
    pub unparsable: u64,
    /// Messages over the server's message size limit, not imported.
    pub too_large: u64,
    /// Stored messages whose flags, tags and envelope came from the metadata.
    pub restored: u64,
    /// The first 100 problems (unparsable or too large), in file order.
    pub problems: Vec<ImportProblemView>,
    /// When the upload was accepted.
    pub started_at: DateTime<Utc>,
    /// When this record last changed.
    pub updated_at: DateTime<Utc>,
    /// When it ended, done or failed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
}

impl ImportStatus {
    /// The record of import `id`, about to start.
    pub(crate) fn started(
        id: Uuid,
        format: MboxFormat,
        with_metadata: bool,
        bytes_total: u64,
    ) -> Self {
        let now = Utc::now();
        ImportStatus {
            id,
            state: ImportState::Running,
            format,
            with_metadata,
            bytes_total,
            bytes_read: 0,
            messages: 0,
            stored: 0,
            unparsable: 0,
            too_large: 0,
            restored: 0,
            problems: Vec::new(),
            started_at: now,
            updated_at: now,
            finished_at: None,
            error: None,
        }
    }

    /// Takes the counts and problems of `report`, and how far the file has been read.
    pub(crate) fn progress(&mut self, report: &ImportReport, bytes_read: u64) {
        self.bytes_read = bytes_read.min(self.bytes_total);
        self.messages = report.messages;
        self.stored = report.stored;
        self.unparsable = report.unparsable;
        self.too_large = report.too_large;
        self.restored = report.restored;
        self.problems = report
            .problems
            .iter()
            .map(|p| ImportProblemView {
                origin: p.origin.chars().take(MAX_ORIGIN_CHARS).collect(),
                problem: p.problem.chars().take(MAX_PROBLEM_CHARS).collect(),
            })
            .collect();
        self.updated_at = Utc::now();
    }

    /// Marks the end: done, or failed with a reason the user can act on.
    pub(crate) fn finish(&mut self, error: Option<String>) {
        let now = Utc::now();
        self.state = if error.is_some() {
            ImportState::Failed
        } else {
            ImportState::Done
        };
        if error.is_none() {
            self.bytes_read = self.bytes_total;
        }
        self.error = error;
        self.updated_at = now;
        self.finished_at = Some(now);
    }
}

/// The cache key of one import's record.
fn status_key(user: UserId, id: Uuid) -> String {
    scoped_key(&user.to_string(), "import", &id.to_string())
}

/// The cache key holding the id of the user's running import.
fn marker_key(user: UserId) -> String {
    scoped_key(&user.to_string(), "import-running", "current")
}

/// The cache key that asks every import of the user's, on any node, to stop.
fn stop_key(user: UserId) -> String {
    scoped_key(&user.to_string(), "import-stop", "all")
}

/// Asks `user`'s imports, on every node, to stop, and returns once none runs (or after
/// [`STOP_WAIT`]): whatever an import stores after this cannot race the deletion's sweep.
pub(crate) async fn stop_all(cache: &dyn Cache, user: UserId) -> Result<(), CacheError> {
    cache.put(&stop_key(user), b"1", STOP_TTL).await?;
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    while cache.get(&marker_key(user)).await?.is_some() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Whether a deletion asked `user`'s imports to stop.
pub(crate) async fn stop_requested(cache: &dyn Cache, user: UserId) -> Result<bool, CacheError> {
    Ok(cache.get(&stop_key(user)).await?.is_some())
}

/// Writes `status` for any node to read; while it runs, also renews the user's marker.
pub(crate) async fn save(
    cache: &dyn Cache,
    user: UserId,
    status: &ImportStatus,
) -> Result<(), ApiError> {
    let json = serde_json::to_vec(status).map_err(|e| {
        tracing::warn!(error = %e, "import status not serialisable");
        ApiError::unavailable("the import status could not be saved")
    })?;
    cache
        .put(&status_key(user, status.id), &json, STATUS_TTL)
        .await?;
    let marker = marker_key(user);
    if status.state == ImportState::Running {
        cache
            .put(&marker, status.id.to_string().as_bytes(), MARKER_TTL)
            .await?;
    } else {
        cache.delete(&marker).await?;
    }
    Ok(())
}

/// The record of `user`'s import `id`, if it exists and has not expired.
pub(crate) async fn load(
    cache: &dyn Cache,
    user: UserId,
    id: Uuid,
) -> Result<Option<ImportStatus>, ApiError> {
    let Some(json) = cache.get(&status_key(user, id)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&json).map(Some).map_err(|e| {
        tracing::warn!(error = %e, "unreadable import status");
        ApiError::unavailable("the import status could not be read")
    })
}

/// The id of the import `user` has running on any node, if there is one.
pub(crate) async fn running(cache: &dyn Cache, user: UserId) -> Result<Option<Uuid>, ApiError> {
    let Some(id) = cache.get(&marker_key(user)).await? else {
        return Ok(None);
    };
    let Some(id) = std::str::from_utf8(&id)
        .ok()
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Ok(None);
    };
    // A marker whose import has ended (its record says so) no longer holds the user.
    Ok(match load(cache, user, id).await? {
        Some(s) if s.state != ImportState::Running => None,
        _ => Some(id),
    })
}

/// Drops every import record and the marker of `user`: their account is gone, and the
/// records name the senders and dates of the messages that could not be imported. The stop
/// request stays until it expires, for an upload that finishes after the deletion.
pub(crate) async fn forget_all(cache: &dyn Cache, user: UserId) -> Result<(), CacheError> {
    let user = user.to_string();
    for kind in ["import", "import-running"] {
        for key in cache.keys_with_prefix(&scoped_prefix(&user, kind)).await? {
            cache.delete(&key).await?;
        }
    }
    Ok(())
}

/// The user's running-import marker, taken before a byte of an upload is read so that other
/// nodes refuse a second upload meanwhile. Once the import starts, its record keeps the
/// marker ([`Claim::keep`]); a claim dropped before (a refused or abandoned upload) lets go.
pub(crate) struct Claim {
    cache: Arc<dyn Cache>,
    user: UserId,
    id: Uuid,
    held: bool,
}

impl Claim {
    /// Marks `user` as importing, under a new import id.
    pub(crate) async fn take(cache: Arc<dyn Cache>, user: UserId) -> Result<Self, ApiError> {
        let id = Uuid::new_v4();
        cache
            .put(&marker_key(user), id.to_string().as_bytes(), MARKER_TTL)
            .await?;
        Ok(Claim {
            cache,
            user,
            id,
            held: true,
        })
    }

    /// The id the import will have.
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// The import has started: its record keeps the marker from now on.
    pub(crate) fn keep(mut self) {
        self.held = false;
    }

    /// The upload was refused: lets the user go before the refusal is answered, so that a
    /// corrected upload sent straight after it is not turned away as a second import.
    pub(crate) async fn release(mut self) {
        self.held = false;
        release_marker(self.cache.as_ref(), self.user, self.id).await;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (cache, user, id) = (self.cache.clone(), self.user, self.id);
        // Dropped with an abandoned request, which cannot wait: released by a task of its own.
        runtime.spawn(async move { release_marker(cache.as_ref(), user, id).await });
    }
}

/// Deletes `user`'s marker if it is still import `id`'s, not one another upload took since.
async fn release_marker(cache: &dyn Cache, user: UserId, id: Uuid) {
    let key = marker_key(user);
    if let Ok(Some(current)) = cache.get(&key).await
        && current == id.to_string().as_bytes()
        && let Err(e) = cache.delete(&key).await
    {
        tracing::warn!(error = %e, "import marker not released; it expires by itself");
    }
}

/// Why no import can start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// The user already has one running.
    User,
    /// This node runs as many as it may.
    Node,
}

/// The imports running on this node: at most one per user, and a few in all, since each
/// holds its upload on disk and keeps the store busy.
pub struct ImportSlots {
    /// One permit per import this node may run at once.
    node: Arc<Semaphore>,
    /// Users with an import on this node.
    users: Arc<Mutex<HashSet<UserId>>>,
}

/// A running import's place; dropping it (when the import ends) frees both slots.
pub(crate) struct ImportSlot {
    user: UserId,
    users: Arc<Mutex<HashSet<UserId>>>,
    _permit: OwnedSemaphorePermit,
}

impl ImportSlots {
    /// Slots for `per_node` imports at once.
    pub fn new(per_node: usize) -> Self {
        ImportSlots {
            node: Arc::new(Semaphore::new(per_node)),
            users: Arc::default(),
        }
    }

    /// A slot for an import of `user`'s, or why there is none.
    pub(crate) fn try_take(&self, user: UserId) -> Result<ImportSlot, NoSlot> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if users.contains(&user) {
            return Err(NoSlot::User);
        }
        let permit = self
            .node
            .clone()
            .try_acquire_owned()
            .map_err(|_| NoSlot::Node)?;
        users.insert(user);
        Ok(ImportSlot {
            user,
            users: self.users.clone(),
            _permit: permit,
        })
    }
}

impl Drop for ImportSlot {
    fn drop(&mut self) {
        // Every update leaves the set consistent, so a poisoned lock still holds good data.
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_cache::memory::MemoryCache;
    use palisade_ingest::ImportProblem;

    #[tokio::test]
    async fn a_claim_holds_the_user_until_dropped_unless_the_import_keeps_it() {
        let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let user = UserId::new_random();
        let claim = Claim::take(cache.clone(), user).await.expect("claimed");
        let id = claim.id();
        assert_eq!(running(cache.as_ref(), user).await.ok(), Some(Some(id)));
        drop(claim);
        // Released by a task of its own: let it run.
        for _ in 0..100 {
            if running(cache.as_ref(), user).await.ok() == Some(None) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(running(cache.as_ref(), user).await.ok(), Some(None));

        let claim = Claim::take(cache.clone(), user).await.expect("claimed");
        claim.release().await;
        assert_eq!(
            running(cache.as_ref(), user).await.ok(),
            Some(None),
            "released before release() returns"
        );

        let claim = Claim::take(cache.clone(), user).await.expect("claimed");
        let id = claim.id();
        claim.keep();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(running(cache.as_ref(), user).await.ok(), Some(Some(id)));
    }

    #[test]
    fn one_import_per_user_and_a_few_per_node() {
        let slots = ImportSlots::new(2);
        let (a, b, c) = (
            UserId::new_random(),
            UserId::new_random(),
            UserId::new_random(),
        );
        let first = slots.try_take(a).expect("a first import");
        assert_eq!(slots.try_take(a).err(), Some(NoSlot::User));
        let second = slots.try_take(b).expect("another user's");
        assert_eq!(slots.try_take(c).err(), Some(NoSlot::Node));
        drop(first);
        let third = slots.try_take(c).expect("a freed slot");
        assert_eq!(slots.try_take(b).err(), Some(NoSlot::User));
        drop((second, third));
        assert!(slots.try_take(a).is_ok());
    }

    #[tokio::test]
    async fn records_are_per_user_and_the_marker_goes_with_the_end() {
        let cache = MemoryCache::new();
        let (alice, mallory) = (UserId::new_random(), UserId::new_random());
        let mut status = ImportStatus::started(Uuid::new_v4(), MboxFormat::Mboxrd, false, 100);
        save(&cache, alice, &status).await.expect("saved");
        assert_eq!(running(&cache, alice).await.ok(), Some(Some(status.id)));
        assert!(
            load(&cache, mallory, status.id)
                .await
                .expect("read")
                .is_none(),
            "another user cannot read it"
        );
        assert_eq!(running(&cache, mallory).await.ok(), Some(None));

        let report = ImportReport {
            messages: 3,
            stored: 2,
            unparsable: 1,
            too_large: 1,
            problems: vec![ImportProblem {
                origin: "line 9".into(),
                problem: "x".repeat(5000),
            }],
            ..ImportReport::default()
        };
        status.progress(&report, 500);
        assert_eq!(status.bytes_read, 100, "never past the end");
        assert_eq!(status.problems[0].problem.len(), MAX_PROBLEM_CHARS);
        status.finish(None);
        save(&cache, alice, &status).await.expect("saved");
        let read = load(&cache, alice, status.id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!((read.state, read.stored), (ImportState::Done, 2));
        assert_eq!(running(&cache, alice).await.ok(), Some(None));

        let mut stopped = ImportStatus::started(Uuid::new_v4(), MboxFormat::Mboxo, true, 100);
        stopped.progress(&report, 40);
        stopped.finish(Some("the uploaded file could not be read".into()));
        assert_eq!(stopped.state, ImportState::Failed);
        assert_eq!(
            stopped.bytes_read, 40,
            "a failed import says how far it got"
        );
        assert!(stopped.finished_at.is_some() && stopped.error.is_some());
    }
}
