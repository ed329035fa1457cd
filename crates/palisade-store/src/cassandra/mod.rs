//! Clustered store on Cassandra 5, through the scylla driver.
//!
//! Everything is keyed by user first (see [`schema`]). Cassandra has no multi-table
//! transactions, so writes are ordered and idempotent instead: [`Store::deliver`] writes the
//! raw bytes, then thread placement, then the message rows in one logged batch, and the
//! message row is the commit point that readers and redeliveries look at.

mod book;
mod deliver;
mod locks;
mod mailbox;
mod schema;
mod statements;

use crate::{Delivery, DeliveryReceipt, Page, PageOf, Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use locks::USER_LOCK_TTL;
use palisade_config::CassandraConfig;
use palisade_model::{
    Address, Contact, ContactId, Discussion, DiscussionId, Draft, DraftId, Flags, FlagsPatch,
    Message, MessageId, MessageSummary, Participant, RawHash, Tag, TagId, User, UserId,
};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::pager::NextRowError;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::PagingState;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlTimestamp, CqlValue, MaybeUnset, Row};
use serde::de::DeserializeOwned;
use statements::Statements;
use std::collections::HashMap;
use std::fmt::Display;
use std::ops::ControlFlow;
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

    /// Reads a query's rows `page_size` at a time, handing each to `keep` until it returns
    /// `false` or the rows run out. Unlike the driver's pager it does not read a page ahead,
    /// so a list that stops after its first page costs one request.
    async fn scan<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        page_size: i32,
        mut keep: impl FnMut(R) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let mut statement = statement.clone();
        statement.set_page_size(page_size.max(1));
        let mut paging = PagingState::start();
        loop {
            let (result, response) = self
                .session
                .execute_single_page(&statement, &values, paging)
                .await
                .map_err(unavailable)?;
            let rows = result.into_rows_result().map_err(corrupt)?;
            for row in rows.rows::<R>().map_err(corrupt)? {
                if !keep(row.map_err(corrupt)?)? {
                    return Ok(());
                }
            }
            match response.into_paging_control_flow() {
                ControlFlow::Continue(next) => paging = next,
                ControlFlow::Break(()) => return Ok(()),
            }
        }
    }

    /// One page of message summaries, newest first, from a query over summary rows.
    async fn summaries(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        limit: usize,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        let limit = limit.max(1);
        let mut items = Vec::with_capacity(limit + 1);
        self.scan(statement, values, fetch_size(limit), |row: SummaryRow| {
            if let Some(item) = summary(row)? {
                items.push(item);
            }
            Ok(items.len() <= limit)
        })
        .await?;
        Ok(page_of(items, limit, |m: &MessageSummary| {
            encode_cursor(m.received_at.timestamp_millis(), m.id.0)
        }))
    }

    /// Claims `key` of `user` for `owner` with a `(user, key, owner, claimed_at)` LWT insert;
    /// `owner_column` names the holder's column in the LWT's answer.
    async fn claim(
        &self,
        statement: &PreparedStatement,
        user: Uuid,
        key: &str,
        owner: Uuid,
        owner_column: &str,
    ) -> Result<Claim, StoreError> {
        let now = timestamp(Utc::now());
        let lwt = self.lwt(statement, (user, key, owner, now)).await?;
        if lwt.applied {
            return Ok(Claim::Ours);
        }
        let holder = match lwt.column(owner_column) {
            Some(CqlValue::Uuid(holder)) => *holder,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "claim on {key:?} without owner"
                )));
            }
        };
        if holder == owner {
            return Ok(Claim::Ours);
        }
        let since = match lwt.column("claimed_at") {
            Some(CqlValue::Timestamp(t)) => Some(t.0),
            _ => None,
        };
        Ok(Claim::Held {
            owner: holder,
            since,
        })
    }

    /// Takes over a claim whose holder does not use it: a write that failed half-way. Recent
    /// claims are left alone, since their write may still be under way.
    async fn take_over(
        &self,
        statement: &PreparedStatement,
        user: Uuid,
        key: &str,
        owner: Uuid,
        stale_owner: Uuid,
        since: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let settled = (now - CLAIM_GRACE).timestamp_millis();
        if since.is_some_and(|t| t > settled) {
            return Ok(false);
        }
        debug!(key, stale = %stale_owner, "taking over an abandoned claim");
        Ok(self
            .lwt(statement, (owner, timestamp(now), user, key, stale_owner))
            .await?
            .applied)
    }

    /// Releases a claim if `owner` still holds it; failures only leave a stale claim, which
    /// [`Self::take_over`] clears later, so they are logged rather than returned.
    async fn release(&self, statement: &PreparedStatement, user: Uuid, key: &str, owner: Uuid) {
        if let Err(e) = self.lwt(statement, (user, key, owner)).await {
            warn!(key, error = %e, "could not release a claim");
        }
    }

    /// The raw hash of a message that finished delivery; a half-written one does not exist.
    async fn delivered_raw(&self, user: Uuid, id: Uuid) -> Result<Option<String>, StoreError> {
        let st = self.statements().await?;
        let row: Option<(Option<String>, Option<bool>)> =
            self.first(&st.select_raw_ref, (user, id)).await?;
        Ok(row.and_then(|(sha, delivered)| sha.filter(|_| delivered == Some(true))))
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

/// Ids looked up per `IN` query when summarizing messages by id.
const SUMMARIES_PER_LOOKUP: usize = 100;

/// A summary read from `messages` itself: its `delivered` mark, then the summary columns,
/// where a row of a message not yet committed may lack even its arrival time.
type MessageSummaryRow = (
    Option<bool>,
    Option<CqlTimestamp>,
    Uuid,
    Option<Uuid>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<i64>,
);

/// A summary row of `messages_by_arrival` or `messages_by_discussion`. Everything but the
/// key is optional: a flag update racing a deletion can leave a row holding only its flags.
type SummaryRow = (
    CqlTimestamp,
    Uuid,
    Option<Uuid>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<i64>,
);

/// Decodes a summary row; `None` for a row left behind by a flag update (it has no size).
fn summary(row: SummaryRow) -> Result<Option<MessageSummary>, StoreError> {
    let (received, id, discussion, date, subject, from, flags, parse_error, size) = row;
    let (Some(discussion), Some(size)) = (discussion, size) else {
        return Ok(None);
    };
    Ok(Some(MessageSummary {
        id: MessageId(id),
        discussion_id: DiscussionId(discussion),
        date: from_timestamp(date.unwrap_or(received)),
        received_at: from_timestamp(received),
        from: from.map(|f| json::<Participant>(&f, "from")).transpose()?,
        subject,
        flags: flags
            .map(|f| json(&f, "flags"))
            .transpose()?
            .unwrap_or_default(),
        parse_error: parse_error.unwrap_or_default(),
        raw_size: u64_of(size),
    }))
}

/// Cuts fetched items to a page of `limit`; one item more means a next page, whose cursor
/// is that of the page's last item.
fn page_of<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> PageOf<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(cursor) } else { None };
    PageOf { items, next }
}

