//! Accounts on Cassandra: a user row, and name and address claims written first with
//! `IF NOT EXISTS`, so two sign-ups can never share a name or an address.

use super::{CassandraStore, from_timestamp, json, timestamp, to_json, unset};
use crate::{Accounts, StoreError};
use async_trait::async_trait;
use chrono::Utc;
use futures::TryStreamExt;
use palisade_model::{Address, OwnAutocrypt, User, UserId};
use scylla::value::CqlTimestamp;
use tracing::{debug, warn};
use uuid::Uuid;

pub(super) type UserRow = (String, CqlTimestamp, Option<Vec<String>>);

pub(super) fn user(
    id: Uuid,
    name: String,
    created_at: CqlTimestamp,
    addresses: Option<Vec<String>>,
) -> Result<User, StoreError> {
    let mut addresses = addresses
        .unwrap_or_default()
        .iter()
        .map(|a| Address::parse(a).map_err(|e| StoreError::Corrupt(format!("address {a}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    addresses.sort();
    Ok(User {
        id: UserId(id),
        name,
        created_at: from_timestamp(created_at),
        addresses,
    })
}

impl CassandraStore {
    pub(super) async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let st = self.statements().await?;
        let row: Option<UserRow> = self.first(&st.select_user, (id,)).await?;
        row.map(|(name, created_at, addresses)| user(id, name, created_at, addresses))
            .transpose()
    }

    /// Removes what a failed `create_user` may have written; every delete is conditional on
    /// the fresh id, so another user's claims are never touched.
    pub(super) async fn undo_create(&self, user: &User) {
        let Ok(st) = self.statements().await else {
            return;
        };
        let id = user.id.0;
        if let Err(e) = self.execute(&st.delete_user, (id,)).await {
            warn!(user = %user.id, error = %e, "could not remove a half-created user row");
        }
        for address in &user.addresses {
            if let Err(e) = self.lwt(&st.release_address, (address.as_str(), id)).await {
                warn!(user = %user.id, error = %e, "could not release an address claim");
            }
        }
        if let Err(e) = self.lwt(&st.release_name, (user.name.as_str(), id)).await {
            warn!(user = %user.id, error = %e, "could not release a name claim");
        }
    }

    pub(super) async fn claim_user(
        &self,
        user: &User,
        password_hash: Option<String>,
    ) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let id = user.id.0;
        for address in &user.addresses {
            if !self
                .lwt(&st.claim_address, (address.as_str(), id))
                .await?
                .applied
            {
                return Err(StoreError::Conflict(format!(
                    "address {address} belongs to another user"
                )));
            }
        }
        let addresses: Vec<&str> = user.addresses.iter().map(Address::as_str).collect();
        // An empty collection would be written as a tombstone; leave the column unset instead.
        let addresses = (!addresses.is_empty()).then_some(addresses);
        self.execute(
            &st.insert_user,
            (
                id,
                user.name.as_str(),
                timestamp(user.created_at),
                unset(password_hash),
                unset(addresses),
            ),
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Accounts for CassandraStore {
    async fn create_user(
        &self,
        name: &str,
        addresses: &[Address],
        password_hash: Option<String>,
    ) -> Result<User, StoreError> {
        let st = self.statements().await?;
        let user = User {
            id: UserId::new_random(),
            name: name.to_string(),
            created_at: Utc::now(),
            addresses: addresses.to_vec(),
        };
        if !self.lwt(&st.claim_name, (name, user.id.0)).await?.applied {
            return Err(StoreError::Conflict(format!("user {name} already exists")));
        }
        // The user row goes last, so a user is only visible once every claim succeeded.
        if let Err(e) = self.claim_user(&user, password_hash).await {
            self.undo_create(&user).await;
            return Err(e);
        }
        debug!(user = %user.id, "created user");
        Ok(user)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let st = self.statements().await?;
        let rows: Vec<(Uuid, String, CqlTimestamp, Option<Vec<String>>)> = self
            .stream(&st.select_all_users, ())
            .await?
            .try_collect()
            .await?;
        let mut users = rows
            .into_iter()
            .map(|(id, name, created_at, addresses)| user(id, name, created_at, addresses))
            .collect::<Result<Vec<_>, _>>()?;
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    async fn find_user(&self, name_or_address: &str) -> Result<Option<User>, StoreError> {
        let st = self.statements().await?;
        let by_name: Option<(Uuid,)> = self
            .first(&st.select_user_by_name, (name_or_address,))
            .await?;
        if let Some((id,)) = by_name
            && let Some(user) = self.user_by_id(id).await?
        {
            return Ok(Some(user));
        }
        let Ok(address) = Address::parse(name_or_address) else {
            return Ok(None);
        };
        match self.resolve_address(&address).await? {
            Some(id) => self.user_by_id(id.0).await,
            None => Ok(None),
        }
    }

    async fn resolve_address(&self, address: &Address) -> Result<Option<UserId>, StoreError> {
        let st = self.statements().await?;
        let row: Option<(Uuid,)> = self.first(&st.select_address, (address.as_str(),)).await?;
        Ok(row.map(|(id,)| UserId(id)))
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.user_by_id(id.0).await
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        let st = self.statements().await?;
        let row: Option<(Option<String>,)> = self.first(&st.select_password_hash, (id.0,)).await?;
        Ok(row.and_then(|(hash,)| hash))
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<bool, StoreError> {
        // An UPDATE would create a partial row for a missing user, so check first.
        if self.user_by_id(id.0).await?.is_none() {
            return Ok(false);
        }
        let st = self.statements().await?;
        self.execute(&st.set_password_hash, (hash, id.0)).await?;
        Ok(true)
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.erase_user(id).await
    }

    async fn autocrypt_key(&self, id: UserId) -> Result<Option<OwnAutocrypt>, StoreError> {
        let st = self.statements().await?;
        let row: Option<(Option<String>,)> = self.first(&st.select_autocrypt, (id.0,)).await?;
        row.and_then(|(text,)| text)
            .map(|t| json(&t, "autocrypt key"))
            .transpose()
    }

    async fn set_autocrypt_key(
        &self,
        id: UserId,
        key: Option<&OwnAutocrypt>,
    ) -> Result<bool, StoreError> {
        // An UPDATE would create a partial row for a missing user, so check first.
        if self.user_by_id(id.0).await?.is_none() {
            return Ok(false);
        }
        let st = self.statements().await?;
        let text = key.map(to_json).transpose()?;
        self.execute(&st.set_autocrypt, (text, id.0)).await?;
        Ok(true)
    }
}
