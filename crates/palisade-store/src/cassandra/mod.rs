//! Clustered store on Cassandra 5, through the scylla driver.
//!
//! Everything is keyed by user first (see [`schema`]). Cassandra has no multi-table
//! transactions, so writes are ordered and idempotent instead: [`Store::deliver`] writes the
//! raw bytes, then thread placement, then the message rows in one logged batch, and the
//! message row is the commit point that readers and redeliveries look at.

mod deliver;
mod schema;
mod statements;

use crate::{Delivery, DeliveryReceipt, Page, PageOf, Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use palisade_config::CassandraConfig;
use palisade_model::{
    Address, DiscussionId, Message, MessageId, MessageSummary, Participant, RawHash, User, UserId,
};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::pager::NextRowError;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlTimestamp, CqlValue, MaybeUnset, Row};
use serde::de::DeserializeOwned;
use statements::Statements;
use std::fmt::Display;
use std::time::Duration;
use tokio::sync::OnceCell;
use tracing::{debug, warn};
use uuid::Uuid;

/// Schema changes get at least this long: nodes must agree on the new schema first.
const MIN_DDL_TIMEOUT: Duration = Duration::from_secs(60);

/// The clustered [`Store`].
///
/// Unlike the embedded store it does not write follow-up jobs: with Cassandra the job queue
/// is RabbitMQ, and the ingest pipeline publishes a message's jobs after `deliver` returns.
pub struct CassandraStore {
    session: Session,
    keyspace: String,
    replication_factor: u32,
    raw_chunk_bytes: usize,
    ddl_timeout: Duration,
    statements: OnceCell<Statements>,
}

