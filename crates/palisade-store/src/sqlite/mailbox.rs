//! The mailbox side of the embedded store: discussions, flags, tags, deletion, contacts and
//! drafts. Reads take a pooled connection; writes run inside the writer's savepoint.

use super::rows::{json, parse_id, start_after, to_json};
use super::{from_millis, millis, unavailable};
use crate::threading::SNIPPET_CHARS;
use crate::{Page, PageOf, StoreError};
use palisade_model::{
    Address, Contact, ContactId, Discussion, DiscussionId, Draft, DraftId, Flags, FlagsPatch,
    MessageContent, MessageId, MessageSummary, Participant, PrivacyFeatures, Tag, TagId, UserId,
    merge_participants,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Turns `limit + 1` fetched rows into a page, with a cursor when the extra row exists.
fn paged<T>(
    mut rows: Vec<T>,
    limit: usize,
    cursor: impl Fn(&T) -> String,
) -> Result<PageOf<T>, StoreError> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(cursor) } else { None };
    Ok(PageOf { items: rows, next })
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit.max(1) + 1).unwrap_or(i64::MAX)
}

const DISCUSSION_COLUMNS: &str = "id, subject, last_activity, message_count, unread_count, \
                                  snippet, participants_json, privacy_json";

fn discussion_row(user: UserId, r: &Row<'_>) -> rusqlite::Result<RawDiscussion> {
    Ok(RawDiscussion {
        user,
        id: r.get(0)?,
        subject: r.get(1)?,
        last_activity: r.get(2)?,
        message_count: r.get(3)?,
        unread_count: r.get(4)?,
        snippet: r.get(5)?,
        participants: r.get(6)?,
        privacy: r.get(7)?,
    })
}

/// A discussion row before its JSON columns are decoded.
struct RawDiscussion {
    user: UserId,
    id: String,
    subject: Option<String>,
    last_activity: i64,
    message_count: i64,
    unread_count: i64,
    snippet: String,
    participants: String,
    privacy: Option<String>,
}

impl RawDiscussion {
    fn decode(self) -> Result<Discussion, StoreError> {
        Ok(Discussion {
            id: parse_id(&self.id)?,
            user_id: self.user,
            subject: self.subject,
            last_activity: from_millis(self.last_activity),
            message_count: u32::try_from(self.message_count).unwrap_or_default(),
            unread_count: u32::try_from(self.unread_count).unwrap_or_default(),
            snippet: self.snippet,
            participants: json(&self.participants, "participants")?,
            privacy: match self.privacy {
                Some(p) => json(&p, "privacy")?,
                None => PrivacyFeatures::default(),
            },
        })
    }
}

pub(crate) fn list_discussions(
    conn: &Connection,
    user: UserId,
    page: &Page,
) -> Result<PageOf<Discussion>, StoreError> {
    let (after_ms, after_id) = start_after(page)?;
    let sql = format!(
        "SELECT {DISCUSSION_COLUMNS} FROM discussions
         WHERE user_id = ?1 AND (last_activity < ?2 OR (last_activity = ?2 AND id < ?3))
         ORDER BY last_activity DESC, id DESC LIMIT ?4"
    );
    let rows = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(
                params![
                    user.to_string(),
                    after_ms,
                    after_id,
                    limit_param(page.limit)
                ],
                |r| discussion_row(user, r),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    let page = paged(rows, page.limit.max(1), |d| {
        format!("{}:{}", d.last_activity, d.id)
    })?;
    Ok(PageOf {
        items: page
            .items
            .into_iter()
            .map(RawDiscussion::decode)
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}

pub(crate) fn get_discussion(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
) -> Result<Option<Discussion>, StoreError> {
    let sql =
        format!("SELECT {DISCUSSION_COLUMNS} FROM discussions WHERE user_id = ?1 AND id = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![user.to_string(), id.to_string()], |r| {
                discussion_row(user, r)
            })
            .optional()
        })
        .map_err(unavailable)?
        .map(RawDiscussion::decode)
        .transpose()
}

pub(crate) fn discussion_messages(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
    page: &Page,
) -> Result<PageOf<MessageSummary>, StoreError> {
    super::rows::list_messages(conn, user, Some(id), page)
}

