//! Files uploaded to drafts, in the embedded store: one row per file, bytes in a BLOB. The
//! single writer checks a draft's limits and inserts in one step, so concurrent uploads
//! cannot pass them together.

use super::rows::parse_id;
use super::{from_millis, millis, unavailable};
use crate::{AttachmentLimits, AttachmentRefused, StoreError};
use palisade_model::{DraftAttachment, DraftAttachmentId, DraftId, UserId};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, file_name, content_type, size, created_at";

/// An attachment row as read: id, file name, content type, size, upload time.
type AttachmentRow = (String, String, String, i64, i64);

fn read_row(r: &Row<'_>) -> rusqlite::Result<AttachmentRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(
    user: UserId,
    draft: DraftId,
    (id, file_name, content_type, size, created_at): AttachmentRow,
) -> Result<DraftAttachment, StoreError> {
    Ok(DraftAttachment {
        id: parse_id(&id)?,
        user_id: user,
        draft_id: draft,
        file_name,
        content_type,
        size: u64::try_from(size).unwrap_or_default(),
        created_at: from_millis(created_at),
    })
}

/// Stores a file if its draft exists and has room; one write, so the check holds.
pub(crate) fn add(
    conn: &Connection,
    a: &DraftAttachment,
    data: &[u8],
    limits: AttachmentLimits,
) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError> {
    let (user, draft) = (a.user_id.to_string(), a.draft_id.to_string());
    let draft_exists = conn
        .prepare_cached("SELECT 1 FROM drafts WHERE user_id = ?1 AND id = ?2")
        .and_then(|mut s| s.exists(params![user, draft]))
        .map_err(unavailable)?;
    if !draft_exists {
        return Err(StoreError::NotFound(format!("draft {}", a.draft_id)));
    }
    let (count, bytes): (i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM draft_attachments
             WHERE user_id = ?1 AND draft_id = ?2",
        )
        .and_then(|mut s| s.query_row(params![user, draft], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(unavailable)?;
    let existing = (
        usize::try_from(count).unwrap_or(usize::MAX),
        u64::try_from(bytes).unwrap_or(u64::MAX),
    );
    if let Err(refused) = limits.admit(existing, a.size) {
        return Ok(Err(refused));
    }
    conn.execute(
        "INSERT INTO draft_attachments
             (user_id, draft_id, id, file_name, content_type, size, created_at, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user,
            draft,
            a.id.to_string(),
            a.file_name,
            a.content_type,
            i64::try_from(a.size).unwrap_or(i64::MAX),
            millis(a.created_at),
            data
        ],
    )
    .map_err(unavailable)?;
    Ok(Ok(a.clone()))
}

/// The files of a draft, in upload order.
pub(crate) fn list(
    conn: &Connection,
    user: UserId,
    draft: DraftId,
) -> Result<Vec<DraftAttachment>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM draft_attachments WHERE user_id = ?1 AND draft_id = ?2
         ORDER BY created_at, id"
    ))
    .and_then(|mut s| {
        s.query_map(params![user.to_string(), draft.to_string()], read_row)?
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(unavailable)?
    .into_iter()
    .map(|row| decode(user, draft, row))
    .collect()
}

/// One file of a draft, with its bytes.
pub(crate) fn get(
    conn: &Connection,
    user: UserId,
    draft: DraftId,
    id: DraftAttachmentId,
) -> Result<Option<(DraftAttachment, Vec<u8>)>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, data FROM draft_attachments
             WHERE user_id = ?1 AND draft_id = ?2 AND id = ?3"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![user.to_string(), draft.to_string(), id.to_string()],
                |r| Ok((read_row(r)?, r.get::<_, Vec<u8>>(5)?)),
            )
            .optional()
        })
        .map_err(unavailable)?;
    row.map(|(a, data)| Ok((decode(user, draft, a)?, data)))
        .transpose()
}

/// Removes one file; `false` when absent.
pub(crate) fn delete(
    conn: &Connection,
    user: UserId,
    draft: DraftId,
    id: DraftAttachmentId,
) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM draft_attachments WHERE user_id = ?1 AND draft_id = ?2 AND id = ?3",
        params![user.to_string(), draft.to_string(), id.to_string()],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

/// Removes every attachment of a draft, in the transaction that deletes the draft.
pub(crate) fn delete_all(
    conn: &Connection,
    user: UserId,
    draft: DraftId,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM draft_attachments WHERE user_id = ?1 AND draft_id = ?2",
        params![user.to_string(), draft.to_string()],
    )
    .map(|_| ())
    .map_err(unavailable)
}
