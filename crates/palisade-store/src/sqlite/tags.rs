//! Tags of the embedded store: unique names per user, and the cap, checked by the single
//! writer together with the insert.

use super::rows::parse_id;
use super::unavailable;
use crate::{StoreError, TagChange};
use palisade_model::{Tag, TagId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

fn tag_name_taken(conn: &Connection, user: &str, name: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM tags WHERE user_id = ?1 AND name = ?2")
        .and_then(|mut s| s.exists(params![user, name]))
        .map_err(unavailable)
}

pub(crate) fn list_tags(conn: &Connection, user: UserId) -> Result<Vec<Tag>, StoreError> {
    conn.prepare_cached("SELECT id, name, colour FROM tags WHERE user_id = ?1 ORDER BY name")
        .and_then(|mut s| {
            s.query_map([user.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?
        .into_iter()
        .map(|(id, name, colour)| {
            Ok(Tag {
                id: parse_id(&id)?,
                user_id: user,
                name,
                colour,
            })
        })
        .collect()
}

pub(crate) fn create_tag(
    conn: &Connection,
    user: UserId,
    name: &str,
    colour: Option<&str>,
    max_tags: usize,
) -> Result<Tag, StoreError> {
    let owner = user.to_string();
    if tag_name_taken(conn, &owner, name)? {
        return Err(crate::tag_conflict(name));
    }
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM tags WHERE user_id = ?1")
        .and_then(|mut s| s.query_row([&owner], |r| r.get(0)))
        .map_err(unavailable)?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= max_tags {
        return Err(crate::tag_cap_reached(max_tags));
    }
    let tag = Tag {
        id: TagId::new_random(),
        user_id: user,
        name: name.to_string(),
        colour: colour.map(str::to_string),
    };
    conn.execute(
        "INSERT INTO tags (user_id, id, name, colour) VALUES (?1, ?2, ?3, ?4)",
        params![owner, tag.id.to_string(), tag.name, tag.colour],
    )
    .map_err(unavailable)?;
    Ok(tag)
}

pub(crate) fn update_tag(
    conn: &Connection,
    user: UserId,
    id: TagId,
    change: &TagChange,
) -> Result<Tag, StoreError> {
    let owner = user.to_string();
    let current: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT name, colour FROM tags WHERE user_id = ?1 AND id = ?2",
            params![owner, id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let Some((current, colour)) = current else {
        return Err(StoreError::NotFound(format!("tag {id}")));
    };
    let name = change.name.clone().unwrap_or(current.clone());
    let colour = change.colour.clone().unwrap_or(colour);
    if current != name && tag_name_taken(conn, &owner, &name)? {
        return Err(crate::tag_conflict(&name));
    }
    conn.execute(
        "UPDATE tags SET name = ?3, colour = ?4 WHERE user_id = ?1 AND id = ?2",
        params![owner, id.to_string(), name, colour],
    )
    .map_err(unavailable)?;
    Ok(Tag {
        id,
        user_id: user,
        name,
        colour,
    })
}

pub(crate) fn delete_tag(conn: &Connection, user: UserId, id: TagId) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM tags WHERE user_id = ?1 AND id = ?2",
        params![user.to_string(), id.to_string()],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}
