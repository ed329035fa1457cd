//! "Always load remote content" settings of the embedded store; the single writer checks the
//! cap together with the insert.

use super::{SqliteStore, unavailable};
use crate::{MAX_REMOTE_TRUST, RemoteTrust, RemoteTrustEntry, StoreError, TrustKind};
use async_trait::async_trait;
use palisade_model::UserId;
use rusqlite::{Connection, params};

fn list(conn: &Connection, user: UserId) -> Result<Vec<RemoteTrustEntry>, StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT kind, value FROM remote_trust WHERE user_id = ?1 ORDER BY kind DESC, value",
        )
        .and_then(|mut s| {
            s.query_map([user.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(kind, value)| {
            let kind = TrustKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("remote trust kind {kind:?}")))?;
            Ok(RemoteTrustEntry { kind, value })
        })
        .collect()
}

fn add(conn: &Connection, user: UserId, entry: &RemoteTrustEntry) -> Result<bool, StoreError> {
    let owner = user.to_string();
    let exists = conn
        .prepare_cached(
            "SELECT 1 FROM remote_trust WHERE user_id = ?1 AND kind = ?2 AND value = ?3",
        )
        .and_then(|mut s| s.exists(params![owner, entry.kind.as_str(), entry.value]))
        .map_err(unavailable)?;
    if exists {
        return Ok(false);
    }
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM remote_trust WHERE user_id = ?1")
        .and_then(|mut s| s.query_row([&owner], |r| r.get(0)))
        .map_err(unavailable)?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_REMOTE_TRUST {
        return Err(crate::remote_trust_cap_reached());
    }
    conn.execute(
        "INSERT INTO remote_trust (user_id, kind, value) VALUES (?1, ?2, ?3)",
        params![owner, entry.kind.as_str(), entry.value],
    )
    .map_err(unavailable)?;
    Ok(true)
}

fn remove(conn: &Connection, user: UserId, entry: &RemoteTrustEntry) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM remote_trust WHERE user_id = ?1 AND kind = ?2 AND value = ?3",
        params![user.to_string(), entry.kind.as_str(), entry.value],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

#[async_trait]
impl RemoteTrust for SqliteStore {
    async fn list_remote_trust(&self, user: UserId) -> Result<Vec<RemoteTrustEntry>, StoreError> {
        self.read(move |conn| list(conn, user)).await
    }

    async fn add_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError> {
        let entry = entry.clone();
        self.writer.write(move |conn| add(conn, user, &entry)).await
    }

    async fn remove_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError> {
        let entry = entry.clone();
        self.writer
            .write(move |conn| remove(conn, user, &entry))
            .await
    }
}
