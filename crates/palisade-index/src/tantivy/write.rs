//! Writes, under the single writer. Deletions commit at once. Added documents share commits:
//! a batch that arrives soon after a commit waits for the next one, which publishes every
//! batch added meanwhile. A failure rolls back everything uncommitted, and every batch that
//! was waiting for that commit fails with it.

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use ::tantivy::index::SegmentId;
use ::tantivy::{IndexWriter, Term};
use palisade_model::{MessageId, UserId};
use tokio::sync::watch;

use super::Inner;
use super::schema::{Fields, to_document};
use crate::{IndexDocument, IndexError, unavailable};

/// Least time between two commits of added documents while mail pours in. Every commit starts
/// a segment, zeroing megabytes for its term table, and makes work for the merger; under load
/// the worker's batches made about ten commits a second, and sharing them cut embedded
/// ingest's CPU by about a fifth (docs/benchmarks.md). It is also the most a batch waits for
/// a commit, which search visibility pays.
const COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// Documents waiting for a commit that make it happen at once, whatever the interval.
const COMMIT_DOCS: usize = 1024;
/// A commit of this many documents or more means mail pours in, and the next one waits the
/// whole [`COMMIT_INTERVAL`]; after a smaller one it waits that share of it. Mail that
/// trickles in, whose commits cost little CPU in all, is searchable as soon as before.
const BUSY_COMMIT_DOCS: usize = 64;

/// What a commit tells the batches waiting for it: `None` until it is made.
type Outcome = Option<Result<(), IndexError>>;

/// The single writer, and the commit that its uncommitted documents wait for.
pub(super) struct Writer {
    /// tantivy's writer.
    tantivy: IndexWriter,
    /// Number of the next commit, so that a batch can tell whether it was already made.
    generation: u64,
    /// Where the next commit's outcome goes.
    outcome: watch::Sender<Outcome>,
    /// Documents added since the last commit.
    pending: usize,
    /// Documents the last commit published.
    last_docs: usize,
    /// When the last commit was made or abandoned; `None` before the first.
    last_commit: Option<Instant>,
    /// [`COMMIT_INTERVAL`], longer in tests that must not see a commit come due.
    interval: Duration,
}

impl Writer {
    /// Wraps tantivy's writer; the first batch commits at once.
    pub(super) fn new(tantivy: IndexWriter) -> Self {
        Writer {
            tantivy,
            generation: 0,
            outcome: watch::channel(None).0,
            pending: 0,
            last_docs: 0,
            last_commit: None,
            interval: COMMIT_INTERVAL,
        }
    }

    /// Ends the current commit; documents added from now on wait for the next one. Returns
    /// where the ended commit's outcome goes.
    fn close(&mut self) -> watch::Sender<Outcome> {
        self.generation += 1;
        self.last_docs = std::mem::take(&mut self.pending);
        self.last_commit = Some(Instant::now());
        std::mem::replace(&mut self.outcome, watch::channel(None).0)
    }

    /// When the documents added so far must be committed: see [`BUSY_COMMIT_DOCS`].
    fn due(&self) -> Instant {
        let now = Instant::now();
        match self.last_commit {
            Some(last) if self.pending < COMMIT_DOCS => {
                let busy = self.last_docs.min(BUSY_COMMIT_DOCS) as u32;
                last + self.interval * busy / BUSY_COMMIT_DOCS as u32
            }
            _ => now,
        }
    }
}

/// Added documents that wait for a commit still to be made.
pub(super) struct PendingCommit {
    /// The commit's number: see [`Inner::commit_if_open`].
    pub(super) generation: u64,
    /// Its outcome, once made.
    pub(super) outcome: watch::Receiver<Outcome>,
    /// When it is due: whoever waits for it past this makes it.
    pub(super) due: Instant,
}

