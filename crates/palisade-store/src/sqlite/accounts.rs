//! Accounts of the embedded store: users, the addresses they own, their credentials.

use super::rows::{json, to_json};
use super::{SqliteStore, millis, rows, unavailable};
use crate::{Accounts, StoreError};
use async_trait::async_trait;
use chrono::Utc;
use palisade_model::{Address, OwnAutocrypt, User, UserId};
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl Accounts for SqliteStore {
    async fn create_user(
        &self,
        name: &str,
        addresses: &[Address],
        password_hash: Option<String>,
    ) -> Result<User, StoreError> {
        let user = User {
            id: UserId::new_random(),
            name: name.to_string(),
            created_at: Utc::now(),
            addresses: addresses.to_vec(),
        };
        let record = user.clone();
        self.writer
            .write(move |conn| {
                let taken: Option<String> = conn
                    .query_row(
                        "SELECT name FROM users WHERE name = ?1",
                        [&record.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                if taken.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "user {} already exists",
                        record.name
                    )));
                }
                conn.execute(
                    "INSERT INTO users (id, name, created_at, password_hash) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        record.id.to_string(),
                        record.name,
                        millis(record.created_at),
                        password_hash
                    ],
                )
                .map_err(unavailable)?;
                for address in &record.addresses {
                    let inserted = conn
                        .execute(
                            "INSERT OR IGNORE INTO addresses (address, user_id) VALUES (?1, ?2)",
                            params![address.as_str(), record.id.to_string()],
                        )
                        .map_err(unavailable)?;
                    if inserted == 0 {
                        return Err(StoreError::Conflict(format!(
                            "address {address} belongs to another user"
                        )));
                    }
                }
                Ok(())
            })
            .await?;
        Ok(user)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT id, name, created_at FROM users ORDER BY name")
                .map_err(unavailable)?;
            let heads = stmt
                .query_map([], rows::user_head)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            heads
                .into_iter()
                .map(|head| rows::with_addresses(conn, head))
                .collect()
        })
        .await
    }

    async fn find_user(&self, name_or_address: &str) -> Result<Option<User>, StoreError> {
        let key = name_or_address.to_string();
        let address = Address::parse(name_or_address).ok();
        self.read(move |conn| {
            let by_name = conn
                .query_row(
                    "SELECT id, name, created_at FROM users WHERE name = ?1",
                    [&key],
                    rows::user_head,
                )
                .optional()
                .map_err(unavailable)?;
            let head = match (by_name, address) {
                (Some(head), _) => Some(head),
                (None, Some(address)) => conn
                    .query_row(
                        "SELECT u.id, u.name, u.created_at FROM users u
                         JOIN addresses a ON a.user_id = u.id WHERE a.address = ?1",
                        [address.as_str()],
                        rows::user_head,
                    )
                    .optional()
                    .map_err(unavailable)?,
                (None, None) => None,
            };
            head.map(|h| rows::with_addresses(conn, h)).transpose()
        })
        .await
    }

    async fn resolve_address(&self, address: &Address) -> Result<Option<UserId>, StoreError> {
        // Every RCPT asks: a lookup by primary key, run here rather than on the blocking pool.
        self.read_now(|conn| {
            let id: Option<String> = conn
                .prepare_cached("SELECT user_id FROM addresses WHERE address = ?1")
                .and_then(|mut s| s.query_row([address.as_str()], |r| r.get(0)).optional())
                .map_err(unavailable)?;
            id.map(|s| rows::parse_id(&s)).transpose()
        })
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read(move |conn| {
            rows::cached_row(
                conn,
                "SELECT id, name, created_at FROM users WHERE id = ?1",
                [id.to_string()],
                rows::user_head,
            )
            .optional()
            .map_err(unavailable)?
            .map(|h| rows::with_addresses(conn, h))
            .transpose()
        })
        .await
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            rows::cached_row(
                conn,
                "SELECT password_hash FROM users WHERE id = ?1",
                [id.to_string()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(unavailable)
        })
        .await
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<bool, StoreError> {
        let hash = hash.to_string();
        self.writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                    params![id.to_string(), hash],
                )
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.erase_user(id).await
    }

    async fn autocrypt_key(&self, id: UserId) -> Result<Option<OwnAutocrypt>, StoreError> {
        let text = self
            .read(move |conn| {
                rows::cached_row(
                    conn,
                    "SELECT autocrypt_json FROM users WHERE id = ?1",
                    [id.to_string()],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()
                .map(Option::flatten)
                .map_err(unavailable)
            })
            .await?;
        text.map(|t| json(&t, "autocrypt key")).transpose()
    }

    async fn set_autocrypt_key(
        &self,
        id: UserId,
        key: Option<&OwnAutocrypt>,
    ) -> Result<bool, StoreError> {
        let text = key.map(to_json).transpose()?;
        self.writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE users SET autocrypt_json = ?2 WHERE id = ?1",
                    params![id.to_string(), text],
                )
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }
}
