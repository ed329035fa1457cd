//! [`SearchIndex`] backend on an Elasticsearch cluster: one index shared by all users.
//!
//! Reads and writes go through an alias pointing at a versioned index (`{alias}-v{N}`), so
//! the mapping can change by building a new index and swapping the alias
//! ([`ElasticsearchIndex::begin_reindex`], [`ElasticsearchIndex::index_into`],
//! [`ElasticsearchIndex::finish_reindex`]); while a reindex runs, live writes go to both
//! indices, so it loses none of them. Every request is routed by user, and every query
//! also filters on the user id: routing only picks a shard, it isolates nothing.
//!
//! Text is analyzed here, with the analyzer of `analysis` that tantivy uses too,
//! before it reaches the cluster: both backends then tokenize identically, and the cluster
//! needs nothing beyond the core server (no `analysis-common` tokenizers or filters, no
//! `_delete_by_query`), which is all the development cluster from `devtools/services`
//! provides.
//!
//! One concern per file: this one holds the client and the [`SearchIndex`] implementation,
//! which delegates to `alias` (index versions, the alias and reindexing), `schema` (the
//! mapping and the documents sent), `write` (bulk indexing and deletes), `query`
//! (building searches) and `response` (reading replies and errors).

mod alias;
mod query;
mod response;
mod schema;
mod write;

use std::fmt;
use std::time::Duration;

use ::elasticsearch::Elasticsearch;
use ::elasticsearch::auth::Credentials;
use ::elasticsearch::http::headers::HeaderMap;
use ::elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use ::elasticsearch::http::{Method, Url};
use palisade_config::ElasticsearchConfig;
use palisade_model::{MessageId, UserId};
use serde_json::{Value, json};

use crate::{IndexDocument, IndexError, SearchHit, SearchIndex, SearchQuery, unavailable};
use alias::validate_alias;
use query::{build_query, search_body, user_filter};
use response::{Reply, check_shards, parse_hits};
pub use schema::MAPPING_VERSION;
use schema::doc_id;
use write::{VISIBLE_THROUGH_ALIAS, delete_body_lines, index_body_lines};

/// Elasticsearch refuses `from + size` beyond `index.max_result_window` (10 000 by default).
const MAX_RESULT_WINDOW: usize = 10_000;
/// Upper bound on any request, so a hung cluster surfaces as `Unavailable` instead of a stall.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The Elasticsearch search index behind one alias.
#[derive(Clone)]
pub struct ElasticsearchIndex {
    client: Elasticsearch,
    /// Cluster URL without credentials, for logs and `Debug`.
    url: String,
    alias: String,
    /// `{alias}-reindex`: points at the index a reindex is building, for live writes.
    reindex_alias: String,
    shards: u32,
    replicas: u32,
}

impl fmt::Debug for ElasticsearchIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchIndex")
            .field("url", &self.url)
            .field("alias", &self.alias)
            .finish_non_exhaustive()
    }
}

impl ElasticsearchIndex {
    /// Builds a client for the configured cluster; sends nothing (see [`Self::ensure_index`]).
    pub fn connect(config: &ElasticsearchConfig) -> Result<Self, IndexError> {
        validate_alias(&config.alias)?;
        if config.shards == 0 {
            return Err(IndexError::Unavailable(
                "elasticsearch.shards must be at least 1".into(),
            ));
        }
        let mut url =
            Url::parse(&config.url).map_err(|e| unavailable("invalid elasticsearch.url", e))?;
        // Credentials in the URL would be sent twice (by reqwest and by the client); move
        // them to the transport, which is what the client's own `single_node` does.
        let credentials = match url.password() {
            Some(password) if !url.username().is_empty() => {
                let credentials = Credentials::Basic(url.username().into(), password.into());
                url.set_username("")
                    .and_then(|()| url.set_password(None))
                    .map_err(|()| {
                        IndexError::Unavailable("elasticsearch.url cannot carry credentials".into())
                    })?;
                Some(credentials)
            }
            _ => None,
        };
        let shown = url.to_string();
        // The cluster is an internal service: proxies configured for outbound traffic must
        // not intercept it.
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(REQUEST_TIMEOUT)
            .disable_proxy();
        if let Some(credentials) = credentials {
            builder = builder.auth(credentials);
        }
        let transport = builder
            .build()
            .map_err(|e| unavailable("building elasticsearch client", e))?;
        Ok(ElasticsearchIndex {
            client: Elasticsearch::new(transport),
            url: shown,
            alias: config.alias.clone(),
            reindex_alias: format!("{}-reindex", config.alias),
            shards: config.shards,
            replicas: config.replicas,
        })
    }