/// Merge attempts while the background merger holds a segment with deleted documents.
const EXPUNGE_ATTEMPTS: u32 = 50;
/// Pause between those attempts.
const EXPUNGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl Inner {
    /// Adds or replaces `docs`. Commits at once when the commit is due (see [`Writer::due`]);
    /// otherwise returns the commit to wait for.
    pub(super) fn replace(
        &self,
        docs: &[IndexDocument],
    ) -> Result<Option<PendingCommit>, IndexError> {
        let mut writer = self.run(|tantivy, fields| {
            docs.iter().try_for_each(|doc| {
                // Delete first: a delete only affects documents added before it, so the
                // replacement added next survives, and so does the last duplicate in `docs`.
                self.delete(tantivy, doc.user_id, doc.message_id)?;
                tantivy
                    .add_document(to_document(fields, doc))
                    .map(|_| ())
                    .map_err(|e| unavailable("adding document", e))
            })
        })?;
        writer.pending += docs.len();
        let due = writer.due();
        if due <= Instant::now() {
            return self.commit(writer).map(|()| None);
        }
        Ok(Some(PendingCommit {
            generation: writer.generation,
            outcome: writer.outcome.subscribe(),
            due,
        }))
    }

    /// Makes commit number `generation` unless it was made (or abandoned) already; its
    /// outcome then goes to every batch waiting for it.
    pub(super) fn commit_if_open(&self, generation: u64) -> Result<(), IndexError> {
        let writer = self.lock_writer()?;
        if writer.generation == generation {
            self.commit(writer)
        } else {
            Ok(())
        }
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
        let mut writer = self.lock_writer()?;
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
                    .tantivy
                    .garbage_collect_files()
                    .wait()
                    .map_err(|e| unavailable("removing unused index files", e))?;
                return Ok(());
            }
            if let Err(e) = writer.tantivy.merge(&segments).wait() {
                tracing::debug!(error = %e, "segments busy merging; trying again");
                std::thread::sleep(EXPUNGE_PAUSE);
            }
        }
        Err(IndexError::Unavailable(
            "deleted documents are still in the index files; delete again to finish".into(),
        ))
    }

    /// Locks the writer, runs `ops`, then commits and reloads; rolls back when `ops` fails.
    /// The commit publishes the documents that other batches added and wait with, too.
    pub(super) fn write(
        &self,
        ops: impl FnOnce(&IndexWriter, &Fields) -> Result<(), IndexError>,
    ) -> Result<(), IndexError> {
        let writer = self.run(ops)?;
        self.commit(writer)
    }

    /// Locks the writer and runs `ops`, leaving their changes uncommitted; rolls back when
    /// `ops` fails (see [`abandon`]).
    fn run(
        &self,
        ops: impl FnOnce(&IndexWriter, &Fields) -> Result<(), IndexError>,
    ) -> Result<MutexGuard<'_, Writer>, IndexError> {
        let mut writer = self.lock_writer()?;
        match ops(&writer.tantivy, &self.fields) {
            Ok(()) => Ok(writer),
            Err(e) => Err(abandon(&mut writer, e)),
        }
    }

    /// Commits, reloads the reader, and tells the batches that waited for this commit.
    fn commit(&self, mut writer: MutexGuard<'_, Writer>) -> Result<(), IndexError> {
        if let Err(e) = writer.tantivy.commit() {
            return Err(abandon(&mut writer, unavailable("committing index", e)));
        }
        let outcome = writer.close();
        let documents = writer.last_docs;
        drop(writer);
        tracing::debug!(documents, "search index committed");
        let reloaded = self
            .reader
            .reload()
            .map_err(|e| unavailable("reloading index reader", e));
        outcome.send_replace(Some(reloaded.clone()));
        reloaded
    }

    /// Sets the least time between commits of added documents.
    #[cfg(test)]
    pub(super) fn set_commit_interval(&self, interval: Duration) -> Result<(), IndexError> {
        self.lock_writer()?.interval = interval;
        Ok(())
    }

    /// Locks the writer; after a panic elsewhere, recovers it and discards uncommitted work.
    fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>, IndexError> {
        let mutex = self.writer.as_ref().ok_or(IndexError::ReadOnly)?;
        match mutex.lock() {
            Ok(guard) => Ok(guard),
            Err(poisoned) => {
                tracing::warn!(
                    "search index writer was poisoned; rolling back uncommitted changes"
                );
                let mut guard = poisoned.into_inner();
                // Poisoned still if this fails: the next caller tries again.
                guard
                    .tantivy
                    .rollback()
                    .map_err(|e| unavailable("rolling back poisoned writer", e))?;
                let poisoned = IndexError::Unavailable("search index writer was poisoned".into());
                guard.close().send_replace(Some(Err(poisoned)));
                mutex.clear_poison();
                Ok(guard)
            }
        }
    }
}

/// Discards every uncommitted change, other batches' too, and fails the commit they waited
/// for with `e`: a later commit must not publish half of a batch. Returns `e`.
fn abandon(writer: &mut Writer, e: IndexError) -> IndexError {
    if let Err(rollback) = writer.tantivy.rollback() {
        tracing::error!(error = %rollback, "search index rollback failed");
    }
    writer.close().send_replace(Some(Err(e.clone())));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Result<Writer, IndexError> {
        let index = ::tantivy::Index::create_in_ram(super::super::schema::build_schema());
        let tantivy = index
            .writer_with_num_threads(1, 15_000_000)
            .map_err(|e| unavailable("writer", e))?;
        Ok(Writer::new(tantivy))
    }

    #[test]
    fn the_wait_for_a_commit_grows_with_the_last_ones_size() -> Result<(), IndexError> {
        let mut w = writer()?;
        w.pending = 1;
        assert!(w.due() <= Instant::now(), "the first commit waits");
        let interval = w.interval;
        for (last, share) in [(1, 1), (32, 32), (BUSY_COMMIT_DOCS, 64), (5000, 64)] {
            w.pending = last;
            drop(w.close());
            w.pending = 1;
            let last_commit = w
                .last_commit
                .ok_or_else(|| unavailable("close", "no time"))?;
            assert_eq!(
                w.due() - last_commit,
                interval * share / BUSY_COMMIT_DOCS as u32,
                "after a commit of {last}"
            );
            w.pending = COMMIT_DOCS;
            assert!(w.due() <= Instant::now(), "{COMMIT_DOCS} documents wait");
        }
        Ok(())
    }
}
