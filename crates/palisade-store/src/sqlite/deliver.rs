//! The delivery transaction: raw bytes, thread placement, message row and outbox job.
//!
//! It runs inside the writer's savepoint, so either all of it lands or none of it does.

use super::rows::{json, opt_millis, parse_id, to_json};
use super::{millis, unavailable};
use crate::threading::{
    SNIPPET_CHARS, gives_subject, joins_by_subject, keys_to_register, lookup_keys, new_discussion,
    subject_key, subject_window_start,
};
use crate::{Delivery, DeliveryReceipt, StoreError};
use palisade_jobs::{JobKind, JobSpec};
use palisade_model::{DiscussionId, MessageContent, MessageId, Participant, merge_participants};
use rusqlite::{Connection, OptionalExtension, params};

/// A delivery with everything that does not depend on the database already computed: ids,
/// keys and JSON. The writer thread commits every delivery in turn, so whatever work is done
/// here, on the caller's thread, is work taken off the one thread that everybody waits for.
pub(crate) struct Prepared {
    delivery: Delivery,
    id: MessageId,
    user: String,
    message_id: String,
    sha256_hex: String,
    snippet: String,
    from_json: Option<String>,
    flags_json: String,
    envelope_json: String,
    content_json: String,
    privacy_json: Option<String>,
}

impl Prepared {
    /// Computes what [`deliver`] writes that the database does not decide.
    pub(crate) fn new(d: Delivery) -> Result<Self, StoreError> {
        let id = MessageId::for_raw(d.user_id, &d.raw_sha256);
        let content = &d.content;
        Ok(Prepared {
            id,
            user: d.user_id.to_string(),
            message_id: id.to_string(),
            sha256_hex: d.raw_sha256.to_hex(),
            snippet: content.snippet(SNIPPET_CHARS),
            from_json: content.from().map(to_json).transpose()?,
            flags_json: to_json(&d.flags).unwrap_or_default(),
            envelope_json: to_json(&d.envelope).unwrap_or_default(),
            content_json: to_json(content.as_ref()).unwrap_or_default(),
            privacy_json: to_json(&content.privacy).ok(),
            delivery: d,
        })
    }
}

pub(crate) fn deliver(conn: &Connection, p: &Prepared) -> Result<DeliveryReceipt, StoreError> {
    let d = &p.delivery;
    let (id, user, message_id) = (p.id, &p.user, &p.message_id);
    let exists = conn
        .prepare_cached("SELECT 1 FROM messages WHERE user_id = ?1 AND id = ?2")
        .and_then(|mut s| s.exists(params![user, message_id]))
        .map_err(unavailable)?;
    if exists {
        return Ok(DeliveryReceipt {
            message_id: id,
            duplicate: true,
        });
    }

    conn.prepare_cached(
        "INSERT OR IGNORE INTO raw_messages (user_id, sha256, size, data) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![user, p.sha256_hex, d.raw.len() as i64, &d.raw[..]]))
    .map_err(unavailable)?;

    let content = &d.content;
    let received = millis(d.envelope.received_at);
    let found = find_discussion(conn, user, content, received)?;
    let discussion = found.unwrap_or_else(|| new_discussion(d.user_id, id, content));
    let gives = gives_subject(d.user_id, id, content, discussion, found.is_none());
    // Bound as text by four statements: formatted once.
    let discussion = discussion.to_string();
    record_thread_keys(conn, user, content, &discussion)?;
    upsert_discussion(conn, p, &discussion, received, gives)?;

    conn.prepare_cached(
        "INSERT INTO messages (user_id, id, discussion_id, raw_sha256, raw_size, received_at,
                               date, subject, from_json, parse_error, flags_json, tags_json,
                               envelope_json, content_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, '[]', ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            user,
            message_id,
            discussion,
            p.sha256_hex,
            d.raw.len() as i64,
            received,
            opt_millis(content.date),
            content.subject,
            p.from_json,
            content.parse_error.is_some(),
            p.flags_json,
            p.envelope_json,
            p.content_json,
        ])
    })
    .map_err(unavailable)?;

    let job = JobSpec {
        kind: JobKind::Index,
        user_id: d.user_id,
        message_id: id,
    };
    insert_job(conn, &job, received)?;

    Ok(DeliveryReceipt {
        message_id: id,
        duplicate: false,
    })
}

