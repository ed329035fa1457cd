//! Index versions behind the alias: creating the first one, reindexing into the next one,
//! and swapping the alias to it in one atomic step.
//!
//! A reindex loses no live write: `begin_reindex` points the reindex alias
//! (`{alias}-reindex`) at the new index before anything is copied, and every live write
//! (see `write`) goes to the alias and the reindex alias alike. So a write either reaches the
//! store before the copy reads it (and is copied), or reaches the new index itself. The copy
//! only creates documents, never overwrites one, so a live write is never undone by an older
//! copy of the same message. The swap moves the alias and drops the reindex alias in one
//! step.

use ::elasticsearch::http::Method;
use serde_json::{Value, json};
use std::time::Duration;

use super::ElasticsearchIndex;
use super::response::check_shards;
use super::schema::{MAPPING_VERSION, index_body};
use super::write::{Expected, index_body_lines};
use crate::{IndexDocument, IndexError};

/// How long one `ensure_index` waits for the index's primary shards; the daemon retries after.
const PRIMARIES_TIMEOUT: Duration = Duration::from_secs(30);
/// How often it asks meanwhile: a new index's shards usually start within a few hundred ms.
const PRIMARIES_POLL: Duration = Duration::from_millis(50);

/// One index carrying this alias's name and a version suffix.
#[derive(Debug)]
struct Version {
    name: String,
    number: u32,
    aliased: bool,
}

impl ElasticsearchIndex {
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
            return self.wait_until_searchable().await;
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
        self.wait_until_searchable().await
    }

    /// Waits until every primary shard behind the alias has started. The alias is listed as
    /// soon as its index is created, a moment before the index can answer: a node that lost
    /// the race to create it, or that starts meanwhile, must not begin serving searches then.
    /// Cluster health cannot tell: it calls a new index yellow while its primaries are still
    /// initializing. So this asks what a search needs, a count that every shard answers.
    async fn wait_until_searchable(&self) -> Result<(), IndexError> {
        let deadline = tokio::time::Instant::now() + PRIMARIES_TIMEOUT;
        loop {
            let counted = self
                .request(Method::Post, &format!("{}/_count", self.alias), &[], None)
                .await?
                .success("counting documents", IndexError::Unavailable)
                .and_then(|body| check_shards(&body));
            match counted {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(PRIMARIES_POLL).await,
            }
        }
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
        // From here on live writes reach the new index too; an abandoned reindex's index
        // stops getting them.
        let mut actions: Vec<Value> = self
            .indices_of(&self.reindex_alias)
            .await?
            .iter()
            .map(|old| json!({ "remove": { "index": old, "alias": self.reindex_alias } }))
            .collect();
        actions.push(json!({ "add": { "index": name, "alias": self.reindex_alias } }));
        self.update_aliases(
            actions,
            "pointing the reindex alias",
            IndexError::Unavailable,
        )
        .await?;
        tracing::info!(index = %name, alias = %self.alias, "began reindex");
        Ok(name)
    }

    /// Applies alias `actions` in one atomic `_aliases` call; a refusal becomes `error`.
    async fn update_aliases(
        &self,
        actions: Vec<Value>,
        what: &str,
        error: fn(String) -> IndexError,
    ) -> Result<(), IndexError> {
        self.request(
            Method::Post,
            "_aliases",
            &[],
            Some(&json!({ "actions": actions })),
        )
        .await?
        .success(what, error)?;
        Ok(())
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
        // `create`: a document already there was written live, and is newer than this copy.
        self.bulk(
            Some(index_name),
            index_body_lines(&docs, "create", &[]),
            docs.len(),
            &[],
            Expected {
                missing: None,
                conflicts: true,
            },
        )
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
        // Writes after the swap reach the new index through the alias alone.
        for building in self.indices_of(&self.reindex_alias).await? {
            actions.push(json!({ "remove": { "index": building, "alias": self.reindex_alias } }));
        }
        self.update_aliases(actions, "swapping alias", IndexError::Rejected)
            .await?;
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
        self.indices_of(&self.alias).await
    }

    /// Names of the indices `alias` points at; empty when it does not exist.
    async fn indices_of(&self, alias: &str) -> Result<Vec<String>, IndexError> {
        let reply = self
            .request(Method::Get, &format!("_alias/{alias}"), &[], None)
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
        }
        // A reindex's new index keeps the default refresh interval: live writes to it ask to
        // wait for a refresh (`refresh=wait_for`), which with refreshes off would never come.
        self.request(Method::Put, name, &[], Some(&body))
            .await?
            .success("creating index", IndexError::Unavailable)?;
        Ok(())
    }
}

/// Alias names go into URL paths unescaped and get `-vN` appended, so only a conservative
/// subset of Elasticsearch's index-name rules is accepted.
pub(super) fn validate_alias(alias: &str) -> Result<(), IndexError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_config::ElasticsearchConfig;

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