/// A page size for the driver: the page's items plus the one that tells whether more exist.
fn fetch_size(limit: usize) -> i32 {
    i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX)
}

/// Claims on a user's unique keys (tag names, contact addresses) younger than this are
/// assumed to belong to a write in progress, even when the row they point at is not there.
const CLAIM_GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// The outcome of claiming a unique key with `INSERT ... IF NOT EXISTS`.
enum Claim {
    /// The key is ours now, or already was.
    Ours,
    /// Someone else holds it, since the given time (milliseconds).
    Held { owner: Uuid, since: Option<i64> },
}

/// A message row; optional throughout, since a flag or tag update racing a deletion can
/// leave a row holding only that column (it is not `delivered`, so it does not exist).
type MessageRow = (
    Option<bool>,
    Option<Uuid>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
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
        match &page.after {
            None => self.summaries(&st.list_first, (user.0,), page.limit).await,
            Some(cursor) => {
                let (ms, id) = decode_cursor(cursor)?;
                self.summaries(&st.list_after, (user.0, CqlTimestamp(ms), id), page.limit)
                    .await
            }
        }
    }

    async fn message_summaries(
        &self,
        user: UserId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageSummary>, StoreError> {
        let st = self.statements().await?;
        let mut found = HashMap::with_capacity(ids.len());
        // The same bound as thread-key lookups: a coordinator fans an IN out to one
        // partition per id.
        for batch in ids.chunks(SUMMARIES_PER_LOOKUP) {
            let keys: Vec<Uuid> = batch.iter().map(|i| i.0).collect();
            let rows: Vec<MessageSummaryRow> =
                self.all(&st.select_summaries, (user.0, keys)).await?;
            for (
                delivered,
                received,
                id,
                discussion,
                date,
                subject,
                from,
                flags,
                parse_error,
                size,
            ) in rows
            {
                // Not yet committed, or half-deleted: not a message.
                let (Some(true), Some(received)) = (delivered, received) else {
                    continue;
                };
                let row = (
                    received,
                    id,
                    discussion,
                    date,
                    subject,
                    from,
                    flags,
                    parse_error,
                    size,
                );
                if let Some(summary) = summary(row)? {
                    found.insert(summary.id, summary);
                }
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn get_message(
        &self,
        user: UserId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let st = self.statements().await?;
        let row: Option<MessageRow> = self.first(&st.select_message, (user.0, id.0)).await?;
        let Some((
            Some(true),
            Some(discussion),
            Some(sha),
            Some(size),
            flags,
            tags,
            Some(envelope),
            Some(content),
        )) = row
        else {
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
            flags: flags
                .map(|f| json(&f, "flags"))
                .transpose()?
                .unwrap_or_default(),
            tags: tags
                .map(|t| json(&t, "tags"))
                .transpose()?
                .unwrap_or_default(),
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

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.user_by_id(id.0).await
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        let st = self.statements().await?;
        let row: Option<(Option<String>,)> = self.first(&st.select_password_hash, (id.0,)).await?;
        Ok(row.and_then(|(hash,)| hash))
    }

    async fn count_messages(&self, user: UserId) -> Result<u64, StoreError> {
        let st = self.statements().await?;
        let row: Option<(i64,)> = self.first(&st.count_messages, (user.0,)).await?;
        Ok(row.map_or(0, |(n,)| u64_of(n)))
    }

    async fn list_discussions(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<Discussion>, StoreError> {
        mailbox::list_discussions(self, user, page).await
    }

    async fn get_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
    ) -> Result<Option<Discussion>, StoreError> {
        mailbox::get_discussion(self, user, id).await
    }

    async fn discussion_messages(
        &self,
        user: UserId,
        id: DiscussionId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        let st = self.statements().await?;
        match &page.after {
            None => {
                self.summaries(&st.in_discussion_first, (user.0, id.0), page.limit)
                    .await
            }
            Some(cursor) => {
                let (ms, after) = decode_cursor(cursor)?;
                self.summaries(
                    &st.in_discussion_after,
                    (user.0, id.0, CqlTimestamp(ms), after),
                    page.limit,
                )
                .await
            }
        }
    }

    async fn update_flags(
        &self,
        user: UserId,
        id: MessageId,
        patch: FlagsPatch,
    ) -> Result<Option<Flags>, StoreError> {
        mailbox::update_flags(self, user, id, patch).await
    }

    async fn set_message_tags(
        &self,
        user: UserId,
        id: MessageId,
        tags: &[TagId],
    ) -> Result<bool, StoreError> {
        mailbox::set_message_tags(self, user, id, tags).await
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<bool, StoreError> {
        mailbox::delete_message(self, user, id).await
    }

    async fn list_tags(&self, user: UserId) -> Result<Vec<Tag>, StoreError> {
        book::list_tags(self, user).await
    }

    async fn create_tag(
        &self,
        user: UserId,
        name: &str,
        max_tags: usize,
    ) -> Result<Tag, StoreError> {
        book::create_tag(self, user, name, max_tags).await
    }

    async fn rename_tag(&self, user: UserId, id: TagId, name: &str) -> Result<Tag, StoreError> {
        book::rename_tag(self, user, id, name).await
    }

    async fn delete_tag(&self, user: UserId, id: TagId) -> Result<bool, StoreError> {
        book::delete_tag(self, user, id).await
    }

    async fn list_contacts(&self, user: UserId, page: Page) -> Result<PageOf<Contact>, StoreError> {
        book::list_contacts(self, user, page).await
    }

    async fn get_contact(
        &self,
        user: UserId,
        id: ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        book::get_contact(self, user, id).await
    }

    async fn find_contact(
        &self,
        user: UserId,
        address: &Address,
    ) -> Result<Option<Contact>, StoreError> {
        book::find_contact(self, user, address).await
    }

    async fn save_contact(&self, contact: Contact) -> Result<Contact, StoreError> {
        book::save_contact(self, contact).await
    }

    async fn delete_contact(&self, user: UserId, id: ContactId) -> Result<bool, StoreError> {
        book::delete_contact(self, user, id).await
    }

    async fn save_draft(&self, draft: Draft) -> Result<Draft, StoreError> {
        book::save_draft(self, draft).await
    }

    async fn get_draft(&self, user: UserId, id: DraftId) -> Result<Option<Draft>, StoreError> {
        book::get_draft(self, user, id).await
    }

    async fn list_drafts(&self, user: UserId, page: Page) -> Result<PageOf<Draft>, StoreError> {
        book::list_drafts(self, user, page).await
    }

    async fn delete_draft(&self, user: UserId, id: DraftId) -> Result<bool, StoreError> {
        book::delete_draft(self, user, id).await
    }
}
