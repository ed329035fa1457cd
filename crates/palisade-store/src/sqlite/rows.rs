//! Reading rows back into domain types.

use super::{from_millis, unavailable};
use crate::{Page, PageOf, StoreError};
use chrono::{DateTime, Utc};
use palisade_model::{
    Address, DiscussionId, Flags, Message, MessageId, MessageSummary, Participant, RawHash, User,
    UserId,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::de::DeserializeOwned;
use std::str::FromStr;
use uuid::Uuid;

/// A user row before its addresses are attached.
pub(crate) type UserHead = (String, String, i64);

pub(crate) fn user_head(r: &Row<'_>) -> rusqlite::Result<UserHead> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

pub(crate) fn with_addresses(conn: &Connection, head: UserHead) -> Result<User, StoreError> {
    let (id, name, created_at) = head;
    let mut stmt = conn
        .prepare_cached("SELECT address FROM addresses WHERE user_id = ?1 ORDER BY address")
        .map_err(unavailable)?;
    let addresses = stmt
        .query_map([&id], |r| r.get::<_, String>(0))
        .map_err(unavailable)?
        .map(|a| {
            let a = a.map_err(unavailable)?;
            Address::parse(&a).map_err(|e| StoreError::Corrupt(format!("address {a}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(User {
        id: parse_id(&id)?,
        name,
        created_at: from_millis(created_at),
        addresses,
    })
}

/// Parses any of the uuid-backed id types.
pub(crate) fn parse_id<T: From<Uuid>>(s: &str) -> Result<T, StoreError> {
    Uuid::from_str(s)
        .map(T::from)
        .map_err(|e| StoreError::Corrupt(format!("id {s}: {e}")))
}

pub(crate) fn json<T: DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

/// Cursor of a message list: arrival time and id, the list's sort key.
fn encode_cursor(received_at: i64, id: &str) -> String {
    format!("{received_at}:{id}")
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    cursor
        .split_once(':')
        .and_then(|(n, id)| Some((n.parse().ok()?, id.to_string())))
        .ok_or_else(|| StoreError::NotFound(format!("cursor {cursor}")))
}

/// Where a `number:id`-keyed list, newest first, resumes: after the cursor, or at the top.
/// A cursor that does not decode is the client's error.
pub(crate) fn start_after(page: &Page) -> Result<(i64, String), StoreError> {
    match &page.after {
        Some(c) => decode_cursor(c),
        None => Ok((i64::MAX, String::new())),
    }
}

/// The query of a page of message summaries, newest arrival first: `?1` the user, `?2` and
/// `?3` the cursor's arrival and id, `?4` the rows to read, and `?5` the discussion when
/// `in_discussion`.
pub(crate) fn messages_sql(in_discussion: bool, folder: Option<crate::Folder>) -> String {
    // Two texts rather than an `IS NULL OR` test, so each uses its own index.
    let in_discussion = if in_discussion {
        "AND discussion_id = ?5"
    } else {
        ""
    };
    // A filter on the rows the index finds; a discussion is small enough to walk.
    let in_folder = match folder {
        None => "",
        Some(crate::Folder::Inbox) => "AND NOT IFNULL(json_extract(flags_json, '$.trashed'), 0)",
        Some(crate::Folder::Trash) => "AND IFNULL(json_extract(flags_json, '$.trashed'), 0)",
    };
    format!(
        "SELECT {SUMMARY_COLUMNS}
         FROM messages
         WHERE user_id = ?1 AND (received_at < ?2 OR (received_at = ?2 AND id < ?3))
               {in_discussion} {in_folder}
         ORDER BY received_at DESC, id DESC LIMIT ?4"
    )
}

/// A page of the user's message summaries, newest arrival first: the whole mailbox, or one
/// discussion of it.
pub(crate) fn list_messages(
    conn: &Connection,
    user: UserId,
    discussion: Option<DiscussionId>,
    folder: Option<crate::Folder>,
    page: &Page,
) -> Result<PageOf<MessageSummary>, StoreError> {
    let (after_ms, after_id) = start_after(page)?;
    let limit = page.limit.max(1);
    let mut stmt = conn
        .prepare_cached(&messages_sql(discussion.is_some(), folder))
        .map_err(unavailable)?;
    let mut values: Vec<Value> = vec![
        Value::Text(user.to_string()),
        Value::Integer(after_ms),
        Value::Text(after_id),
        Value::Integer(i64::try_from(limit + 1).unwrap_or(i64::MAX)),
    ];
    if let Some(d) = discussion {
        values.push(Value::Text(d.to_string()));
    }
    let rows = stmt
        .query_map(params_from_iter(values), SummaryRow::read)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    // One row past the page tells whether a next page exists.
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(limit);
    let mut next = None;
    for row in rows.into_iter().take(limit) {
        if more {
            next = Some(encode_cursor(row.received, &row.id));
        }
        items.push(row.decode()?);
    }
    Ok(PageOf { items, next })
}

/// The columns of a message summary, in the order [`SummaryRow::read`] expects them.
const SUMMARY_COLUMNS: &str = "id, discussion_id, received_at, date, subject, from_json, \
                               flags_json, parse_error, raw_size";

/// A message summary as stored, before decoding.
struct SummaryRow {
    id: String,
    discussion: String,
    received: i64,
    date: Option<i64>,
    subject: Option<String>,
    from: Option<String>,
    flags: String,
    parse_error: bool,
    size: i64,
}

impl SummaryRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<SummaryRow> {
        Ok(SummaryRow {
            id: r.get(0)?,
            discussion: r.get(1)?,
            received: r.get(2)?,
            date: r.get(3)?,
            subject: r.get(4)?,
            from: r.get(5)?,
            flags: r.get(6)?,
            parse_error: r.get(7)?,
            size: r.get(8)?,
        })
    }

    fn decode(self) -> Result<MessageSummary, StoreError> {
        Ok(MessageSummary {
            id: parse_id(&self.id)?,
            discussion_id: parse_id(&self.discussion)?,
            date: from_millis(self.date.unwrap_or(self.received)),
            received_at: from_millis(self.received),
            from: self
                .from
                .map(|f| json::<Participant>(&f, "from"))
                .transpose()?,
            subject: self.subject,
            flags: json::<Flags>(&self.flags, "flags")?,
            parse_error: self.parse_error,
            raw_size: u64::try_from(self.size).unwrap_or_default(),
        })
    }
}

/// `query_row` through the connection's statement cache: these reads run on every request of
/// their endpoint, and `Connection::query_row` compiles its SQL anew each time.
pub(crate) fn cached_row<T, P, F>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: F,
) -> rusqlite::Result<T>
where
    P: rusqlite::Params,
    F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
{
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// The summaries of the user's messages among `ids`, in the order of `ids`; ids that are not
/// the user's (or no longer exist) are left out.
pub(crate) fn message_summaries(
    conn: &Connection,
    user: UserId,
    ids: &[MessageId],
) -> Result<Vec<MessageSummary>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    // Cached like the others: a page has one of a few sizes, so few texts.
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM messages WHERE user_id = ? AND id IN ({marks})"
        ))
        .map_err(unavailable)?;
    let values = std::iter::once(user.to_string()).chain(ids.iter().map(|i| i.to_string()));
    let rows = stmt
        .query_map(params_from_iter(values), SummaryRow::read)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    let mut found = rows
        .into_iter()
        .map(|r| r.decode().map(|s| (s.id, s)))
        .collect::<Result<std::collections::HashMap<_, _>, _>>()?;
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

pub(crate) fn get_message(
    conn: &Connection,
    user: UserId,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    let row = cached_row(
        conn,
        "SELECT discussion_id, raw_sha256, raw_size, flags_json, tags_json, envelope_json,
                    content_json
             FROM messages WHERE user_id = ?1 AND id = ?2",
        params![user.to_string(), id.to_string()],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        },
    )
    .optional()
    .map_err(unavailable)?;
    let Some((discussion, sha, size, flags, tags, envelope, content)) = row else {
        return Ok(None);
    };
    Ok(Some(Message {
        id,
        user_id: user,
        discussion_id: parse_id(&discussion)?,
        raw_sha256: RawHash::from_hex(&sha)
            .ok_or_else(|| StoreError::Corrupt(format!("sha256 {sha}")))?,
        raw_size: u64::try_from(size).unwrap_or_default(),
        envelope: json(&envelope, "envelope")?,
        content: json(&content, "content")?,
        flags: json(&flags, "flags")?,
        tags: json(&tags, "tags")?,
    }))
}

/// Milliseconds of an optional date, for nullable columns.
pub(crate) fn opt_millis(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}
