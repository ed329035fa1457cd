//! Discussions, flags, message tags and deletion on Cassandra.
//!
//! A discussion shows its newest message: activity time, snippet and privacy are read from
//! the first row of its `messages_by_discussion` partition, so deleting a message needs no
//! recomputation of them. `discussions_by_activity` orders discussions; one of its rows is
//! valid when its time is that newest arrival, and readers skip the others (left by racing
//! deliveries or by failures), so the index may lag but never shows a discussion twice or in
//! the wrong place. Counts come from the id sets of the discussion row, which a retry can add
//! to again harmlessly.

use super::{
    CassandraStore, decode_cursor, encode_cursor, from_timestamp, json, page_of, to_json,
    unavailable,
};
use crate::{Page, PageOf, StoreError};
use palisade_model::{
    Discussion, DiscussionId, Flags, FlagsPatch, MessageId, Participant, PrivacyFeatures, TagId,
    UserId, merge_participants,
};
use scylla::value::CqlTimestamp;
use std::collections::{BTreeSet, HashMap, HashSet};
use tracing::debug;
use uuid::Uuid;

/// Most activity rows read, and discussions looked up, per round of a discussion list.
const ACTIVITY_ROUND: usize = 100;

/// The newest message of a discussion, as the discussion shows it.
pub(super) struct Newest {
    /// Its arrival, the discussion's last activity.
    pub(super) received: CqlTimestamp,
    snippet: Option<String>,
    privacy: Option<String>,
}

type NewestRow = (
    Uuid,
    CqlTimestamp,
    Option<i64>,
    Option<String>,
    Option<String>,
);

type DiscussionRow = (
    Uuid,
    Option<String>,
    Option<Vec<String>>,
    Option<Vec<Uuid>>,
    Option<Vec<Uuid>>,
);

