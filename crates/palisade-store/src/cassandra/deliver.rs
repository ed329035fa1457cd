//! Delivery without transactions: ordered, idempotent writes with one commit point.
//!
//! 1. The first delivery of a message id claims its arrival time (LWT), so every retry and
//!    every concurrent redelivery writes byte-identical rows. Only an attempt whose claim is
//!    refused looks for an earlier attempt's committed message (the duplicate check).
//! 2. Raw chunks, thread keys and the discussion are written; each write is idempotent, so a
//!    failure part-way is repaired by the LMTP client's retry. A message none of whose keys
//!    is known starts the discussion derived from its thread's root key, so related messages
//!    delivered at once, on any nodes, settle on one discussion without a lightweight
//!    transaction (see [`settle_root`]).
//! 3. A logged batch adds the arrival, month, discussion and activity rows and sets
//!    `messages.delivered`, writing the message row too when it is small (see [`commit`]):
//!    the message exists, for readers and for the duplicate check, exactly when all are in
//!    place.
//! 4. The discussion's older activity rows are removed.
//! 5. The message is counted and its `uncounted` mark, set by the commit, cleared. A retry
//!    that finds the message delivered but still marked counts it: the commit was applied
//!    but its reply lost, so the attempt that wrote it never counted it.

use super::{CassandraStore, mailbox, timestamp, to_json, unset};
use crate::threading::{
    SNIPPET_CHARS, gives_subject, joins_by_subject, keys_to_register, new_discussion, root_key,
    subject_key, subject_window_start,
};
use crate::{Delivery, DeliveryReceipt, StoreError};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::stream::FuturesUnordered;
use palisade_model::{DiscussionId, MessageContent, MessageId, Participant, merge_participants};
use scylla::value::{CqlTimestamp, CqlValue, MaybeUnset};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use tracing::{debug, warn};
use uuid::Uuid;

/// Requests kept in flight while writing the chunks or keys of one message.
const WRITES_IN_FLIGHT: usize = 8;
/// Thread keys looked up per `IN` query; long References headers are split.
const KEYS_PER_LOOKUP: usize = 50;
/// Cassandra rejects multi-partition batches over 50 KiB by default; summary rows whose
/// subject, sender, snippet, privacy and people make them bigger are written without the
/// batch (see [`commit`]).
const BATCH_BUDGET_BYTES: usize = 32 * 1024;
/// A message whose rows' variable columns fit here is committed by one batch, its own row
/// included. Cassandra logs a warning for every batch over its default
/// `batch_size_warn_threshold` (5 KiB), and counts the keys, fixed columns and cell overheads
/// too: a batch estimated at 4 KiB here measured 5.002 KiB.
const WHOLE_BATCH_BUDGET_BYTES: usize = 3 * 1024;

