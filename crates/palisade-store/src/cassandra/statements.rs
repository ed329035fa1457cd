//! Every data statement, prepared once per session.

use super::unavailable;
use crate::StoreError;
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

/// Bytes of raw chunks fetched per page; bounds the memory a large message takes in flight.
const RAW_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Users fetched per page when listing every account.
const USER_PAGE: i32 = 1000;

/// The prepared statements of a [`super::CassandraStore`].
pub(crate) struct Statements {
    pub(crate) select_user: PreparedStatement,
    pub(crate) select_all_users: PreparedStatement,
    pub(crate) select_user_by_name: PreparedStatement,
    pub(crate) claim_name: PreparedStatement,
    pub(crate) release_name: PreparedStatement,
    pub(crate) claim_address: PreparedStatement,
    pub(crate) release_address: PreparedStatement,
    pub(crate) insert_user: PreparedStatement,
    pub(crate) delete_user: PreparedStatement,
    pub(crate) select_address: PreparedStatement,
    pub(crate) select_raw_ref: PreparedStatement,
    pub(crate) claim_message: PreparedStatement,
    pub(crate) insert_raw_chunk: PreparedStatement,
    pub(crate) select_raw_chunks: PreparedStatement,
    pub(crate) select_thread_keys: PreparedStatement,
    pub(crate) insert_thread_key: PreparedStatement,
    pub(crate) select_discussion_by_subject: PreparedStatement,
    pub(crate) select_discussion_subject: PreparedStatement,
    pub(crate) start_discussion: PreparedStatement,
    pub(crate) touch_discussion: PreparedStatement,
    pub(crate) insert_discussion_by_subject: PreparedStatement,
    pub(crate) insert_message: PreparedStatement,
    pub(crate) insert_arrival: PreparedStatement,
    pub(crate) mark_delivered: PreparedStatement,
    /// Logged batch of `insert_arrival` then `mark_delivered`: a message is listed exactly
    /// when it exists.
    pub(crate) commit_message: Batch,
    pub(crate) select_message: PreparedStatement,
    pub(crate) list_first: PreparedStatement,
    pub(crate) list_after: PreparedStatement,
}

