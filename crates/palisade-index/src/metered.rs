//! A search index that records the latency and failures of every operation, by backend and
//! operation, around any other index: installed once where the daemon opens its backend.

use crate::{IndexDocument, IndexError, SearchHit, SearchIndex, SearchQuery};
use async_trait::async_trait;
use palisade_metrics::observe;
use palisade_model::{MessageId, UserId};
use std::sync::Arc;
use std::time::Duration;

/// A search index whose operations are timed and whose failures are counted.
pub struct Metered {
    inner: Arc<dyn SearchIndex>,
    /// The `backend` label: `tantivy` or `elasticsearch`.
    backend: &'static str,
}

impl Metered {
    /// Meters `inner`, labelled `backend`.
    pub fn new(inner: Arc<dyn SearchIndex>, backend: &'static str) -> Self {
        Metered { inner, backend }
    }
}

/// The `error` label of a failure.
fn error_kind(e: &IndexError) -> &'static str {
    match e {
        IndexError::Unavailable(_) => "unavailable",
        IndexError::InvalidQuery(_) => "invalid_query",
        IndexError::ReadOnly => "read_only",
        IndexError::Rejected(_) => "rejected",
    }
}

#[async_trait]
impl SearchIndex for Metered {
    fn gather(&self) -> Duration {
        self.inner.gather()
    }

    async fn index(&self, docs: Vec<IndexDocument>) -> Result<(), IndexError> {
        observe(self.backend, "index", error_kind, self.inner.index(docs)).await
    }

    async fn search(
        &self,
        user: UserId,
        query: &SearchQuery,
        limit: usize,
    ) -> Result<Vec<SearchHit>, IndexError> {
        observe(
            self.backend,
            "search",
            error_kind,
            self.inner.search(user, query, limit),
        )
        .await
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<(), IndexError> {
        observe(
            self.backend,
            "delete_message",
            error_kind,
            self.inner.delete_message(user, id),
        )
        .await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), IndexError> {
        observe(
            self.backend,
            "delete_user",
            error_kind,
            self.inner.delete_user(user),
        )
        .await
    }

    async fn count(&self, user: UserId) -> Result<u64, IndexError> {
        observe(self.backend, "count", error_kind, self.inner.count(user)).await
    }
}
