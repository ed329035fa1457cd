//! Drafts of the embedded store, newest change first.

use super::mailbox::{limit_param, paged};
use super::rows::{json, start_after, to_json};
use super::{SqliteStore, attachments, millis, unavailable};
use crate::Drafts;
use crate::{AttachmentLimits, AttachmentRefused, Page, PageOf, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use palisade_model::{Draft, DraftAttachment, DraftAttachmentId, DraftId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

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
    attachments::delete_all(conn, user, id)?;
    conn.execute(
        "DELETE FROM drafts WHERE user_id = ?1 AND id = ?2",
        params![user.to_string(), id.to_string()],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

#[async_trait]
impl Drafts for SqliteStore {
    async fn save_draft(&self, draft: Draft) -> Result<Draft, StoreError> {
        let record = draft.clone();
        self.writer
            .write(move |conn| save_draft(conn, &record))
            .await?;
        Ok(draft)
    }

    async fn get_draft(&self, user: UserId, id: DraftId) -> Result<Option<Draft>, StoreError> {
        self.read(move |conn| get_draft(conn, user, id)).await
    }

    async fn list_drafts(&self, user: UserId, page: Page) -> Result<PageOf<Draft>, StoreError> {
        self.read(move |conn| list_drafts(conn, user, &page)).await
    }

    async fn delete_draft(&self, user: UserId, id: DraftId) -> Result<bool, StoreError> {
        self.writer
            .write_alone(move |conn| delete_draft(conn, user, id))
            .await
    }

    async fn add_draft_attachment(
        &self,
        attachment: DraftAttachment,
        data: Bytes,
        limits: AttachmentLimits,
    ) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError> {
        self.writer
            .write(move |conn| attachments::add(conn, &attachment, &data, limits))
            .await
    }

    async fn list_draft_attachments(
        &self,
        user: UserId,
        draft: DraftId,
    ) -> Result<Vec<DraftAttachment>, StoreError> {
        self.read(move |conn| attachments::list(conn, user, draft))
            .await
    }

    async fn get_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<Option<(DraftAttachment, Vec<u8>)>, StoreError> {
        self.read(move |conn| attachments::get(conn, user, draft, id))
            .await
    }

    async fn delete_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<bool, StoreError> {
        self.writer
            .write_alone(move |conn| attachments::delete(conn, user, draft, id))
            .await
    }
}
