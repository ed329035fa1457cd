//! Bulk writes: indexing batches of documents, deleting one message or all of a user's, and
//! classifying each item of the cluster's answer as retryable or rejected.
//!
//! Every live write goes to the alias and to the reindex alias (see `alias`) in one bulk
//! request: while a reindex runs, the index being built gets every write the old one gets,
//! so none is lost at the swap; the rest of the time the reindex alias does not exist and its
//! half of the request fails harmlessly (`require_alias` stops it creating an index).

use ::elasticsearch::http::Method;
use palisade_model::UserId;
use serde_json::{Value, json};

use super::ElasticsearchIndex;
use super::query::user_filter;
use super::response::{describe, hits, reason, truncate};
use super::schema::{doc_id, source};
use crate::analysis::analyzer;
use crate::{IndexDocument, IndexError};

/// Documents deleted per round trip when deleting a user.
const DELETE_BATCH: usize = 5_000;
/// Parameters of a write that searches see once it returns, as [`crate::SearchIndex`]
/// promises (`refresh=wait_for`). `require_alias`: a write before `ensure_index` must not
/// auto-create a plain index named like the alias, which would block the alias forever.
pub(super) const VISIBLE_THROUGH_ALIAS: &[(&str, &str)] =
    &[("refresh", "wait_for"), ("require_alias", "true")];
/// Parameters of a write through the alias that need not be visible yet.
const THROUGH_ALIAS: &[(&str, &str)] = &[("require_alias", "true")];

/// Bulk item failures a request expects and ignores.
#[derive(Clone, Copy, Default)]
pub(super) struct Expected<'a> {
    /// This index (the reindex alias) may not exist.
    pub(super) missing: Option<&'a str>,
    /// `create` may find the document already there (written live during a reindex).
    pub(super) conflicts: bool,
}

impl ElasticsearchIndex {
    /// Sends one bulk request to `target` (or to the `_index` of each action when `None`);
    /// `params` adds e.g. the refresh policy.
    pub(super) async fn bulk(
        &self,
        target: Option<&str>,
        body: String,
        actions: usize,
        params: &[(&str, &str)],
        expected: Expected<'_>,
    ) -> Result<(), IndexError> {
        let path = match target {
            Some(target) => format!("{target}/_bulk"),
            None => "_bulk".to_string(),
        };
        let reply = self.send(Method::Post, &path, params, Some(body)).await?;
        if reply.status == 413 {
            return Err(IndexError::Rejected(format!(
                "a batch of {actions} documents exceeds the cluster's request size limit"
            )));
        }
        let body = reply.success("bulk request", IndexError::Rejected)?;
        bulk_outcome(&body, expected)
    }

    /// The indices every live write goes to: the alias and the reindex alias.
    pub(super) fn live_targets(&self) -> [&str; 2] {
        [self.alias.as_str(), self.reindex_alias.as_str()]
    }

    /// What a live write expects: the reindex alias is missing outside a reindex.
    pub(super) fn live_expected(&self) -> Expected<'_> {
        Expected {
            missing: Some(&self.reindex_alias),
            conflicts: false,
        }
    }

    /// Deletes every document of `user`.
    pub(super) async fn delete_user_documents(&self, user: UserId) -> Result<(), IndexError> {
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
            let params = if last {
                VISIBLE_THROUGH_ALIAS
            } else {
                THROUGH_ALIAS
            };
            self.bulk(
                None,
                delete_body_lines(user, &ids, &self.live_targets()),
                ids.len(),
                params,
                self.live_expected(),
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
        let body = self
            .search_user(
                user,
                &body,
                "listing documents to delete",
                IndexError::Unavailable,
            )
            .await?;
        let hits = hits(&body)?;
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
}

/// Newline-delimited bulk body writing `docs` with action `op` (`index`, or `create` to
/// leave a document already there), each routed by its owner, once per index of `targets`
/// (none: the index of the request's path).
pub(super) fn index_body_lines(docs: &[IndexDocument], op: &str, targets: &[&str]) -> String {
    let mut analyzer = analyzer();
    let mut out = String::new();
    for doc in docs {
        let source = source(&mut analyzer, doc).to_string();
        let mut action = json!({
            "_id": doc_id(doc.user_id, doc.message_id),
            "routing": doc.user_id.to_string(),
        });
        for target in targets_or_path(targets) {
            if let Some(target) = target {
                action["_index"] = json!(target);
            }
            out.push_str(&json!({ op: action }).to_string());
            out.push('\n');
            out.push_str(&source);
            out.push('\n');
        }
    }
    out
}

/// Newline-delimited bulk body deleting the user's documents `ids` from each of `targets`.
pub(super) fn delete_body_lines(user: UserId, ids: &[String], targets: &[&str]) -> String {
    let routing = user.to_string();
    let mut out = String::new();
    for id in ids {
        for target in targets_or_path(targets) {
            let mut action = json!({ "_id": id, "routing": routing });
            if let Some(target) = target {
                action["_index"] = json!(target);
            }
            out.push_str(&json!({ "delete": action }).to_string());
            out.push('\n');
        }
    }
    out
}

/// Each target by name, or one unnamed target: the request path's index.
fn targets_or_path<'a>(targets: &[&'a str]) -> Vec<Option<&'a str>> {
    if targets.is_empty() {
        vec![None]
    } else {
        targets.iter().map(|t| Some(*t)).collect()
    }
}