impl CassandraStore {
    /// Connects to the cluster; the keyspace is expected to be migrated (see [`Self::migrate`]).
    pub async fn connect(config: &CassandraConfig) -> Result<CassandraStore, StoreError> {
        let keyspace = valid_keyspace(&config.keyspace)?;
        let (consistency, serial) = consistency(&config.consistency)?;
        let timeout = Duration::from_secs(config.request_timeout_secs.max(1));
        let profile = ExecutionProfile::builder()
            .consistency(consistency)
            .serial_consistency(Some(serial))
            .request_timeout(Some(timeout))
            .build();
        let builder = SessionBuilder::new()
            .known_nodes(&config.nodes)
            .connection_timeout(timeout)
            .default_execution_profile_handle(profile.into_handle());
        // The driver's own timeouts cover each step; this bounds the sum, so a node that
        // accepts connections but never answers cannot stall startup.
        let session = match tokio::time::timeout(timeout * 3, builder.build()).await {
            Ok(session) => session.map_err(unavailable)?,
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "no answer from Cassandra at {} within {}s",
                    config.nodes.join(", "),
                    (timeout * 3).as_secs()
                )));
            }
        };
        let store = CassandraStore {
            session,
            keyspace,
            replication_factor: config.replication_factor.max(1),
            raw_chunk_bytes: config.raw_chunk_bytes.max(1),
            ddl_timeout: timeout.max(MIN_DDL_TIMEOUT),
            statements: OnceCell::new(),
        };
        // Before the first migration the tables do not exist yet; migrate() prepares then.
        if let Err(e) = store.statements().await {
            debug!(keyspace = %store.keyspace, error = %e, "statements not prepared yet");
        }
        Ok(store)
    }

    async fn statements(&self) -> Result<&Statements, StoreError> {
        self.statements
            .get_or_try_init(|| {
                Statements::prepare(&self.session, &self.keyspace, self.raw_chunk_bytes)
            })
            .await
    }

    async fn execute(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(unavailable)
    }

    /// Runs a single-row lookup.
    async fn first<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let rows = self
            .execute(statement, values)
            .await?
            .into_rows_result()
            .map_err(corrupt)?;
        rows.maybe_first_row::<R>().map_err(corrupt)
    }

    /// Runs a bounded query and decodes every row.
    async fn all<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let rows = self
            .execute(statement, values)
            .await?
            .into_rows_result()
            .map_err(corrupt)?;
        rows.rows::<R>()
            .map_err(corrupt)?
            .map(|r| r.map_err(corrupt))
            .collect()
    }

    /// Runs a conditional statement and reports whether it applied.
    async fn lwt(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Lwt, StoreError> {
        let rows = self
            .execute(statement, values)
            .await?
            .into_rows_result()
            .map_err(corrupt)?;
        let names = rows
            .column_specs()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let row = rows.first_row::<Row>().map_err(corrupt)?;
        let applied = match row.columns.first() {
            Some(Some(CqlValue::Boolean(applied))) => *applied,
            _ => return Err(StoreError::Corrupt("LWT result without [applied]".into())),
        };
        Ok(Lwt {
            applied,
            names,
            row,
        })
    }

    /// The raw hash of a message that finished delivery; a half-written one does not exist.
    async fn delivered_raw(&self, user: Uuid, id: Uuid) -> Result<Option<String>, StoreError> {
        let st = self.statements().await?;
        let row: Option<(String, Option<bool>)> =
            self.first(&st.select_raw_ref, (user, id)).await?;
        Ok(row.and_then(|(sha, delivered)| (delivered == Some(true)).then_some(sha)))
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let st = self.statements().await?;
        let row: Option<UserRow> = self.first(&st.select_user, (id,)).await?;
        row.map(|(name, created_at, addresses)| user(id, name, created_at, addresses))
            .transpose()
    }

    /// Removes what a failed `create_user` may have written; every delete is conditional on
    /// the fresh id, so another user's claims are never touched.
    async fn undo_create(&self, user: &User) {
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

    async fn claim_user(
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

/// The outcome of a lightweight transaction, with the existing row when it did not apply.
struct Lwt {
    applied: bool,
    names: Vec<String>,
    row: Row,
}

impl Lwt {
    fn column(&self, name: &str) -> Option<&CqlValue> {
        let index = self.names.iter().position(|n| n == name)?;
        self.row.columns.get(index)?.as_ref()
    }
}

type UserRow = (String, CqlTimestamp, Option<Vec<String>>);

fn user(
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

/// Driver faults are reported as temporary: the LMTP client will retry.
pub(crate) fn unavailable(e: impl Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Rows that do not decode are a bug or corruption, not a transient fault.
pub(crate) fn corrupt(e: impl Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A paged read fails either fetching a page (transient) or decoding a row (corruption).
fn next_row(e: NextRowError) -> StoreError {
    match e {
        NextRowError::RowDeserializationError(e) => corrupt(e),
        other => unavailable(other),
    }
}

fn json<T: DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

fn timestamp(t: DateTime<Utc>) -> CqlTimestamp {
    CqlTimestamp(t.timestamp_millis())
}

fn from_timestamp(t: CqlTimestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.0).unwrap_or_default()
}

/// Leaves absent values unset rather than writing nulls, which Cassandra stores as tombstones.
fn unset<T>(value: Option<T>) -> MaybeUnset<T> {
    value.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// The keyspace is spliced into CQL text, so only plain identifiers are accepted.
fn valid_keyspace(name: &str) -> Result<String, StoreError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 48;
    if ok {
        Ok(name.to_string())
    } else {
        Err(StoreError::Unavailable(format!(
            "keyspace name {name:?} must be a letter then up to 47 letters, digits or '_'"
        )))
    }
}

/// Maps the configured level; LWTs use the serial level of the same scope.
fn consistency(name: &str) -> Result<(Consistency, SerialConsistency), StoreError> {
    let level = match name.trim().to_ascii_lowercase().as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        other => {
            return Err(StoreError::Unavailable(format!(
                "unknown consistency level {other:?}"
            )));
        }
    };
    let serial = match level {
        Consistency::LocalQuorum | Consistency::LocalOne => SerialConsistency::LocalSerial,
        _ => SerialConsistency::Serial,
    };
    Ok((level, serial))
}

/// Cursor of a message list: arrival time and id, the list's sort key.
fn encode_cursor(received_ms: i64, id: Uuid) -> String {
    format!("{received_ms}:{id}")
}

fn decode_cursor(cursor: &str) -> Result<(i64, Uuid), StoreError> {
    let bad = || StoreError::NotFound(format!("cursor {cursor}"));
    let (ms, id) = cursor.split_once(':').ok_or_else(bad)?;
    let ms = ms.parse().map_err(|_| bad())?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((ms, id))
}

type ArrivalRow = (
    CqlTimestamp,
    Uuid,
    Uuid,
    Option<CqlTimestamp>,
    Option<String>,
    Option<String>,
    String,
    bool,
    i64,
);

type MessageRow = (
    Option<bool>,
    Uuid,
    String,
    i64,
    String,
    String,
    String,
    String,
);

type ChunkRow = (i32, Vec<u8>, Option<i64>, Option<i32>);

#[async_trait]
impl Store for CassandraStore {
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
            .session
            .execute_iter(st.select_all_users.clone(), ())
            .await
            .map_err(unavailable)?
            .rows_stream()
            .map_err(corrupt)?
            .try_collect()
            .await
            .map_err(next_row)?;
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

    async fn deliver(&self, delivery: Delivery) -> Result<DeliveryReceipt, StoreError> {
        deliver::deliver(self, &delivery).await
    }

    async fn list_messages(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        let st = self.statements().await?;
        let limit = page.limit.max(1);
        // One row past the page tells whether a next page exists.
        let fetch = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let rows: Vec<ArrivalRow> = match &page.after {
            None => self.all(&st.list_first, (user.0, fetch)).await?,
            Some(cursor) => {
                let (ms, id) = decode_cursor(cursor)?;
                self.all(&st.list_after, (user.0, CqlTimestamp(ms), id, fetch))
                    .await?
            }
        };
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(limit);
        let mut next = None;
        for (received, id, discussion, date, subject, from, flags, parse_error, size) in
            rows.into_iter().take(limit)
        {
            if more {
                next = Some(encode_cursor(received.0, id));
            }
            items.push(MessageSummary {
                id: MessageId(id),
                discussion_id: DiscussionId(discussion),
                date: from_timestamp(date.unwrap_or(received)),
                received_at: from_timestamp(received),
                from: from.map(|f| json::<Participant>(&f, "from")).transpose()?,
                subject,
                flags: json(&flags, "flags")?,
                parse_error,
                raw_size: u64_of(size),
            });
        }
        Ok(PageOf { items, next })
    }

    async fn get_message(
        &self,
        user: UserId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let st = self.statements().await?;
        let row: Option<MessageRow> = self.first(&st.select_message, (user.0, id.0)).await?;
        let Some((Some(true), discussion, sha, size, flags, tags, envelope, content)) = row else {
            return Ok(None);
        };
        Ok(Some(Message {
            id,
            user_id: user,
            discussion_id: DiscussionId(discussion),
            raw_sha256: RawHash::from_hex(&sha)
                .ok_or_else(|| StoreError::Corrupt(format!("sha256 {sha}")))?,
            raw_size: u64_of(size),
            envelope: json(&envelope, "envelope")?,
            content: json(&content, "content")?,
            flags: json(&flags, "flags")?,
            tags: json(&tags, "tags")?,
        }))
    }

    async fn get_raw(&self, user: UserId, id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let st = self.statements().await?;
        let Some(sha) = self.delivered_raw(user.0, id.0).await? else {
            return Ok(None);
        };
        let mut chunks = self
            .session
            .execute_iter(st.select_raw_chunks.clone(), (user.0, sha.as_str()))
            .await
            .map_err(unavailable)?
            .rows_stream::<ChunkRow>()
            .map_err(corrupt)?;
        let mut raw = Vec::new();
        let mut expected = (None, None);
        let mut next_chunk = 0;
        while let Some((chunk, data, size, count)) = chunks.try_next().await.map_err(next_row)? {
            if chunk != next_chunk {
                return Err(StoreError::Corrupt(format!(
                    "raw message {sha}: chunk {next_chunk} missing"
                )));
            }
            next_chunk += 1;
            expected = (size, count);
            raw.extend_from_slice(&data);
        }
        // A message row without every chunk means a replica lost data; never return a prefix.
        match expected {
            (Some(size), Some(count))
                if count == next_chunk && usize::try_from(size).ok() == Some(raw.len()) =>
            {
                Ok(Some(raw))
            }
            _ => Err(StoreError::Corrupt(format!(
                "raw message {sha}: incomplete ({} bytes in {next_chunk} chunks)",
                raw.len()
            ))),
        }
    }
}
