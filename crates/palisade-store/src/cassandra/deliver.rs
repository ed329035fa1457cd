//! Delivery without transactions: ordered, idempotent writes with one commit point.
//!
//! 1. The first delivery of a message id claims its arrival time (LWT), so every retry and
//!    every concurrent redelivery writes byte-identical rows.
//! 2. Raw chunks, thread keys, the discussion and the message row are written; each write is
//!    idempotent, so a failure part-way is repaired by the LMTP client's retry.
//! 3. A logged batch adds the arrival row and sets `messages.delivered`: the message exists,
//!    for readers and for the duplicate check, exactly when both are in place.

use super::{CassandraStore, timestamp, to_json, unavailable, unset};
use crate::threading::{
    SNIPPET_CHARS, is_reply_by_subject, keys_to_register, subject_window_start,
};
use crate::{Delivery, DeliveryReceipt, StoreError};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::stream::FuturesUnordered;
use palisade_model::{DiscussionId, Flags, MessageContent, MessageId};
use scylla::value::{CqlTimestamp, CqlValue};
use std::collections::{HashMap, HashSet};
use tracing::{debug, warn};
use uuid::Uuid;

/// Requests kept in flight while writing the chunks or keys of one message.
const WRITES_IN_FLIGHT: usize = 8;
/// Thread keys looked up per `IN` query; long References headers are split.
const KEYS_PER_LOOKUP: usize = 50;
/// Cassandra rejects multi-partition batches over 50 KiB by default; an arrival row whose
/// subject and sender make it bigger is written without the batch (see [`commit`]).
const BATCH_BUDGET_BYTES: usize = 32 * 1024;

pub(super) async fn deliver(
    store: &CassandraStore,
    d: &Delivery,
) -> Result<DeliveryReceipt, StoreError> {
    let id = MessageId::for_raw(d.user_id, &d.raw_sha256);
    let user = d.user_id.0;
    if store.delivered_raw(user, id.0).await?.is_some() {
        debug!(user = %d.user_id, message = %id, "duplicate delivery");
        return Ok(DeliveryReceipt {
            message_id: id,
            duplicate: true,
        });
    }

    let received = claim_arrival(store, user, id, d.envelope.received_at).await?;
    write_raw(store, d).await?;
    let discussion = place(store, user, id, &d.content, received).await?;
    write_message(store, d, id, discussion, received).await?;
    debug!(
        user = %d.user_id,
        message = %id,
        discussion = %discussion,
        size = d.raw.len(),
        "delivered"
    );
    Ok(DeliveryReceipt {
        message_id: id,
        duplicate: false,
    })
}

/// The arrival time of the first delivery attempt of this message, ours or an earlier one.
async fn claim_arrival(
    store: &CassandraStore,
    user: Uuid,
    id: MessageId,
    received: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    let st = store.statements().await?;
    let claim = store
        .lwt(&st.claim_message, (user, id.0, timestamp(received)))
        .await?;
    if claim.applied {
        return Ok(received);
    }
    match claim.column("received_at") {
        Some(CqlValue::Timestamp(t)) => Ok(super::from_timestamp(*t)),
        _ => Err(StoreError::Corrupt(format!(
            "message claim {id} has no arrival time"
        ))),
    }
}

async fn write_raw(store: &CassandraStore, d: &Delivery) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let pieces: Vec<&[u8]> = if d.raw.is_empty() {
        // An empty message still needs a row to carry its size and chunk count.
        vec![&[]]
    } else {
        d.raw.chunks(store.raw_chunk_bytes).collect()
    };
    let count = i32::try_from(pieces.len())
        .map_err(|_| StoreError::Unavailable("raw message has too many chunks".into()))?;
    let size = i64::try_from(d.raw.len())
        .map_err(|_| StoreError::Unavailable("raw message too large".into()))?;
    let sha = d.raw_sha256.to_hex();
    let user = d.user_id.0;
    // A plain loop rather than stream combinators: closures over borrowed rows defeat the
    // Send check of the async trait.
    let mut in_flight = FuturesUnordered::new();
    for (chunk, data) in (0..count).zip(pieces) {
        if in_flight.len() >= WRITES_IN_FLIGHT {
            in_flight.try_next().await?;
        }
        in_flight.push(store.execute(
            &st.insert_raw_chunk,
            (user, sha.as_str(), chunk, data, size, count),
        ));
    }
    while in_flight.try_next().await?.is_some() {}
    Ok(())
}