pub(crate) fn count_messages(conn: &Connection, user: UserId) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT COUNT(*) FROM messages WHERE user_id = ?1",
        [user.to_string()],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or_default())
    .map_err(unavailable)
}

/// Reads a message's discussion and flags, the state every message write starts from.
fn message_state(
    conn: &Connection,
    user: &str,
    id: &str,
) -> Result<Option<(String, Flags)>, StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT discussion_id, flags_json FROM messages WHERE user_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![user, id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(unavailable)?;
    row.map(|(d, f)| Ok((d, json::<Flags>(&f, "flags")?)))
        .transpose()
}

pub(crate) fn update_flags(
    conn: &Connection,
    user: UserId,
    id: MessageId,
    patch: FlagsPatch,
) -> Result<Option<Flags>, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    let Some((discussion, flags)) = message_state(conn, &user, &id)? else {
        return Ok(None);
    };
    let new = flags.patched(patch);
    conn.execute(
        "UPDATE messages SET flags_json = ?3 WHERE user_id = ?1 AND id = ?2",
        params![user, id, to_json(&new)?],
    )
    .map_err(unavailable)?;
    let delta: i64 = match (flags.seen, new.seen) {
        (false, true) => -1,
        (true, false) => 1,
        _ => 0,
    };
    if delta != 0 {
        conn.execute(
            "UPDATE discussions SET unread_count = MAX(0, unread_count + ?3)
             WHERE user_id = ?1 AND id = ?2",
            params![user, discussion, delta],
        )
        .map_err(unavailable)?;
    }
    Ok(Some(new))
}

pub(crate) fn set_message_tags(
    conn: &Connection,
    user: UserId,
    id: MessageId,
    tags: &[TagId],
) -> Result<bool, StoreError> {
    let n = conn
        .execute(
            "UPDATE messages SET tags_json = ?3 WHERE user_id = ?1 AND id = ?2",
            params![user.to_string(), id.to_string(), to_json(&tags)?],
        )
        .map_err(unavailable)?;
    Ok(n > 0)
}

pub(crate) fn delete_message(
    conn: &Connection,
    user: UserId,
    id: MessageId,
) -> Result<bool, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    let Some((discussion, _)) = message_state(conn, &user, &id)? else {
        return Ok(false);
    };
    let sha: String = conn
        .query_row(
            "DELETE FROM messages WHERE user_id = ?1 AND id = ?2 RETURNING raw_sha256",
            params![user, id],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    // Raw bytes are per user and per content; another message of this user cannot share
    // them (the id derives from the same hash), so they go with the message.
    conn.execute(
        "DELETE FROM raw_messages WHERE user_id = ?1 AND sha256 = ?2",
        params![user, sha],
    )
    .map_err(unavailable)?;
    refresh_discussion(conn, &user, &discussion)?;
    Ok(true)
}