impl Statements {
    /// Prepares everything against the tables of `ks`, which must exist.
    pub(crate) async fn prepare(
        session: &Session,
        ks: &str,
        raw_chunk_bytes: usize,
    ) -> Result<Statements, StoreError> {
        let p = Preparer { session, ks };
        let message_columns = "user_id, id, discussion_id, raw_sha256, raw_size, received_at, \
             date, subject, from_json, parse_error, flags_json, tags_json, envelope_json, \
             content_json";
        let arrival_columns = "received_at, id, discussion_id, date, subject, from_json, \
             flags_json, parse_error, raw_size";
        let insert_arrival = p
            .idempotent(&format!(
                "INSERT INTO {{ks}}.messages_by_arrival (user_id, {arrival_columns})
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?;
        let mark_delivered = p
            .idempotent("UPDATE {ks}.messages SET delivered = true WHERE user_id = ? AND id = ?")
            .await?;
        let mut commit_message = Batch::new(BatchType::Logged);
        commit_message.append_statement(insert_arrival.clone());
        commit_message.append_statement(mark_delivered.clone());
        commit_message.set_is_idempotent(true);

        let mut select_all_users = p
            .idempotent("SELECT id, name, created_at, addresses FROM {ks}.users")
            .await?;
        select_all_users.set_page_size(USER_PAGE);
        let mut select_raw_chunks = p
            .idempotent(
                "SELECT chunk, data, size, chunks FROM {ks}.raw_messages
                 WHERE user_id = ? AND sha256 = ?",
            )
            .await?;
        let per_page = (RAW_PAGE_BYTES / raw_chunk_bytes.max(1)).clamp(1, 1000);
        select_raw_chunks.set_page_size(i32::try_from(per_page).unwrap_or(1));

        Ok(Statements {
            select_user: p
                .idempotent("SELECT name, created_at, addresses FROM {ks}.users WHERE id = ?")
                .await?,
            select_all_users,
            select_user_by_name: p
                .idempotent("SELECT user_id FROM {ks}.users_by_name WHERE name = ?")
                .await?,
            claim_name: p
                .lwt("INSERT INTO {ks}.users_by_name (name, user_id) VALUES (?, ?) IF NOT EXISTS")
                .await?,
            release_name: p
                .lwt("DELETE FROM {ks}.users_by_name WHERE name = ? IF user_id = ?")
                .await?,
            claim_address: p
                .lwt("INSERT INTO {ks}.addresses (address, user_id) VALUES (?, ?) IF NOT EXISTS")
                .await?,
            release_address: p
                .lwt("DELETE FROM {ks}.addresses WHERE address = ? IF user_id = ?")
                .await?,
            insert_user: p
                .idempotent(
                    "INSERT INTO {ks}.users (id, name, created_at, password_hash, addresses)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .await?,
            delete_user: p.idempotent("DELETE FROM {ks}.users WHERE id = ?").await?,
            select_address: p
                .idempotent("SELECT user_id FROM {ks}.addresses WHERE address = ?")
                .await?,
            select_raw_ref: p
                .idempotent(
                    "SELECT raw_sha256, delivered FROM {ks}.messages WHERE user_id = ? AND id = ?",
                )
                .await?,
            claim_message: p
                .lwt(
                    "INSERT INTO {ks}.message_claims (user_id, id, received_at)
                     VALUES (?, ?, ?) IF NOT EXISTS",
                )
                .await?,
            insert_raw_chunk: p
                .idempotent(
                    "INSERT INTO {ks}.raw_messages (user_id, sha256, chunk, data, size, chunks)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .await?,
            select_raw_chunks,
            select_thread_keys: p
                .idempotent(
                    "SELECT key, discussion_id FROM {ks}.thread_keys
                     WHERE user_id = ? AND key IN ?",
                )
                .await?,
            insert_thread_key: p
                .idempotent(
                    "INSERT INTO {ks}.thread_keys (user_id, key, discussion_id) VALUES (?, ?, ?)",
                )
                .await?,
            select_discussion_by_subject: p
                .idempotent(
                    "SELECT discussion_id FROM {ks}.discussions_by_subject
                     WHERE user_id = ? AND normalized_subject = ? AND last_activity >= ?
                     LIMIT 1",
                )
                .await?,
            select_discussion_subject: p
                .idempotent(
                    "SELECT normalized_subject FROM {ks}.discussions WHERE user_id = ? AND id = ?",
                )
                .await?,
            start_discussion: p
                .idempotent(
                    "UPDATE {ks}.discussions SET subject = ?, normalized_subject = ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            // The write timestamp is the arrival time, so the newest arrival's snippet wins
            // whatever order deliveries land in, and replaying one changes nothing.
            touch_discussion: p
                .idempotent(
                    "UPDATE {ks}.discussions USING TIMESTAMP ?
                     SET last_activity = ?, snippet = ?,
                         message_ids = message_ids + ?, unread_ids = unread_ids + ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            insert_discussion_by_subject: p
                .idempotent(
                    "INSERT INTO {ks}.discussions_by_subject
                         (user_id, normalized_subject, last_activity, discussion_id)
                     VALUES (?, ?, ?, ?)",
                )
                .await?,
            insert_message: p
                .idempotent(&format!(
                    "INSERT INTO {{ks}}.messages ({message_columns})
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ))
                .await?,
            insert_arrival,
            mark_delivered,
            commit_message,
            select_message: p
                .idempotent(
                    "SELECT delivered, discussion_id, raw_sha256, raw_size, flags_json, tags_json,
                            envelope_json, content_json
                     FROM {ks}.messages WHERE user_id = ? AND id = ?",
                )
                .await?,
            list_first: p
                .idempotent(&format!(
                    "SELECT {arrival_columns} FROM {{ks}}.messages_by_arrival
                     WHERE user_id = ? LIMIT ?"
                ))
                .await?,
            list_after: p
                .idempotent(&format!(
                    "SELECT {arrival_columns} FROM {{ks}}.messages_by_arrival
                     WHERE user_id = ? AND (received_at, id) < (?, ?) LIMIT ?"
                ))
                .await?,
        })
    }
}

struct Preparer<'a> {
    session: &'a Session,
    ks: &'a str,
}

impl Preparer<'_> {
    async fn prepare(&self, cql: &str) -> Result<PreparedStatement, StoreError> {
        self.session
            .prepare(cql.replace("{ks}", self.ks))
            .await
            .map_err(unavailable)
    }

    /// Safe to send twice, so the driver may retry it after a timeout.
    async fn idempotent(&self, cql: &str) -> Result<PreparedStatement, StoreError> {
        let mut statement = self.prepare(cql).await?;
        statement.set_is_idempotent(true);
        Ok(statement)
    }

    /// A lightweight transaction: its outcome after a timeout is unknown, so it is not
    /// retried blindly; the serial consistency comes from the session's profile.
    async fn lwt(&self, cql: &str) -> Result<PreparedStatement, StoreError> {
        let mut statement = self.prepare(cql).await?;
        statement.set_is_idempotent(false);
        Ok(statement)
    }
}
