//! Clustered store on Cassandra 5, through the scylla driver.
//!
//! Everything is keyed by user first (see [`schema`]). Cassandra has no multi-table
//! transactions, so writes are ordered and idempotent instead: [`crate::Mailbox::deliver`] writes the
//! raw bytes, then thread placement, then the message rows in one logged batch, and the
//! message row is the commit point that readers and redeliveries look at.

mod accounts;
mod attachments;
mod backfill;
mod book;
mod claims;
mod content;
mod cql;
mod deliver;
mod drafts;
mod erase;
mod mailbox;
mod organize;
mod remote_trust;
mod schema;
mod statements;
mod tags;

use crate::{PageOf, StoreError};
pub use backfill::BackfillReport;
use chrono::{DateTime, Utc};
use claims::{Claim, USER_LOCK_TTL};
use palisade_config::CassandraConfig;
use palisade_model::{DiscussionId, MessageId, MessageSummary, Participant};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::pager::NextRowError;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{Counter, CqlTimestamp, MaybeUnset};
use serde::de::DeserializeOwned;
use statements::Statements;
use std::fmt::Display;
use std::time::Duration;
use tokio::sync::OnceCell;
use tracing::debug;
use uuid::Uuid;

/// Schema changes get at least this long: nodes must agree on the new schema first.
const MIN_DDL_TIMEOUT: Duration = Duration::from_secs(60);

/// The clustered [`crate::Store`].
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
        let (consistency, serial) = consistency(config.consistency);
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
}

impl CassandraStore {
    /// The user's stored-message counter; 0 before the first delivery.
    async fn stored_count(&self, user: Uuid) -> Result<i64, StoreError> {
        let st = self.statements().await?;
        let row: Option<(Option<Counter>,)> = self.first(&st.count_messages, (user,)).await?;
        Ok(row.and_then(|(n,)| n).map_or(0, |Counter(n)| n))
    }

    /// Adds `n` (negative: takes) to the user's stored-message counter.
    async fn add_to_count(&self, user: Uuid, n: i64) -> Result<(), StoreError> {
        let st = self.statements().await?;
        self.execute(&st.add_to_count, (Counter(n), user)).await?;
        Ok(())
    }
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

/// The month bucket of a time in the month-partitioned lists: months since year 0, so buckets
/// sort like the times in them.
fn month_of(t: CqlTimestamp) -> i32 {
    use chrono::Datelike;
    let t = from_timestamp(t);
    t.year()
        .saturating_mul(12)
        .saturating_add(t.month0().cast_signed())
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
fn consistency(level: palisade_config::Consistency) -> (Consistency, SerialConsistency) {
    use palisade_config::Consistency as Level;
    match level {
        Level::One => (Consistency::One, SerialConsistency::Serial),
        Level::LocalOne => (Consistency::LocalOne, SerialConsistency::LocalSerial),
        Level::Quorum => (Consistency::Quorum, SerialConsistency::Serial),
        Level::LocalQuorum => (Consistency::LocalQuorum, SerialConsistency::LocalSerial),
        Level::EachQuorum => (Consistency::EachQuorum, SerialConsistency::Serial),
        Level::All => (Consistency::All, SerialConsistency::Serial),
    }
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
