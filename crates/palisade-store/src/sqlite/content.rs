//! Replacing a stored message's parsed content, in one write of the embedded store: the
//! message row with its summary columns, then what its discussion shows of it.

use super::rows::{json, opt_millis, parse_id, to_json};
use super::unavailable;
use crate::StoreError;
use crate::replace::rewrites;
use crate::threading::SNIPPET_CHARS;
use palisade_model::{
    DiscussionId, MessageContent, MessageId, Participant, UserId, merge_participants,
};
use rusqlite::{Connection, OptionalExtension, params};

pub(crate) fn replace_content(
    conn: &Connection,
    user: UserId,
    id: MessageId,
    content: &MessageContent,
) -> Result<bool, StoreError> {
    let (u, m) = (user.to_string(), id.to_string());
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT discussion_id, content_json FROM messages WHERE user_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![u, m], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(unavailable)?;
    let Some((discussion, old)) = row else {
        return Ok(false);
    };
    // A content stored by an older model may not decode; then everything is rewritten.
    let old: Option<MessageContent> = json(&old, "content").ok();
    let due = rewrites(
        user,
        id,
        parse_id::<DiscussionId>(&discussion)?,
        old.as_ref(),
        content,
    );

    let from = content.from().map(to_json).transpose()?;
    let encoded = to_json(content)?;
    conn.prepare_cached(
        "UPDATE messages SET date = ?3, subject = ?4, from_json = ?5, parse_error = ?6,
                             content_json = ?7
         WHERE user_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| {
        s.execute(params![
            u,
            m,
            opt_millis(content.date),
            content.subject,
            from,
            content.parse_error.is_some(),
            encoded,
        ])
    })
    .map_err(unavailable)?;

    if due.subject {
        conn.prepare_cached("UPDATE discussions SET subject = ?3 WHERE user_id = ?1 AND id = ?2")
            .and_then(|mut s| s.execute(params![u, discussion, content.subject]))
            .map_err(unavailable)?;
    }
    if due.people {
        merge_people(conn, &u, &discussion)?;
    }
    if is_newest(conn, &u, &discussion, &m)? {
        // The discussion shows its newest message's snippet and privacy.
        conn.prepare_cached(
            "UPDATE discussions SET snippet = ?3, privacy_json = ?4 WHERE user_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                u,
                discussion,
                content.snippet(SNIPPET_CHARS),
                to_json(&content.privacy).ok(),
            ])
        })
        .map_err(unavailable)?;
    }
    Ok(true)
}

/// Merges the discussion's people again from its messages, in arrival order, as delivery
/// merged them.
fn merge_people(conn: &Connection, user: &str, discussion: &str) -> Result<(), StoreError> {
    let rows: Vec<Option<String>> = conn
        .prepare_cached(
            "SELECT json_extract(content_json, '$.participants') FROM messages
             WHERE user_id = ?1 AND discussion_id = ?2 ORDER BY received_at, id",
        )
        .and_then(|mut s| {
            s.query_map(params![user, discussion], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    let mut people: Vec<Participant> = Vec::new();
    for own in rows.iter().flatten() {
        let own: Vec<Participant> = json(own, "participants")?;
        merge_participants(&mut people, &own);
    }
    let people = to_json(&people)?;
    conn.prepare_cached(
        "UPDATE discussions SET participants_json = ?3 WHERE user_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| s.execute(params![user, discussion, people]))
    .map_err(unavailable)?;
    Ok(())
}

/// Whether `message` is the newest arrival of its discussion, in the order deletion uses.
fn is_newest(
    conn: &Connection,
    user: &str,
    discussion: &str,
    message: &str,
) -> Result<bool, StoreError> {
    let newest: Option<String> = conn
        .prepare_cached(
            "SELECT id FROM messages WHERE user_id = ?1 AND discussion_id = ?2
             ORDER BY received_at DESC, id DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![user, discussion], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    Ok(newest.as_deref() == Some(message))
}