/// A bulk response's per-item results: a missing index or an overloaded or failing node makes
/// the batch `Unavailable` (retrying it is idempotent); otherwise any refused item makes it
/// `Rejected`.
fn bulk_outcome(body: &Value, expected: Expected<'_>) -> Result<(), IndexError> {
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
    let mut expected_only = false;
    for result in items.into_iter().flatten().filter_map(|item| {
        // Each item is `{ "<action>": { ...result } }`.
        item.as_object().and_then(|o| o.values().next())
    }) {
        let Some(error) = result.get("error") else {
            continue;
        };
        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
        let index = result.get("_index").and_then(Value::as_str);
        if (status == 404 && index.is_some() && index == expected.missing)
            || (status == 409 && expected.conflicts)
        {
            expected_only = true;
            continue;
        }
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
        None if expected_only => Ok(()),
        None => Err(IndexError::Unavailable(
            "bulk response reports errors but no failed item".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use palisade_model::{DiscussionId, MessageId};

    fn user() -> UserId {
        UserId::new_random()
    }

    #[test]
    fn bulk_items_are_classified() {
        assert_eq!(
            bulk_outcome(
                &json!({ "errors": false, "items": [] }),
                Expected::default()
            ),
            Ok(())
        );
        let rejected = json!({ "errors": true, "items": [
            { "index": { "_id": "a", "status": 201 } },
            { "index": { "_id": "b", "status": 400,
                "error": { "type": "document_parsing_exception", "reason": "bad date" } } },
        ] });
        match bulk_outcome(&rejected, Expected::default()) {
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
            bulk_outcome(&overloaded, Expected::default()),
            Err(IndexError::Unavailable(_))
        ));
        assert!(matches!(
            bulk_outcome(&json!("<html>bad gateway</html>"), Expected::default()),
            Err(IndexError::Unavailable(_))
        ));
    }

    #[test]
    fn expected_failures_are_ignored_and_only_those() {
        let missing_next = json!({ "errors": true, "items": [
            { "index": { "_index": "mail-v1", "_id": "a", "status": 201 } },
            { "index": { "_index": "mail-reindex", "_id": "a", "status": 404,
                "error": { "type": "index_not_found_exception", "reason": "no such index" } } },
        ] });
        let live = Expected {
            missing: Some("mail-reindex"),
            conflicts: false,
        };
        assert_eq!(bulk_outcome(&missing_next, live), Ok(()));
        assert!(matches!(
            bulk_outcome(&missing_next, Expected::default()),
            Err(IndexError::Unavailable(_))
        ));
        let conflict = json!({ "errors": true, "items": [
            { "create": { "_index": "mail-v2", "_id": "a", "status": 409,
                "error": { "type": "version_conflict_engine_exception", "reason": "exists" } } },
        ] });
        let copy = Expected {
            missing: None,
            conflicts: true,
        };
        assert_eq!(bulk_outcome(&conflict, copy), Ok(()));
        assert!(matches!(
            bulk_outcome(&conflict, live),
            Err(IndexError::Rejected(_))
        ));
    }

    /// A document of `user` with only a subject.
    fn document(user: UserId, subject: &str) -> IndexDocument {
        let id = MessageId(uuid::Uuid::new_v4());
        IndexDocument {
            user_id: user,
            message_id: id,
            discussion_id: DiscussionId::started_by(id),
            date: DateTime::UNIX_EPOCH,
            from: vec![],
            to: vec![],
            subject: subject.into(),
            body: String::new(),
            has_attachment: false,
            tags: vec![],
        }
    }

    #[test]
    fn live_writes_go_to_both_aliases() {
        let u = user();
        let doc = document(u, "s");
        let body = index_body_lines(&[doc], "index", &["mail", "mail-reindex"]);
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["index"]["_index"], json!("mail"));
        assert_eq!(lines[2]["index"]["_index"], json!("mail-reindex"));
        assert_eq!(lines[1], lines[3]);
        let deletes = delete_body_lines(u, &["x".into()], &["mail", "mail-reindex"]);
        assert_eq!(deletes.lines().count(), 2);
    }

    #[test]
    fn bulk_body_routes_and_keys_by_user() {
        let u = user();
        let doc = document(u, "Line\nBREAK");
        let id = doc.message_id;
        let body = index_body_lines(&[doc], "index", &[]);
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "newlines inside fields stay escaped");
        assert_eq!(lines[0]["index"]["_id"], json!(format!("{u}:{id}")));
        assert_eq!(lines[0]["index"]["routing"], json!(u.to_string()));
        assert_eq!(lines[1]["date"], json!(0));
        assert_eq!(lines[1]["subject"], json!("line break"));
        let deletes = delete_body_lines(u, &[format!("{u}:{id}")], &[]);
        let line: Value = serde_json::from_str(deletes.trim_end()).unwrap();
        assert_eq!(line["delete"]["routing"], json!(u.to_string()));
    }
}
