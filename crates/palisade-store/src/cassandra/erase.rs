//! Account deletion on Cassandra: every partition of a user's, found from the user's own
//! lists (months, then each month's messages, then each message's keys), deleted before the
//! lists that lead to it, so a run cut short is finished by running it again.
//!
//! Deleting writes tombstones: reads stop returning the data at once, but its bytes stay in
//! SSTables on disk until compaction runs after the table's `gc_grace_seconds` (ten days by
//! default). docs/data-ownership.md says so to operators.

use super::{CassandraStore, json, unavailable};
use crate::StoreError;
use crate::threading::{keys_to_register, root_key, subject_key};
use futures::TryStreamExt;
use palisade_model::{MessageContent, UserId};
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Partitions keyed by the user alone, deleted once what they lead to is gone.
const USER_PARTITIONS: &[&str] = &[
    "messages_by_arrival",
    "thread_keys",
    "discussions",
    "discussions_by_activity",
    "tags",
    "tags_by_name",
    "contacts",
    "contact_addresses",
    "user_locks",
    "message_counts",
    "remote_trust",
];

impl CassandraStore {
    /// Deletes every partition of a user's, the user row last; `false` when the user did not
    /// exist. Without a user row it still sweeps the user's lists, so running it again
    /// removes what a delivery already past the address check wrote after the first run.
    pub(super) async fn erase_user(&self, id: UserId) -> Result<bool, StoreError> {
        let user = self.user_by_id(id.0).await?;
        let st = self.statements().await?;
        let u = id.0;
        // No more mail first: an address without its row answers 550.
        for address in user.iter().flat_map(|user| &user.addresses) {
            self.lwt(&st.release_address, (address.as_str(), u)).await?;
        }
        self.erase_drafts(u).await?;
        let months: Vec<(i32,)> = self
            .erase_rows(
                "SELECT month FROM {ks}.mailbox_months WHERE user_id = ?",
                (u,),
            )
            .await?;
        for (month,) in months {
            let listed: Vec<(Uuid, Option<Uuid>)> = self
                .erase_rows(
                    "SELECT id, discussion_id FROM {ks}.messages_by_arrival_month \
                     WHERE user_id = ? AND month = ?",
                    (u, month),
                )
                .await?;
            self.erase_messages(u, listed).await?;
            for table in ["messages_by_arrival_month", "discussions_by_activity_month"] {
                self.erase_cql(
                    &format!("DELETE FROM {{ks}}.{table} WHERE user_id = ? AND month = ?"),
                    (u, month),
                )
                .await?;
            }
            self.erase_cql(
                "DELETE FROM {ks}.mailbox_months WHERE user_id = ? AND month = ?",
                (u, month),
            )
            .await?;
        }
        // Mail listed only in the table that months replaced (a keyspace not yet migrated).
        let old: Vec<(Uuid, Option<Uuid>)> = self
            .erase_rows(
                "SELECT id, discussion_id FROM {ks}.messages_by_arrival WHERE user_id = ?",
                (u,),
            )
            .await?;
        self.erase_messages(u, old).await?;
        for table in USER_PARTITIONS {
            self.erase_cql(
                &format!("DELETE FROM {{ks}}.{table} WHERE user_id = ?"),
                (u,),
            )
            .await?;
        }
        self.erase_cql("DELETE FROM {ks}.mailbox_months WHERE user_id = ?", (u,))
            .await?;
        let Some(user) = user else {
            return Ok(false);
        };
        self.lwt(&st.release_name, (user.name.as_str(), u)).await?;
        self.execute(&st.delete_user, (u,)).await?;
        Ok(true)
    }

