//! "Always load remote content" settings on Cassandra: one partition per user. The cap is
//! checked by counting before the insert; concurrent adds by one user can pass it by the few
//! that race, which bounds nothing that matters.

use super::CassandraStore;
use crate::{MAX_REMOTE_TRUST, RemoteTrust, RemoteTrustEntry, StoreError, TrustKind};
use async_trait::async_trait;
use palisade_model::UserId;

async fn exists(
    store: &CassandraStore,
    user: UserId,
    entry: &RemoteTrustEntry,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    let row: Option<(String,)> = store
        .first(
            &st.select_remote_trust_entry,
            (user.0, entry.kind.as_str(), entry.value.as_str()),
        )
        .await?;
    Ok(row.is_some())
}

#[async_trait]
impl RemoteTrust for CassandraStore {
    async fn list_remote_trust(&self, user: UserId) -> Result<Vec<RemoteTrustEntry>, StoreError> {
        let st = self.statements().await?;
        let rows: Vec<(String, String)> = self.all(&st.select_remote_trust, (user.0,)).await?;
        let mut entries = rows
            .into_iter()
            .map(|(kind, value)| {
                let kind = TrustKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("remote trust kind {kind:?}")))?;
                Ok(RemoteTrustEntry { kind, value })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        entries.sort();
        Ok(entries)
    }

    async fn add_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError> {
        if exists(self, user, entry).await? {
            return Ok(false);
        }
        let st = self.statements().await?;
        let count: Option<(i64,)> = self.first(&st.count_remote_trust, (user.0,)).await?;
        let count = count.map_or(0, |(n,)| usize::try_from(n).unwrap_or(usize::MAX));
        if count >= MAX_REMOTE_TRUST {
            return Err(crate::remote_trust_cap_reached());
        }
        self.execute(
            &st.insert_remote_trust,
            (user.0, entry.kind.as_str(), entry.value.as_str()),
        )
        .await?;
        Ok(true)
    }

    async fn remove_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError> {
        if !exists(self, user, entry).await? {
            return Ok(false);
        }
        let st = self.statements().await?;
        self.execute(
            &st.delete_remote_trust,
            (user.0, entry.kind.as_str(), entry.value.as_str()),
        )
        .await?;
        Ok(true)
    }
}
