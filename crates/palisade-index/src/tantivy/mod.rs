//! Embedded [`SearchIndex`] backend on tantivy: one on-disk index shared by all users.
//!
//! One process (the LMTP daemon) opens the index with [`TantivyIndex::open`] and writes;
//! others (the API) open it with [`TantivyIndex::open_read_only`] and see each commit.
//! Only what a hit needs is stored; subject, body and addresses are indexed but not kept.
//!
//! The files follow the Elasticsearch backend's: this one opens the index and implements
//! [`SearchIndex`], delegating to `schema` (fields and documents), `write` (commits),
//! `query` (building searches) and `response` (reading hits).

mod query;
mod response;
mod schema;
mod write;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::tantivy::collector::{Count, TopDocs};
use ::tantivy::directory::MmapDirectory;
use ::tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument};
use palisade_model::{MessageId, UserId};

use crate::{
    IndexDocument, IndexError, SearchHit, SearchIndex, SearchQuery, analysis, unavailable,
};
use schema::{ADDRESS_TOKENIZER, Fields, TEXT_TOKENIZER, build_schema};
use write::PendingCommit;

/// Indexing memory budget of the writer. Each commit starts a segment whose term table is
/// sized from it (up to a third) and zeroed, so a larger budget costs on every commit.
const WRITER_MEMORY_BYTES: usize = 32 * 1024 * 1024;
/// Indexing threads. Each makes its own segment per commit; the worker's batches are small
/// enough for one, and fewer segments mean less merging.
const WRITER_THREADS: usize = 1;

/// The embedded tantivy search index, read-write or read-only.
pub struct TantivyIndex {
    inner: Arc<Inner>,
}

/// What blocking tasks share: the index, its reader and, when writable, its one writer.
struct Inner {
    index: Index,
    reader: IndexReader,
    /// `None` for read-only instances.
    writer: Option<Mutex<write::Writer>>,
    fields: Fields,
}

impl TantivyIndex {
    /// Opens the index in `dir` for reading and writing, creating it when absent.
    ///
    /// Fails when another process already holds the writer lock.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| unavailable("creating index directory", e))?;
        let directory =
            MmapDirectory::open(dir).map_err(|e| unavailable("opening index directory", e))?;
        let index = Index::open_or_create(directory, build_schema())
            .map_err(|e| unavailable("opening index", e))?;
        let writer = index
            .writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY_BYTES)
            .map_err(|e| unavailable("acquiring index writer", e))?;
        Self::assemble(index, Some(writer))
    }

    /// Opens an existing index in `dir` for searching only; it sees the writer's commits.
    pub fn open_read_only(dir: &Path) -> Result<Self, IndexError> {
        let index = Index::open_in_dir(dir).map_err(|e| unavailable("opening index", e))?;
        if index.schema() != build_schema() {
            return Err(IndexError::Unavailable(
                "index on disk has an incompatible schema".into(),
            ));
        }
        Self::assemble(index, None)
    }

    fn assemble(index: Index, writer: Option<IndexWriter>) -> Result<Self, IndexError> {
        index
            .tokenizers()
            .register(TEXT_TOKENIZER, analysis::analyzer());
        index
            .tokenizers()
            .register(ADDRESS_TOKENIZER, analysis::analyzer());
        let fields = Fields::from_schema(&index.schema())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(|e| unavailable("opening index reader", e))?;
        Ok(TantivyIndex {
            inner: Arc::new(Inner {
                index,
                reader,
                writer: writer.map(|w| Mutex::new(write::Writer::new(w))),
                fields,
            }),
        })
    }

    /// Runs blocking index work off the async executor.
    async fn blocking<T, F>(&self, work: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, IndexError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| unavailable("index task failed", e))?
    }

    /// Waits for the commit that publishes a batch, and makes it once it is due if no other
    /// batch has.
    async fn committed(&self, mut pending: PendingCommit) -> Result<(), IndexError> {
        let due = tokio::time::Instant::from_std(pending.due);
        let made = pending.outcome.wait_for(Option::is_some);
        if tokio::time::timeout_at(due, made).await.is_err() {
            let generation = pending.generation;
            self.blocking(move |inner| inner.commit_if_open(generation))
                .await?;
        }
        // Made by this batch or another: either way its outcome is sent, or the writer went.
        let outcome = pending
            .outcome
            .wait_for(Option::is_some)
            .await
            .map(|outcome| outcome.clone())
            .map_err(|_| IndexError::Unavailable("index writer closed before committing".into()))?;
        outcome.unwrap_or(Ok(()))
    }
}