    /// The alias every read and write goes through.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// Sends a JSON request.
    async fn request(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, IndexError> {
        self.send(method, path, params, body.map(Value::to_string))
            .await
    }

    /// Sends one request; transport failures (refused, timed out, reset) are `Unavailable`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Reply, IndexError> {
        let response = self
            .client
            .send(method, path, HeaderMap::new(), Some(params), body, None)
            .await
            .map_err(|e| unavailable(&format!("elasticsearch at {}", self.url), chain(&e)))?;
        let status = response.status_code().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| unavailable("reading elasticsearch response", e))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            // A proxy or load balancer may answer with HTML; keep it as the error text.
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply { status, body })
    }

    /// Searches the user's documents: routed to the user's shard, and failing rather than
    /// answering from only some shards.
    async fn search_user(
        &self,
        user: UserId,
        body: &Value,
        context: &str,
        bad_request: fn(String) -> IndexError,
    ) -> Result<Value, IndexError> {
        let routing = user.to_string();
        self.request(
            Method::Post,
            &format!("{}/_search", self.alias),
            &[
                ("routing", routing.as_str()),
                ("allow_partial_search_results", "false"),
            ],
            Some(body),
        )
        .await?
        .success(context, bad_request)
    }
}

#[async_trait::async_trait]
impl SearchIndex for ElasticsearchIndex {
    async fn index(&self, docs: Vec<IndexDocument>) -> Result<(), IndexError> {
        if docs.is_empty() {
            return Ok(());
        }
        self.bulk(
            None,
            index_body_lines(&docs, "index", &self.live_targets()),
            docs.len(),
            VISIBLE_THROUGH_ALIAS,
            self.live_expected(),
        )
        .await?;
        tracing::debug!(documents = docs.len(), "indexed documents");
        Ok(())
    }

    async fn search(
        &self,
        user: UserId,
        query: &SearchQuery,
        limit: usize,
    ) -> Result<Vec<SearchHit>, IndexError> {
        let query = build_query(user, query)?;
        let size = limit.min(MAX_RESULT_WINDOW);
        if size == 0 {
            return Ok(Vec::new());
        }
        let body = self
            .search_user(
                user,
                &search_body(query, size),
                "searching",
                IndexError::InvalidQuery,
            )
            .await?;
        parse_hits(&body)
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<(), IndexError> {
        // By id rather than by query: the id embeds the owner, so it cannot reach another
        // user's copy of the same message id.
        self.bulk(
            None,
            delete_body_lines(user, &[doc_id(user, id)], &self.live_targets()),
            1,
            VISIBLE_THROUGH_ALIAS,
            self.live_expected(),
        )
        .await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), IndexError> {
        self.delete_user_documents(user).await?;
        // Deleted documents stay in Lucene segments until a merge; ask for one that drops
        // them, in the background, since it may take long on a large index. Search no
        // longer finds them either way, so a refusal is only logged.
        let expunge = self
            .request(
                Method::Post,
                &format!("{}/_forcemerge", self.alias),
                &[
                    ("only_expunge_deletes", "true"),
                    ("wait_for_completion", "false"),
                ],
                None,
            )
            .await
            .and_then(|reply| reply.success("expunging deletes", IndexError::Unavailable));
        if let Err(e) = expunge {
            tracing::warn!(error = %e, "could not start expunging deleted documents");
        }
        Ok(())
    }

    async fn count(&self, user: UserId) -> Result<u64, IndexError> {
        let routing = user.to_string();
        let body = json!({ "query": { "bool": { "filter": [user_filter(user)] } } });
        let reply = self
            .request(
                Method::Post,
                &format!("{}/_count", self.alias),
                &[("routing", routing.as_str())],
                Some(&body),
            )
            .await?;
        let body = reply.success("counting documents", IndexError::Unavailable)?;
        check_shards(&body)?;
        body.get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| IndexError::Unavailable("count response has no count".into()))
    }
}

/// An error with its causes: transport errors say "error sending request" on top and the
/// useful part ("connection refused", "timed out") underneath.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(cause) = source {
        // Wrappers often display exactly like the error they wrap.
        let next = cause.to_string();
        if next != last {
            text.push_str(": ");
            text.push_str(&next);
        }
        last = next;
        source = cause.source();
    }
    text
}
