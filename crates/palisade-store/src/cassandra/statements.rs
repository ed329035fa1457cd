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
/// Summary rows fetched per page of a message list; a list stops reading once it is full.
const SUMMARY_PAGE: i32 = 100;
/// Rows fetched when only the newest few of a discussion matter.
const NEWEST_PAGE: i32 = 4;
/// Rows fetched per page when a whole small partition is read (a discussion's members, a
/// user's drafts).
const MEMBER_PAGE: i32 = 500;
/// Old discussion rows fetched per page by `backfill`: each carries its id sets, so fewer.
const OLD_DISCUSSION_PAGE: i32 = 50;
/// The write time of what `backfill` copies into `discussions_by_id`: older than anything a
/// daemon writes, so a change made since the upgrade (a message marked read, a tag removed,
/// people rebuilt) wins over the copy, and copying again rewrites the same cells unchanged.
pub(crate) const COPY_TIMESTAMP: i64 = 1;

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
    /// Registers a thread's root key unless another delivery did first (see `deliver`).
    pub(crate) claim_thread_key: PreparedStatement,
    /// Registers a thread's root key for its derived discussion, losing to any other write.
    pub(crate) register_root_key: PreparedStatement,
    pub(crate) select_discussion_by_subject: PreparedStatement,
    pub(crate) select_discussion_state: PreparedStatement,
    pub(crate) join_discussion: PreparedStatement,
    pub(crate) add_unread: PreparedStatement,
    pub(crate) remove_unread: PreparedStatement,
    pub(crate) add_trashed: PreparedStatement,
    pub(crate) remove_trashed: PreparedStatement,
    pub(crate) add_tag_pairs: PreparedStatement,
    pub(crate) remove_tag_pairs: PreparedStatement,
    pub(crate) insert_discussion_by_subject: PreparedStatement,
    pub(crate) insert_message: PreparedStatement,
    pub(crate) insert_arrival: PreparedStatement,
    pub(crate) insert_in_discussion: PreparedStatement,
    pub(crate) mark_delivered: PreparedStatement,
    /// Logged batch of `insert_arrival`, `insert_in_discussion`, `insert_month`,
    /// `insert_activity` then `mark_delivered`: a message is listed exactly when it exists.
    pub(crate) commit_message: Batch,
    /// `commit_message` with the whole message row, marked delivered, for the mark: the commit
    /// of a message small enough to be written in one request.
    pub(crate) commit_whole_message: Batch,
    pub(crate) select_message: PreparedStatement,
    /// Summaries of several messages by id, one partition each, in one request.
    pub(crate) select_summaries: PreparedStatement,
    pub(crate) list_first: PreparedStatement,
    pub(crate) list_after: PreparedStatement,
    /// The user's stored-message counter, the stored side of the index watermark.
    pub(crate) count_messages: PreparedStatement,
    /// Adds to (or, negative, takes from) the stored-message counter.
    pub(crate) add_to_count: PreparedStatement,
    /// Clears `uncounted` once a delivered message has been added to its user's count.
    pub(crate) mark_counted: PreparedStatement,
    /// Records that a user has mail in a month.
    pub(crate) insert_month: PreparedStatement,
    /// The months a user has mail in, newest first.
    pub(crate) select_months: PreparedStatement,
    /// The ids listed in the pre-month arrival table, for `backfill`.
    pub(crate) old_arrivals: PreparedStatement,
    /// The rows of the per-user thread key table, for `backfill`.
    pub(crate) old_thread_keys: PreparedStatement,
    /// The rows of the pre-month activity table, for `backfill`.
    pub(crate) old_activity: PreparedStatement,
    /// The sizes listed in one month, to recount a user's messages in `backfill`.
    pub(crate) month_sizes: PreparedStatement,
    /// The rows of the per-user discussion table, for `backfill`.
    pub(crate) old_discussions: PreparedStatement,
    /// What makes several messages members of a discussion, and their flags and tags.
    pub(crate) select_members_in: PreparedStatement,
    /// Adds a copied discussion's scalars and id sets, at [`COPY_TIMESTAMP`].
    pub(crate) copy_discussion: PreparedStatement,
    /// Takes ids the message rows contradict out of a copied row, at [`COPY_TIMESTAMP`].
    pub(crate) uncopy_discussion: PreparedStatement,
    /// Appends a copied discussion's people, at [`COPY_TIMESTAMP`].
    pub(crate) copy_participants: PreparedStatement,
    pub(crate) select_password_hash: PreparedStatement,
    pub(crate) set_password_hash: PreparedStatement,
    /// The user's own Autocrypt key.
    pub(crate) select_autocrypt: PreparedStatement,
    /// Sets or clears it.
    pub(crate) set_autocrypt: PreparedStatement,

    pub(crate) insert_activity: PreparedStatement,
    pub(crate) delete_activity: PreparedStatement,
    pub(crate) activity_first: PreparedStatement,
    pub(crate) activity_after: PreparedStatement,
    pub(crate) select_discussions_in: PreparedStatement,
    pub(crate) select_newest: PreparedStatement,
    pub(crate) select_newest_in: PreparedStatement,
    pub(crate) select_arrivals_since: PreparedStatement,
    pub(crate) select_members: PreparedStatement,
    pub(crate) in_discussion_first: PreparedStatement,
    pub(crate) in_discussion_after: PreparedStatement,
    pub(crate) untouch_discussion: PreparedStatement,

    pub(crate) select_message_state: PreparedStatement,
    pub(crate) set_message_flags: PreparedStatement,
    pub(crate) set_arrival_flags: PreparedStatement,
    pub(crate) set_in_discussion_flags: PreparedStatement,
    pub(crate) set_message_tags: PreparedStatement,
    /// What replacing a message's parsed content reads and rewrites (see `content`).
    pub(crate) select_content: PreparedStatement,
    pub(crate) replace_message_content: PreparedStatement,
    pub(crate) replace_arrival_content: PreparedStatement,
    pub(crate) replace_in_discussion_content: PreparedStatement,
    pub(crate) set_discussion_subject: PreparedStatement,
    pub(crate) set_participants: PreparedStatement,
    /// The tags of several messages by id, with what proves they exist, in one request.
    pub(crate) select_tags_in: PreparedStatement,
    /// Logged batch removing a message's arrival and discussion rows.
    pub(crate) unlist_message: Batch,
    /// Logged batch removing the message row, its arrival claim and its raw bytes.
    pub(crate) forget_message: Batch,

    /// A user's "always load remote content" settings, one, and how many.
    pub(crate) select_remote_trust: PreparedStatement,
    pub(crate) select_remote_trust_entry: PreparedStatement,
    pub(crate) count_remote_trust: PreparedStatement,
    pub(crate) insert_remote_trust: PreparedStatement,
    pub(crate) delete_remote_trust: PreparedStatement,

    pub(crate) select_tags: PreparedStatement,
    pub(crate) select_tag: PreparedStatement,
    pub(crate) insert_tag: PreparedStatement,
    pub(crate) delete_tag: PreparedStatement,
    pub(crate) count_tags: PreparedStatement,
    pub(crate) lock_user: PreparedStatement,
    pub(crate) unlock_user: PreparedStatement,
    pub(crate) claim_tag_name: PreparedStatement,
    pub(crate) take_over_tag_name: PreparedStatement,
    pub(crate) release_tag_name: PreparedStatement,

    pub(crate) contacts_first: PreparedStatement,
    pub(crate) contacts_after: PreparedStatement,
    pub(crate) select_contact: PreparedStatement,
    pub(crate) insert_contact: PreparedStatement,
    pub(crate) delete_contact: PreparedStatement,
    pub(crate) select_contact_address: PreparedStatement,
    pub(crate) claim_contact_address: PreparedStatement,
    pub(crate) take_over_contact_address: PreparedStatement,
    pub(crate) release_contact_address: PreparedStatement,

    pub(crate) select_drafts: PreparedStatement,
    /// Every contact's name and addresses, paged, for recipient autocompletion.
    pub(crate) scan_contact_names: PreparedStatement,
    pub(crate) select_draft: PreparedStatement,
    pub(crate) insert_draft: PreparedStatement,
    pub(crate) delete_draft: PreparedStatement,

    pub(crate) select_attachments: PreparedStatement,
    pub(crate) select_attachment: PreparedStatement,
    pub(crate) insert_attachment: PreparedStatement,
    pub(crate) delete_attachment: PreparedStatement,
    pub(crate) delete_attachments: PreparedStatement,
    pub(crate) select_attachment_chunks: PreparedStatement,
    pub(crate) insert_attachment_chunk: PreparedStatement,
    pub(crate) delete_attachment_chunks: PreparedStatement,
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
                "INSERT INTO {{ks}}.messages_by_arrival_month (user_id, month, {arrival_columns})
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?;
        let insert_in_discussion = p
            .idempotent(&format!(
                "INSERT INTO {{ks}}.messages_by_discussion
                     (user_id, {arrival_columns}, snippet, privacy_json, participants_json)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?;
        let mark_delivered = p
            .idempotent(
                "UPDATE {ks}.messages SET delivered = true, uncounted = true \
                 WHERE user_id = ? AND id = ?",
            )
            .await?;
        let insert_month = p
            .idempotent("INSERT INTO {ks}.mailbox_months (user_id, month) VALUES (?, ?)")
            .await?;
        let insert_activity = p
            .idempotent(
                "INSERT INTO {ks}.discussions_by_activity_month
                     (user_id, month, last_activity, discussion_id)
                 VALUES (?, ?, ?, ?)",
            )
            .await?;
        // The rows that list a message commit together with the write that marks it delivered.
        let commit = |mark: PreparedStatement| {
            let mut batch = Batch::new(BatchType::Logged);
            for listing in [
                &insert_arrival,
                &insert_in_discussion,
                &insert_month,
                &insert_activity,
            ] {
                batch.append_statement(listing.clone());
            }
            batch.append_statement(mark);
            batch.set_is_idempotent(true);
            batch
        };
        let commit_message = commit(mark_delivered.clone());
        let insert_delivered_message = p
            .idempotent(&format!(
                "INSERT INTO {{ks}}.messages ({message_columns}, delivered, uncounted)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, true, true)"
            ))
            .await?;
        let commit_whole_message = commit(insert_delivered_message);

        let mut unlist_message = Batch::new(BatchType::Logged);
        unlist_message.append_statement(
            p.idempotent(
                "DELETE FROM {ks}.messages_by_arrival_month
                 WHERE user_id = ? AND month = ? AND received_at = ? AND id = ?",
            )
            .await?,
        );
        unlist_message.append_statement(
            p.idempotent(
                "DELETE FROM {ks}.messages_by_discussion
                 WHERE user_id = ? AND discussion_id = ? AND received_at = ? AND id = ?",
            )
            .await?,
        );
        unlist_message.set_is_idempotent(true);
        let mut forget_message = Batch::new(BatchType::Logged);
        forget_message.append_statement(
            p.idempotent("DELETE FROM {ks}.messages WHERE user_id = ? AND id = ?")
                .await?,
        );
        forget_message.append_statement(
            p.idempotent("DELETE FROM {ks}.message_claims WHERE user_id = ? AND id = ?")
                .await?,
        );
        forget_message.append_statement(
            p.idempotent("DELETE FROM {ks}.raw_messages WHERE user_id = ? AND sha256 = ?")
                .await?,
        );
        forget_message.set_is_idempotent(true);

        // Summaries are streamed rather than limited: rows a flag update left behind for a
        // message deleted meanwhile are skipped, and the page is filled from the rows after.
        let mut list_first = p
            .idempotent(&format!(
                "SELECT {arrival_columns} FROM {{ks}}.messages_by_arrival_month
                 WHERE user_id = ? AND month = ?"
            ))
            .await?;
        let mut list_after = p
            .idempotent(&format!(
                "SELECT {arrival_columns} FROM {{ks}}.messages_by_arrival_month
                 WHERE user_id = ? AND month = ? AND (received_at, id) < (?, ?)"
            ))
            .await?;
        let mut in_discussion_first = p
            .idempotent(&format!(
                "SELECT {arrival_columns} FROM {{ks}}.messages_by_discussion
                 WHERE user_id = ? AND discussion_id = ?"
            ))
            .await?;
        let mut in_discussion_after = p
            .idempotent(&format!(
                "SELECT {arrival_columns} FROM {{ks}}.messages_by_discussion
                 WHERE user_id = ? AND discussion_id = ? AND (received_at, id) < (?, ?)"
            ))
            .await?;
        for list in [
            &mut list_first,
            &mut list_after,
            &mut in_discussion_first,
            &mut in_discussion_after,
        ] {
            list.set_page_size(SUMMARY_PAGE);
        }
        let mut select_newest = p
            .idempotent(
                "SELECT discussion_id, received_at, raw_size, snippet, privacy_json
                 FROM {ks}.messages_by_discussion WHERE user_id = ? AND discussion_id = ?",
            )
            .await?;
        select_newest.set_page_size(NEWEST_PAGE);
        let mut select_arrivals_since = p
            .idempotent(
                "SELECT received_at, raw_size FROM {ks}.messages_by_discussion
                 WHERE user_id = ? AND discussion_id = ? AND received_at >= ?",
            )
            .await?;
        select_arrivals_since.set_page_size(NEWEST_PAGE);
        let mut select_members = p
            .idempotent(
                "SELECT received_at, raw_size, participants_json FROM {ks}.messages_by_discussion
                 WHERE user_id = ? AND discussion_id = ?
                 ORDER BY received_at ASC, id ASC",
            )
            .await?;
        select_members.set_page_size(MEMBER_PAGE);
        let mut select_drafts = p
            .idempotent("SELECT updated_at, id, draft_json FROM {ks}.drafts WHERE user_id = ?")
            .await?;
        select_drafts.set_page_size(MEMBER_PAGE);
        let mut scan_contact_names = p
            .idempotent("SELECT id, name, addresses_json FROM {ks}.contacts WHERE user_id = ?")
            .await?;
        scan_contact_names.set_page_size(MEMBER_PAGE);

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
        let mut select_attachment_chunks = p
            .idempotent(
                "SELECT chunk, data FROM {ks}.draft_attachment_chunks
                 WHERE user_id = ? AND draft_id = ? AND attachment_id = ?",
            )
            .await?;
        select_attachment_chunks.set_page_size(i32::try_from(per_page).unwrap_or(1));
        let attachment_columns = "id, file_name, content_type, size, created_at, chunks";

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
                    "SELECT raw_sha256, delivered, uncounted FROM {ks}.messages \
                     WHERE user_id = ? AND id = ?",
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
                    "SELECT key, discussion_id FROM {ks}.thread_keys_by_key
                     WHERE user_id = ? AND key IN ?",
                )
                .await?,
            insert_thread_key: p
                .idempotent(
                    "INSERT INTO {ks}.thread_keys_by_key (user_id, key, discussion_id)
                     VALUES (?, ?, ?)",
                )
                .await?,
            claim_thread_key: p
                .lwt(
                    "INSERT INTO {ks}.thread_keys_by_key (user_id, key, discussion_id)
                     VALUES (?, ?, ?) IF NOT EXISTS",
                )
                .await?,
            // The lowest timestamp: any other registration of the key, earlier or later, wins.
            register_root_key: p
                .idempotent(
                    "INSERT INTO {ks}.thread_keys_by_key (user_id, key, discussion_id)
                     VALUES (?, ?, ?) USING TIMESTAMP 1",
                )
                .await?,
            select_discussion_by_subject: p
                .idempotent(
                    "SELECT discussion_id FROM {ks}.discussions_by_subject
                     WHERE user_id = ? AND normalized_subject = ? AND last_activity >= ?
                     LIMIT 1",
                )
                .await?,
            select_discussion_state: p
                .idempotent(
                    "SELECT normalized_subject, participants FROM {ks}.discussions_by_id
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            // One request for everything a delivery changes in the discussion's row: the
            // subject when it starts one, its id, unread mark and new people. An unset
            // subject is left alone and an empty collection adds nothing (Cassandra 5.0 fails
            // on an unset list append). Plain write timestamps: a message deleted and
            // delivered again must be added back after its removal, whatever its arrival
            // time. Activity, snippet and privacy come from messages_by_discussion instead.
            // It appends to a list, so it is not retried by the driver.
            join_discussion: p
                .appending(
                    "UPDATE {ks}.discussions_by_id
                     SET subject = ?, normalized_subject = ?, message_ids = message_ids + ?,
                         unread_ids = unread_ids + ?, participants = participants + ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            add_unread: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET unread_ids = unread_ids + ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            remove_unread: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET unread_ids = unread_ids - ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            add_trashed: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET trashed_ids = trashed_ids + ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            remove_trashed: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET trashed_ids = trashed_ids - ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            add_tag_pairs: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET tag_pairs = tag_pairs + ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            remove_tag_pairs: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET tag_pairs = tag_pairs - ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            untouch_discussion: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id
                     SET participants = ?, message_ids = message_ids - ?,
                         unread_ids = unread_ids - ?, trashed_ids = trashed_ids - ?,
                         tag_pairs = tag_pairs - ?
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
            insert_in_discussion,
            mark_delivered,
            commit_message,
            commit_whole_message,
            unlist_message,
            forget_message,
            select_message: p
                .idempotent(
                    "SELECT delivered, discussion_id, raw_sha256, raw_size, flags_json, tags_json,
                            envelope_json, content_json
                     FROM {ks}.messages WHERE user_id = ? AND id = ?",
                )
                .await?,
            select_summaries: p
                .idempotent(&format!(
                    "SELECT delivered, {arrival_columns} FROM {{ks}}.messages
                     WHERE user_id = ? AND id IN ?"
                ))
                .await?,
            list_first,
            list_after,
            count_messages: p
                .idempotent("SELECT stored FROM {ks}.message_counts WHERE user_id = ?")
                .await?,
            mark_counted: p
                .idempotent("DELETE uncounted FROM {ks}.messages WHERE user_id = ? AND id = ?")
                .await?,
            // A counter update sent twice counts twice: never retried by the driver.
            add_to_count: p
                .appending("UPDATE {ks}.message_counts SET stored = stored + ? WHERE user_id = ?")
                .await?,
            insert_month,
            select_months: p
                .idempotent("SELECT month FROM {ks}.mailbox_months WHERE user_id = ?")
                .await?,
            old_arrivals: {
                let mut old = p
                    .idempotent("SELECT id FROM {ks}.messages_by_arrival WHERE user_id = ?")
                    .await?;
                old.set_page_size(MEMBER_PAGE);
                old
            },
            old_thread_keys: {
                let mut old = p
                    .idempotent("SELECT key, discussion_id FROM {ks}.thread_keys WHERE user_id = ?")
                    .await?;
                old.set_page_size(MEMBER_PAGE);
                old
            },
            old_activity: {
                let mut old = p
                    .idempotent(
                        "SELECT last_activity, discussion_id FROM {ks}.discussions_by_activity
                         WHERE user_id = ?",
                    )
                    .await?;
                old.set_page_size(MEMBER_PAGE);
                old
            },
            month_sizes: {
                let mut sizes = p
                    .idempotent(
                        "SELECT raw_size FROM {ks}.messages_by_arrival_month
                         WHERE user_id = ? AND month = ?",
                    )
                    .await?;
                sizes.set_page_size(MEMBER_PAGE);
                sizes
            },
            old_discussions: {
                let mut old = p
                    .idempotent(
                        "SELECT id, subject, normalized_subject, last_activity, snippet,
                                participants, message_ids
                         FROM {ks}.discussions WHERE user_id = ?",
                    )
                    .await?;
                old.set_page_size(OLD_DISCUSSION_PAGE);
                old
            },
            select_members_in: p
                .idempotent(
                    "SELECT id, delivered, discussion_id, flags_json, tags_json FROM {ks}.messages
                     WHERE user_id = ? AND id IN ?",
                )
                .await?,
            copy_discussion: p
                .idempotent(&format!(
                    "UPDATE {{ks}}.discussions_by_id USING TIMESTAMP {COPY_TIMESTAMP}
                     SET subject = ?, normalized_subject = ?, last_activity = ?, snippet = ?,
                         message_ids = message_ids + ?, unread_ids = unread_ids + ?,
                         trashed_ids = trashed_ids + ?, tag_pairs = tag_pairs + ?
                     WHERE user_id = ? AND id = ?"
                ))
                .await?,
            uncopy_discussion: p
                .idempotent(&format!(
                    "UPDATE {{ks}}.discussions_by_id USING TIMESTAMP {COPY_TIMESTAMP}
                     SET unread_ids = unread_ids - ?, trashed_ids = trashed_ids - ?,
                         tag_pairs = tag_pairs - ?
                     WHERE user_id = ? AND id = ?"
                ))
                .await?,
            copy_participants: p
                .appending(&format!(
                    "UPDATE {{ks}}.discussions_by_id USING TIMESTAMP {COPY_TIMESTAMP}
                     SET participants = participants + ?
                     WHERE user_id = ? AND id = ?"
                ))
                .await?,
            select_password_hash: p
                .idempotent("SELECT password_hash FROM {ks}.users WHERE id = ?")
                .await?,
            set_password_hash: p
                .idempotent("UPDATE {ks}.users SET password_hash = ? WHERE id = ?")
                .await?,
            select_autocrypt: p
                .idempotent("SELECT autocrypt_json FROM {ks}.users WHERE id = ?")
                .await?,
            set_autocrypt: p
                .idempotent("UPDATE {ks}.users SET autocrypt_json = ? WHERE id = ?")
                .await?,

            insert_activity,
            delete_activity: p
                .idempotent(
                    "DELETE FROM {ks}.discussions_by_activity_month
                     WHERE user_id = ? AND month = ? AND last_activity = ? AND discussion_id = ?",
                )
                .await?,
            activity_first: p
                .idempotent(
                    "SELECT last_activity, discussion_id FROM {ks}.discussions_by_activity_month
                     WHERE user_id = ? AND month = ? LIMIT ?",
                )
                .await?,
            activity_after: p
                .idempotent(
                    "SELECT last_activity, discussion_id FROM {ks}.discussions_by_activity_month
                     WHERE user_id = ? AND month = ? AND (last_activity, discussion_id) < (?, ?)
                     LIMIT ?",
                )
                .await?,
            select_discussions_in: p
                .idempotent(
                    "SELECT id, subject, participants, message_ids, unread_ids, trashed_ids,
                            tag_pairs
                     FROM {ks}.discussions_by_id WHERE user_id = ? AND id IN ?",
                )
                .await?,
            select_newest,
            select_newest_in: p
                .idempotent(
                    "SELECT discussion_id, received_at, raw_size, snippet, privacy_json
                     FROM {ks}.messages_by_discussion
                     WHERE user_id = ? AND discussion_id IN ? PER PARTITION LIMIT 1",
                )
                .await?,
            select_arrivals_since,
            select_members,
            in_discussion_first,
            in_discussion_after,

            select_message_state: p
                .idempotent(
                    "SELECT delivered, discussion_id, received_at, raw_sha256, flags_json,
                            tags_json, uncounted
                     FROM {ks}.messages WHERE user_id = ? AND id = ?",
                )
                .await?,
            set_message_flags: p
                .idempotent("UPDATE {ks}.messages SET flags_json = ? WHERE user_id = ? AND id = ?")
                .await?,
            set_arrival_flags: p
                .idempotent(
                    "UPDATE {ks}.messages_by_arrival_month SET flags_json = ?
                     WHERE user_id = ? AND month = ? AND received_at = ? AND id = ?",
                )
                .await?,
            set_in_discussion_flags: p
                .idempotent(
                    "UPDATE {ks}.messages_by_discussion SET flags_json = ?
                     WHERE user_id = ? AND discussion_id = ? AND received_at = ? AND id = ?",
                )
                .await?,
            set_message_tags: p
                .idempotent("UPDATE {ks}.messages SET tags_json = ? WHERE user_id = ? AND id = ?")
                .await?,
            select_content: p
                .idempotent(
                    "SELECT delivered, discussion_id, received_at, content_json
                     FROM {ks}.messages WHERE user_id = ? AND id = ?",
                )
                .await?,
            replace_message_content: p
                .idempotent(
                    "UPDATE {ks}.messages
                     SET date = ?, subject = ?, from_json = ?, parse_error = ?, content_json = ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            replace_arrival_content: p
                .idempotent(
                    "UPDATE {ks}.messages_by_arrival_month
                     SET date = ?, subject = ?, from_json = ?, parse_error = ?
                     WHERE user_id = ? AND month = ? AND received_at = ? AND id = ?",
                )
                .await?,
            replace_in_discussion_content: p
                .idempotent(
                    "UPDATE {ks}.messages_by_discussion
                     SET date = ?, subject = ?, from_json = ?, parse_error = ?, snippet = ?,
                         privacy_json = ?, participants_json = ?
                     WHERE user_id = ? AND discussion_id = ? AND received_at = ? AND id = ?",
                )
                .await?,
            set_discussion_subject: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET subject = ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            set_participants: p
                .idempotent(
                    "UPDATE {ks}.discussions_by_id SET participants = ?
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            select_tags_in: p
                .idempotent(
                    "SELECT id, delivered, discussion_id, tags_json FROM {ks}.messages
                     WHERE user_id = ? AND id IN ?",
                )
                .await?,

            select_tags: p
                .idempotent("SELECT id, name, colour FROM {ks}.tags WHERE user_id = ?")
                .await?,
            select_tag: p
                .idempotent("SELECT name, colour FROM {ks}.tags WHERE user_id = ? AND id = ?")
                .await?,
            insert_tag: p
                .idempotent("INSERT INTO {ks}.tags (user_id, id, name, colour) VALUES (?, ?, ?, ?)")
                .await?,
            delete_tag: p
                .idempotent("DELETE FROM {ks}.tags WHERE user_id = ? AND id = ?")
                .await?,
            count_tags: p
                .idempotent("SELECT COUNT(*) FROM {ks}.tags WHERE user_id = ?")
                .await?,
            select_remote_trust: p
                .idempotent("SELECT kind, value FROM {ks}.remote_trust WHERE user_id = ?")
                .await?,
            select_remote_trust_entry: p
                .idempotent(
                    "SELECT kind FROM {ks}.remote_trust WHERE user_id = ? AND kind = ? AND value = ?",
                )
                .await?,
            count_remote_trust: p
                .idempotent("SELECT COUNT(*) FROM {ks}.remote_trust WHERE user_id = ?")
                .await?,
            insert_remote_trust: p
                .idempotent("INSERT INTO {ks}.remote_trust (user_id, kind, value) VALUES (?, ?, ?)")
                .await?,
            delete_remote_trust: p
                .idempotent(
                    "DELETE FROM {ks}.remote_trust WHERE user_id = ? AND kind = ? AND value = ?",
                )
                .await?,
            lock_user: p
                .lwt(&format!(
                    "INSERT INTO {{ks}}.user_locks (user_id, name, holder) VALUES (?, ?, ?)
                     IF NOT EXISTS USING TTL {}",
                    super::USER_LOCK_TTL.as_secs()
                ))
                .await?,
            unlock_user: p
                .lwt("DELETE FROM {ks}.user_locks WHERE user_id = ? AND name = ? IF holder = ?")
                .await?,
            claim_tag_name: p
                .lwt(
                    "INSERT INTO {ks}.tags_by_name (user_id, name, tag_id, claimed_at)
                     VALUES (?, ?, ?, ?) IF NOT EXISTS",
                )
                .await?,
            take_over_tag_name: p
                .lwt(
                    "UPDATE {ks}.tags_by_name SET tag_id = ?, claimed_at = ?
                     WHERE user_id = ? AND name = ? IF tag_id = ?",
                )
                .await?,
            release_tag_name: p
                .lwt("DELETE FROM {ks}.tags_by_name WHERE user_id = ? AND name = ? IF tag_id = ?")
                .await?,

            contacts_first: p
                .idempotent(
                    "SELECT id, name, addresses_json, public_keys_json, state_json FROM {ks}.contacts
                     WHERE user_id = ? LIMIT ?",
                )
                .await?,
            contacts_after: p
                .idempotent(
                    "SELECT id, name, addresses_json, public_keys_json, state_json FROM {ks}.contacts
                     WHERE user_id = ? AND id > ? LIMIT ?",
                )
                .await?,
            select_contact: p
                .idempotent(
                    "SELECT id, name, addresses_json, public_keys_json, state_json FROM {ks}.contacts
                     WHERE user_id = ? AND id = ?",
                )
                .await?,
            insert_contact: p
                .idempotent(
                    "INSERT INTO {ks}.contacts
                         (user_id, id, name, addresses_json, public_keys_json, state_json)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .await?,
            delete_contact: p
                .idempotent("DELETE FROM {ks}.contacts WHERE user_id = ? AND id = ?")
                .await?,
            select_contact_address: p
                .idempotent(
                    "SELECT contact_id FROM {ks}.contact_addresses
                     WHERE user_id = ? AND address = ?",
                )
                .await?,
            claim_contact_address: p
                .lwt(
                    "INSERT INTO {ks}.contact_addresses (user_id, address, contact_id, claimed_at)
                     VALUES (?, ?, ?, ?) IF NOT EXISTS",
                )
                .await?,
            take_over_contact_address: p
                .lwt(
                    "UPDATE {ks}.contact_addresses SET contact_id = ?, claimed_at = ?
                     WHERE user_id = ? AND address = ? IF contact_id = ?",
                )
                .await?,
            release_contact_address: p
                .lwt(
                    "DELETE FROM {ks}.contact_addresses
                     WHERE user_id = ? AND address = ? IF contact_id = ?",
                )
                .await?,

            select_drafts,
            scan_contact_names,
            select_draft: p
                .idempotent("SELECT draft_json FROM {ks}.drafts WHERE user_id = ? AND id = ?")
                .await?,
            insert_draft: p
                .idempotent(
                    "INSERT INTO {ks}.drafts (user_id, id, updated_at, draft_json)
                     VALUES (?, ?, ?, ?)",
                )
                .await?,
            delete_draft: p
                .idempotent("DELETE FROM {ks}.drafts WHERE user_id = ? AND id = ?")
                .await?,

            select_attachments: p
                .idempotent(&format!(
                    "SELECT {attachment_columns} FROM {{ks}}.draft_attachments
                     WHERE user_id = ? AND draft_id = ?"
                ))
                .await?,
            select_attachment: p
                .idempotent(&format!(
                    "SELECT {attachment_columns} FROM {{ks}}.draft_attachments
                     WHERE user_id = ? AND draft_id = ? AND id = ?"
                ))
                .await?,
            insert_attachment: p
                .idempotent(&format!(
                    "INSERT INTO {{ks}}.draft_attachments (user_id, draft_id, {attachment_columns})
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ))
                .await?,
            delete_attachment: p
                .idempotent(
                    "DELETE FROM {ks}.draft_attachments
                     WHERE user_id = ? AND draft_id = ? AND id = ?",
                )
                .await?,
            delete_attachments: p
                .idempotent("DELETE FROM {ks}.draft_attachments WHERE user_id = ? AND draft_id = ?")
                .await?,
            select_attachment_chunks,
            insert_attachment_chunk: p
                .idempotent(
                    "INSERT INTO {ks}.draft_attachment_chunks
                         (user_id, draft_id, attachment_id, chunk, data)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .await?,
            delete_attachment_chunks: p
                .idempotent(
                    "DELETE FROM {ks}.draft_attachment_chunks
                     WHERE user_id = ? AND draft_id = ? AND attachment_id = ?",
                )
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

    /// A list append: sent twice it appends twice, so the driver must not retry it.
    async fn appending(&self, cql: &str) -> Result<PreparedStatement, StoreError> {
        let mut statement = self.prepare(cql).await?;
        statement.set_is_idempotent(false);
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