/// Recomputes a discussion from the messages it still holds, or drops it when none are left.
fn refresh_discussion(conn: &Connection, user: &str, discussion: &str) -> Result<(), StoreError> {
    let rows: Vec<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT received_at, flags_json, content_json FROM messages
             WHERE user_id = ?1 AND discussion_id = ?2 ORDER BY received_at, id",
        )
        .and_then(|mut s| {
            s.query_map(params![user, discussion], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    if rows.is_empty() {
        conn.execute(
            "DELETE FROM discussions WHERE user_id = ?1 AND id = ?2",
            params![user, discussion],
        )
        .map_err(unavailable)?;
        return Ok(());
    }
    let mut participants: Vec<Participant> = Vec::new();
    let mut unread = 0i64;
    let mut newest: Option<(i64, MessageContent)> = None;
    for (received, flags, content) in &rows {
        let flags: Flags = json(flags, "flags")?;
        unread += i64::from(!flags.seen);
        let content: MessageContent = json(content, "content")?;
        merge_participants(&mut participants, &content.participants);
        newest = Some((*received, content));
    }
    let Some((last_activity, newest)) = newest else {
        return Ok(());
    };
    conn.execute(
        "UPDATE discussions SET message_count = ?3, unread_count = ?4, last_activity = ?5,
                snippet = ?6, participants_json = ?7, privacy_json = ?8
         WHERE user_id = ?1 AND id = ?2",
        params![
            user,
            discussion,
            rows.len() as i64,
            unread,
            last_activity,
            newest.snippet(SNIPPET_CHARS),
            to_json(&participants)?,
            to_json(&newest.privacy)?,
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

fn tag_conflict(name: &str) -> StoreError {
    StoreError::Conflict(format!("a tag named {name:?} already exists"))
}

fn tag_name_taken(conn: &Connection, user: &str, name: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM tags WHERE user_id = ?1 AND name = ?2")
        .and_then(|mut s| s.exists(params![user, name]))
        .map_err(unavailable)
}

pub(crate) fn list_tags(conn: &Connection, user: UserId) -> Result<Vec<Tag>, StoreError> {
    conn.prepare_cached("SELECT id, name FROM tags WHERE user_id = ?1 ORDER BY name")
        .and_then(|mut s| {
            s.query_map([user.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?
        .into_iter()
        .map(|(id, name)| {
            Ok(Tag {
                id: parse_id(&id)?,
                user_id: user,
                name,
            })
        })
        .collect()
}

pub(crate) fn create_tag(
    conn: &Connection,
    user: UserId,
    name: &str,
    max_tags: usize,
) -> Result<Tag, StoreError> {
    let owner = user.to_string();
    if tag_name_taken(conn, &owner, name)? {
        return Err(tag_conflict(name));
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
    };
    conn.execute(
        "INSERT INTO tags (user_id, id, name) VALUES (?1, ?2, ?3)",
        params![owner, tag.id.to_string(), tag.name],
    )
    .map_err(unavailable)?;
    Ok(tag)
}

pub(crate) fn rename_tag(
    conn: &Connection,
    user: UserId,
    id: TagId,
    name: &str,
) -> Result<Tag, StoreError> {
    let owner = user.to_string();
    let current: Option<String> = conn
        .query_row(
            "SELECT name FROM tags WHERE user_id = ?1 AND id = ?2",
            params![owner, id.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    let Some(current) = current else {
        return Err(StoreError::NotFound(format!("tag {id}")));
    };
    if current != name && tag_name_taken(conn, &owner, name)? {
        return Err(tag_conflict(name));
    }
    conn.execute(
        "UPDATE tags SET name = ?3 WHERE user_id = ?1 AND id = ?2",
        params![owner, id.to_string(), name],
    )
    .map_err(unavailable)?;
    Ok(Tag {
        id,
        user_id: user,
        name: name.to_string(),
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

fn contact_row(
    user: UserId,
    r: &Row<'_>,
) -> rusqlite::Result<(String, Option<String>, String, String)> {
    let _ = user;
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode_contact(
    user: UserId,
    (id, name, addresses, keys): (String, Option<String>, String, String),
) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: parse_id(&id)?,
        user_id: user,
        name,
        addresses: json(&addresses, "contact addresses")?,
        public_keys: json(&keys, "contact keys")?,
    })
}

pub(crate) fn list_contacts(
    conn: &Connection,
    user: UserId,
    page: &Page,
) -> Result<PageOf<Contact>, StoreError> {
    let after = page.after.clone().unwrap_or_default();
    let rows = conn
        .prepare_cached(
            "SELECT id, name, addresses_json, public_keys_json FROM contacts
             WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )
        .and_then(|mut s| {
            s.query_map(
                params![user.to_string(), after, limit_param(page.limit)],
                |r| contact_row(user, r),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    let page = paged(rows, page.limit.max(1), |c| c.0.clone())?;
    Ok(PageOf {
        items: page
            .items
            .into_iter()
            .map(|row| decode_contact(user, row))
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}

pub(crate) fn get_contact(
    conn: &Connection,
    user: UserId,
    id: ContactId,
) -> Result<Option<Contact>, StoreError> {
    conn.prepare_cached(
        "SELECT id, name, addresses_json, public_keys_json FROM contacts
         WHERE user_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![user.to_string(), id.to_string()], |r| {
            contact_row(user, r)
        })
        .optional()
    })
    .map_err(unavailable)?
    .map(|row| decode_contact(user, row))
    .transpose()
}

pub(crate) fn find_contact(
    conn: &Connection,
    user: UserId,
    address: &Address,
) -> Result<Option<Contact>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT contact_id FROM contact_addresses WHERE user_id = ?1 AND address = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![user.to_string(), address.as_str()], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    match id {
        Some(id) => get_contact(conn, user, parse_id(&id)?),
        None => Ok(None),
    }
}

pub(crate) fn save_contact(conn: &Connection, contact: &Contact) -> Result<(), StoreError> {
    let (user, id) = (contact.user_id.to_string(), contact.id.to_string());
    for address in &contact.addresses {
        let owner: Option<String> = conn
            .prepare_cached(
                "SELECT contact_id FROM contact_addresses WHERE user_id = ?1 AND address = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![user, address.as_str()], |r| r.get(0))
                    .optional()
            })
            .map_err(unavailable)?;
        if owner.is_some_and(|o| o != id) {
            return Err(StoreError::Conflict(format!(
                "address {address} belongs to another contact"
            )));
        }
    }
    conn.execute(
        "DELETE FROM contact_addresses WHERE user_id = ?1 AND contact_id = ?2",
        params![user, id],
    )
    .map_err(unavailable)?;
    for address in &contact.addresses {
        conn.execute(
            "INSERT OR REPLACE INTO contact_addresses (user_id, address, contact_id)
             VALUES (?1, ?2, ?3)",
            params![user, address.as_str(), id],
        )
        .map_err(unavailable)?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO contacts (user_id, id, name, addresses_json, public_keys_json)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            user,
            id,
            contact.name,
            to_json(&contact.addresses)?,
            to_json(&contact.public_keys)?
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

pub(crate) fn delete_contact(
    conn: &Connection,
    user: UserId,
    id: ContactId,
) -> Result<bool, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    conn.execute(
        "DELETE FROM contact_addresses WHERE user_id = ?1 AND contact_id = ?2",
        params![user, id],
    )
    .map_err(unavailable)?;
    conn.execute(
        "DELETE FROM contacts WHERE user_id = ?1 AND id = ?2",
        params![user, id],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

pub(crate) fn save_draft(conn: &Connection, draft: &Draft) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO drafts (user_id, id, updated_at, draft_json) VALUES (?1, ?2, ?3, ?4)",
        params![
            draft.user_id.to_string(),
            draft.id.to_string(),
            millis(draft.updated_at),
            to_json(draft)?
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

pub(crate) fn get_draft(
    conn: &Connection,
    user: UserId,
    id: DraftId,
) -> Result<Option<Draft>, StoreError> {
    let row: Option<String> = conn
        .prepare_cached("SELECT draft_json FROM drafts WHERE user_id = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(params![user.to_string(), id.to_string()], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    row.map(|j| json(&j, "draft")).transpose()
}

pub(crate) fn list_drafts(
    conn: &Connection,
    user: UserId,
    page: &Page,
) -> Result<PageOf<Draft>, StoreError> {
    let (after_ms, after_id) = start_after(page)?;
    let rows: Vec<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT updated_at, id, draft_json FROM drafts
             WHERE user_id = ?1 AND (updated_at < ?2 OR (updated_at = ?2 AND id < ?3))
             ORDER BY updated_at DESC, id DESC LIMIT ?4",
        )
        .and_then(|mut s| {
            s.query_map(
                params![
                    user.to_string(),
                    after_ms,
                    after_id,
                    limit_param(page.limit)
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    let page = paged(rows, page.limit.max(1), |(ms, id, _)| format!("{ms}:{id}"))?;
    Ok(PageOf {
        items: page
            .items
            .iter()
            .map(|(_, _, j)| json(j, "draft"))
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}

pub(crate) fn delete_draft(
    conn: &Connection,
    user: UserId,
    id: DraftId,
) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM drafts WHERE user_id = ?1 AND id = ?2",
        params![user.to_string(), id.to_string()],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}