/// A discussion's people from its `participants` list: appends that raced may repeat someone
/// or run past the cap, so the list is merged again on reading.
pub(super) fn people(stored: &[String]) -> Result<Vec<Participant>, StoreError> {
    let decoded = stored
        .iter()
        .map(|p| json::<Participant>(p, "participant"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut people = Vec::new();
    merge_participants(&mut people, &decoded);
    Ok(people)
}

/// The `participants` list elements for `people`.
pub(super) fn people_column(people: &[Participant]) -> Result<Vec<String>, StoreError> {
    people.iter().map(to_json).collect()
}

/// Decodes a newest-message row; `None` for a row a flag update left behind (it has no size).
fn newest_of(row: NewestRow) -> Option<(Uuid, Newest)> {
    let (discussion, received, size, snippet, privacy) = row;
    size.map(|_| {
        (
            discussion,
            Newest {
                received,
                snippet,
                privacy,
            },
        )
    })
}

/// The newest stored message of a discussion, `None` when it has none.
pub(super) async fn newest(
    store: &CassandraStore,
    user: Uuid,
    discussion: Uuid,
) -> Result<Option<Newest>, StoreError> {
    let st = store.statements().await?;
    let mut found = None;
    store
        .scan(
            &st.select_newest,
            (user, discussion),
            st.select_newest.get_page_size(),
            |row: NewestRow| {
                found = newest_of(row).map(|(_, n)| n);
                Ok(found.is_none())
            },
        )
        .await?;
    Ok(found)
}

/// After a delivery into `discussion` committed: removes the activity rows of arrivals that
/// are no longer its newest (the previous newest, this one if a newer message beat it, and any
/// delivered concurrently), and makes sure the newest has one.
pub(super) async fn settle_activity(
    store: &CassandraStore,
    user: Uuid,
    discussion: Uuid,
    received: chrono::DateTime<chrono::Utc>,
    previous: Option<CqlTimestamp>,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let received = super::timestamp(received);
    let lower = previous.map_or(received.0, |p| p.0.min(received.0));
    let mut times = BTreeSet::new();
    store
        .scan(
            &st.select_arrivals_since,
            (user, discussion, CqlTimestamp(lower)),
            st.select_arrivals_since.get_page_size(),
            |(at, size): (CqlTimestamp, Option<i64>)| {
                if size.is_some() {
                    times.insert(at.0);
                }
                Ok(true)
            },
        )
        .await?;
    let Some(&newest) = times.last() else {
        return Ok(());
    };
    times.insert(received.0);
    times.extend(previous.map(|p| p.0));
    for stale in times.range(..newest) {
        store
            .execute(
                &st.delete_activity,
                (user, CqlTimestamp(*stale), discussion),
            )
            .await?;
    }
    if newest != received.0 {
        store
            .execute(
                &st.insert_activity,
                (user, CqlTimestamp(newest), discussion),
            )
            .await?;
    }
    Ok(())
}

/// Builds the discussion shown for a newest message and the discussion row.
fn discussion(
    user: UserId,
    id: Uuid,
    newest: &Newest,
    row: Option<&DiscussionRow>,
) -> Result<Discussion, StoreError> {
    let (subject, people, members, unread) = match row {
        Some((_, subject, people, members, unread)) => (
            subject.clone(),
            people.as_deref(),
            members.as_deref().unwrap_or_default(),
            unread.as_deref().unwrap_or_default(),
        ),
        None => (None, None, &[][..], &[][..]),
    };
    let members: HashSet<Uuid> = members.iter().copied().collect();
    // An id marked unread by a flag update racing the message's deletion is not counted.
    let unread = unread.iter().filter(|m| members.contains(m)).count();
    Ok(Discussion {
        id: DiscussionId(id),
        user_id: user,
        subject,
        last_activity: from_timestamp(newest.received),
        message_count: u32::try_from(members.len()).unwrap_or(u32::MAX),
        unread_count: u32::try_from(unread).unwrap_or(u32::MAX),
        snippet: newest.snippet.clone().unwrap_or_default(),
        participants: self::people(people.unwrap_or_default())?,
        privacy: newest
            .privacy
            .as_deref()
            .map(|p| json::<PrivacyFeatures>(p, "privacy"))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// The discussion rows of `ids`, by id.
async fn discussion_rows(
    store: &CassandraStore,
    user: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, DiscussionRow>, StoreError> {
    let st = store.statements().await?;
    let rows: Vec<DiscussionRow> = store.all(&st.select_discussions_in, (user, ids)).await?;
    Ok(rows.into_iter().map(|r| (r.0, r)).collect())
}

/// The discussions of valid activity rows, in the rows' order; stale rows are skipped.
async fn at_activity(
    store: &CassandraStore,
    user: UserId,
    rows: &[(CqlTimestamp, Uuid)],
) -> Result<Vec<Discussion>, StoreError> {
    let st = store.statements().await?;
    let ids: Vec<Uuid> = rows
        .iter()
        .map(|(_, d)| *d)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<NewestRow> = store
        .all(&st.select_newest_in, (user.0, ids.as_slice()))
        .await?;
    let mut newest: HashMap<Uuid, Newest> = HashMap::new();
    for row in found {
        let discussion = row.0;
        match newest_of(row) {
            Some((d, n)) => {
                newest.insert(d, n);
            }
            // The first row was left behind by a flag update; look past it.
            None => {
                if let Some(n) = self::newest(store, user.0, discussion).await? {
                    newest.insert(discussion, n);
                }
            }
        }
    }
    let states = discussion_rows(store, user.0, &ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (at, id) in rows {
        match newest.get(id) {
            Some(n) if n.received == *at => {
                out.push(discussion(user, *id, n, states.get(id))?);
            }
            _ => debug!(discussion = %id, at = at.0, "skipping a stale activity row"),
        }
    }
    Ok(out)
}

/// Walks the activity index from the cursor, skipping stale rows, until the page is full.
pub(super) async fn list_discussions(
    store: &CassandraStore,
    user: UserId,
    page: Page,
) -> Result<PageOf<Discussion>, StoreError> {
    let st = store.statements().await?;
    let limit = page.limit.max(1);
    let mut after = page.after.as_deref().map(decode_cursor).transpose()?;
    let fetch = (limit + 1).min(ACTIVITY_ROUND);
    let fetch_param = i32::try_from(fetch).unwrap_or(i32::MAX);
    let mut found = Vec::with_capacity(limit + 1);
    loop {
        let rows: Vec<(CqlTimestamp, Uuid)> = match after {
            None => store.all(&st.activity_first, (user.0, fetch_param)).await?,
            Some((ms, id)) => {
                store
                    .all(
                        &st.activity_after,
                        (user.0, CqlTimestamp(ms), id, fetch_param),
                    )
                    .await?
            }
        };
        let exhausted = rows.len() < fetch;
        if let Some((at, id)) = rows.last() {
            after = Some((at.0, *id));
        }
        found.extend(at_activity(store, user, &rows).await?);
        if found.len() > limit || exhausted {
            break;
        }
    }
    Ok(page_of(found, limit, |d: &Discussion| {
        encode_cursor(d.last_activity.timestamp_millis(), d.id.0)
    }))
}

/// One discussion, `None` when it holds no stored message.
pub(super) async fn get_discussion(
    store: &CassandraStore,
    user: UserId,
    id: DiscussionId,
) -> Result<Option<Discussion>, StoreError> {
    let Some(newest) = newest(store, user.0, id.0).await? else {
        return Ok(None);
    };
    let states = discussion_rows(store, user.0, &[id.0]).await?;
    discussion(user, id.0, &newest, states.get(&id.0)).map(Some)
}

/// Where a stored message is listed, and its flags.
struct MessageState {
    discussion: Uuid,
    received: CqlTimestamp,
    sha256: String,
    flags: Flags,
}

type StateRow = (
    Option<bool>,
    Option<Uuid>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<String>,
);

/// The state of a delivered message; `None` when it does not exist (or is half-written).
async fn message_state(
    store: &CassandraStore,
    user: Uuid,
    id: Uuid,
) -> Result<Option<MessageState>, StoreError> {
    let st = store.statements().await?;
    let row: Option<StateRow> = store.first(&st.select_message_state, (user, id)).await?;
    let Some((Some(true), Some(discussion), Some(received), Some(sha256), flags)) = row else {
        return Ok(None);
    };
    Ok(Some(MessageState {
        discussion,
        received,
        sha256,
        flags: flags
            .map(|f| json(&f, "flags"))
            .transpose()?
            .unwrap_or_default(),
    }))
}

/// Writes the listing rows and the discussion's unread set first and the message row last:
/// a retry after a failure still sees the old flags and writes everything again.
pub(super) async fn update_flags(
    store: &CassandraStore,
    user: UserId,
    id: MessageId,
    patch: FlagsPatch,
) -> Result<Option<Flags>, StoreError> {
    let st = store.statements().await?;
    let Some(state) = message_state(store, user.0, id.0).await? else {
        return Ok(None);
    };
    let flags = state.flags.patched(patch);
    if flags == state.flags {
        return Ok(Some(flags));
    }
    let encoded = to_json(&flags)?;
    let (u, m, d, at) = (user.0, id.0, state.discussion, state.received);
    futures::try_join!(
        store.execute(&st.set_arrival_flags, (encoded.as_str(), u, at, m)),
        store.execute(&st.set_in_discussion_flags, (encoded.as_str(), u, d, at, m)),
    )?;
    if flags.seen != state.flags.seen {
        let unread = if flags.seen {
            &st.remove_unread
        } else {
            &st.add_unread
        };
        store.execute(unread, (vec![m], u, d)).await?;
    }
    store
        .execute(&st.set_message_flags, (encoded.as_str(), u, m))
        .await?;
    Ok(Some(flags))
}

/// Replaces the tags of a stored message; `false` when it does not exist.
pub(super) async fn set_message_tags(
    store: &CassandraStore,
    user: UserId,
    id: MessageId,
    tags: &[TagId],
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    if message_state(store, user.0, id.0).await?.is_none() {
        return Ok(false);
    }
    store
        .execute(&st.set_message_tags, (to_json(&tags)?, user.0, id.0))
        .await?;
    Ok(true)
}

/// Unlists the message, updates its discussion, then forgets the message row, its arrival
/// claim and its raw bytes. The message row goes last, so a retry after a failure finds the
/// message and finishes the job; every step is idempotent.
pub(super) async fn delete_message(
    store: &CassandraStore,
    user: UserId,
    id: MessageId,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    let Some(state) = message_state(store, user.0, id.0).await? else {
        return Ok(false);
    };
    let (u, m, d, at) = (user.0, id.0, state.discussion, state.received);
    store
        .session
        .batch(&st.unlist_message, ((u, at, m), (u, d, at, m)))
        .await
        .map_err(unavailable)?;

    // The discussion's people are rebuilt from the messages left, in arrival order.
    let mut people: Vec<Participant> = Vec::new();
    let mut newest = None;
    store
        .scan(
            &st.select_members,
            (u, d),
            st.select_members.get_page_size(),
            |(received, size, own): (CqlTimestamp, Option<i64>, Option<String>)| {
                if size.is_some() {
                    if let Some(own) = own {
                        let own: Vec<Participant> = json(&own, "participants")?;
                        merge_participants(&mut people, &own);
                    }
                    newest = Some(received);
                }
                Ok(true)
            },
        )
        .await?;
    store
        .execute(
            &st.untouch_discussion,
            (people_column(&people)?, vec![m], vec![m], u, d),
        )
        .await?;
    // The new newest gets its activity row before the deleted one loses its own.
    if let Some(newest) = newest {
        store.execute(&st.insert_activity, (u, newest, d)).await?;
    }
    if newest.is_none_or(|n| at.0 > n.0) {
        store.execute(&st.delete_activity, (u, at, d)).await?;
    }

    // Only this user's copy of the bytes: raw messages are keyed by user.
    store
        .session
        .batch(
            &st.forget_message,
            ((u, m), (u, m), (u, state.sha256.as_str())),
        )
        .await
        .map_err(unavailable)?;
    debug!(user = %user, message = %id, discussion = %d, "deleted message");
    Ok(true)
}
