//! Versioned CQL schema, applied in order and recorded in `schema_migrations`.
//!
//! Every table is keyed by `user_id` first, like the embedded store. Statements use
//! `IF NOT EXISTS` so a group that failed half-way can simply be run again; a future group that
//! alters tables must stay re-runnable the same way, because Cassandra has no DDL transactions.

use super::{CassandraStore, corrupt, unavailable};
use crate::StoreError;
use chrono::Utc;
use scylla::statement::Statement;
use scylla::value::CqlTimestamp;
use std::collections::BTreeSet;
use tracing::info;

/// One step of the schema; `{ks}` in a statement stands for the keyspace.
pub(crate) struct Migration {
    /// Position in the history, starting at 1; never reuse or edit a shipped one.
    pub(crate) version: i32,
    /// What the step does, recorded beside the version for operators.
    pub(crate) description: &'static str,
    /// CQL run in order.
    pub(crate) statements: &'static [&'static str],
}

/// The schema's history.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, addresses, raw messages, messages, threads",
        statements: &[
            // A user row is written last by create_user, so its presence means the account is whole.
            "CREATE TABLE IF NOT EXISTS {ks}.users (
            id            uuid PRIMARY KEY,
            name          text,
            created_at    timestamp,
            password_hash text,
            addresses     set<text>
        )",
            "CREATE TABLE IF NOT EXISTS {ks}.users_by_name (
            name    text PRIMARY KEY,
            user_id uuid
        )",
            "CREATE TABLE IF NOT EXISTS {ks}.addresses (
            address text PRIMARY KEY,
            user_id uuid
        )",
            // One partition per stored message, so a large message never makes a large partition;
            // the static columns let a reader prove it got every chunk.
            "CREATE TABLE IF NOT EXISTS {ks}.raw_messages (
            user_id uuid,
            sha256  text,
            chunk   int,
            data    blob,
            size    bigint STATIC,
            chunks  int STATIC,
            PRIMARY KEY ((user_id, sha256), chunk)
        )",
            // First delivery of a message id wins its arrival time, so concurrent redeliveries write
            // identical rows instead of listing the message twice.
            "CREATE TABLE IF NOT EXISTS {ks}.message_claims (
            user_id     uuid,
            id          uuid,
            received_at timestamp,
            PRIMARY KEY ((user_id, id))
        )",
            // Keyed by (user_id, id) together: content_json carries bodies, which would make a
            // per-user partition grow without bound. `delivered` is set together with the
            // arrival row, in one logged batch, and is what makes the message exist.
            "CREATE TABLE IF NOT EXISTS {ks}.messages (
            user_id       uuid,
            id            uuid,
            delivered     boolean,
            discussion_id uuid,
            raw_sha256    text,
            raw_size      bigint,
            received_at   timestamp,
            date          timestamp,
            subject       text,
            from_json     text,
            parse_error   boolean,
            flags_json    text,
            tags_json     text,
            envelope_json text,
            content_json  text,
            PRIMARY KEY ((user_id, id))
        )",
            "CREATE TABLE IF NOT EXISTS {ks}.messages_by_arrival (
            user_id       uuid,
            received_at   timestamp,
            id            uuid,
            discussion_id uuid,
            date          timestamp,
            subject       text,
            from_json     text,
            flags_json    text,
            parse_error   boolean,
            raw_size      bigint,
            PRIMARY KEY ((user_id), received_at, id)
        ) WITH CLUSTERING ORDER BY (received_at DESC, id DESC)",
            "CREATE TABLE IF NOT EXISTS {ks}.thread_keys (
            user_id       uuid,
            key           text,
            discussion_id uuid,
            PRIMARY KEY ((user_id), key)
        )",
            // Sets instead of counters: adding a message id twice is harmless, counting it twice
            // is not. Replaced by discussions_by_id in version 7: no longer read or written.
            "CREATE TABLE IF NOT EXISTS {ks}.discussions (
            user_id            uuid,
            id                 uuid,
            subject            text,
            normalized_subject text,
            last_activity      timestamp,
            snippet            text,
            message_ids        set<uuid>,
            unread_ids         set<uuid>,
            PRIMARY KEY ((user_id), id)
        )",
            // One row per message placed in a discussion, keyed by the discussion's subject: the
            // newest row is the most recently active discussion, read with LIMIT 1.
            "CREATE TABLE IF NOT EXISTS {ks}.discussions_by_subject (
            user_id            uuid,
            normalized_subject text,
            last_activity      timestamp,
            discussion_id      uuid,
            PRIMARY KEY ((user_id, normalized_subject), last_activity, discussion_id)
        ) WITH CLUSTERING ORDER BY (last_activity DESC, discussion_id DESC)",
        ],
    },
    Migration {
        version: 2,
        description: "mailbox: discussion lists, flags, tags, contacts, drafts",
        statements: &[
            // The people of a discussion, one JSON participant per element. Deliveries only append
            // the people they add, so concurrent ones into one discussion lose nobody; readers
            // drop duplicates and cap the list (see merge_participants). Not every server takes
            // IF NOT EXISTS on ALTER ... ADD; `migrate` skips the statement when the column is
            // already there, so a retried group does not fail on it.
            "ALTER TABLE {ks}.discussions ADD participants list<text>",
            // A discussion's messages, newest first; written in the commit batch with the arrival
            // row. The newest row is what a discussion shows (activity, snippet, privacy), so a
            // deletion needs no recomputation of those. participants_json is the message's own
            // From/To/Cc, to rebuild the discussion's people when a message goes.
            "CREATE TABLE IF NOT EXISTS {ks}.messages_by_discussion (
            user_id           uuid,
            discussion_id     uuid,
            received_at       timestamp,
            id                uuid,
            date              timestamp,
            subject           text,
            from_json         text,
            flags_json        text,
            parse_error       boolean,
            raw_size          bigint,
            snippet           text,
            privacy_json      text,
            participants_json text,
            PRIMARY KEY ((user_id, discussion_id), received_at, id)
        ) WITH CLUSTERING ORDER BY (received_at DESC, id DESC)",
            // Discussions by latest arrival. A row is valid when its time is the newest arrival
            // of its discussion; rows left behind by races or failures are skipped by readers.
            "CREATE TABLE IF NOT EXISTS {ks}.discussions_by_activity (
            user_id       uuid,
            last_activity timestamp,
            discussion_id uuid,
            PRIMARY KEY ((user_id), last_activity, discussion_id)
        ) WITH CLUSTERING ORDER BY (last_activity DESC, discussion_id DESC)",
            "CREATE TABLE IF NOT EXISTS {ks}.tags (
            user_id uuid,
            id      uuid,
            name    text,
            PRIMARY KEY ((user_id), id)
        )",
            // Claimed with IF NOT EXISTS before the tag row is written: one tag per name.
            "CREATE TABLE IF NOT EXISTS {ks}.tags_by_name (
            user_id    uuid,
            name       text,
            tag_id     uuid,
            claimed_at timestamp,
            PRIMARY KEY ((user_id), name)
        )",
            // Ids as text, so contacts list in the same order as in the embedded store.
            "CREATE TABLE IF NOT EXISTS {ks}.contacts (
            user_id          uuid,
            id               text,
            name             text,
            addresses_json   text,
            public_keys_json text,
            PRIMARY KEY ((user_id), id)
        )",
            // Claimed with IF NOT EXISTS before the contact row is written: one contact per address.
            "CREATE TABLE IF NOT EXISTS {ks}.contact_addresses (
            user_id    uuid,
            address    text,
            contact_id uuid,
            claimed_at timestamp,
            PRIMARY KEY ((user_id), address)
        )",
            "CREATE TABLE IF NOT EXISTS {ks}.drafts (
            user_id    uuid,
            id         uuid,
            updated_at timestamp,
            draft_json text,
            PRIMARY KEY ((user_id), id)
        )",
        ],
    },
    Migration {
        version: 3,
        description: "per-user locks for checks that span requests (the tag cap)",
        statements: &[
            // Taken with IF NOT EXISTS and a TTL, so a holder that dies frees it by itself.
            "CREATE TABLE IF NOT EXISTS {ks}.user_locks (
            user_id uuid,
            name    text,
            holder  uuid,
            PRIMARY KEY ((user_id), name)
        )",
        ],
    },
    Migration {
        version: 4,
        description: "tag colours, files uploaded to drafts",
        statements: &[
            "ALTER TABLE {ks}.tags ADD colour text",
            // One partition per draft: its few attachments are listed and counted together.
            // The row is written after every chunk, so its presence means the file is whole.
            "CREATE TABLE IF NOT EXISTS {ks}.draft_attachments (
            user_id      uuid,
            draft_id     uuid,
            id           uuid,
            file_name    text,
            content_type text,
            size         bigint,
            created_at   timestamp,
            chunks       int,
            PRIMARY KEY ((user_id, draft_id), id)
        )",
            // One partition per file, in rows of `raw_chunk_bytes`, far below the request cap.
            "CREATE TABLE IF NOT EXISTS {ks}.draft_attachment_chunks (
            user_id       uuid,
            draft_id      uuid,
            attachment_id uuid,
            chunk         int,
            data          blob,
            PRIMARY KEY ((user_id, draft_id, attachment_id), chunk)
        )",
        ],
    },
    Migration {
        version: 5,
        description: "discussion list: trashed messages and tags per discussion",
        statements: &[
            // Ids of the discussion's messages in the trash; a set like unread_ids, so marking
            // twice is harmless, and readers count only ids still in message_ids.
            "ALTER TABLE {ks}.discussions ADD trashed_ids set<uuid>",
            // One `tag:message` element per tag on a message: the discussion's tags are the
            // distinct tags of pairs whose message is still a member. Pairs make removal exact
            // (another message keeping the tag keeps its own pair) and idempotent.
            "ALTER TABLE {ks}.discussions ADD tag_pairs set<text>",
        ],
    },
    Migration {
        version: 6,
        description: "month-bucketed message and activity lists, a user's months, message \
                      counters, thread keys in a partition each",
        statements: &[
            // messages_by_arrival split by month of arrival, so a partition holds at most a
            // month of one user's mail. `palisade-admin migrate` copies the old table in;
            // nothing reads or writes the old one after this migration.
            "CREATE TABLE IF NOT EXISTS {ks}.messages_by_arrival_month (
            user_id       uuid,
            month         int,
            received_at   timestamp,
            id            uuid,
            discussion_id uuid,
            date          timestamp,
            subject       text,
            from_json     text,
            flags_json    text,
            parse_error   boolean,
            raw_size      bigint,
            PRIMARY KEY ((user_id, month), received_at, id)
        ) WITH CLUSTERING ORDER BY (received_at DESC, id DESC)",
            // discussions_by_activity split the same way.
            "CREATE TABLE IF NOT EXISTS {ks}.discussions_by_activity_month (
            user_id       uuid,
            month         int,
            last_activity timestamp,
            discussion_id uuid,
            PRIMARY KEY ((user_id, month), last_activity, discussion_id)
        ) WITH CLUSTERING ORDER BY (last_activity DESC, discussion_id DESC)",
            // The months a user has mail in, newest first: lists walk these instead of probing
            // every month back to some start. Twelve rows a year.
            "CREATE TABLE IF NOT EXISTS {ks}.mailbox_months (
            user_id uuid,
            month   int,
            PRIMARY KEY ((user_id), month)
        ) WITH CLUSTERING ORDER BY (month DESC)",
            // thread_keys held every key of every message of a user in one partition; here a
            // key is its own partition (lookups name their keys).
            "CREATE TABLE IF NOT EXISTS {ks}.thread_keys_by_key (
            user_id       uuid,
            key           text,
            discussion_id uuid,
            PRIMARY KEY ((user_id, key))
        )",
            // Stored messages per user, the stored side of the index watermark: added to by a
            // committed delivery, taken from by a deletion, repaired by `palisade-admin migrate`.
            "CREATE TABLE IF NOT EXISTS {ks}.message_counts (
            user_id uuid PRIMARY KEY,
            stored  counter
        )",
        ],
    },
    Migration {
        version: 7,
        description: "discussion rows in a partition each",
        statements: &[
            // The `discussions` table held every discussion of a user, each with its id sets,
            // in one partition; here a discussion is its own partition (every read names its
            // discussions). Same columns, those added to `discussions` later included;
            // last_activity and snippet are kept for the copy but no longer written (they come
            // from messages_by_discussion). `palisade-admin migrate` copies the old rows in;
            // nothing reads or writes `discussions` after this migration.
            "CREATE TABLE IF NOT EXISTS {ks}.discussions_by_id (
            user_id            uuid,
            id                 uuid,
            subject            text,
            normalized_subject text,
            last_activity      timestamp,
            snippet            text,
            message_ids        set<uuid>,
            unread_ids         set<uuid>,
            participants       list<text>,
            trashed_ids        set<uuid>,
            tag_pairs          set<text>,
            PRIMARY KEY ((user_id, id))
        )",
        ],
    },
    Migration {
        version: 8,
        description: "Autocrypt: contact state (history, key), the user's own key",
        statements: &[
            // What mail taught about a contact, one JSON document written with the row.
            "ALTER TABLE {ks}.contacts ADD state_json text",
            "ALTER TABLE {ks}.users ADD autocrypt_json text",
        ],
    },
    Migration {
        version: 9,
        description: "always load remote content from these senders and domains",
        statements: &[
            // A user's settings in one partition, capped at MAX_REMOTE_TRUST rows.
            "CREATE TABLE IF NOT EXISTS {ks}.remote_trust (
            user_id uuid,
            kind    text,
            value   text,
            PRIMARY KEY ((user_id), kind, value)
        )",
        ],
    },
    Migration {
        version: 10,
        description: "messages delivered but not yet counted",
        statements: &[
            // Set with `delivered`, cleared once the message is counted: a commit applied
            // whose reply was lost is counted by the retry that finds it (deliver.rs).
            "ALTER TABLE {ks}.messages ADD uncounted boolean",
        ],
    },
];

