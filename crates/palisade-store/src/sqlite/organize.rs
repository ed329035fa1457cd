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

/// Which JSON column of a message a discussion-wide action rewrites.
#[derive(Clone, Copy)]
enum Column {
    Flags,
    Tags,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Flags => "flags_json",
            Column::Tags => "tags_json",
        }
    }
}

/// Rewrites `column` of every message of a discussion with `change` (which returns the new
/// encoding, or `None` when nothing changes), then recounts the discussion once; the
/// messages changed, or `None` when the discussion does not exist.
fn rewrite_members(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
    column: Column,
    change: impl Fn(&str) -> Result<Option<String>, StoreError>,
) -> Result<Option<Vec<MessageId>>, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    if !discussion_exists(conn, &user, &id)? {
        return Ok(None);
    }
    let column = column.name();
    let update = format!("UPDATE messages SET {column} = ?3 WHERE user_id = ?1 AND id = ?2");
    let mut changed = Vec::new();
    for (message, value) in members(conn, &user, &id, column)? {
        if let Some(encoded) = change(&value)? {
            conn.prepare_cached(&update)
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

pub(crate) fn update_discussion_flags(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
    patch: FlagsPatch,
) -> Result<Option<Vec<MessageId>>, StoreError> {
    rewrite_members(conn, user, id, Column::Flags, |flags| {
        let old: Flags = json(flags, "flags")?;
        let new = old.patched(patch);
        if new == old {
            Ok(None)
        } else {
            to_json(&new).map(Some)
        }
    })
}

pub(crate) fn retag_discussion(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
    add: &[TagId],
    remove: &[TagId],
) -> Result<Option<Vec<MessageId>>, StoreError> {
    rewrite_members(conn, user, id, Column::Tags, |tags| {
        let old: Vec<TagId> = json(tags, "tags")?;
        let new = crate::retagged(&old, add, remove);
        if new == old {
            Ok(None)
        } else {
            to_json(&new).map(Some)
        }
    })
}
