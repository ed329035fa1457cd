//! Writes: each batch of replacements or deletes is one commit under the single writer, and
//! is rolled back whole when any part of it fails.

use std::sync::{Mutex, MutexGuard};

use ::tantivy::index::SegmentId;
use ::tantivy::{IndexWriter, Term};
use palisade_model::{MessageId, UserId};

use super::Inner;
use super::schema::{Fields, to_document};
use crate::{IndexDocument, IndexError, unavailable};

/// Merge attempts while the background merger holds a segment with deleted documents.
const EXPUNGE_ATTEMPTS: u32 = 50;
/// Pause between those attempts.
const EXPUNGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl Inner {
    /// Adds or replaces `docs` in one commit.
    pub(super) fn replace(&self, docs: &[IndexDocument]) -> Result<(), IndexError> {
        self.write(|writer, fields| {
            for doc in docs {
                // Delete first: a delete only affects documents added before it, so the
                // replacement added next survives, and so does the last duplicate in `docs`.
                self.delete(writer, doc.user_id, doc.message_id)?;
                writer
                    .add_document(to_document(fields, doc))
                    .map_err(|e| unavailable("adding document", e))?;
            }
            Ok(())
        })
    }

    /// Removes one message of one user.
    pub(super) fn delete_message(&self, user: UserId, id: MessageId) -> Result<(), IndexError> {
        self.write(|writer, _| self.delete(writer, user, id))
    }

    /// Queues the deletion of one user's message, for the next commit.
    ///
    /// By user and message id, not by a key term of their own: every distinct term of a
    /// document is a path through its segment's term dictionary, built again at every merge,
    /// and a unique 73-byte key per message cost about an eighth of embedded ingest's CPU
    /// (docs/benchmarks.md). `delete_query` is hidden from tantivy's docs but public; it is
    /// what `delete_term` itself calls.
    fn delete(&self, writer: &IndexWriter, user: UserId, id: MessageId) -> Result<(), IndexError> {
        writer
            .delete_query(self.message_query(user, id))
            .map(|_| ())
            .map_err(|e| unavailable("deleting a document", e))
    }

    /// Removes every document of one user, and their terms from the files on disk: a
    /// deletion alone only marks documents deleted, leaving their words in the segments.
    pub(super) fn delete_user(&self, user: UserId) -> Result<(), IndexError> {
        self.write(|writer, fields| {
            writer.delete_term(Term::from_field_text(fields.user_id, &user.to_string()));
            Ok(())
        })?;
        self.expunge_deletes()
    }

    /// Rewrites every segment holding deleted documents without them, then removes the files
    /// no segment uses any more. A segment the background merger holds cannot be merged
    /// here, so this waits for it and tries again.
    fn expunge_deletes(&self) -> Result<(), IndexError> {
        let mutex = self.writer.as_ref().ok_or(IndexError::ReadOnly)?;
        let mut writer = lock_writer(mutex)?;
        for _ in 0..EXPUNGE_ATTEMPTS {
            let segments: Vec<SegmentId> = self
                .index
                .searchable_segment_metas()
                .map_err(|e| unavailable("listing index segments", e))?
                .into_iter()
                .filter(|meta| meta.has_deletes())
                .map(|meta| meta.id())
                .collect();
            if segments.is_empty() {
                self.reader
                    .reload()
                    .map_err(|e| unavailable("reloading index reader", e))?;
                writer
                    .garbage_collect_files()
                    .wait()
                    .map_err(|e| unavailable("removing unused index files", e))?;
                return Ok(());
            }
            if let Err(e) = writer.merge(&segments).wait() {
                tracing::debug!(error = %e, "segments busy merging; trying again");
                std::thread::sleep(EXPUNGE_PAUSE);
            }
        }
        Err(IndexError::Unavailable(
            "deleted documents are still in the index files; delete again to finish".into(),
        ))
    }

    /// Locks the writer, runs `ops`, then commits and reloads; rolls back when `ops` fails.
    pub(super) fn write(
        &self,
        ops: impl FnOnce(&IndexWriter, &Fields) -> Result<(), IndexError>,
    ) -> Result<(), IndexError> {
        let mutex = self.writer.as_ref().ok_or(IndexError::ReadOnly)?;
        let mut writer = lock_writer(mutex)?;
        let result = ops(&writer, &self.fields).and_then(|()| {
            writer
                .commit()
                .map(|_| ())
                .map_err(|e| unavailable("committing index", e))
        });
        if let Err(e) = result {
            // Discard the half-applied batch so a later commit cannot publish it.
            if let Err(rollback) = writer.rollback() {
                tracing::error!(error = %rollback, "search index rollback failed");
            }
            return Err(e);
        }
        drop(writer);
        self.reader
            .reload()
            .map_err(|e| unavailable("reloading index reader", e))
    }
}

/// Locks the writer; after a panic elsewhere, recovers it and discards uncommitted work.
fn lock_writer(mutex: &Mutex<IndexWriter>) -> Result<MutexGuard<'_, IndexWriter>, IndexError> {
    match mutex.lock() {
        Ok(guard) => Ok(guard),
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            tracing::warn!("search index writer was poisoned; rolling back uncommitted changes");
            guard
                .rollback()
                .map_err(|e| unavailable("rolling back poisoned writer", e))?;
            mutex.clear_poison();
            Ok(guard)
        }
    }
}
