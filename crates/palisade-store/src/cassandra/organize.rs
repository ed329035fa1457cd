//! Discussion-wide actions on Cassandra: flags and tags on every message of a discussion.
//!
//! The discussion row's member set names the messages, and their current state is read from
//! the message rows by `IN` lookups, a few round trips for a whole discussion. Writes keep
//! the order of the single-message versions (listing rows and the discussion's sets first,
//! message rows last), so a retry after a failure still sees the old state and writes
//! everything again; each step runs as a bounded set of concurrent statements.

use super::mailbox::{discussion_rows, tag_pair};
use super::{CassandraStore, MessageSummaryRow, SUMMARIES_PER_LOOKUP, json, to_json};
use crate::StoreError;
use futures::{StreamExt, TryStreamExt, stream};
use palisade_model::{DiscussionId, Flags, FlagsPatch, MessageId, TagId, UserId};
use scylla::value::CqlTimestamp;
use std::future::Future;
use uuid::Uuid;

/// Writes in flight at once for one action: enough to hide round trips, few enough that one
/// user's request does not flood a coordinator.
const CONCURRENT_WRITES: usize = 16;

/// Runs `writes` with at most [`CONCURRENT_WRITES`] in flight; the first failure stops it.
async fn bounded<F>(writes: impl IntoIterator<Item = F>) -> Result<(), StoreError>
where
    F: Future<Output = Result<(), StoreError>>,
{
    stream::iter(writes)
        .buffer_unordered(CONCURRENT_WRITES)
        .try_for_each(|()| async { Ok(()) })
        .await
}

/// Writes a message's new flags into its two listing rows.
async fn list_flags(
    store: &CassandraStore,
    user: Uuid,
    discussion: Uuid,
    m: &Member,
    encoded: &str,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    futures::try_join!(
        store.execute(
            &st.set_arrival_flags,
            (encoded, user, super::month_of(m.received), m.received, m.id)
        ),
        store.execute(
            &st.set_in_discussion_flags,
            (encoded, user, discussion, m.received, m.id)
        ),
    )?;
    Ok(())
}

/// A message row's column that discussion-wide actions rewrite.
#[derive(Clone, Copy)]
enum Column {
    Flags,
    Tags,
}

/// Writes one column of a message row, the last step of an action on that message.
async fn write_column(
    store: &CassandraStore,
    column: Column,
    user: Uuid,
    message: Uuid,
    encoded: &str,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let statement = match column {
        Column::Flags => &st.set_message_flags,
        Column::Tags => &st.set_message_tags,
    };
    store.execute(statement, (encoded, user, message)).await?;
    Ok(())
}

/// The ids of a discussion's messages; `None` when it has none.
async fn member_ids(
    store: &CassandraStore,
    user: Uuid,
    discussion: Uuid,
) -> Result<Option<Vec<Uuid>>, StoreError> {
    let rows = discussion_rows(store, user, &[discussion]).await?;
    Ok(rows
        .get(&discussion)
        .and_then(|row| row.3.clone())
        .filter(|ids| !ids.is_empty()))
}

/// A message row's id, `delivered` mark, discussion and tags.
type TagsRow = (Uuid, Option<bool>, Option<Uuid>, Option<String>);

/// A delivered message of the discussion, as its own row has it.
struct Member {
    id: Uuid,
    received: CqlTimestamp,
    flags: Flags,
}