/// Finds or starts the message's discussion and records the keys that lead to it.
async fn place(
    store: &CassandraStore,
    user: Uuid,
    id: MessageId,
    content: &MessageContent,
    received: DateTime<Utc>,
) -> Result<DiscussionId, StoreError> {
    let st = store.statements().await?;
    let mut seen = HashSet::new();
    let mut keys: Vec<&str> = Vec::new();
    for key in keys_to_register(content) {
        if seen.insert(key) {
            keys.push(key);
        }
    }

    let mut known = HashMap::new();
    for batch in keys.chunks(KEYS_PER_LOOKUP) {
        let rows: Vec<(String, Uuid)> = store.all(&st.select_thread_keys, (user, batch)).await?;
        known.extend(rows);
    }
    // The first key in priority order decides, as in the embedded store.
    let by_key = keys.iter().find_map(|k| known.get(*k)).copied();
    let found = match by_key {
        Some(found) => Some(DiscussionId(found)),
        None => find_by_subject(store, user, content, received).await?,
    };
    let started = DiscussionId::started_by(id);
    let discussion = found.unwrap_or(started);

    // Keys already registered keep their discussion, like INSERT OR IGNORE.
    let mut in_flight = FuturesUnordered::new();
    for key in keys {
        if known.contains_key(key) {
            continue;
        }
        if in_flight.len() >= WRITES_IN_FLIGHT {
            in_flight.try_next().await?;
        }
        in_flight.push(store.execute(&st.insert_thread_key, (user, key, discussion.0)));
    }
    while in_flight.try_next().await?.is_some() {}

    // A retry of the starting message finds its own keys: it is still the starter.
    let subject_key = if discussion == started {
        if content.subject.is_some() || content.normalized_subject.is_some() {
            store
                .execute(
                    &st.start_discussion,
                    (
                        unset(content.subject.as_deref()),
                        unset(content.normalized_subject.as_deref()),
                        user,
                        discussion.0,
                    ),
                )
                .await?;
        }
        content.normalized_subject.clone()
    } else {
        let row: Option<(Option<String>,)> = store
            .first(&st.select_discussion_subject, (user, discussion.0))
            .await?;
        row.and_then(|(s,)| s)
    };

    let received_ms = received.timestamp_millis();
    store
        .execute(
            &st.touch_discussion,
            (
                received_ms.saturating_mul(1000),
                CqlTimestamp(received_ms),
                content.snippet(SNIPPET_CHARS),
                vec![id.0],
                vec![id.0],
                user,
                discussion.0,
            ),
        )
        .await?;
    if let Some(subject) = subject_key.filter(|s| !s.is_empty()) {
        store
            .execute(
                &st.insert_discussion_by_subject,
                (user, subject, CqlTimestamp(received_ms), discussion.0),
            )
            .await?;
    }
    Ok(discussion)
}

/// The newest discussion with the same subject active within the window, for replies only.
async fn find_by_subject(
    store: &CassandraStore,
    user: Uuid,
    content: &MessageContent,
    received: DateTime<Utc>,
) -> Result<Option<DiscussionId>, StoreError> {
    if !is_reply_by_subject(content) {
        return Ok(None);
    }
    let Some(normalized) = content.normalized_subject.as_deref() else {
        return Ok(None);
    };
    let st = store.statements().await?;
    let since = CqlTimestamp(subject_window_start(received.timestamp_millis()));
    let row: Option<(Uuid,)> = store
        .first(&st.select_discussion_by_subject, (user, normalized, since))
        .await?;
    Ok(row.map(|(d,)| DiscussionId(d)))
}

async fn write_message(
    store: &CassandraStore,
    d: &Delivery,
    id: MessageId,
    discussion: DiscussionId,
    received: DateTime<Utc>,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let user = d.user_id.0;
    let content = d.content.as_ref();
    let mut envelope = d.envelope.clone();
    envelope.received_at = received;
    let size = i64::try_from(d.raw.len())
        .map_err(|_| StoreError::Unavailable("raw message too large".into()))?;
    let from = content.from().map(to_json).transpose()?;
    let flags = to_json(&Flags::default())?;
    let date = content.date.map(timestamp);
    let parse_error = content.parse_error.is_some();
    store
        .execute(
            &st.insert_message,
            (
                user,
                id.0,
                discussion.0,
                d.raw_sha256.to_hex(),
                size,
                timestamp(received),
                unset(date),
                unset(content.subject.as_deref()),
                unset(from.as_deref()),
                parse_error,
                flags.as_str(),
                "[]",
                to_json(&envelope)?,
                to_json(content)?,
            ),
        )
        .await?;

    let arrival = (
        user,
        timestamp(received),
        id.0,
        discussion.0,
        unset(date),
        unset(content.subject.as_deref()),
        unset(from.as_deref()),
        flags.as_str(),
        parse_error,
        size,
    );
    let summary_bytes =
        content.subject.as_ref().map_or(0, String::len) + from.as_ref().map_or(0, String::len);
    commit(store, user, id, arrival, summary_bytes).await
}

type ArrivalValues<'a> = (
    Uuid,
    CqlTimestamp,
    Uuid,
    Uuid,
    scylla::value::MaybeUnset<CqlTimestamp>,
    scylla::value::MaybeUnset<&'a str>,
    scylla::value::MaybeUnset<&'a str>,
    &'a str,
    bool,
    i64,
);

/// Lists the message and marks it delivered, atomically through the batchlog.
///
/// An arrival row too big for a batch is written first and the mark second: a failure in
/// between leaves a row the retry rewrites identically, never a message missing from lists.
async fn commit(
    store: &CassandraStore,
    user: Uuid,
    id: MessageId,
    arrival: ArrivalValues<'_>,
    summary_bytes: usize,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    if summary_bytes <= BATCH_BUDGET_BYTES {
        store
            .session
            .batch(&st.commit_message, (arrival, (user, id.0)))
            .await
            .map_err(unavailable)?;
        return Ok(());
    }
    warn!(message = %id, summary_bytes, "oversized summary, committing without a batch");
    store.execute(&st.insert_arrival, arrival).await?;
    store.execute(&st.mark_delivered, (user, id.0)).await?;
    Ok(())
}