    /// Deletes listed messages: raw bytes, thread keys, subject keys and rows, then the
    /// partitions of their discussions.
    async fn erase_messages(
        &self,
        u: Uuid,
        listed: Vec<(Uuid, Option<Uuid>)>,
    ) -> Result<(), StoreError> {
        let mut discussions = BTreeSet::new();
        for (m, discussion) in listed {
            discussions.extend(discussion);
            let row: Option<(Option<String>, Option<String>, Option<Uuid>)> = self
                .erase_rows(
                    "SELECT raw_sha256, content_json, discussion_id FROM {ks}.messages \
                     WHERE user_id = ? AND id = ?",
                    (u, m),
                )
                .await?
                .into_iter()
                .next();
            let (sha256, content, discussion) = row.unwrap_or_default();
            discussions.extend(discussion);
            if let Some(sha256) = sha256 {
                self.erase_cql(
                    "DELETE FROM {ks}.raw_messages WHERE user_id = ? AND sha256 = ?",
                    (u, sha256.as_str()),
                )
                .await?;
            }
            if let Some(content) = content {
                let content: MessageContent = json(&content, "content")?;
                let keys: BTreeSet<String> = keys_to_register(&content)
                    .chain(root_key(&content))
                    .map(|k| k.into_owned())
                    .collect();
                for key in keys {
                    self.erase_cql(
                        "DELETE FROM {ks}.thread_keys_by_key WHERE user_id = ? AND key = ?",
                        (u, key.as_str()),
                    )
                    .await?;
                }
                if let Some(subject) = subject_key(&content) {
                    self.erase_cql(
                        "DELETE FROM {ks}.discussions_by_subject \
                         WHERE user_id = ? AND normalized_subject = ?",
                        (u, subject.as_ref()),
                    )
                    .await?;
                }
            }
            for table in ["messages", "message_claims"] {
                self.erase_cql(
                    &format!("DELETE FROM {{ks}}.{table} WHERE user_id = ? AND id = ?"),
                    (u, m),
                )
                .await?;
            }
        }
        for d in discussions {
            self.erase_cql(
                "DELETE FROM {ks}.messages_by_discussion WHERE user_id = ? AND discussion_id = ?",
                (u, d),
            )
            .await?;
            self.erase_cql(
                "DELETE FROM {ks}.discussions_by_id WHERE user_id = ? AND id = ?",
                (u, d),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes the user's drafts and the files uploaded to them.
    async fn erase_drafts(&self, u: Uuid) -> Result<(), StoreError> {
        let drafts: Vec<(Uuid,)> = self
            .erase_rows("SELECT id FROM {ks}.drafts WHERE user_id = ?", (u,))
            .await?;
        for (d,) in drafts {
            let files: Vec<(Uuid,)> = self
                .erase_rows(
                    "SELECT id FROM {ks}.draft_attachments WHERE user_id = ? AND draft_id = ?",
                    (u, d),
                )
                .await?;
            for (a,) in files {
                self.erase_cql(
                    "DELETE FROM {ks}.draft_attachment_chunks \
                     WHERE user_id = ? AND draft_id = ? AND attachment_id = ?",
                    (u, d, a),
                )
                .await?;
            }
            self.erase_cql(
                "DELETE FROM {ks}.draft_attachments WHERE user_id = ? AND draft_id = ?",
                (u, d),
            )
            .await?;
        }
        self.erase_cql("DELETE FROM {ks}.drafts WHERE user_id = ?", (u,))
            .await
    }

    /// Runs one deletion; `{ks}` stands for the keyspace. Unprepared: deletion is rare, and
    /// these statements are used by nothing else.
    async fn erase_cql(&self, cql: &str, values: impl SerializeRow) -> Result<(), StoreError> {
        self.session
            .query_unpaged(cql.replace("{ks}", &self.keyspace), values)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Reads every row of one of the user's partitions, page by page.
    async fn erase_rows<R>(
        &self,
        cql: &str,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + 'static,
    {
        self.session
            .query_iter(cql.replace("{ks}", &self.keyspace), values)
            .await
            .map_err(unavailable)?
            .rows_stream::<R>()
            .map_err(super::corrupt)?
            .map_err(super::next_row)
            .try_collect()
            .await
    }
}
