//! Drafts on Cassandra, listed by last change.

use super::{CassandraStore, attachments, decode_cursor, json, page_of, timestamp, to_json};
use crate::Drafts;
use crate::{AttachmentLimits, AttachmentRefused, Page, PageOf, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use palisade_model::{Draft, DraftAttachment, DraftAttachmentId, DraftId, UserId};
use scylla::value::CqlTimestamp;
use uuid::Uuid;

/// Creates or replaces a draft.
pub(super) async fn save_draft(store: &CassandraStore, draft: Draft) -> Result<Draft, StoreError> {
    let st = store.statements().await?;
    store
        .execute(
            &st.insert_draft,
            (
                draft.user_id.0,
                draft.id.0,
                timestamp(draft.updated_at),
                to_json(&draft)?,
            ),
        )
        .await?;
    Ok(draft)
}

/// One draft of the user's.
pub(super) async fn get_draft(
    store: &CassandraStore,
    user: UserId,
    id: DraftId,
) -> Result<Option<Draft>, StoreError> {
    let st = store.statements().await?;
    let row: Option<(Option<String>,)> = store.first(&st.select_draft, (user.0, id.0)).await?;
    row.and_then(|(draft,)| draft)
        .map(|d| json(&d, "draft"))
        .transpose()
}

/// A user has few drafts: they are read whole and ordered here, most recently changed first
/// and then by descending id text, like the embedded store; the cursor is `updated:id`.
pub(super) async fn list_drafts(
    store: &CassandraStore,
    user: UserId,
    page: Page,
) -> Result<PageOf<Draft>, StoreError> {
    let st = store.statements().await?;
    let limit = page.limit.max(1);
    let after = page
        .after
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map(|(ms, id)| (ms, id.to_string()));
    let mut drafts = Vec::new();
    store
        .scan(
            &st.select_drafts,
            (user.0,),
            st.select_drafts.get_page_size(),
            |(updated, id, draft): (CqlTimestamp, Uuid, Option<String>)| {
                let key = (updated.0, id.to_string());
                if let Some(draft) = draft
                    && after.as_ref().is_none_or(|after| key < *after)
                {
                    drafts.push((key, json::<Draft>(&draft, "draft")?));
                }
                Ok(true)
            },
        )
        .await?;
    drafts.sort_by(|a, b| b.0.cmp(&a.0));
    drafts.truncate(limit + 1);
    let page = page_of(drafts, limit, |((ms, id), _)| format!("{ms}:{id}"));
    Ok(PageOf {
        items: page.items.into_iter().map(|(_, d)| d).collect(),
        next: page.next,
    })
}

/// Deletes a draft's attachments, then the draft; `false` when it did not exist.
pub(super) async fn delete_draft(
    store: &CassandraStore,
    user: UserId,
    id: DraftId,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    if get_draft(store, user, id).await?.is_none() {
        return Ok(false);
    }
    attachments::delete_all(store, user, id).await?;
    store.execute(&st.delete_draft, (user.0, id.0)).await?;
    Ok(true)
}

#[async_trait]
impl Drafts for CassandraStore {
    async fn save_draft(&self, draft: Draft) -> Result<Draft, StoreError> {
        save_draft(self, draft).await
    }

    async fn get_draft(&self, user: UserId, id: DraftId) -> Result<Option<Draft>, StoreError> {
        get_draft(self, user, id).await
    }

    async fn list_drafts(&self, user: UserId, page: Page) -> Result<PageOf<Draft>, StoreError> {
        list_drafts(self, user, page).await
    }

    async fn delete_draft(&self, user: UserId, id: DraftId) -> Result<bool, StoreError> {
        delete_draft(self, user, id).await
    }

    async fn add_draft_attachment(
        &self,
        attachment: DraftAttachment,
        data: Bytes,
        limits: AttachmentLimits,
    ) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError> {
        attachments::add(self, attachment, &data, limits).await
    }

    async fn list_draft_attachments(
        &self,
        user: UserId,
        draft: DraftId,
    ) -> Result<Vec<DraftAttachment>, StoreError> {
        attachments::list(self, user, draft).await
    }

    async fn get_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<Option<(DraftAttachment, Vec<u8>)>, StoreError> {
        attachments::get(self, user, draft, id).await
    }

    async fn delete_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<bool, StoreError> {
        attachments::delete(self, user, draft, id).await
    }
}
