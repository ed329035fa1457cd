//! Discussions, flags, message tags and deletion on Cassandra.
//!
//! A discussion shows its newest message: activity time, snippet and privacy are read from
//! the first row of its `messages_by_discussion` partition, so deleting a message needs no
//! recomputation of them. `discussions_by_activity_month` orders discussions, one partition
//! per user and month of activity, read newest month first (see [`list_discussions`]); a row is
//! valid when its time is that newest arrival, and readers skip the others (left by racing
//! deliveries or by failures), so the index may lag but never shows a discussion twice or in
//! the wrong place. Counts come from the id sets of the discussion row, which a retry can add
//! to again harmlessly.

use super::{
    CassandraStore, decode_cursor, encode_cursor, from_timestamp, json, page_of, to_json,
    unavailable,
};
use super::{
    ChunkRow, MessageRow, MessageSummaryRow, SUMMARIES_PER_LOOKUP, deliver, organize, summary,
    tags, u64_of,
};
use crate::{Delivery, DeliveryReceipt, Mailbox};
use crate::{Folder, Page, PageOf, StoreError, TagChange};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use palisade_model::{
    Discussion, DiscussionId, Flags, FlagsPatch, MessageContent, MessageId, Participant,
    PrivacyFeatures, TagId, UserId, merge_participants,
};
use palisade_model::{Message, MessageSummary, RawHash, Tag};
use scylla::value::CqlTimestamp;
use std::collections::{BTreeSet, HashMap, HashSet};
use tracing::{debug, warn};
use uuid::Uuid;

/// Most activity rows read, and discussions looked up, per round of a discussion list.
const ACTIVITY_ROUND: usize = 100;
/// Message reads kept in flight by [`Mailbox::get_messages`], as the index worker did when it
/// read a batch one message at a time.
const READS_IN_FLIGHT: usize = 16;

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

pub(super) type DiscussionRow = (
    Uuid,
    Option<String>,
    Option<Vec<String>>,
    Option<Vec<Uuid>>,
    Option<Vec<Uuid>>,
    Option<Vec<Uuid>>,
    Option<Vec<String>>,
);

/// The `tag_pairs` element saying that `message` carries `tag`.
pub(super) fn tag_pair(tag: TagId, message: Uuid) -> String {
    format!("{tag}:{message}")
}

