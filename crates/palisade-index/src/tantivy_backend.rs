//! Embedded [`SearchIndex`] backend on tantivy: one on-disk index shared by all users.
//!
//! One process (the LMTP daemon) opens the index with [`TantivyIndex::open`] and writes;
//! others (the API) open it with [`TantivyIndex::open_read_only`] and see each commit.
//! Only what a hit needs is stored; subject, body and addresses are indexed but not kept.

use std::fmt;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use palisade_model::{DiscussionId, MessageId, UserId};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

use crate::analysis;
use crate::limits::{check_nesting, criterion};
use crate::{IndexDocument, IndexError, SearchHit, SearchIndex, SearchQuery};

/// Name the on-disk schema gives the analyzer of subject and body ([`analysis::analyzer`]).
const TEXT_TOKENIZER: &str = "palisade_text";
/// Name the on-disk schema gives the analyzer of addresses: the same one, so `alice` and
/// `example` match `alice@example.test`.
const ADDRESS_TOKENIZER: &str = "palisade_address";
/// Indexing memory budget shared by the writer threads.
const WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// The embedded tantivy search index, read-write or read-only.
pub struct TantivyIndex {
    inner: Arc<Inner>,
}

struct Inner {
    index: Index,
    reader: IndexReader,
    /// `None` for read-only instances.
    writer: Option<Mutex<IndexWriter>>,
    fields: Fields,
}

#[derive(Clone, Copy)]
struct Fields {
    /// `"{user}/{message}"`: the unique key used to replace or delete one document.
    key: Field,
    user_id: Field,
    message_id: Field,
    discussion_id: Field,
    /// Unix microseconds.
    date: Field,
    from: Field,
    to: Field,
    subject: Field,
    body: Field,
    has_attachment: Field,
    tags: Field,
}

impl Fields {
    fn from_schema(schema: &Schema) -> Result<Self, IndexError> {
        let get = |name: &str| {
            schema
                .get_field(name)
                .map_err(|e| IndexError::Unavailable(format!("index schema: {e}")))
        };
        Ok(Fields {
            key: get("key")?,
            user_id: get("user_id")?,
            message_id: get("message_id")?,
            discussion_id: get("discussion_id")?,
            date: get("date")?,
            from: get("from")?,
            to: get("to")?,
            subject: get("subject")?,
            body: get("body")?,
            has_attachment: get("has_attachment")?,
            tags: get("tags")?,
        })
    }
}

fn build_schema() -> Schema {
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let mut builder = Schema::builder();
    builder.add_text_field("key", STRING);
    builder.add_text_field("user_id", STRING | STORED);
    builder.add_text_field("message_id", STRING | STORED);
    builder.add_text_field("discussion_id", STORED);
    builder.add_i64_field("date", FAST | INDEXED | STORED);
    builder.add_text_field("from", text(ADDRESS_TOKENIZER));
    builder.add_text_field("to", text(ADDRESS_TOKENIZER));
    builder.add_text_field("subject", text(TEXT_TOKENIZER));
    builder.add_text_field("body", text(TEXT_TOKENIZER));
    builder.add_bool_field("has_attachment", INDEXED);
    builder.add_text_field("tags", STRING);
    builder.build()
}

fn unavailable(context: &str, e: impl fmt::Display) -> IndexError {
    IndexError::Unavailable(format!("{context}: {e}"))
}

fn doc_key(user: UserId, message: MessageId) -> String {
    format!("{user}/{message}")
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
            .writer(WRITER_MEMORY_BYTES)
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
                writer: writer.map(Mutex::new),
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
}

