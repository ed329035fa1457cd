//! [`SearchIndex`] backend on an Elasticsearch cluster: one index shared by all users.
//!
//! Reads and writes go through an alias pointing at a versioned index (`{alias}-v{N}`), so
//! the mapping can change by building a new index and swapping the alias
//! ([`ElasticsearchIndex::begin_reindex`], [`ElasticsearchIndex::index_into`],
//! [`ElasticsearchIndex::finish_reindex`]). Every request is routed by user, and every query
//! also filters on the user id: routing only picks a shard, it isolates nothing.
//!
//! Text is analyzed here, with the analyzer of [`crate::analysis`] that tantivy uses too,
//! before it reaches the cluster: both backends then tokenize identically, and the cluster
//! needs nothing beyond the core server (no `analysis-common` tokenizers or filters, no
//! `_delete_by_query`), which is all the development cluster from `devtools/services`
//! provides.

use std::fmt;
use std::time::Duration;

use ::elasticsearch::Elasticsearch;
use ::elasticsearch::auth::Credentials;
use ::elasticsearch::http::headers::HeaderMap;
use ::elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use ::elasticsearch::http::{Method, Url};
use chrono::{DateTime, Utc};
use palisade_config::ElasticsearchConfig;
use palisade_model::{DiscussionId, MessageId, UserId};
use serde_json::{Value, json};
use tantivy::tokenizer::TextAnalyzer;

use crate::analysis::{analyze, analyzer};
use crate::limits::{check_nesting, criterion};
use crate::{IndexDocument, IndexError, SearchHit, SearchIndex, SearchQuery};

/// Version of [`index_body`]'s settings and mapping and of [`crate::analysis`]; bump it
/// whenever either changes, since documents indexed before no longer match queries analyzed
/// after.
pub const MAPPING_VERSION: u32 = 1;

/// Cluster-side analyzer of subject, body and addresses, which arrive already analyzed as
/// space-separated words; lowercasing again only guards against unanalyzed input.
const WORDS_ANALYZER: &str = "palisade_words";
/// Documents deleted per round trip when deleting a user.
const DELETE_BATCH: usize = 5_000;
/// Elasticsearch refuses `from + size` beyond `index.max_result_window` (10 000 by default).
const MAX_RESULT_WINDOW: usize = 10_000;
/// Upper bound on any request, so a hung cluster surfaces as `Unavailable` instead of a stall.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest backend error text kept in an [`IndexError`]; reasons can echo whole queries.
const MAX_REASON_CHARS: usize = 1000;
/// Free-text syntax users may use (`+`, `|`, `-`, quotes, parentheses): no prefix, fuzzy or
/// slop operators, whose cost grows with the index rather than with the query.
const TEXT_FLAGS: &str = "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE";

/// The Elasticsearch search index behind one alias.
#[derive(Clone)]
pub struct ElasticsearchIndex {
    client: Elasticsearch,
    /// Cluster URL without credentials, for logs and `Debug`.
    url: String,
    alias: String,
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

/// Status and decoded body of one HTTP exchange.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error for an unsuccessful reply: `bad_request` builds it for 400, which means the
    /// request itself is wrong; anything else may pass, so it is `Unavailable`.
    fn error(&self, context: &str, bad_request: fn(String) -> IndexError) -> IndexError {
        let message = format!("{context}: HTTP {}: {}", self.status, reason(&self.body));
        if self.status == 400 {
            bad_request(message)
        } else {
            IndexError::Unavailable(message)
        }
    }

    /// The body of a successful reply, otherwise the error `bad_request` builds for a 400.
    fn success(
        self,
        context: &str,
        bad_request: fn(String) -> IndexError,
    ) -> Result<Value, IndexError> {
        if self.is_success() {
            Ok(self.body)
        } else {
            Err(self.error(context, bad_request))
        }
    }
}