impl fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("read_only", &self.inner.writer.is_none())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Picks up commits made by another process, for a read-only instance. A writable one
    /// needs none: it holds the writer lock, so every commit is its own, and it reloads
    /// after each. A reload is not free either: it takes the meta lock and opens every
    /// segment anew, dropping the doc store's block cache, which costs a search about a third
    /// of its time.
    fn refresh(&self) {
        if self.writer.is_some() {
            return;
        }
        if let Err(e) = self.reader.reload() {
            tracing::warn!(error = %e, "search index reload failed; serving the previous snapshot");
        }
    }

    fn search(
        &self,
        user: UserId,
        query: &SearchQuery,
        limit: usize,
    ) -> Result<Vec<SearchHit>, IndexError> {
        let query = self.build_query(user, query)?;
        self.refresh();
        let searcher = self.reader.searcher();
        let limit = limit.min(usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX));
        if limit == 0 {
            return Ok(Vec::new());
        }
        let collector = TopDocs::with_limit(limit).order_by_fast_field::<i64>("date", Order::Desc);
        let top = searcher
            .search(&query, &collector)
            .map_err(|e| unavailable("searching index", e))?;
        let mut hits = Vec::with_capacity(top.len());
        for (date, address) in top {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(|e| unavailable("reading stored document", e))?;
            hits.push(response::hit(&doc, &self.fields, date)?);
        }
        Ok(hits)
    }

    fn count(&self, user: UserId) -> Result<u64, IndexError> {
        self.refresh();
        let searcher = self.reader.searcher();
        let n = searcher
            .search(&self.user_query(user), &Count)
            .map_err(|e| unavailable("counting documents", e))?;
        Ok(n as u64)
    }
}

#[async_trait::async_trait]
impl SearchIndex for TantivyIndex {
    /// A call after a quiet spell commits at once: a new segment, a reader reload, and a
    /// merge of it later. Mail that trickles in would make a commit per message; 100 ms
    /// gathers it, at most that much added to search visibility. Busier, calls share commits
    /// (see `write`).
    fn gather(&self) -> Duration {
        Duration::from_millis(100)
    }

    async fn index(&self, docs: Vec<IndexDocument>) -> Result<(), IndexError> {
        if self.inner.writer.is_none() {
            return Err(IndexError::ReadOnly);
        }
        if docs.is_empty() {
            return Ok(());
        }
        let n = docs.len();
        if let Some(pending) = self.blocking(move |inner| inner.replace(&docs)).await? {
            self.committed(pending).await?;
        }
        tracing::debug!(documents = n, "indexed documents");
        Ok(())
    }