/// The delivered messages among `ids` that are still in `discussion`, with their flags.
async fn member_flags(
    store: &CassandraStore,
    user: Uuid,
    discussion: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Member>, StoreError> {
    let st = store.statements().await?;
    let mut members = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(SUMMARIES_PER_LOOKUP) {
        let rows: Vec<MessageSummaryRow> = store.all(&st.select_summaries, (user, chunk)).await?;
        for (delivered, received, id, placed, _, _, _, flags, _, _) in rows {
            let (Some(true), Some(received), Some(placed)) = (delivered, received, placed) else {
                continue;
            };
            if placed != discussion {
                continue;
            }
            let flags = flags
                .map(|f| json(&f, "flags"))
                .transpose()?
                .unwrap_or_default();
            members.push(Member {
                id,
                received,
                flags,
            });
        }
    }
    Ok(members)
}

/// Applies `patch` to every message of the discussion; the ids of those that changed.
pub(super) async fn update_discussion_flags(
    store: &CassandraStore,
    user: UserId,
    id: DiscussionId,
    patch: FlagsPatch,
) -> Result<Option<Vec<MessageId>>, StoreError> {
    let st = store.statements().await?;
    let (u, d) = (user.0, id.0);
    let Some(ids) = member_ids(store, u, d).await? else {
        return Ok(None);
    };
    let members = member_flags(store, u, d, &ids).await?;
    if members.is_empty() {
        return Ok(None);
    }
    let changed: Vec<(Member, String)> = members
        .into_iter()
        .filter_map(|m| {
            let new = m.flags.patched(patch);
            (new != m.flags).then(|| to_json(&new).map(|encoded| (m, encoded)))
        })
        .collect::<Result<_, _>>()?;
    // Collected first: a lazy iterator's closure held across the await trips the
    // compiler's proof that the future is Send.
    let writes: Vec<_> = changed
        .iter()
        .map(|(m, encoded)| list_flags(store, u, d, m, encoded))
        .collect();
    bounded(writes).await?;
    if let Some(seen) = patch.seen {
        let ids: Vec<Uuid> = changed
            .iter()
            .filter(|(m, _)| m.flags.seen != seen)
            .map(|(m, _)| m.id)
            .collect();
        if !ids.is_empty() {
            let unread = if seen {
                &st.remove_unread
            } else {
                &st.add_unread
            };
            store.execute(unread, (ids, u, d)).await?;
        }
    }
    if let Some(trashed) = patch.trashed {
        let ids: Vec<Uuid> = changed
            .iter()
            .filter(|(m, _)| m.flags.trashed != trashed)
            .map(|(m, _)| m.id)
            .collect();
        if !ids.is_empty() {
            let set = if trashed {
                &st.add_trashed
            } else {
                &st.remove_trashed
            };
            store.execute(set, (ids, u, d)).await?;
        }
    }
    // Collected first: a lazy iterator's closure held across the await trips the
    // compiler's proof that the future is Send.
    let writes: Vec<_> = changed
        .iter()
        .map(|(m, encoded)| write_column(store, Column::Flags, u, m.id, encoded))
        .collect();
    bounded(writes).await?;
    Ok(Some(changed.iter().map(|(m, _)| MessageId(m.id)).collect()))
}

/// Adds and removes tags on every message of the discussion; the ids of those that changed.
pub(super) async fn retag_discussion(
    store: &CassandraStore,
    user: UserId,
    id: DiscussionId,
    add: &[TagId],
    remove: &[TagId],
) -> Result<Option<Vec<MessageId>>, StoreError> {
    let st = store.statements().await?;
    let (u, d) = (user.0, id.0);
    let Some(ids) = member_ids(store, u, d).await? else {
        return Ok(None);
    };
    let mut changed: Vec<(Uuid, String)> = Vec::new();
    let mut found = false;
    let (mut gone, mut added) = (Vec::new(), Vec::new());
    for chunk in ids.chunks(SUMMARIES_PER_LOOKUP) {
        let rows: Vec<TagsRow> = store.all(&st.select_tags_in, (u, chunk)).await?;
        for (message, delivered, placed, tags) in rows {
            if delivered != Some(true) || placed != Some(d) {
                continue;
            }
            found = true;
            let old: Vec<TagId> = tags
                .map(|t| json(&t, "tags"))
                .transpose()?
                .unwrap_or_default();
            let new = crate::retagged(&old, add, remove);
            if new != old {
                gone.extend(
                    old.iter()
                        .filter(|t| !new.contains(t))
                        .map(|t| tag_pair(*t, message)),
                );
                added.extend(
                    new.iter()
                        .filter(|t| !old.contains(t))
                        .map(|t| tag_pair(*t, message)),
                );
                changed.push((message, to_json(&new)?));
            }
        }
    }
    if !found {
        return Ok(None);
    }
    // The discussion's pairs change in one statement each, before the message rows.
    if !gone.is_empty() {
        store.execute(&st.remove_tag_pairs, (gone, u, d)).await?;
    }
    if !added.is_empty() {
        store.execute(&st.add_tag_pairs, (added, u, d)).await?;
    }
    // Collected first: a lazy iterator's closure held across the await trips the
    // compiler's proof that the future is Send.
    let writes: Vec<_> = changed
        .iter()
        .map(|(m, encoded)| write_column(store, Column::Tags, u, *m, encoded))
        .collect();
    bounded(writes).await?;
    Ok(Some(changed.iter().map(|(m, _)| MessageId(*m)).collect()))
}