/// The discussion's tags from its `tag_pairs`: those of messages still in `members`, each
/// once, in tag id order. Pairs left by a tag change racing a deletion are ignored.
fn tags_of(pairs: &[String], members: &HashSet<Uuid>) -> Vec<TagId> {
    let tags: BTreeSet<Uuid> = pairs
        .iter()
        .filter_map(|p| p.split_once(':'))
        .filter_map(|(tag, message)| {
            Some((Uuid::parse_str(tag).ok()?, Uuid::parse_str(message).ok()?))
        })
        .filter(|(_, message)| members.contains(message))
        .map(|(tag, _)| tag)
        .collect();
    tags.into_iter().map(TagId).collect()
}

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
        let stale = CqlTimestamp(*stale);
        store
            .execute(
                &st.delete_activity,
                (user, super::month_of(stale), stale, discussion),
            )
            .await?;
    }
    if newest != received.0 {
        let newest = CqlTimestamp(newest);
        store
            .execute(
                &st.insert_activity,
                (user, super::month_of(newest), newest, discussion),
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
    let (subject, people, members, unread, trashed, pairs) = match row {
        Some((_, subject, people, members, unread, trashed, pairs)) => (
            subject.clone(),
            people.as_deref(),
            members.as_deref().unwrap_or_default(),
            unread.as_deref().unwrap_or_default(),
            trashed.as_deref().unwrap_or_default(),
            pairs.as_deref().unwrap_or_default(),
        ),
        None => (None, None, &[][..], &[][..], &[][..], &[][..]),
    };
    let members: HashSet<Uuid> = members.iter().copied().collect();
    // An id marked by a flag update racing the message's deletion is not counted.
    let unread: HashSet<Uuid> = unread
        .iter()
        .filter(|m| members.contains(m))
        .copied()
        .collect();
    let trashed: HashSet<Uuid> = trashed
        .iter()
        .filter(|m| members.contains(m))
        .copied()
        .collect();
    let trashed_unread = trashed.intersection(&unread).count();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(Discussion {
        id: DiscussionId(id),
        user_id: user,
        subject,
        last_activity: from_timestamp(newest.received),
        message_count: count(members.len()),
        unread_count: count(unread.len()),
        trashed_count: count(trashed.len()),
        trashed_unread_count: count(trashed_unread),
        tags: tags_of(pairs, &members),
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
pub(super) async fn discussion_rows(
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

/// Walks the activity index from the cursor, month partition by month partition (only the
/// months in `mailbox_months`, newest first), skipping stale rows and discussions outside
/// `folder`, until the page is full. A folder is a filter over the one activity index: a
/// page reads on until it has found `limit` discussions, so a sparse folder (a small trash
/// in a large mailbox) costs up to one round of [`ACTIVITY_ROUND`] rows per hundred
/// discussions skipped, bounded by the user's discussion count.
pub(super) async fn list_discussions(
    store: &CassandraStore,
    user: UserId,
    folder: Folder,
    page: Page,
) -> Result<PageOf<Discussion>, StoreError> {
    let st = store.statements().await?;
    let limit = page.limit.max(1);
    let cursor = page.after.as_deref().map(decode_cursor).transpose()?;
    let cursor_month = cursor.map(|(ms, _)| super::month_of(CqlTimestamp(ms)));
    let fetch = (limit + 1).min(ACTIVITY_ROUND);
    let fetch_param = i32::try_from(fetch).unwrap_or(i32::MAX);
    let mut found = Vec::with_capacity(limit + 1);
    'months: for month in store.months(user.0, cursor_month).await? {
        let mut after = cursor.filter(|_| Some(month) == cursor_month);
        loop {
            let rows: Vec<(CqlTimestamp, Uuid)> = match after {
                None => {
                    store
                        .all(&st.activity_first, (user.0, month, fetch_param))
                        .await?
                }
                Some((ms, id)) => {
                    store
                        .all(
                            &st.activity_after,
                            (user.0, month, CqlTimestamp(ms), id, fetch_param),
                        )
                        .await?
                }
            };
            let exhausted = rows.len() < fetch;
            if let Some((at, id)) = rows.last() {
                after = Some((at.0, *id));
            }
            found.extend(
                at_activity(store, user, &rows)
                    .await?
                    .into_iter()
                    .filter(|d| folder.holds(d)),
            );
            if found.len() > limit {
                break 'months;
            }
            if exhausted {
                break;
            }
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
    tags: Vec<TagId>,
    /// Committed but not yet added to the user's count (see `deliver::count`).
    uncounted: bool,
}

type StateRow = (
    Option<bool>,
    Option<Uuid>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

/// The state of a delivered message; `None` when it does not exist (or is half-written).
async fn message_state(
    store: &CassandraStore,
    user: Uuid,
    id: Uuid,
) -> Result<Option<MessageState>, StoreError> {
    let st = store.statements().await?;
    let row: Option<StateRow> = store.first(&st.select_message_state, (user, id)).await?;
    let Some((Some(true), Some(discussion), Some(received), Some(sha256), flags, tags, uncounted)) =
        row
    else {
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
        tags: tags
            .map(|t| json(&t, "tags"))
            .transpose()?
            .unwrap_or_default(),
        uncounted: uncounted == Some(true),
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
        store.execute(
            &st.set_arrival_flags,
            (encoded.as_str(), u, super::month_of(at), at, m)
        ),
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
    if flags.trashed != state.flags.trashed {
        let trashed = if flags.trashed {
            &st.add_trashed
        } else {
            &st.remove_trashed
        };
        store.execute(trashed, (vec![m], u, d)).await?;
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
    let Some(state) = message_state(store, user.0, id.0).await? else {
        return Ok(false);
    };
    // The discussion's pairs change first, so a retry after a failure still sees the old
    // tags on the message row and writes them again.
    let (u, d) = (user.0, state.discussion);
    let gone: Vec<String> = state
        .tags
        .iter()
        .filter(|t| !tags.contains(t))
        .map(|t| tag_pair(*t, id.0))
        .collect();
    let added: Vec<String> = tags
        .iter()
        .filter(|t| !state.tags.contains(t))
        .map(|t| tag_pair(*t, id.0))
        .collect();
    if !gone.is_empty() {
        store.execute(&st.remove_tag_pairs, (gone, u, d)).await?;
    }
    if !added.is_empty() {
        store.execute(&st.add_tag_pairs, (added, u, d)).await?;
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
        .batch(
            &st.unlist_message,
            ((u, super::month_of(at), at, m), (u, d, at, m)),
        )
        .await?;

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
            (
                people_column(&people)?,
                vec![m],
                vec![m],
                vec![m],
                state
                    .tags
                    .iter()
                    .map(|t| tag_pair(*t, m))
                    .collect::<Vec<_>>(),
                u,
                d,
            ),
        )
        .await?;
    // The new newest gets its activity row before the deleted one loses its own.
    if let Some(newest) = newest {
        store
            .execute(&st.insert_activity, (u, super::month_of(newest), newest, d))
            .await?;
    }
    if newest.is_none_or(|n| at.0 > n.0) {
        store
            .execute(&st.delete_activity, (u, super::month_of(at), at, d))
            .await?;
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
    // Only two deletions of one message racing past the existence check both uncount it;
    // `palisade-admin migrate` recounts. A message whose delivery never counted it is not
    // uncounted either.
    if !state.uncounted
        && let Err(e) = store.add_to_count(u, -1).await
    {
        warn!(message = %id, error = %e, "could not uncount the deleted message");
    }
    debug!(user = %user, message = %id, discussion = %d, "deleted message");
    Ok(true)
}

impl CassandraStore {
    /// The raw hash of a message that finished delivery; a half-written one does not exist.
    pub(super) async fn delivered_raw(
        &self,
        user: Uuid,
        id: Uuid,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.delivered(user, id).await?.map(|(sha, _)| sha))
    }

    /// The raw hash of a delivered message, and whether it is still to be counted.
    pub(super) async fn delivered(
        &self,
        user: Uuid,
        id: Uuid,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let st = self.statements().await?;
        let row: Option<(Option<String>, Option<bool>, Option<bool>)> =
            self.first(&st.select_raw_ref, (user, id)).await?;
        Ok(row.and_then(|(sha, delivered, uncounted)| {
            sha.filter(|_| delivered == Some(true))
                .map(|sha| (sha, uncounted == Some(true)))
        }))
    }
}

#[async_trait]
impl Mailbox for CassandraStore {
    async fn deliver(&self, delivery: Delivery) -> Result<DeliveryReceipt, StoreError> {
        deliver::deliver(self, &delivery).await
    }

    fn queues_jobs(&self) -> bool {
        // The queue is RabbitMQ; the delivery pipeline publishes after the store answers.
        false
    }

    async fn list_messages(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        let after = page.after.as_deref().map(decode_cursor).transpose()?;
        self.arrivals(user.0, after, page.limit).await
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

    async fn get_messages(
        &self,
        keys: &[(UserId, MessageId)],
    ) -> Result<Vec<Option<Message>>, StoreError> {
        // Each read is a round trip: a few in flight at once, results in order.
        let reads: Vec<_> = keys
            .iter()
            .map(|&(user, id)| self.get_message(user, id))
            .collect();
        futures::stream::iter(reads)
            .buffered(READS_IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn get_raw(&self, user: UserId, id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let st = self.statements().await?;
        let Some(sha) = self.delivered_raw(user.0, id.0).await? else {
            return Ok(None);
        };
        let mut chunks = self
            .stream::<ChunkRow>(&st.select_raw_chunks, (user.0, sha.as_str()))
            .await?;
        let mut raw = Vec::new();
        let mut expected = (None, None);
        let mut next_chunk = 0;
        while let Some((chunk, data, size, count)) = chunks.try_next().await? {
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

    async fn count_messages(&self, user: UserId) -> Result<u64, StoreError> {
        Ok(u64_of(self.stored_count(user.0).await?))
    }

    async fn list_discussions(
        &self,
        user: UserId,
        folder: Folder,
        page: Page,
    ) -> Result<PageOf<Discussion>, StoreError> {
        list_discussions(self, user, folder, page).await
    }

    async fn get_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
    ) -> Result<Option<Discussion>, StoreError> {
        get_discussion(self, user, id).await
    }

    async fn discussion_messages(
        &self,
        user: UserId,
        id: DiscussionId,
        folder: Option<Folder>,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        let st = self.statements().await?;
        // A folder filters the discussion's own partition, which is small enough to walk.
        let keep = |m: &MessageSummary| folder.is_none_or(|f| f.holds_message(&m.flags));
        match &page.after {
            None => {
                self.summaries_where(&st.in_discussion_first, (user.0, id.0), page.limit, keep)
                    .await
            }
            Some(cursor) => {
                let (ms, after) = decode_cursor(cursor)?;
                self.summaries_where(
                    &st.in_discussion_after,
                    (user.0, id.0, CqlTimestamp(ms), after),
                    page.limit,
                    keep,
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
        update_flags(self, user, id, patch).await
    }

    async fn set_message_tags(
        &self,
        user: UserId,
        id: MessageId,
        tags: &[TagId],
    ) -> Result<bool, StoreError> {
        set_message_tags(self, user, id, tags).await
    }

    async fn update_discussion_flags(
        &self,
        user: UserId,
        id: DiscussionId,
        patch: FlagsPatch,
    ) -> Result<Option<Vec<MessageId>>, StoreError> {
        organize::update_discussion_flags(self, user, id, patch).await
    }

    async fn retag_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
        add: &[TagId],
        remove: &[TagId],
    ) -> Result<Option<Vec<MessageId>>, StoreError> {
        organize::retag_discussion(self, user, id, add, remove).await
    }

    async fn replace_content(
        &self,
        user: UserId,
        id: MessageId,
        content: &MessageContent,
    ) -> Result<bool, StoreError> {
        super::content::replace_content(self, user, id, content).await
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<bool, StoreError> {
        delete_message(self, user, id).await
    }

    async fn list_tags(&self, user: UserId) -> Result<Vec<Tag>, StoreError> {
        tags::list_tags(self, user).await
    }

    async fn create_tag(
        &self,
        user: UserId,
        name: &str,
        colour: Option<&str>,
        max_tags: usize,
    ) -> Result<Tag, StoreError> {
        tags::create_tag(self, user, name, colour, max_tags).await
    }

    async fn update_tag(
        &self,
        user: UserId,
        id: TagId,
        change: &TagChange,
    ) -> Result<Tag, StoreError> {
        tags::update_tag(self, user, id, change).await
    }

    async fn delete_tag(&self, user: UserId, id: TagId) -> Result<bool, StoreError> {
        tags::delete_tag(self, user, id).await
    }
}