/// Queues a job unless the same one is already queued (redelivery must not double work).
pub(crate) fn insert_job(conn: &Connection, job: &JobSpec, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO jobs (user_id, kind, message_id, state, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            job.user_id.to_string(),
            job.kind.as_str(),
            job.message_id.to_string(),
            now
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// Queues a job, or queues it again when it already ran: a published job means "the message
/// changed, process it again" (tags, flags, deletion), so a finished one must run once more.
pub(crate) fn rearm_job(conn: &Connection, job: &JobSpec, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO jobs (user_id, kind, message_id, state, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4)
         ON CONFLICT (user_id, kind, message_id) DO UPDATE SET
             state = 'pending', attempts = 0, next_attempt_at = ?4, lease_until = NULL,
             last_error = NULL",
    )
    .and_then(|mut s| {
        s.execute(params![
            job.user_id.to_string(),
            job.kind.as_str(),
            job.message_id.to_string(),
            now
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// Finds the discussion by Message-ID links first, then by subject for replies without links.
fn find_discussion(
    conn: &Connection,
    user: &str,
    content: &MessageContent,
    received: i64,
) -> Result<Option<DiscussionId>, StoreError> {
    let mut by_key = conn
        .prepare_cached("SELECT discussion_id FROM thread_keys WHERE user_id = ?1 AND key = ?2")
        .map_err(unavailable)?;
    for key in lookup_keys(content) {
        let found: Option<String> = by_key
            .query_row(params![user, key], |r| r.get(0))
            .optional()
            .map_err(unavailable)?;
        if let Some(found) = found {
            return parse_id(&found).map(Some);
        }
    }
    if !joins_by_subject(content) {
        return Ok(None);
    }
    let Some(normalized) = subject_key(content) else {
        return Ok(None);
    };
    let since = subject_window_start(received);
    let found: Option<String> = conn
        .prepare_cached(
            "SELECT id FROM discussions
             WHERE user_id = ?1 AND normalized_subject = ?2 AND last_activity >= ?3
             ORDER BY last_activity DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![user, normalized, since], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    found.map(|f| parse_id(&f)).transpose()
}

fn record_thread_keys(
    conn: &Connection,
    user: &str,
    content: &MessageContent,
    discussion: &str,
) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO thread_keys (user_id, key, discussion_id) VALUES (?1, ?2, ?3)",
        )
        .map_err(unavailable)?;
    for key in keys_to_register(content) {
        insert
            .execute(params![user, key, discussion])
            .map_err(unavailable)?;
    }
    Ok(())
}

fn upsert_discussion(
    conn: &Connection,
    p: &Prepared,
    discussion: &str,
    received: i64,
    gives_subject: bool,
) -> Result<(), StoreError> {
    let (user, content) = (&p.user, &p.delivery.content);
    let existing: Option<String> = conn
        .prepare_cached("SELECT participants_json FROM discussions WHERE user_id = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(params![user, discussion], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    let mut participants: Vec<Participant> = match existing {
        Some(j) => json(&j, "participants")?,
        None => Vec::new(),
    };
    merge_participants(&mut participants, &content.participants);
    conn.prepare_cached(
        "INSERT INTO discussions (user_id, id, subject, normalized_subject, last_activity,
                                  message_count, unread_count, snippet, participants_json,
                                  privacy_json)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9)
         ON CONFLICT (user_id, id) DO UPDATE SET
             subject = CASE WHEN ?10 THEN excluded.subject ELSE subject END,
             normalized_subject = CASE WHEN ?10 THEN excluded.normalized_subject
                                       ELSE normalized_subject END,
             message_count = message_count + 1,
             unread_count = unread_count + excluded.unread_count,
             participants_json = excluded.participants_json,
             snippet = CASE WHEN excluded.last_activity >= last_activity
                            THEN excluded.snippet ELSE snippet END,
             privacy_json = CASE WHEN excluded.last_activity >= last_activity
                            THEN excluded.privacy_json ELSE privacy_json END,
             last_activity = MAX(last_activity, excluded.last_activity)",
    )
    .and_then(|mut s| {
        s.execute(params![
            user,
            discussion,
            content.subject,
            subject_key(content),
            received,
            i64::from(!p.delivery.flags.seen),
            p.snippet,
            to_json(&participants).unwrap_or_else(|_| "[]".into()),
            p.privacy_json,
            gives_subject,
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}
