//! Versioned schema of the embedded store, applied in order and recorded in `user_version`.
//!
//! Tables mirror the Cassandra design: everything about mail is keyed by `user_id` first.

use rusqlite::Connection;

/// Each entry moves the schema from version `index` to `index + 1`; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    password_hash TEXT
);
CREATE TABLE addresses (
    address TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id)
);
CREATE INDEX addresses_by_user ON addresses(user_id);
CREATE TABLE raw_messages (
    user_id TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    size    INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (user_id, sha256)
);
CREATE TABLE messages (
    user_id       TEXT NOT NULL,
    id            TEXT NOT NULL,
    discussion_id TEXT NOT NULL,
    raw_sha256    TEXT NOT NULL,
    raw_size      INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    date          INTEGER,
    subject       TEXT,
    from_json     TEXT,
    parse_error   INTEGER NOT NULL,
    flags_json    TEXT NOT NULL,
    tags_json     TEXT NOT NULL,
    envelope_json TEXT NOT NULL,
    content_json  TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX messages_by_arrival ON messages(user_id, received_at DESC, id DESC);
CREATE INDEX messages_by_discussion ON messages(user_id, discussion_id, received_at);
CREATE TABLE thread_keys (
    user_id       TEXT NOT NULL,
    key           TEXT NOT NULL,
    discussion_id TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE TABLE discussions (
    user_id            TEXT NOT NULL,
    id                 TEXT NOT NULL,
    subject            TEXT,
    normalized_subject TEXT,
    last_activity      INTEGER NOT NULL,
    message_count      INTEGER NOT NULL,
    unread_count       INTEGER NOT NULL,
    snippet            TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX discussions_by_subject ON discussions(user_id, normalized_subject, last_activity);
CREATE INDEX discussions_by_activity ON discussions(user_id, last_activity DESC);
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (user_id, kind, message_id)
);
CREATE INDEX jobs_due ON jobs(state, next_attempt_at);
"#,
    r#"
ALTER TABLE discussions ADD COLUMN participants_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE discussions ADD COLUMN privacy_json TEXT;
CREATE TABLE tags (
    user_id TEXT NOT NULL,
    id      TEXT NOT NULL,
    name    TEXT NOT NULL,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, name)
);
CREATE TABLE contacts (
    user_id          TEXT NOT NULL,
    id               TEXT NOT NULL,
    name             TEXT,
    addresses_json   TEXT NOT NULL,
    public_keys_json TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE TABLE contact_addresses (
    user_id    TEXT NOT NULL,
    address    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (user_id, address)
);
CREATE INDEX contact_addresses_by_contact ON contact_addresses(user_id, contact_id);
CREATE TABLE drafts (
    user_id    TEXT NOT NULL,
    id         TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    draft_json TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX drafts_by_update ON drafts(user_id, updated_at DESC, id DESC);
"#,
    // Finished jobs leave the outbox, which would otherwise grow with every message ever
    // delivered; operators keep their count.
    r#"
CREATE TABLE job_counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO job_counters (name, value) SELECT 'done', COUNT(*) FROM jobs WHERE state = 'done';
DELETE FROM jobs WHERE state = 'done';
"#,
    // Tag colours, and files uploaded to drafts (sent with them, deleted with them).
    r#"
ALTER TABLE tags ADD COLUMN colour TEXT;
CREATE TABLE draft_attachments (
    user_id      TEXT NOT NULL,
    draft_id     TEXT NOT NULL,
    id           TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (user_id, draft_id, id)
);
"#,
    // Folders and tags in the discussion list: each discussion keeps how many of its
    // messages are trashed (and unread among those) and the union of its messages' tags,
    // recounted by the writer whenever flags or tags change. The partial indexes give each
    // folder its own activity order, so a page never scans the other folder's discussions.
    r#"
ALTER TABLE discussions ADD COLUMN trashed_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE discussions ADD COLUMN trashed_unread INTEGER NOT NULL DEFAULT 0;
ALTER TABLE discussions ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';
UPDATE discussions SET
    trashed_count = (
        SELECT COUNT(*) FROM messages m
        WHERE m.user_id = discussions.user_id AND m.discussion_id = discussions.id
          AND IFNULL(json_extract(m.flags_json, '$.trashed'), 0)),
    trashed_unread = (
        SELECT COUNT(*) FROM messages m
        WHERE m.user_id = discussions.user_id AND m.discussion_id = discussions.id
          AND IFNULL(json_extract(m.flags_json, '$.trashed'), 0)
          AND NOT IFNULL(json_extract(m.flags_json, '$.seen'), 0)),
    tags_json = (
        SELECT IFNULL(json_group_array(DISTINCT t.value), '[]')
        FROM messages m, json_each(m.tags_json) t
        WHERE m.user_id = discussions.user_id AND m.discussion_id = discussions.id);
CREATE INDEX discussions_in_inbox ON discussions(user_id, last_activity DESC, id DESC)
    WHERE message_count > trashed_count;
CREATE INDEX discussions_in_trash ON discussions(user_id, last_activity DESC, id DESC)
    WHERE trashed_count > 0;
"#,
    // Recipient autocompletion: one row per term a contact is found by (a name word or an
    // address) and the address it suggests, so a prefix is one range of the primary key.
    // Filled from existing contacts by `backfill` below, since SQL cannot split names the
    // way the writer does.
    r#"
CREATE TABLE contact_terms (
    user_id    TEXT NOT NULL,
    term       TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    address    TEXT NOT NULL,
    PRIMARY KEY (user_id, term, contact_id, address)
);
CREATE INDEX contact_terms_by_contact ON contact_terms(user_id, contact_id);
"#,
    // What mail taught about a contact (history, Autocrypt key) as one JSON document, and
    // the user's own Autocrypt key.
    r#"
ALTER TABLE contacts ADD COLUMN state_json TEXT;
ALTER TABLE users ADD COLUMN autocrypt_json TEXT;
"#,
    // "Always load remote content" settings: a sender address or a domain per row.
    r#"
CREATE TABLE remote_trust (
    user_id TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, value)
);
"#,
    // Each user's message count, kept by triggers: the search watermark reads it on every
    // search, and COUNT(*) walks the user's whole index range.
    r#"
CREATE TABLE message_counts (
    user_id TEXT PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO message_counts (user_id, n) SELECT user_id, COUNT(*) FROM messages GROUP BY user_id;
CREATE TRIGGER messages_counted AFTER INSERT ON messages BEGIN
    INSERT INTO message_counts (user_id, n) VALUES (NEW.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER messages_uncounted AFTER DELETE ON messages BEGIN
    UPDATE message_counts SET n = n - 1 WHERE user_id = OLD.user_id;
    DELETE FROM message_counts WHERE user_id = OLD.user_id AND n <= 0;
END;
"#,
    // A trigger statement that can fail (a constraint) makes every DELETE on `messages` one
    // that SQLite must be able to undo halfway, so it journals the old image of each page the
    // DELETE changes, the deleted mail among them, and spills that journal past 64 KiB to an
    // unlinked file in /var/tmp. With OR IGNORE the trigger cannot fail, and no statement
    // journal is kept.
    r#"
DROP TRIGGER messages_uncounted;
CREATE TRIGGER messages_uncounted AFTER DELETE ON messages BEGIN
    UPDATE OR IGNORE message_counts SET n = n - 1 WHERE user_id = OLD.user_id;
    DELETE FROM message_counts WHERE user_id = OLD.user_id AND n <= 0;
END;
"#,
];

/// The migration (by index) that creates `contact_terms`.
const CONTACT_TERMS: usize = 5;

/// The migration (by index) that creates `message_counts`.
#[cfg(test)]
const MESSAGE_COUNTS: usize = 8;

/// Data steps that SQL cannot express, run in the transaction of migration `version`.
fn backfill(tx: &rusqlite::Transaction<'_>, version: usize) -> rusqlite::Result<()> {
    if version == CONTACT_TERMS {
        super::book::index_all_contacts(tx)?;
    }
    Ok(())
}

/// Brings the database up to the newest schema version.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if usize::try_from(now).unwrap_or(0) > version {
            continue;
        }
        tx.execute_batch(sql)?;
        backfill(&tx, version)?;
        tx.pragma_update(None, "user_version", (version + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_stored_before_autocompletion_get_their_terms() {
        let mut conn = Connection::open_in_memory().expect("open");
        for sql in &MIGRATIONS[..CONTACT_TERMS] {
            conn.execute_batch(sql).expect("older schema");
        }
        conn.pragma_update(None, "user_version", CONTACT_TERMS as i64)
            .expect("version");
        conn.execute(
            "INSERT INTO contacts (user_id, id, name, addresses_json, public_keys_json)
             VALUES ('u', 'c', 'Ann Lee', '[\"ann@x.test\"]', '[]')",
            [],
        )
        .expect("contact");
        migrate(&mut conn).expect("migrate");
        let terms: Vec<String> = conn
            .prepare("SELECT term FROM contact_terms WHERE user_id = 'u' ORDER BY term")
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("terms");
        assert_eq!(terms, ["ann", "ann@x.test", "lee"]);
    }

    #[test]
    fn messages_stored_before_the_counts_are_counted() {
        let mut conn = Connection::open_in_memory().expect("open");
        for sql in &MIGRATIONS[..MESSAGE_COUNTS] {
            conn.execute_batch(sql).expect("older schema");
        }
        conn.pragma_update(None, "user_version", MESSAGE_COUNTS as i64)
            .expect("version");
        let insert = |conn: &Connection, user: &str, id: &str| {
            conn.execute(
                "INSERT INTO messages (user_id, id, discussion_id, raw_sha256, raw_size,
                     received_at, parse_error, flags_json, tags_json, envelope_json, content_json)
                 VALUES (?1, ?2, 'd', 'h', 1, 0, 0, '{}', '[]', '{}', '{}')",
                [user, id],
            )
            .expect("message");
        };
        for id in ["a", "b", "c"] {
            insert(&conn, "u", id);
        }
        insert(&conn, "v", "a");
        migrate(&mut conn).expect("migrate");
        insert(&conn, "u", "d");
        conn.execute("DELETE FROM messages WHERE user_id = 'v'", [])
            .expect("delete");
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT user_id, n FROM message_counts ORDER BY user_id")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("counts");
        // A user with no mail left has no row: nothing of an erased account stays behind.
        assert_eq!(counts, [("u".to_string(), 4)]);
    }
}