impl CassandraStore {
    /// Creates the keyspace if needed and applies every migration not yet recorded.
    ///
    /// Nodes started together on an empty keyspace race on the same DDL, and Cassandra can
    /// refuse the loser's step for a moment (a table being created, schema disagreement).
    /// Every step is idempotent, so a failed attempt is simply run again after a pause.
    pub async fn migrate(&self) -> Result<u32, StoreError> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            match self.migrate_once().await {
                Ok(applied) => return Ok(applied),
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "schema migration failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt) * 2))
                        .await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One pass of [`Self::migrate`].
    async fn migrate_once(&self) -> Result<u32, StoreError> {
        let ks = &self.keyspace;
        self.ddl(&format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
            self.replication_factor
        ))
        .await?;
        self.ddl(&format!(
            "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (
                version     int PRIMARY KEY,
                description text,
                applied_at  timestamp
            )"
        ))
        .await?;

        let applied_versions = self.applied_versions().await?;
        let record = self
            .session
            .prepare(format!(
                "INSERT INTO {ks}.schema_migrations (version, description, applied_at)
                 VALUES (?, ?, ?)"
            ))
            .await
            .map_err(unavailable)?;
        let mut applied = 0;
        for migration in MIGRATIONS {
            if applied_versions.contains(&migration.version) {
                continue;
            }
            for statement in migration.statements {
                self.ddl_step(&statement.replace("{ks}", ks)).await?;
            }
            // Recorded only once the whole group ran, so a failed group is retried in full.
            self.session
                .execute_unpaged(
                    &record,
                    (
                        migration.version,
                        migration.description,
                        CqlTimestamp(Utc::now().timestamp_millis()),
                    ),
                )
                .await
                .map_err(unavailable)?;
            info!(
                keyspace = %ks,
                version = migration.version,
                description = migration.description,
                "applied schema migration"
            );
            applied += 1;
        }
        // The data statements can only be prepared once their tables exist.
        self.statements().await?;
        Ok(applied)
    }

    async fn applied_versions(&self) -> Result<BTreeSet<i32>, StoreError> {
        let select = self
            .session
            .prepare(format!(
                "SELECT version FROM {}.schema_migrations",
                self.keyspace
            ))
            .await
            .map_err(unavailable)?;
        let result = self
            .session
            .execute_unpaged(&select, ())
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(corrupt)?;
        result
            .rows::<(i32,)>()
            .map_err(corrupt)?
            .map(|row| row.map(|(v,)| v).map_err(corrupt))
            .collect()
    }

    /// Runs one migration statement; an `ALTER TABLE ... ADD` of a column that is already
    /// there (a retried group) is skipped, since CQL cannot say `IF NOT EXISTS` for it.
    async fn ddl_step(&self, cql: &str) -> Result<(), StoreError> {
        let Some((table, column)) = added_column(cql) else {
            return self.ddl(cql).await;
        };
        if self.column_exists(table, column).await? {
            return Ok(());
        }
        match self.ddl(cql).await {
            // Another process added it between the check and the change.
            Err(StoreError::Unavailable(e)) if e.contains("already exist") => Ok(()),
            other => other,
        }
    }

    async fn column_exists(&self, table: &str, column: &str) -> Result<bool, StoreError> {
        let select = self
            .session
            .prepare(
                "SELECT column_name FROM system_schema.columns
                 WHERE keyspace_name = ? AND table_name = ? AND column_name = ?",
            )
            .await
            .map_err(unavailable)?;
        let result = self
            .session
            .execute_unpaged(&select, (self.keyspace.as_str(), table, column))
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(corrupt)?;
        Ok(result.rows_num() > 0)
    }

    /// Schema changes wait for every node to agree, which takes longer than a data request.
    async fn ddl(&self, cql: &str) -> Result<(), StoreError> {
        let mut statement = Statement::new(cql);
        statement.set_request_timeout(Some(self.ddl_timeout));
        self.session
            .query_unpaged(statement, ())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The table and column of an `ALTER TABLE ks.table ADD column type` statement.
fn added_column(cql: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = cql.split_whitespace().collect();
    match words.as_slice() {
        [alter, table_kw, table, add, column, _type, ..]
            if alter.eq_ignore_ascii_case("alter")
                && table_kw.eq_ignore_ascii_case("table")
                && add.eq_ignore_ascii_case("add") =>
        {
            let table = table.rsplit_once('.').map_or(*table, |(_, t)| t);
            Some((table, column))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_columns_are_recognized() {
        assert_eq!(
            added_column("ALTER TABLE ks.discussions ADD participants list<text>"),
            Some(("discussions", "participants"))
        );
        assert_eq!(
            added_column("CREATE TABLE IF NOT EXISTS ks.t (a int PRIMARY KEY)"),
            None
        );
    }

    #[test]
    fn versions_are_consecutive() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).ok(), Some(i + 1));
        }
    }
}