/// Stores one delivery, or reports the message as a duplicate if it was stored before.
pub(super) async fn deliver(
    store: &CassandraStore,
    d: &Delivery,
) -> Result<DeliveryReceipt, StoreError> {
    let id = MessageId::for_raw(d.user_id, &d.raw_sha256);
    let user = d.user_id.0;
    // The claim comes first: every delivered message was claimed, so a new message, whose
    // claim is granted, needs no duplicate check, and only a refused claim reads one.
    let (received, claimed) = claim_arrival(store, user, id, d.envelope.received_at).await?;
    if !claimed && let Some((_, uncounted)) = store.delivered(user, id.0).await? {
        debug!(user = %d.user_id, message = %id, "duplicate delivery");
        // An earlier attempt committed but did not count (its reply was lost, or it failed
        // right after): this one counts it. Two retries racing here would count it twice;
        // `palisade-admin migrate` recounts.
        if uncounted && let Err(e) = count(store, user, id).await {
            warn!(message = %id, error = %e, "could not count the delivered message");
        }
        return Ok(DeliveryReceipt {
            message_id: id,
            duplicate: true,
        });
    }

    // The message's own people, as the discussion would merge them.
    let mut people = Vec::new();
    merge_participants(&mut people, &d.content.participants);
    // Independent writes go out together: with a commitlog that acknowledges only after its
    // fsync, each round trip waits for one, and a delivery is as slow as its longest chain.
    // The steps are boxed: inline, their futures made this one's poll frame so large that
    // unoptimized builds came within a tenth of a thread's 2 MiB stack.
    let ((), placed) = futures::try_join!(
        write_raw(store, d),
        Box::pin(place(store, user, id, d, &people, received))
    )?;
    let discussion = placed.discussion;
    Box::pin(write_message(store, d, id, discussion, &people, received)).await?;
    // Counted once the message exists. Drifts only when two deliveries of one message race
    // past the duplicate check (both count); `palisade-admin migrate` recounts.
    let (counted, settled) = futures::join!(
        count(store, user, id),
        mailbox::settle_activity(store, user, discussion.0, received, placed.previous)
    );
    if let Err(e) = counted {
        warn!(message = %id, error = %e, "could not count the delivered message");
    }
    // The message is stored; a stale activity row only costs readers a skipped row.
    if let Err(e) = settled {
        warn!(message = %id, error = %e, "could not move the discussion's activity row");
    }
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

/// Adds a committed message to its user's count and clears its `uncounted` mark.
///
/// A counter cannot be written together with the mark, so the two requests go out at once:
/// a daemon killed while counting has then sent both or neither, and a redelivery counts
/// the message exactly when the first attempt did not. Sent one after the other, a kill
/// between them left the mark on a counted message, and the redelivery counted it twice,
/// which kept the index watermark (`indexed >= stored`) from ever catching up. What is left:
/// a Cassandra node that dies having made one of the two durable and not the other.
async fn count(store: &CassandraStore, user: Uuid, id: MessageId) -> Result<(), StoreError> {
    let st = store.statements().await?;
    futures::try_join!(
        store.add_to_count(user, 1),
        store.execute(&st.mark_counted, (user, id.0))
    )?;
    Ok(())
}

/// The arrival time of the first delivery attempt of this message, ours or an earlier one,
/// and whether it is ours (the claim was granted).
async fn claim_arrival(
    store: &CassandraStore,
    user: Uuid,
    id: MessageId,
    received: DateTime<Utc>,
) -> Result<(DateTime<Utc>, bool), StoreError> {
    let st = store.statements().await?;
    let claim = store
        .lwt(&st.claim_message, (user, id.0, timestamp(received)))
        .await?;
    if claim.applied {
        return Ok((received, true));
    }
    match claim.column("received_at") {
        Some(CqlValue::Timestamp(t)) => Ok((super::from_timestamp(*t), false)),
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

/// Where a message went, and its discussion's newest arrival before it.
struct Placed {
    discussion: DiscussionId,
    previous: Option<CqlTimestamp>,
}

/// Finds or starts the message's discussion, records the keys that lead to it and adds the
/// message to the discussion's members and people; its activity is written by the commit.
async fn place(
    store: &CassandraStore,
    user: Uuid,
    id: MessageId,
    d: &Delivery,
    people: &[Participant],
    received: DateTime<Utc>,
) -> Result<Placed, StoreError> {
    let st = store.statements().await?;
    let content = d.content.as_ref();
    let bounded: Vec<Cow<'_, str>> = keys_to_register(content).collect();
    let mut seen = HashSet::new();
    let mut keys: Vec<&str> = Vec::new();
    for key in &bounded {
        if seen.insert(key.as_ref()) {
            keys.push(key);
        }
    }

    let mut known_keys = HashMap::new();
    for batch in keys.chunks(KEYS_PER_LOOKUP) {
        let rows: Vec<(String, Uuid)> = store.all(&st.select_thread_keys, (user, batch)).await?;
        known_keys.extend(rows);
    }
    // The first key in priority order decides, as in the embedded store.
    let by_key = keys.iter().find_map(|k| known_keys.get(*k)).copied();
    let root = root_key(content);
    let discussion = match by_key {
        Some(found) => DiscussionId(found),
        None => match find_by_subject(store, user, content, received).await? {
            Some(found) => claim_root(store, user, root.as_deref(), found).await?,
            None => {
                let fresh = new_discussion(d.user_id, id, content);
                settle_root(store, user, root.as_deref(), fresh).await?
            }
        },
    };

    // The discussion's state, and the newest arrival before this one (whose activity row this
    // message may replace once it is committed; the commit writes the new row, so the
    // discussion is never unlisted): independent reads, so one round trip.
    let (state, newest) = futures::try_join!(
        store.first::<(Option<String>, Option<Vec<String>>)>(
            &st.select_discussion_state,
            (user, discussion.0)
        ),
        mailbox::newest(store, user, discussion.0),
    )?;
    let previous = newest.map(|n| n.received);
    let (stored_subject, stored_people) = state.unwrap_or_default();
    let starts = gives_subject(d.user_id, id, content, discussion, by_key.is_none());
    let subject_key = if starts {
        subject_key(content).map(Cow::into_owned)
    } else {
        stored_subject
    };
    // Only the people this message adds are appended: concurrent deliveries into one
    // discussion lose nobody, and a retry finds its people there and appends nothing.
    let known = mailbox::people(stored_people.as_deref().unwrap_or_default())?;
    let mut merged = known.clone();
    merge_participants(&mut merged, people);
    let added = (merged.len() > known.len())
        .then(|| mailbox::people_column(&merged[known.len()..]))
        .transpose()?;
    let received_at = timestamp(received);

    // Every write below is idempotent and independent of the others: they go out together.
    // Keys already registered keep their discussion, like INSERT OR IGNORE.
    let register_keys = async {
        let mut in_flight = FuturesUnordered::new();
        for key in keys {
            let claimed = by_key.is_none() && root.as_deref() == Some(key);
            if claimed || known_keys.contains_key(key) {
                continue;
            }
            if in_flight.len() >= WRITES_IN_FLIGHT {
                in_flight.try_next().await?;
            }
            in_flight.push(store.execute(&st.insert_thread_key, (user, key, discussion.0)));
        }
        while in_flight.try_next().await?.is_some() {}
        Ok::<(), StoreError>(())
    };
    let join = store.execute(
        &st.join_discussion,
        (
            unset(content.subject.as_deref().filter(|_| starts)),
            unset(subject_key.as_deref().filter(|_| starts)),
            vec![id.0],
            if d.flags.seen { Vec::new() } else { vec![id.0] },
            added.unwrap_or_default(),
            user,
            discussion.0,
        ),
    );
    let by_subject = async {
        if let Some(subject) = subject_key.as_deref().filter(|s| !s.is_empty()) {
            store
                .execute(
                    &st.insert_discussion_by_subject,
                    (user, subject, received_at, discussion.0),
                )
                .await?;
        }
        Ok(())
    };
    futures::try_join!(register_keys, join, by_subject)?;
    Ok(Placed {
        discussion,
        previous,
    })
}

/// The discussion of a message that found none of its keys: the one derived from its thread's
/// root key, unless another delivery registered that key for another discussion first.
///
/// Nodes deliver without a transaction, so two related messages arriving at once (a mail and
/// its reply, on two ingest nodes) may both find none of their keys. Both derive the same
/// discussion from the root key they share, so neither needs to ask the other; this took a
/// lightweight transaction (four Paxos steps) per new discussion before. The key is written
/// with the lowest timestamp, so that it never replaces a registration made otherwise (a
/// subject match's claim, a key registered by a message found through another of its keys),
/// and read back: a delivery that lost to one joins its discussion, as if it had arrived after
/// it. A key hidden by a deletion reads as absent, and the derived discussion still holds.
async fn settle_root(
    store: &CassandraStore,
    user: Uuid,
    root: Option<&str>,
    fresh: DiscussionId,
) -> Result<DiscussionId, StoreError> {
    let Some(root) = root else {
        return Ok(fresh);
    };
    let st = store.statements().await?;
    store
        .execute(&st.register_root_key, (user, root, fresh.0))
        .await?;
    let rows: Vec<(String, Uuid)> = store
        .all(&st.select_thread_keys, (user, &[root][..]))
        .await?;
    Ok(rows.first().map_or(fresh, |(_, d)| DiscussionId(*d)))
}

/// The discussion of the thread rooted at `root` for a reply joined by subject: `candidate` if
/// this delivery registers the root first, else the one that did.
///
/// The candidate is not derived from the root key, so a reply to this message delivered at
/// the same moment would derive another; claiming the key with a lightweight transaction lets
/// exactly one of them decide (see [`settle_root`] for the other side).
async fn claim_root(
    store: &CassandraStore,
    user: Uuid,
    root: Option<&str>,
    candidate: DiscussionId,
) -> Result<DiscussionId, StoreError> {
    let Some(root) = root else {
        return Ok(candidate);
    };
    let st = store.statements().await?;
    let claim = store
        .lwt(&st.claim_thread_key, (user, root, candidate.0))
        .await?;
    if claim.applied {
        return Ok(candidate);
    }
    match claim.column("discussion_id") {
        Some(CqlValue::Uuid(d)) => Ok(DiscussionId(*d)),
        _ => Err(StoreError::Corrupt(
            "thread key claim without a discussion".into(),
        )),
    }
}

/// The newest discussion with the same subject active within the window, for replies only.
async fn find_by_subject(
    store: &CassandraStore,
    user: Uuid,
    content: &MessageContent,
    received: DateTime<Utc>,
) -> Result<Option<DiscussionId>, StoreError> {
    if !joins_by_subject(content) {
        return Ok(None);
    }
    let Some(normalized) = subject_key(content) else {
        return Ok(None);
    };
    let st = store.statements().await?;
    let since = CqlTimestamp(subject_window_start(received.timestamp_millis()));
    let row: Option<(Uuid,)> = store
        .first(
            &st.select_discussion_by_subject,
            (user, normalized.as_ref(), since),
        )
        .await?;
    Ok(row.map(|(d,)| DiscussionId(d)))
}

async fn write_message(
    store: &CassandraStore,
    d: &Delivery,
    id: MessageId,
    discussion: DiscussionId,
    people: &[Participant],
    received: DateTime<Utc>,
) -> Result<(), StoreError> {
    let user = d.user_id.0;
    let content = d.content.as_ref();
    let mut envelope = d.envelope.clone();
    envelope.received_at = received;
    let size = i64::try_from(d.raw.len())
        .map_err(|_| StoreError::Unavailable("raw message too large".into()))?;
    let from = content.from().map(to_json).transpose()?;
    let flags = to_json(&d.flags)?;
    let date = content.date.map(timestamp);
    let parse_error = content.parse_error.is_some();
    let sha = d.raw_sha256.to_hex();
    let envelope = to_json(&envelope)?;
    let content_json = to_json(content)?;
    let message = (
        user,
        id.0,
        discussion.0,
        sha.as_str(),
        size,
        timestamp(received),
        unset(date),
        unset(content.subject.as_deref()),
        unset(from.as_deref()),
        parse_error,
        flags.as_str(),
        "[]",
        envelope.as_str(),
        content_json.as_str(),
    );

    let month = super::month_of(timestamp(received));
    let arrival = (
        user,
        month,
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
    let snippet = content.snippet(SNIPPET_CHARS);
    let privacy = to_json(&content.privacy)?;
    let people = to_json(&people)?;
    let in_discussion = (
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
        snippet.as_str(),
        privacy.as_str(),
        people.as_str(),
    );
    // Each summary row holds the subject and sender once, and the message row once more.
    let names =
        content.subject.as_ref().map_or(0, String::len) + from.as_ref().map_or(0, String::len);
    let summary_bytes = 2 * names + snippet.len() + privacy.len() + people.len();
    let message_bytes = names + sha.len() + flags.len() + envelope.len() + content_json.len();
    let rows = Rows {
        message,
        arrival,
        in_discussion,
        summary_bytes,
        message_bytes,
    };
    commit(store, id, rows).await
}

type MessageValues<'a> = (
    Uuid,
    Uuid,
    Uuid,
    &'a str,
    i64,
    CqlTimestamp,
    MaybeUnset<CqlTimestamp>,
    MaybeUnset<&'a str>,
    MaybeUnset<&'a str>,
    bool,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

type ArrivalValues<'a> = (
    Uuid,
    i32,
    CqlTimestamp,
    Uuid,
    Uuid,
    MaybeUnset<CqlTimestamp>,
    MaybeUnset<&'a str>,
    MaybeUnset<&'a str>,
    &'a str,
    bool,
    i64,
);

type InDiscussionValues<'a> = (
    Uuid,
    CqlTimestamp,
    Uuid,
    Uuid,
    MaybeUnset<CqlTimestamp>,
    MaybeUnset<&'a str>,
    MaybeUnset<&'a str>,
    &'a str,
    bool,
    i64,
    &'a str,
    &'a str,
    &'a str,
);

/// The rows that store and list a message, and how big their variable columns are.
struct Rows<'a> {
    message: MessageValues<'a>,
    arrival: ArrivalValues<'a>,
    in_discussion: InDiscussionValues<'a>,
    summary_bytes: usize,
    message_bytes: usize,
}

/// Writes the message and lists it, marked delivered: it exists, for readers and for the
/// duplicate check, exactly when it is listed, in its month and its discussion's activity.
///
/// - A small message is one logged batch: its row, marked, its two summary rows, its month
///   and its discussion's activity row.
/// - A bigger one has its row written first, unmarked, then the batch lists it and sets the
///   mark (`commit_message`).
/// - Summary rows too big for a batch are written after the message row and before the mark:
///   a failure in between leaves rows the retry rewrites identically, never a message missing
///   from lists.
async fn commit(store: &CassandraStore, id: MessageId, rows: Rows<'_>) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let Rows {
        message,
        arrival,
        in_discussion,
        summary_bytes,
        message_bytes,
    } = rows;
    let (user, key) = (message.0, message.1);
    // The user's month with mail, and the discussion's activity at this arrival.
    let month = (arrival.0, arrival.1);
    let activity = (arrival.0, arrival.1, arrival.2, arrival.4);
    if summary_bytes + message_bytes <= WHOLE_BATCH_BUDGET_BYTES {
        let rows = (arrival, in_discussion, month, activity, message);
        store.batch(&st.commit_whole_message, rows).await?;
        return Ok(());
    }
    store.execute(&st.insert_message, message).await?;
    if summary_bytes <= BATCH_BUDGET_BYTES {
        let rows = (arrival, in_discussion, month, activity, (user, key));
        store.batch(&st.commit_message, rows).await?;
        return Ok(());
    }
    warn!(message = %id, summary_bytes, "oversized summary, committing without a batch");
    futures::try_join!(
        store.execute(&st.insert_arrival, arrival),
        store.execute(&st.insert_in_discussion, in_discussion),
        store.execute(&st.insert_month, month),
        store.execute(&st.insert_activity, activity),
    )?;
    store.execute(&st.mark_delivered, (user, key)).await?;
    Ok(())
}
