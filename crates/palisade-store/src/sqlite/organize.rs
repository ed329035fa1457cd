//! Discussion-wide actions of the embedded store: flags and tags on every message of a
//! discussion at once, inside one write, and the discussion's counts that follow from them.

use super::rows::{json, parse_id, to_json};
use super::unavailable;
use crate::StoreError;
use palisade_model::{DiscussionId, Flags, FlagsPatch, MessageId, TagId, UserId};
use rusqlite::{Connection, params};

fn discussion_exists(conn: &Connection, user: &str, id: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM discussions WHERE user_id = ?1 AND id = ?2")
        .and_then(|mut s| s.exists(params![user, id]))
        .map_err(unavailable)
}

/// The id and one JSON column of every message of a discussion.
fn members(
    conn: &Connection,
    user: &str,
    discussion: &str,
    column: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let sql =
        format!("SELECT id, {column} FROM messages WHERE user_id = ?1 AND discussion_id = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params![user, discussion], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)
}

/// Recounts what a discussion shows of its messages' flags and tags (unread, trashed, and
/// the union of tags) with one indexed pass over the discussion: cheaper to get right than
/// a delta per changed message, and the list then reads them from the discussion row.
pub(crate) fn refresh_counts(
    conn: &Connection,
    user: &str,
    discussion: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE discussions SET (unread_count, trashed_count, trashed_unread) = (
             SELECT TOTAL(NOT seen), TOTAL(trashed), TOTAL(trashed AND NOT seen) FROM (
                 SELECT IFNULL(json_extract(flags_json, '$.seen'), 0) AS seen,
                        IFNULL(json_extract(flags_json, '$.trashed'), 0) AS trashed
                 FROM messages WHERE user_id = ?1 AND discussion_id = ?2)),
             tags_json = (
                 SELECT IFNULL(json_group_array(DISTINCT t.value), '[]')
                 FROM messages m, json_each(m.tags_json) t
                 WHERE m.user_id = ?1 AND m.discussion_id = ?2)
         WHERE user_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| s.execute(params![user, discussion]))
    .map_err(unavailable)?;
    Ok(())
}

pub(crate) fn update_discussion_flags(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
    patch: FlagsPatch,
) -> Result<Option<Vec<MessageId>>, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    if !discussion_exists(conn, &user, &id)? {
        return Ok(None);
    }
    let mut changed = Vec::new();
    for (message, flags) in members(conn, &user, &id, "flags_json")? {
        let old: Flags = json(&flags, "flags")?;
        let new = old.patched(patch);
        if new != old {
            let encoded = to_json(&new)?;
            conn.prepare_cached(
                "UPDATE messages SET flags_json = ?3 WHERE user_id = ?1 AND id = ?2",
            )
            .and_then(|mut s| s.execute(params![user, message, encoded]))
            .map_err(unavailable)?;
            changed.push(parse_id(&message)?);
        }
    }
    if !changed.is_empty() {
        refresh_counts(conn, &user, &id)?;
    }
    Ok(Some(changed))
}

pub(crate) fn retag_discussion(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
    add: &[TagId],
    remove: &[TagId],
) -> Result<Option<Vec<MessageId>>, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    if !discussion_exists(conn, &user, &id)? {
        return Ok(None);
    }
    let mut changed = Vec::new();
    for (message, tags) in members(conn, &user, &id, "tags_json")? {
        let old: Vec<TagId> = json(&tags, "tags")?;
        let new = crate::retagged(&old, add, remove);
        if new != old {
            let encoded = to_json(&new)?;
            conn.prepare_cached(
                "UPDATE messages SET tags_json = ?3 WHERE user_id = ?1 AND id = ?2",
            )
            .and_then(|mut s| s.execute(params![user, message, encoded]))
            .map_err(unavailable)?;
            changed.push(parse_id(&message)?);
        }
    }
    if !changed.is_empty() {
        refresh_counts(conn, &user, &id)?;
    }
    Ok(Some(changed))
}