impl fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("read_only", &self.inner.writer.is_none())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Locks the writer, runs `ops`, then commits and reloads; rolls back when `ops` fails.
    fn write(
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

    fn user_query(&self, user: UserId) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(self.fields.user_id, &user.to_string()),
            IndexRecordOption::Basic,
        ))
    }

    fn refresh(&self) {
        // Cheap when nothing changed; picks up commits made by another process.
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
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .ok_or_else(|| {
                        IndexError::Unavailable("stored document is missing a field".into())
                    })
            };
            let micros =
                date.ok_or_else(|| IndexError::Unavailable("stored document has no date".into()))?;
            hits.push(SearchHit {
                message_id: text(self.fields.message_id)?
                    .parse::<MessageId>()
                    .map_err(|e| unavailable("stored message id", e))?,
                discussion_id: text(self.fields.discussion_id)?
                    .parse::<DiscussionId>()
                    .map_err(|e| unavailable("stored discussion id", e))?,
                date: DateTime::<Utc>::from_timestamp_micros(micros)
                    .ok_or_else(|| IndexError::Unavailable("stored date out of range".into()))?,
            });
        }
        Ok(hits)
    }

    /// The user scope is always the first Must clause; every criterion adds another.
    fn build_query(&self, user: UserId, query: &SearchQuery) -> Result<BooleanQuery, IndexError> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, self.user_query(user))];
        if let Some(text) = criterion("text", &query.text)? {
            check_nesting(text)?;
            let mut parser =
                QueryParser::for_index(&self.index, vec![f.subject, f.body, f.from, f.to]);
            parser.set_conjunction_by_default();
            let (parsed, errors) = parser.parse_query_lenient(text);
            if !errors.is_empty() {
                tracing::debug!(
                    errors = errors.len(),
                    "lenient query parsing skipped parts of a query"
                );
            }
            clauses.push((Occur::Must, parsed));
        }
        if let Some(from) = criterion("from", &query.from)? {
            clauses.push((Occur::Must, phrase(f.from, from)));
        }
        if let Some(to) = criterion("to", &query.to)? {
            clauses.push((Occur::Must, phrase(f.to, to)));
        }
        if let Some(subject) = criterion("subject", &query.subject)? {
            clauses.push((Occur::Must, all_words(f.subject, subject)));
        }
        if query.after.is_some() || query.before.is_some() {
            let bound = |d: Option<DateTime<Utc>>, inclusive: bool| match d {
                None => Bound::Unbounded,
                Some(d) => {
                    let term = Term::from_field_i64(f.date, d.timestamp_micros());
                    if inclusive {
                        Bound::Included(term)
                    } else {
                        Bound::Excluded(term)
                    }
                }
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    bound(query.after, true),
                    bound(query.before, false),
                )),
            ));
        }
        if let Some(has) = query.has_attachment {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_bool(f.has_attachment, has),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(tag) = criterion("tag", &query.tag)? {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.tags, tag),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        Ok(BooleanQuery::new(clauses))
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

/// `text`'s words as terms of `field`, analyzed as documents are.
fn tokens(field: Field, text: &str) -> Vec<Term> {
    analysis::words(&mut analysis::analyzer(), text)
        .iter()
        .map(|word| Term::from_field_text(field, word))
        .collect()
}

/// Words in order (a phrase); a criterion without any word matches nothing.
fn phrase(field: Field, text: &str) -> Box<dyn Query> {
    let mut terms = tokens(field, text);
    match terms.len() {
        0 => Box::new(EmptyQuery),
        1 => Box::new(TermQuery::new(terms.remove(0), IndexRecordOption::Basic)),
        _ => Box::new(PhraseQuery::new(terms)),
    }
}

/// All words, in any order; a criterion without any word matches nothing.
fn all_words(field: Field, text: &str) -> Box<dyn Query> {
    let terms = tokens(field, text);
    if terms.is_empty() {
        return Box::new(EmptyQuery);
    }
    Box::new(BooleanQuery::new(
        terms
            .into_iter()
            .map(|t| {
                (
                    Occur::Must,
                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>,
                )
            })
            .collect(),
    ))
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

fn to_document(fields: &Fields, doc: &IndexDocument) -> TantivyDocument {
    let mut out = TantivyDocument::default();
    out.add_text(fields.key, doc_key(doc.user_id, doc.message_id));
    out.add_text(fields.user_id, doc.user_id.to_string());
    out.add_text(fields.message_id, doc.message_id.to_string());
    out.add_text(fields.discussion_id, doc.discussion_id.to_string());
    out.add_i64(fields.date, doc.date.timestamp_micros());
    for from in &doc.from {
        out.add_text(fields.from, from);
    }
    for to in &doc.to {
        out.add_text(fields.to, to);
    }
    out.add_text(fields.subject, &doc.subject);
    out.add_text(fields.body, &doc.body);
    out.add_bool(fields.has_attachment, doc.has_attachment);
    for tag in &doc.tags {
        out.add_text(fields.tags, tag);
    }
    out
}

#[async_trait::async_trait]
impl SearchIndex for TantivyIndex {
    async fn index(&self, docs: Vec<IndexDocument>) -> Result<(), IndexError> {
        if self.inner.writer.is_none() {
            return Err(IndexError::ReadOnly);
        }
        if docs.is_empty() {
            return Ok(());
        }
        let n = docs.len();
        self.blocking(move |inner| {
            inner.write(|writer, fields| {
                for doc in &docs {
                    // Delete first: a delete only affects documents added before it, so the
                    // replacement added next survives, and so does the last duplicate in `docs`.
                    writer.delete_term(Term::from_field_text(
                        fields.key,
                        &doc_key(doc.user_id, doc.message_id),
                    ));
                    writer
                        .add_document(to_document(fields, doc))
                        .map_err(|e| unavailable("adding document", e))?;
                }
                Ok(())
            })
        })
        .await?;
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
        self.blocking(move |inner| {
            inner.write(|writer, fields| {
                writer.delete_term(Term::from_field_text(fields.key, &doc_key(user, id)));
                Ok(())
            })
        })
        .await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), IndexError> {
        self.blocking(move |inner| {
            inner.write(|writer, fields| {
                writer.delete_term(Term::from_field_text(fields.user_id, &user.to_string()));
                Ok(())
            })
        })
        .await
    }

    async fn count(&self, user: UserId) -> Result<u64, IndexError> {
        self.blocking(move |inner| inner.count(user)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_QUERY_NESTING;

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

    #[test]
    fn nesting_is_bounded() {
        assert!(check_nesting("((a) OR (b))").is_ok());
        assert!(matches!(
            check_nesting(&"(".repeat(MAX_QUERY_NESTING + 1)),
            Err(IndexError::InvalidQuery(_))
        ));
    }
}
