//! Files uploaded to drafts, on Cassandra. The bytes go in rows of `raw_chunk_bytes`, one
//! partition per file, well under Cassandra's request cap; the metadata row is written last
//! and is what makes the file exist. A draft's limits are checked under the user's lock,
//! since counting and writing are separate requests.

use super::drafts::get_draft;
use super::{CassandraStore, from_timestamp, timestamp};
use crate::{AttachmentLimits, AttachmentRefused, StoreError};
use futures::TryStreamExt;
use futures::stream::FuturesUnordered;
use palisade_model::{DraftAttachment, DraftAttachmentId, DraftId, UserId};
use scylla::value::CqlTimestamp;
use uuid::Uuid;

/// Requests kept in flight while writing the chunks of one file.
const WRITES_IN_FLIGHT: usize = 4;

/// A metadata row: id, file name, content type, size, upload time, chunk count.
type AttachmentRow = (
    Uuid,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<CqlTimestamp>,
    Option<i32>,
);

/// Decodes a metadata row, with its chunk count; a row missing a column is corrupt.
fn decode(
    user: UserId,
    draft: DraftId,
    (id, file_name, content_type, size, created_at, chunks): AttachmentRow,
) -> Result<(DraftAttachment, i32), StoreError> {
    match (file_name, content_type, size, created_at, chunks) {
        (Some(file_name), Some(content_type), Some(size), Some(created_at), Some(chunks)) => Ok((
            DraftAttachment {
                id: DraftAttachmentId(id),
                user_id: user,
                draft_id: draft,
                file_name,
                content_type,
                size: u64::try_from(size).unwrap_or_default(),
                created_at: from_timestamp(created_at),
            },
            chunks,
        )),
        _ => Err(StoreError::Corrupt(format!(
            "draft attachment {id}: incomplete row"
        ))),
    }
}

/// Stores the file's chunks, then its metadata row, if the draft exists and has room.
pub(super) async fn add(
    store: &CassandraStore,
    a: DraftAttachment,
    data: &[u8],
    limits: AttachmentLimits,
) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError> {
    let lock = store.lock_user(a.user_id.0, "draft attachments").await?;
    let added = add_locked(store, a, data, limits).await;
    store.unlock_user(lock).await;
    added
}

async fn add_locked(
    store: &CassandraStore,
    a: DraftAttachment,
    data: &[u8],
    limits: AttachmentLimits,
) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError> {
    if get_draft(store, a.user_id, a.draft_id).await?.is_none() {
        return Err(StoreError::NotFound(format!("draft {}", a.draft_id)));
    }
    let existing = list(store, a.user_id, a.draft_id).await?;
    let bytes = existing.iter().map(|e| e.size).sum();
    if let Err(refused) = limits.admit((existing.len(), bytes), a.size) {
        return Ok(Err(refused));
    }
    let st = store.statements().await?;
    let pieces: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.chunks(store.raw_chunk_bytes).collect()
    };
    let count = i32::try_from(pieces.len())
        .map_err(|_| StoreError::Unavailable("attachment has too many chunks".into()))?;
    let (user, draft, id) = (a.user_id.0, a.draft_id.0, a.id.0);
    let mut in_flight = FuturesUnordered::new();
    for (chunk, piece) in (0..count).zip(pieces) {
        if in_flight.len() >= WRITES_IN_FLIGHT {
            in_flight.try_next().await?;
        }
        in_flight.push(store.execute(&st.insert_attachment_chunk, (user, draft, id, chunk, piece)));
    }
    while in_flight.try_next().await?.is_some() {}
    let size = i64::try_from(a.size)
        .map_err(|_| StoreError::Unavailable("attachment too large".into()))?;
    store
        .execute(
            &st.insert_attachment,
            (
                user,
                draft,
                id,
                a.file_name.as_str(),
                a.content_type.as_str(),
                size,
                timestamp(a.created_at),
                count,
            ),
        )
        .await?;
    Ok(Ok(a))
}

/// The attachments of a draft, in upload order (then id, like the embedded store).
pub(super) async fn list(
    store: &CassandraStore,
    user: UserId,
    draft: DraftId,
) -> Result<Vec<DraftAttachment>, StoreError> {
    let st = store.statements().await?;
    let rows: Vec<AttachmentRow> = store.all(&st.select_attachments, (user.0, draft.0)).await?;
    let mut list = rows
        .into_iter()
        .map(|row| decode(user, draft, row).map(|(a, _)| a))
        .collect::<Result<Vec<_>, _>>()?;
    list.sort_by_key(|a| (a.created_at, a.id.to_string()));
    Ok(list)
}

/// One attachment and its bytes; a metadata row without every chunk is corrupt, never a
/// shorter file.
pub(super) async fn get(
    store: &CassandraStore,
    user: UserId,
    draft: DraftId,
    id: DraftAttachmentId,
) -> Result<Option<(DraftAttachment, Vec<u8>)>, StoreError> {
    let st = store.statements().await?;
    let row: Option<AttachmentRow> = store
        .first(&st.select_attachment, (user.0, draft.0, id.0))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (attachment, count) = decode(user, draft, row)?;
    let mut chunks = store
        .stream::<(i32, Vec<u8>)>(&st.select_attachment_chunks, (user.0, draft.0, id.0))
        .await?;
    let mut data = Vec::with_capacity(usize::try_from(attachment.size).unwrap_or_default());
    let mut next = 0;
    while let Some((chunk, piece)) = chunks.try_next().await? {
        if chunk != next {
            return Err(StoreError::Corrupt(format!(
                "draft attachment {id}: chunk {next} missing"
            )));
        }
        next += 1;
        data.extend_from_slice(&piece);
    }
    if next != count || data.len() as u64 != attachment.size {
        return Err(StoreError::Corrupt(format!(
            "draft attachment {id}: incomplete ({} bytes in {next} chunks)",
            data.len()
        )));
    }
    Ok(Some((attachment, data)))
}

/// Deletes the metadata row first, so the file stops existing before its bytes go.
pub(super) async fn delete(
    store: &CassandraStore,
    user: UserId,
    draft: DraftId,
    id: DraftAttachmentId,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    let row: Option<AttachmentRow> = store
        .first(&st.select_attachment, (user.0, draft.0, id.0))
        .await?;
    if row.is_none() {
        return Ok(false);
    }
    store
        .execute(&st.delete_attachment, (user.0, draft.0, id.0))
        .await?;
    store
        .execute(&st.delete_attachment_chunks, (user.0, draft.0, id.0))
        .await?;
    Ok(true)
}

/// Deletes every attachment of a draft: the metadata rows first, like [`delete`], then the
/// bytes of each.
pub(super) async fn delete_all(
    store: &CassandraStore,
    user: UserId,
    draft: DraftId,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let rows: Vec<AttachmentRow> = store.all(&st.select_attachments, (user.0, draft.0)).await?;
    store
        .execute(&st.delete_attachments, (user.0, draft.0))
        .await?;
    for (id, ..) in rows {
        store
            .execute(&st.delete_attachment_chunks, (user.0, draft.0, id))
            .await?;
    }
    Ok(())
}
