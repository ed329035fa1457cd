//! Account deletion in the embedded store: every row of a user's in one transaction, then a
//! checkpoint, so the deleted bytes survive neither in the database file nor in its WAL.
//!
//! Connections run with `secure_delete` (see [`super::open_connection`]), so SQLite zeroes
//! deleted cells and freed pages as it writes them; until the checkpoint, the WAL still holds
//! older page images, and `wal_checkpoint(TRUNCATE)` copies the zeroed pages home and empties it.
//! The transaction runs alone ([`super::writer::Writer::write_alone`]): run again in a
//! savepoint after a batch-mate failed, it would journal the erased pages to a temporary file.

use super::{SqliteStore, open_connection, unavailable};
use crate::StoreError;
use palisade_model::UserId;
use rusqlite::{OptionalExtension, params};
use std::time::Duration;

/// Every table holding a user's rows, by the column naming the user. `users` goes last, so
/// it is only gone once everything else is.
const TABLES: &[(&str, &str)] = &[
    ("addresses", "user_id"),
    ("jobs", "user_id"),
    ("draft_attachments", "user_id"),
    ("drafts", "user_id"),
    ("contact_terms", "user_id"),
    ("contact_addresses", "user_id"),
    ("contacts", "user_id"),
    ("tags", "user_id"),
    ("thread_keys", "user_id"),
    ("discussions", "user_id"),
    ("messages", "user_id"),
    ("raw_messages", "user_id"),
    ("remote_trust", "user_id"),
    ("message_counts", "user_id"),
    ("users", "id"),
];

/// Checkpoint attempts while a reader holds an old snapshot of the WAL.
const CHECKPOINT_ATTEMPTS: u32 = 20;
/// Pause between checkpoint attempts.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

impl SqliteStore {
    /// Deletes a user's rows in one transaction; `false` when the user did not exist. Always
    /// checkpoints, so a run whose checkpoint failed is finished by running it again.
    pub(super) async fn erase_user(&self, id: UserId) -> Result<bool, StoreError> {
        let existed = self
            .writer
            .write_alone(move |conn| delete_rows(conn, id))
            .await?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || checkpoint(&path))
            .await
            .map_err(|e| StoreError::Unavailable(format!("checkpoint task failed: {e}")))??;
        Ok(existed)
    }
}

/// Deletes every row of the user's, `users` last; whether the user existed.
fn delete_rows(conn: &rusqlite::Connection, id: UserId) -> Result<bool, StoreError> {
    let user = id.to_string();
    let existed = conn
        .query_row("SELECT 1 FROM users WHERE id = ?1", [&user], |_| Ok(()))
        .optional()
        .map_err(unavailable)?
        .is_some();
    for (table, column) in TABLES {
        conn.execute(
            &format!("DELETE FROM {table} WHERE {column} = ?1"),
            params![user],
        )
        .map_err(unavailable)?;
    }
    Ok(existed)
}

/// Moves every WAL frame into the database and truncates the WAL to nothing. A reader in the
/// middle of a read pins older frames, so the checkpoint is tried again until it completes.
fn checkpoint(path: &std::path::Path) -> Result<(), StoreError> {
    let conn = open_connection(path)?;
    for _ in 0..CHECKPOINT_ATTEMPTS {
        let (busy, _, _): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(unavailable)?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
    Err(StoreError::Unavailable(
        "the write-ahead log is still in use; run the deletion again to finish it".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{addr, content, delivery};
    use crate::sqlite::open_temp_files;
    use crate::{Accounts, Mailbox};

    /// Deleting mail writes no temporary file. A statement journal would hold the old images
    /// of every page the statement changes, the deleted mail among them, and SQLite spills it
    /// past 64 KiB to an unlinked file in `/var/tmp`, whose freed blocks keep the text.
    #[tokio::test]
    async fn deleting_mail_journals_none_of_it_to_a_temporary_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&dir.path().join("store.sqlite3")).expect("store opens");
        let user = store
            .create_user("leaving", &[addr("leaving@example.test")], None)
            .await
            .expect("user created");
        let mut ids = Vec::new();
        for i in 0..8 {
            let mut c = content(&format!("letter {i}"), &format!("<{i}@x>"), &[]);
            c.text_body = Some(format!("{i} ").repeat(50_000));
            let raw = format!("Subject: letter {i}\r\n\r\n{}", "y".repeat(100_000));
            let receipt = store
                .deliver(delivery(user.id, raw.as_bytes(), c, i))
                .await
                .expect("delivered");
            ids.push(receipt.message_id);
        }

        let (first, id) = (ids[0], user.id);
        let spilled = store
            .writer
            .write(move |conn| {
                super::super::mailbox::delete_message(conn, id, first)?;
                Ok(open_temp_files())
            })
            .await
            .expect("message deleted");
        assert_eq!(spilled, Vec::<String>::new(), "deleting one message");

        let spilled = store
            .writer
            .write(move |conn| {
                assert!(delete_rows(conn, id)?);
                Ok(open_temp_files())
            })
            .await
            .expect("account deleted");
        assert_eq!(spilled, Vec::<String>::new(), "deleting the account");
        assert_eq!(store.count_messages(user.id).await.expect("count"), 0);
    }
}