    async fn search(
        &self,
        user: UserId,
        query: &SearchQuery,
        limit: usize,
    ) -> Result<Vec<SearchHit>, IndexError> {
        let query = query.clone();
        self.blocking(move |inner| inner.search(user, &query, limit))
            .await
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<(), IndexError> {
        self.blocking(move |inner| inner.delete_message(user, id))
            .await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), IndexError> {
        self.blocking(move |inner| inner.delete_user(user)).await
    }

    async fn count(&self, user: UserId) -> Result<u64, IndexError> {
        self.blocking(move |inner| inner.count(user)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use palisade_model::DiscussionId;

    fn doc(user: UserId, subject: &str, body: &str) -> IndexDocument {
        let id = MessageId(uuid::Uuid::new_v4());
        IndexDocument {
            user_id: user,
            message_id: id,
            discussion_id: DiscussionId::started_by(id),
            date: Utc::now(),
            from: vec!["Zoë Ångström <zoe@example.test>".into()],
            to: vec![],
            subject: subject.into(),
            body: body.into(),
            has_attachment: false,
            tags: vec![],
        }
    }

    #[tokio::test]
    async fn folds_accents_and_case() -> Result<(), IndexError> {
        let dir = tempfile::tempdir().map_err(|e| unavailable("tempdir", e))?;
        let index = TantivyIndex::open(dir.path())?;
        let user = UserId::new_random();
        index
            .index(vec![doc(user, "Café CRÈME", "naïve résumé")])
            .await?;
        for (text, from) in [
            (Some("cafe"), None),
            (Some("créme"), None),
            (Some("NAIVE resume"), None),
            (None, Some("zoe")),
            (None, Some("angstrom")),
        ] {
            let query = SearchQuery {
                text: text.map(Into::into),
                from: from.map(Into::into),
                ..Default::default()
            };
            assert_eq!(index.search(user, &query, 10).await?.len(), 1, "{query:?}");
        }
        Ok(())
    }

    /// Whether any segment in the index files at `dir` has `word` in its subject or body
    /// term dictionary, deleted documents included: read from disk by a fresh reader.
    fn word_on_disk(dir: &Path, word: &str) -> Result<bool, IndexError> {
        let index = Index::open_in_dir(dir).map_err(|e| unavailable("opening index", e))?;
        let fields = Fields::from_schema(&index.schema())?;
        let reader = index
            .reader()
            .map_err(|e| unavailable("opening index reader", e))?;
        let searcher = reader.searcher();
        for segment in searcher.segment_readers() {
            for field in [fields.subject, fields.body] {
                let terms = segment
                    .inverted_index(field)
                    .map_err(|e| unavailable("reading terms", e))?;
                if terms
                    .terms()
                    .get(word)
                    .map_err(|e| unavailable("reading terms", e))?
                    .is_some()
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Writes `docs` as the index did before 2026-12-03: each with its `"{user}/{message}"` key.
    fn write_as_before(index: &TantivyIndex, docs: &[&IndexDocument]) -> Result<(), IndexError> {
        let key = index.key_field()?;
        index.inner.write(|writer, fields| {
            for doc in docs {
                let mut old = schema::to_document(fields, doc);
                old.add_text(key, format!("{}/{}", doc.user_id, doc.message_id));
                writer
                    .add_document(old)
                    .map_err(|e| unavailable("adding", e))?;
            }
            Ok(())
        })
    }

    impl TantivyIndex {
        fn key_field(&self) -> Result<::tantivy::schema::Field, IndexError> {
            self.inner
                .index
                .schema()
                .get_field("key")
                .map_err(|e| unavailable("key field", e))
        }

        /// How many live documents have `doc`'s old key.
        fn keyed(&self, doc: &IndexDocument) -> Result<usize, IndexError> {
            let term = ::tantivy::Term::from_field_text(
                self.key_field()?,
                &format!("{}/{}", doc.user_id, doc.message_id),
            );
            let query =
                ::tantivy::query::TermQuery::new(term, ::tantivy::schema::IndexRecordOption::Basic);
            self.inner
                .reader
                .searcher()
                .search(&query, &Count)
                .map_err(|e| unavailable("searching", e))
        }
    }

    #[tokio::test]
    async fn documents_written_with_a_key_are_replaced_and_deleted() -> Result<(), IndexError> {
        let dir = tempfile::tempdir().map_err(|e| unavailable("tempdir", e))?;
        let (user, other) = (UserId::new_random(), UserId::new_random());
        let replaced = doc(user, "zqvxold subject", "zqvxold body");
        let deleted = doc(user, "zqvxdoomed", "body");
        // The same message id in another user's mailbox must survive both.
        let mut twin = replaced.clone();
        twin.user_id = other;
        let index = TantivyIndex::open(dir.path())?;
        write_as_before(&index, &[&replaced, &deleted, &twin])?;
        assert_eq!(index.count(user).await?, 2);
        assert_eq!(index.keyed(&replaced)?, 1);

        let mut newer = replaced.clone();
        newer.subject = "zqvxnew subject".into();
        newer.body = "zqvxnew body".into();
        index.index(vec![newer]).await?;
        index.delete_message(user, deleted.message_id).await?;

        assert_eq!(index.count(user).await?, 1);
        assert_eq!(index.count(other).await?, 1);
        let text = |t: &str| SearchQuery {
            text: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(index.search(user, &text("zqvxold"), 10).await?.len(), 0);
        assert_eq!(index.search(user, &text("zqvxnew"), 10).await?.len(), 1);
        assert_eq!(index.search(other, &text("zqvxold"), 10).await?.len(), 1);
        // The replacement is written without a key; the other user's document keeps its own.
        assert_eq!(index.keyed(&replaced)?, 0);
        assert_eq!(index.keyed(&twin)?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_deleted_users_words_leave_the_index_files() -> Result<(), IndexError> {
        let dir = tempfile::tempdir().map_err(|e| unavailable("tempdir", e))?;
        let index = TantivyIndex::open(dir.path())?;
        let (leaving, staying) = (UserId::new_random(), UserId::new_random());
        // Both users' documents interleaved, so every segment keeps live documents beside
        // the deleted ones (a segment left with none is dropped whole by the commit).
        let docs = (0..20)
            .map(|i| match i % 2 {
                0 => doc(leaving, "zqvxleaving plans", "zqvxleaving body"),
                _ => doc(staying, "kept", "zqvxstaying words"),
            })
            .collect();
        index.index(docs).await?;
        assert!(word_on_disk(dir.path(), "zqvxleaving")?);

        index.delete_user(leaving).await?;

        assert!(
            !word_on_disk(dir.path(), "zqvxleaving")?,
            "the deleted words remain"
        );
        assert!(
            word_on_disk(dir.path(), "zqvxstaying")?,
            "the other user's words went too"
        );
        assert_eq!(index.count(leaving).await?, 0);
        assert_eq!(index.count(staying).await?, 10);
        Ok(())
    }

    fn segments(index: &TantivyIndex) -> Result<usize, IndexError> {
        Ok(index
            .inner
            .index
            .searchable_segment_ids()
            .map_err(|e| unavailable("listing segments", e))?
            .len())
    }

    #[tokio::test]
    async fn batches_soon_after_a_commit_share_the_next_one() -> Result<(), IndexError> {
        let dir = tempfile::tempdir().map_err(|e| unavailable("tempdir", e))?;
        let index = TantivyIndex::open(dir.path())?;
        // Long enough that no batch below comes due before the others have joined it.
        index.inner.set_commit_interval(Duration::from_secs(2))?;
        let user = UserId::new_random();
        // After a quiet spell, a batch commits at once: a segment of its own. It is big
        // enough to tell that mail pours in.
        let first = (0..64).map(|_| doc(user, "first", "busy")).collect();
        index.index(first).await?;
        assert_eq!(segments(&index)?, 1);
        // The next three arrive within the commit interval: all wait for one commit, made by
        // whichever finds it due first, and each call returns only once its documents are
        // searchable.
        let (a, b, c) = tokio::join!(
            index.index(vec![doc(user, "second", "shared")]),
            index.index(vec![doc(user, "third", "shared")]),
            index.index(vec![doc(user, "fourth", "shared")]),
        );
        a?;
        b?;
        c?;
        assert_eq!(segments(&index)?, 2, "one commit for the three batches");
        let shared = SearchQuery {
            text: Some("shared".into()),
            ..Default::default()
        };
        assert_eq!(index.search(user, &shared, 10).await?.len(), 3);
        Ok(())
    }

    /// An index in `dir` holding `first`, and `second` added soon after, waiting for a commit
    /// that does not come due during a test.
    async fn with_a_waiting_batch(
        dir: &Path,
        first: &IndexDocument,
        second: &IndexDocument,
    ) -> Result<(TantivyIndex, PendingCommit), IndexError> {
        let index = TantivyIndex::open(dir)?;
        index.inner.set_commit_interval(Duration::from_secs(640))?;
        index.index(vec![first.clone()]).await?;
        let waiting = index
            .inner
            .replace(std::slice::from_ref(second))?
            .ok_or_else(|| unavailable("batch", "committed at once, soon after a commit"))?;
        Ok((index, waiting))
    }

    #[tokio::test]
    async fn a_deletion_publishes_the_batches_waiting_for_a_commit() -> Result<(), IndexError> {
        let dir = tempfile::tempdir().map_err(|e| unavailable("tempdir", e))?;
        let user = UserId::new_random();
        let gone = doc(user, "first", "deleted");
        let (index, waiting) =
            with_a_waiting_batch(dir.path(), &gone, &doc(user, "second", "waiting")).await?;
        index.delete_message(user, gone.message_id).await?;
        assert_eq!(
            waiting.outcome.borrow().clone(),
            Some(Ok(())),
            "the deletion's commit did not tell the waiting batch"
        );
        assert_eq!(index.count(user).await?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_batches_waiting_for_a_commit() -> Result<(), IndexError> {
        let dir = tempfile::tempdir().map_err(|e| unavailable("tempdir", e))?;
        let user = UserId::new_random();
        let (first, second) = (doc(user, "first", "kept"), doc(user, "second", "discarded"));
        let (index, waiting) = with_a_waiting_batch(dir.path(), &first, &second).await?;
        let failure = IndexError::Unavailable("injected".into());
        let failed = index.inner.write(|_, _| Err(failure.clone()));
        assert_eq!(failed, Err(failure.clone()));
        // Its documents were rolled back with the failed write's: it must be retried.
        assert_eq!(waiting.outcome.borrow().clone(), Some(Err(failure)));
        index.inner.write(|_, _| Ok(()))?;
        assert_eq!(
            index.count(user).await?,
            1,
            "the rolled-back batch was published"
        );
        Ok(())
    }
}