/// One index carrying this alias's name and a version suffix.
#[derive(Debug)]
struct Version {
    name: String,
    number: u32,
    aliased: bool,
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
            shards: config.shards,
            replicas: config.replicas,
        })
    }

    /// The alias every read and write goes through.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// Creates `{alias}-v{MAPPING_VERSION}` behind the alias unless the alias already exists.
    pub async fn ensure_index(&self) -> Result<(), IndexError> {
        let current = self.aliased_indices().await?;
        if current.is_empty() {
            let name = self.version_name(MAPPING_VERSION);
            let created = self.create_index(&name, true).await;
            if let Err(e) = created {
                // Another process may have won the race; its index is as good as ours.
                if self.aliased_indices().await?.is_empty() {
                    return Err(e);
                }
            } else {
                tracing::info!(index = %name, alias = %self.alias, "created search index");
            }
            return Ok(());
        }
        let newest = current
            .iter()
            .filter_map(|name| self.version_of(name))
            .max();
        if newest.is_none_or(|v| v < MAPPING_VERSION) {
            tracing::warn!(
                alias = %self.alias,
                indices = ?current,
                mapping_version = MAPPING_VERSION,
                "search index uses an older mapping; run a reindex"
            );
        }
        Ok(())
    }

    /// Creates the next versioned index, with the current mapping and no alias; returns its name.
    pub async fn begin_reindex(&self) -> Result<String, IndexError> {
        let versions = self.versions().await?;
        let leftovers: Vec<&str> = versions
            .iter()
            .filter(|v| !v.aliased)
            .map(|v| v.name.as_str())
            .collect();
        if !leftovers.is_empty() {
            // Possibly an abandoned or concurrent reindex: skip past them, never delete them.
            tracing::warn!(alias = %self.alias, indices = ?leftovers, "versioned indices not behind the alias");
        }
        let newest = versions.iter().map(|v| v.number).max().unwrap_or(0);
        let next = newest
            .max(MAPPING_VERSION.saturating_sub(1))
            .checked_add(1)
            .ok_or_else(|| IndexError::Unavailable("index version overflow".into()))?;
        let name = self.version_name(next);
        self.create_index(&name, false).await?;
        tracing::info!(index = %name, alias = %self.alias, "began reindex");
        Ok(name)
    }

    /// Writes documents into `index_name` (from [`Self::begin_reindex`]) rather than the alias.
    pub async fn index_into(
        &self,
        index_name: &str,
        docs: Vec<IndexDocument>,
    ) -> Result<(), IndexError> {
        self.check_own_index(index_name)?;
        if docs.is_empty() {
            return Ok(());
        }
        // No refresh per batch: nothing searches the new index before `finish_reindex`.
        self.bulk(index_name, index_body_lines(&docs), docs.len(), &[])
            .await
    }

    /// Points the alias at `index_name` in one atomic step, then deletes the indices it left.
    pub async fn finish_reindex(&self, index_name: &str) -> Result<(), IndexError> {
        self.check_own_index(index_name)?;
        // Restore the refresh interval turned off for bulk loading, and publish what was loaded.
        let settings = json!({ "index": { "refresh_interval": null } });
        self.request(
            Method::Put,
            &format!("{index_name}/_settings"),
            &[],
            Some(&settings),
        )
        .await?
        .success("restoring refresh interval", IndexError::Rejected)?;
        self.request(Method::Post, &format!("{index_name}/_refresh"), &[], None)
            .await?
            .success("refreshing new index", IndexError::Rejected)?;
        let old: Vec<String> = self
            .aliased_indices()
            .await?
            .into_iter()
            .filter(|name| name != index_name)
            .collect();
        let mut actions: Vec<Value> = old
            .iter()
            // `must_exist` makes the swap fail if someone else moved the alias meanwhile.
            .map(|name| json!({ "remove": { "index": name, "alias": self.alias, "must_exist": true } }))
            .collect();
        actions.push(json!({ "add": { "index": index_name, "alias": self.alias } }));
        self.request(
            Method::Post,
            "_aliases",
            &[],
            Some(&json!({ "actions": actions })),
        )
        .await?
        .success("swapping alias", IndexError::Rejected)?;
        tracing::info!(index = %index_name, alias = %self.alias, replaced = ?old, "swapped search alias");
        if !old.is_empty() {
            self.request(Method::Delete, &old.join(","), &[], None)
                .await?
                .success(
                    "deleting the replaced index (the alias was swapped)",
                    IndexError::Rejected,
                )?;
        }
        Ok(())
    }

    /// Deletes every versioned index of this alias, and with them the alias; for tests.
    pub async fn drop_all(&self) -> Result<(), IndexError> {
        let names: Vec<String> = self.versions().await?.into_iter().map(|v| v.name).collect();
        if names.is_empty() {
            return Ok(());
        }
        // Explicit names: clusters refuse wildcard deletes (`action.destructive_requires_name`).
        self.request(Method::Delete, &names.join(","), &[], None)
            .await?
            .success("deleting indices", IndexError::Rejected)?;
        Ok(())
    }

    fn version_name(&self, version: u32) -> String {
        format!("{}-v{version}", self.alias)
    }

    /// The version number of `{alias}-v{N}`, `None` for any other name.
    fn version_of(&self, name: &str) -> Option<u32> {
        let digits = name.strip_prefix(self.alias.as_str())?.strip_prefix("-v")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// Refuses index names that are not a version of this alias, so reindex calls cannot
    /// write into or swap in an unrelated index.
    fn check_own_index(&self, name: &str) -> Result<(), IndexError> {
        match self.version_of(name) {
            Some(_) => Ok(()),
            None => Err(IndexError::Rejected(format!(
                "{name:?} is not a versioned index of alias {:?}",
                self.alias
            ))),
        }
    }

    /// Names of the indices the alias points at; empty when the alias does not exist.
    async fn aliased_indices(&self) -> Result<Vec<String>, IndexError> {
        let reply = self
            .request(Method::Get, &format!("_alias/{}", self.alias), &[], None)
            .await?;
        if reply.status == 404 {
            return Ok(Vec::new());
        }
        let body = reply.success("looking up alias", IndexError::Unavailable)?;
        Ok(body
            .as_object()
            .map(|indices| indices.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Every existing `{alias}-v{N}`, whether or not the alias points at it.
    async fn versions(&self) -> Result<Vec<Version>, IndexError> {
        let body = self
            .request(
                Method::Get,
                &format!("{}-v*/_alias", self.alias),
                &[("expand_wildcards", "open,closed")],
                None,
            )
            .await?
            .success("listing indices", IndexError::Unavailable)?;
        let mut versions: Vec<Version> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, info)| {
                Some(Version {
                    number: self.version_of(name)?,
                    aliased: info
                        .get("aliases")
                        .and_then(|a| a.get(&self.alias))
                        .is_some(),
                    name: name.clone(),
                })
            })
            .collect();
        versions.sort_by_key(|v| v.number);
        Ok(versions)
    }

    /// Creates an index with the current settings and mapping, behind the alias or not.
    async fn create_index(&self, name: &str, with_alias: bool) -> Result<(), IndexError> {
        let mut body = index_body(self.shards, self.replicas);
        if with_alias {
            body["aliases"] = json!({ (self.alias.clone()): {} });
        } else {
            // Bulk loading for a reindex: refreshing would only slow it down;
            // `finish_reindex` restores the default.
            body["settings"]["index"]["refresh_interval"] = json!("-1");
        }
        self.request(Method::Put, name, &[], Some(&body))
            .await?
            .success("creating index", IndexError::Unavailable)?;
        Ok(())
    }

    /// Sends one bulk request to `target`; `params` adds e.g. the refresh policy.
    async fn bulk(
        &self,
        target: &str,
        body: String,
        actions: usize,
        params: &[(&str, &str)],
    ) -> Result<(), IndexError> {
        let reply = self
            .send(Method::Post, &format!("{target}/_bulk"), params, Some(body))
            .await?;
        if reply.status == 413 {
            return Err(IndexError::Rejected(format!(
                "a batch of {actions} documents exceeds the cluster's request size limit"
            )));
        }
        let body = reply.success("bulk request", IndexError::Rejected)?;
        bulk_outcome(&body)
    }

    /// Ids of up to [`DELETE_BATCH`] of the user's documents after `cursor` (a sort value),
    /// with the cursor of the last one.
    async fn user_documents(
        &self,
        user: UserId,
        cursor: Option<Value>,
    ) -> Result<(Vec<String>, Option<Value>), IndexError> {
        let mut body = json!({
            "query": { "bool": { "filter": [user_filter(user)] } },
            "size": DELETE_BATCH,
            "_source": false,
            "track_total_hits": false,
            "sort": [{ "message_id": "asc" }],
        });
        if let Some(cursor) = cursor {
            body["search_after"] = cursor;
        }
        let routing = user.to_string();
        let body = self
            .request(
                Method::Post,
                &format!("{}/_search", self.alias),
                &[
                    ("routing", routing.as_str()),
                    ("allow_partial_search_results", "false"),
                ],
                Some(&body),
            )
            .await?
            .success("listing documents to delete", IndexError::Unavailable)?;
        check_shards(&body)?;
        let hits = body
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .ok_or_else(|| IndexError::Unavailable("search response has no hits".into()))?;
        let ids = hits
            .iter()
            .map(|hit| {
                hit.get("_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| IndexError::Unavailable("hit has no _id".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cursor = hits.last().and_then(|hit| hit.get("sort")).cloned();
        Ok((ids, cursor))
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
}

#[async_trait::async_trait]
impl SearchIndex for ElasticsearchIndex {
    async fn index(&self, docs: Vec<IndexDocument>) -> Result<(), IndexError> {
        if docs.is_empty() {
            return Ok(());
        }
        // wait_for: the trait promises the documents are searchable once this returns.
        // require_alias: a write before `ensure_index` must not auto-create a plain index
        // named like the alias, which would block the alias forever.
        self.bulk(
            &self.alias,
            index_body_lines(&docs),
            docs.len(),
            &[("refresh", "wait_for"), ("require_alias", "true")],
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
        let body = search_body(query, size);
        let routing = user.to_string();
        let reply = self
            .request(
                Method::Post,
                &format!("{}/_search", self.alias),
                &[
                    ("routing", routing.as_str()),
                    ("allow_partial_search_results", "false"),
                ],
                Some(&body),
            )
            .await?;
        let body = reply.success("searching", IndexError::InvalidQuery)?;
        parse_hits(&body)
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<(), IndexError> {
        // By id rather than by query: the id embeds the owner, so it cannot reach another
        // user's copy of the same message id.
        self.bulk(
            &self.alias,
            delete_body_lines(user, &[doc_id(user, id)]),
            1,
            &[("refresh", "wait_for"), ("require_alias", "true")],
        )
        .await
    }

    async fn delete_user(&self, user: UserId) -> Result<(), IndexError> {
        // Search-then-delete in pages, as `_delete_by_query` would, but without needing the
        // `reindex` module; documents indexed for the user meanwhile may survive, as there.
        let mut cursor = None;
        let mut deleted_any = false;
        loop {
            let (ids, next) = self.user_documents(user, cursor).await?;
            if ids.is_empty() {
                break;
            }
            let last = ids.len() < DELETE_BATCH;
            // Only the last page waits for a refresh; pages are found by search_after,
            // which does not need earlier deletions to be visible.
            let params: &[(&str, &str)] = if last {
                &[("refresh", "wait_for"), ("require_alias", "true")]
            } else {
                &[("require_alias", "true")]
            };
            self.bulk(
                &self.alias,
                delete_body_lines(user, &ids),
                ids.len(),
                params,
            )
            .await?;
            if last {
                return Ok(());
            }
            deleted_any = true;
            cursor = next;
        }
        if deleted_any {
            // The final full page was deleted without waiting; make that visible too.
            self.request(Method::Post, &format!("{}/_refresh", self.alias), &[], None)
                .await?
                .success("refreshing after delete", IndexError::Unavailable)?;
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

/// Settings and mapping of a new versioned index (see [`MAPPING_VERSION`]).
fn index_body(shards: u32, replicas: u32) -> Value {
    // Hits are sorted by date and never scored, so norms would be dead weight.
    let words = json!({ "type": "text", "analyzer": WORDS_ANALYZER, "norms": false });
    json!({
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
            },
            "analysis": {
                "analyzer": {
                    // Core-server components only, so any Elasticsearch 8 can host the index.
                    WORDS_ANALYZER: {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase"],
                    },
                },
            },
        },
        "mappings": {
            // A typo in a field name must fail loudly, not grow the mapping.
            "dynamic": "strict",
            // Message content is indexed but not kept: the store is the one copy of the mail,
            // hits only need ids and the date, and the analyzed words are no use to anyone.
            "_source": { "excludes": ["from", "to", "subject", "body"] },
            "properties": {
                "user_id": { "type": "keyword" },
                "message_id": { "type": "keyword" },
                "discussion_id": { "type": "keyword", "index": false },
                // Epoch milliseconds, which accepts any date chrono can produce.
                "date": { "type": "date", "format": "epoch_millis" },
                "from": words,
                "to": words,
                "subject": words,
                "body": words,
                "has_attachment": { "type": "boolean" },
                // Longer tags are kept in the document but not searchable, rather than
                // making Lucene reject the whole message for an oversized term.
                "tags": { "type": "keyword", "ignore_above": 8191 },
            },
        },
    })
}

/// `{user}:{message}`: unique per user, so re-indexing replaces instead of duplicating.
fn doc_id(user: UserId, message: MessageId) -> String {
    format!("{user}:{message}")
}

fn user_filter(user: UserId) -> Value {
    json!({ "term": { "user_id": user.to_string() } })
}

/// Free text with its words analyzed like documents and its operators kept.
///
/// Quotes, parentheses, `+`, `|` and a leading `-` stay simple_query_string syntax; the
/// words `AND`, `OR` and `NOT` of the tantivy backend's syntax become `+`, `|` and `-`; any
/// other character separates words, as it does in documents.
fn free_text(analyzer: &mut TextAnalyzer, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut negate_next = false;
    for chunk in text.split_whitespace() {
        match chunk {
            // Conjunction is the default operator already.
            "AND" => continue,
            "OR" => {
                out.push_str(" |");
                continue;
            }
            "NOT" => {
                negate_next = true;
                continue;
            }
            _ => {}
        }
        out.push(' ');
        if std::mem::take(&mut negate_next) {
            out.push('-');
        }
        let mut word = String::new();
        for c in chunk.chars() {
            if c.is_alphanumeric() {
                word.push(c);
                continue;
            }
            out.push_str(&analyze(analyzer, &word));
            word.clear();
            out.push(if matches!(c, '"' | '+' | '-' | '|' | '(' | ')') {
                c
            } else {
                ' '
            });
        }
        out.push_str(&analyze(analyzer, &word));
    }
    out
}

fn source(analyzer: &mut TextAnalyzer, doc: &IndexDocument) -> Value {
    let mut words = |values: &[String]| -> Vec<String> {
        values.iter().map(|v| analyze(analyzer, v)).collect()
    };
    let (from, to) = (words(&doc.from), words(&doc.to));
    json!({
        "user_id": doc.user_id.to_string(),
        "message_id": doc.message_id.to_string(),
        "discussion_id": doc.discussion_id.to_string(),
        "date": doc.date.timestamp_millis(),
        // One value per address, so a phrase cannot span two of them.
        "from": from,
        "to": to,
        "subject": analyze(analyzer, &doc.subject),
        "body": analyze(analyzer, &doc.body),
        "has_attachment": doc.has_attachment,
        "tags": doc.tags,
    })
}

/// Newline-delimited bulk body indexing `docs`, each routed by its owner.
fn index_body_lines(docs: &[IndexDocument]) -> String {
    let mut analyzer = analyzer();
    let mut out = String::new();
    for doc in docs {
        let action = json!({ "index": {
            "_id": doc_id(doc.user_id, doc.message_id),
            "routing": doc.user_id.to_string(),
        } });
        out.push_str(&action.to_string());
        out.push('\n');
        out.push_str(&source(&mut analyzer, doc).to_string());
        out.push('\n');
    }
    out
}

/// Newline-delimited bulk body deleting the user's documents `ids`.
fn delete_body_lines(user: UserId, ids: &[String]) -> String {
    let routing = user.to_string();
    let mut out = String::new();
    for id in ids {
        out.push_str(&json!({ "delete": { "_id": id, "routing": routing } }).to_string());
        out.push('\n');
    }
    out
}

/// A bulk response's per-item results: a missing index or an overloaded or failing node makes
/// the batch `Unavailable` (retrying it is idempotent); otherwise any refused item makes it
/// `Rejected`.
fn bulk_outcome(body: &Value) -> Result<(), IndexError> {
    match body.get("errors").and_then(Value::as_bool) {
        Some(false) => return Ok(()),
        Some(true) => {}
        None => {
            return Err(IndexError::Unavailable(format!(
                "unexpected bulk response: {}",
                reason(body)
            )));
        }
    }
    let items = body.get("items").and_then(Value::as_array);
    let total = items.map_or(0, Vec::len);
    let mut retryable = None;
    let mut rejected = Vec::new();
    for result in items.into_iter().flatten().filter_map(|item| {
        // Each item is `{ "<action>": { ...result } }`.
        item.as_object().and_then(|o| o.values().next())
    }) {
        let Some(error) = result.get("error") else {
            continue;
        };
        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
        let id = result.get("_id").and_then(Value::as_str).unwrap_or("?");
        let what = format!("{id}: HTTP {status}: {}", describe(error));
        // 404 means the target index is missing (`ensure_index` not run yet), not a bad document.
        if status == 404 || status == 429 || status >= 500 {
            retryable.get_or_insert(what);
        } else {
            rejected.push(what);
        }
    }
    if let Some(what) = retryable {
        return Err(IndexError::Unavailable(truncate(format!(
            "bulk indexing: {what}"
        ))));
    }
    match rejected.first() {
        Some(first) => Err(IndexError::Rejected(truncate(format!(
            "{} of {total} documents, first {first}",
            rejected.len()
        )))),
        None => Err(IndexError::Unavailable(
            "bulk response reports errors but no failed item".into(),
        )),
    }
}

/// The bool query for a search: the user filter always comes first, each criterion adds a
/// clause; user input only ever reaches query types that cannot name other fields.
fn build_query(user: UserId, query: &SearchQuery) -> Result<Value, IndexError> {
    let mut analyzer = analyzer();
    let mut filter = vec![user_filter(user)];
    let mut must = Vec::new();
    if let Some(text) = criterion("text", &query.text)? {
        check_nesting(text)?;
        must.push(json!({ "simple_query_string": {
            "query": free_text(&mut analyzer, text),
            "fields": ["subject", "body", "from", "to"],
            "default_operator": "and",
            "flags": TEXT_FLAGS,
            "analyze_wildcard": false,
            "auto_generate_synonyms_phrase_query": false,
        } }));
    }
    // Words in order for addresses, all words for the subject, as the tantivy backend does;
    // a criterion without any word matches nothing.
    let criteria = [
        ("from", &query.from, "match_phrase"),
        ("to", &query.to, "match_phrase"),
        ("subject", &query.subject, "match"),
    ];
    for (field, value, kind) in criteria {
        let Some(value) = criterion(field, value)? else {
            continue;
        };
        let words = analyze(&mut analyzer, value);
        must.push(if words.is_empty() {
            json!({ "match_none": {} })
        } else if kind == "match" {
            json!({ "match": { field: { "query": words, "operator": "and" } } })
        } else {
            json!({ "match_phrase": { field: { "query": words } } })
        });
    }
    if query.after.is_some() || query.before.is_some() {
        let mut range = json!({ "format": "epoch_millis" });
        if let Some(after) = query.after {
            range["gte"] = json!(after.timestamp_millis());
        }
        if let Some(before) = query.before {
            range["lt"] = json!(before.timestamp_millis());
        }
        filter.push(json!({ "range": { "date": range } }));
    }
    if let Some(has) = query.has_attachment {
        filter.push(json!({ "term": { "has_attachment": has } }));
    }
    if let Some(tag) = criterion("tag", &query.tag)? {
        filter.push(json!({ "term": { "tags": tag } }));
    }
    Ok(json!({ "bool": { "filter": filter, "must": must } }))
}

fn search_body(query: Value, size: usize) -> Value {
    json!({
        "query": query,
        "size": size,
        "track_total_hits": false,
        "_source": ["message_id", "discussion_id", "date"],
        // message_id breaks date ties so pages are stable.
        "sort": [{ "date": "desc" }, { "message_id": "desc" }],
    })
}

fn parse_hits(body: &Value) -> Result<Vec<SearchHit>, IndexError> {
    check_shards(body)?;
    let hits = body
        .pointer("/hits/hits")
        .and_then(Value::as_array)
        .ok_or_else(|| IndexError::Unavailable("search response has no hits".into()))?;
    hits.iter()
        .map(|hit| {
            let field = |name: &str| {
                hit.pointer(&format!("/_source/{name}"))
                    .ok_or_else(|| IndexError::Unavailable(format!("hit has no {name}")))
            };
            let text = |name: &str| {
                field(name)?
                    .as_str()
                    .ok_or_else(|| IndexError::Unavailable(format!("hit {name} is not a string")))
            };
            // Dates are stored as epoch millis; an older document may hold a numeric string.
            let millis = match field("date")? {
                Value::String(s) => s.parse::<i64>().ok(),
                v => v.as_i64(),
            }
            .ok_or_else(|| IndexError::Unavailable("hit date is not epoch millis".into()))?;
            Ok(SearchHit {
                message_id: text("message_id")?
                    .parse::<MessageId>()
                    .map_err(|e| unavailable("stored message id", e))?,
                discussion_id: text("discussion_id")?
                    .parse::<DiscussionId>()
                    .map_err(|e| unavailable("stored discussion id", e))?,
                date: DateTime::<Utc>::from_timestamp_millis(millis)
                    .ok_or_else(|| IndexError::Unavailable("stored date out of range".into()))?,
            })
        })
        .collect()
}

/// A reply that skipped shards would be silently incomplete; report it instead.
fn check_shards(body: &Value) -> Result<(), IndexError> {
    let failed = body
        .pointer("/_shards/failed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if failed > 0 {
        return Err(IndexError::Unavailable(format!(
            "{failed} shard(s) failed: {}",
            body.pointer("/_shards/failures/0/reason")
                .map(describe)
                .unwrap_or_default()
        )));
    }
    Ok(())
}

/// Alias names go into URL paths unescaped and get `-vN` appended, so only a conservative
/// subset of Elasticsearch's index-name rules is accepted.
fn validate_alias(alias: &str) -> Result<(), IndexError> {
    let valid = alias.len() <= 200
        && alias
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && alias.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if valid {
        Ok(())
    } else {
        Err(IndexError::Unavailable(format!(
            "invalid elasticsearch.alias {alias:?}: use lowercase letters, digits, '-', '_' and '.'"
        )))
    }
}

/// The most useful text of an error response: the root cause when there is one.
fn reason(body: &Value) -> String {
    let text = match body.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(error @ Value::Object(_)) => describe(error.pointer("/root_cause/0").unwrap_or(error)),
        _ => match body {
            Value::String(s) => s.clone(),
            Value::Null => "empty response".into(),
            other => other.to_string(),
        },
    };
    truncate(text)
}

/// `type: reason (caused by: ...)` of one Elasticsearch error object.
fn describe(error: &Value) -> String {
    let Some(object) = error.as_object() else {
        return truncate(
            error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned),
        );
    };
    let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
    let mut text = format!("{}: {}", field("type"), field("reason"));
    if let Some(cause) = object.get("caused_by") {
        text.push_str(&format!(" (caused by {})", describe(cause)));
    }
    truncate(text)
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_REASON_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
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

fn unavailable(context: &str, e: impl fmt::Display) -> IndexError {
    IndexError::Unavailable(format!("{context}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::MAX_TOKEN_BYTES;
    use crate::limits::{MAX_QUERY_CHARS, MAX_QUERY_NESTING};

    fn user() -> UserId {
        UserId::new_random()
    }

    #[test]
    fn every_query_filters_on_the_user_first() {
        let u = user();
        let queries = [
            SearchQuery::default(),
            SearchQuery {
                text: Some(format!("user_id:{} OR *", user())),
                from: Some("alice".into()),
                to: Some("bob".into()),
                subject: Some("hi".into()),
                after: Some(DateTime::UNIX_EPOCH),
                before: Some(Utc::now()),
                has_attachment: Some(true),
                tag: Some("work".into()),
            },
        ];
        for q in queries {
            let built = build_query(u, &q).unwrap();
            assert_eq!(
                built.pointer("/bool/filter/0"),
                Some(&json!({ "term": { "user_id": u.to_string() } })),
                "{built}"
            );
            assert!(!built.to_string().contains("\"query_string\""), "{built}");
        }
    }

    #[test]
    fn criteria_are_bounded() {
        let long = SearchQuery {
            tag: Some("a".repeat(MAX_QUERY_CHARS + 1)),
            ..Default::default()
        };
        assert!(matches!(
            build_query(user(), &long),
            Err(IndexError::InvalidQuery(_))
        ));
        let nested = SearchQuery {
            text: Some("(".repeat(MAX_QUERY_NESTING + 1)),
            ..Default::default()
        };
        assert!(matches!(
            build_query(user(), &nested),
            Err(IndexError::InvalidQuery(_))
        ));
        let blank = SearchQuery {
            text: Some("  ".into()),
            ..Default::default()
        };
        let built = build_query(user(), &blank).unwrap();
        assert_eq!(built.pointer("/bool/must"), Some(&json!([])));
    }

    #[test]
    fn bulk_items_are_classified() {
        assert_eq!(
            bulk_outcome(&json!({ "errors": false, "items": [] })),
            Ok(())
        );
        let rejected = json!({ "errors": true, "items": [
            { "index": { "_id": "a", "status": 201 } },
            { "index": { "_id": "b", "status": 400,
                "error": { "type": "document_parsing_exception", "reason": "bad date" } } },
        ] });
        match bulk_outcome(&rejected) {
            Err(IndexError::Rejected(m)) => {
                assert!(m.contains("1 of 2") && m.contains("bad date"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        let overloaded = json!({ "errors": true, "items": [
            { "index": { "_id": "b", "status": 400, "error": { "type": "x", "reason": "y" } } },
            { "index": { "_id": "c", "status": 429,
                "error": { "type": "es_rejected_execution_exception", "reason": "queue full" } } },
        ] });
        assert!(matches!(
            bulk_outcome(&overloaded),
            Err(IndexError::Unavailable(_))
        ));
        assert!(matches!(
            bulk_outcome(&json!("<html>bad gateway</html>")),
            Err(IndexError::Unavailable(_))
        ));
    }

    #[test]
    fn bulk_body_routes_and_keys_by_user() {
        let u = user();
        let id = MessageId(uuid::Uuid::new_v4());
        let doc = IndexDocument {
            user_id: u,
            message_id: id,
            discussion_id: DiscussionId::started_by(id),
            date: DateTime::UNIX_EPOCH,
            from: vec![],
            to: vec![],
            subject: "Line\nBREAK".into(),
            body: String::new(),
            has_attachment: false,
            tags: vec![],
        };
        let body = index_body_lines(&[doc]);
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "newlines inside fields stay escaped");
        assert_eq!(lines[0]["index"]["_id"], json!(format!("{u}:{id}")));
        assert_eq!(lines[0]["index"]["routing"], json!(u.to_string()));
        assert_eq!(lines[1]["date"], json!(0));
        assert_eq!(lines[1]["subject"], json!("line break"));
        let deletes = delete_body_lines(u, &[format!("{u}:{id}")]);
        let line: Value = serde_json::from_str(deletes.trim_end()).unwrap();
        assert_eq!(line["delete"]["routing"], json!(u.to_string()));
    }

    #[test]
    fn text_is_analyzed_like_the_tantivy_backend() {
        let mut a = analyzer();
        assert_eq!(
            analyze(&mut a, "Zoë Ångström <zoe@Example.TEST>"),
            "zoe angstrom zoe example test"
        );
        assert_eq!(analyze(&mut a, &"x".repeat(MAX_TOKEN_BYTES + 1)), "");
        assert_eq!(analyze(&mut a, "--"), "");
    }

    #[test]
    fn free_text_keeps_operators_and_splits_words() {
        let mut a = analyzer();
        let cases = [
            ("Café  CRÈME", " cafe creme"),
            ("zoe@example.test", " zoe example test"),
            ("a OR b", " a | b"),
            ("a AND NOT b", " a -b"),
            ("NOT (x OR y)", " -(x | y)"),
            (
                "\"Quarterly Report\" -draft",
                " \"quarterly report\" -draft",
            ),
            ("user_id:abc*", " user id abc "),
        ];
        for (input, expected) in cases {
            assert_eq!(free_text(&mut a, input), expected, "{input:?}");
        }
    }

    #[test]
    fn reasons_prefer_the_root_cause() {
        let body = json!({ "error": {
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
            "root_cause": [{ "type": "too_many_nested_clauses", "reason": "too many" }],
        }, "status": 400 });
        assert_eq!(reason(&body), "too_many_nested_clauses: too many");
        assert_eq!(
            reason(&json!({ "error": "alias [x] missing" })),
            "alias [x] missing"
        );
        assert!(reason(&json!("x".repeat(5000))).chars().count() <= MAX_REASON_CHARS + 1);
    }

    #[test]
    fn aliases_are_validated() {
        for ok in ["palisade-messages", "p1", "a.b_c"] {
            assert!(validate_alias(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "Upper", "-x", "_x", "a/b", "a,b", "a*", "a b", ".hidden",
        ] {
            assert!(validate_alias(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_are_parsed_strictly() {
        let config = ElasticsearchConfig {
            alias: "mail".into(),
            ..Default::default()
        };
        let index = ElasticsearchIndex::connect(&config).unwrap();
        assert_eq!(index.version_of("mail-v1"), Some(1));
        assert_eq!(index.version_of("mail-v12"), Some(12));
        assert_eq!(index.version_of("mail-v"), None);
        assert_eq!(index.version_of("mail-v1x"), None);
        assert_eq!(index.version_of("mail-v-1"), None);
        assert_eq!(index.version_of("mailx-v1"), None);
        assert!(index.check_own_index("other-v1").is_err());
    }
}
