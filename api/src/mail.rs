//! Reading and organizing mail: discussions, messages, flags, tags, deletion and search.

use crate::autocrypt::Social;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::rules::{Colour, DateBound, ListCursor, SearchCursor, TagName};
use crate::serde_payload::SerdeJson;
use crate::types::{
    DiscussionPage, DiscussionView, FlagsView, FolderParam, IndexStatus, MessagePage,
    MessageSummaryView, MessageView, PrivacyView, SearchResult, TagView,
};
use crate::{AppState, Auth, MAX_PAGE, page};
use chrono::{DateTime, Utc};
use palisade_index::SearchQuery;
use palisade_model::{DiscussionId, FlagsPatch, Message, MessageId, Tag, TagId, UserId};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;
use validator::Validate;

/// Deepest a search may page, so a client cannot make the index sort everything.
const MAX_SEARCH_OFFSET: usize = 5_000;

#[derive(Tags)]
enum ApiTags {
    /// Discussions and messages.
    Mail,
    /// User-defined labels.
    Tags,
    /// Full-text search.
    Search,
}

/// A change of flags; absent fields stay as they are.
#[derive(Debug, Object, Validate)]
pub(crate) struct FlagsRequest {
    /// Read or unread.
    pub seen: Option<bool>,
    /// Starred or not.
    pub flagged: Option<bool>,
    /// Move to or out of the trash.
    pub trashed: Option<bool>,
}

/// The full set of tags a message should carry.
#[derive(Debug, Object, Validate)]
pub(crate) struct TagsRequest {
    /// Tag ids, each one of the user's tags (an unknown one answers 404).
    #[oai(validator(max_items = 100))]
    pub tags: Vec<Uuid>,
}

/// Tags to add to and remove from every message of a discussion.
#[derive(Debug, Object, Validate)]
pub(crate) struct DiscussionTagsRequest {
    /// Tag ids to add, each one of the user's tags (an unknown one answers 404).
    #[oai(default, validator(max_items = 100))]
    pub add: Vec<Uuid>,
    /// Tag ids to remove, each one of the user's tags (an unknown one answers 404); a tag
    /// named in both lists is removed.
    #[oai(default, validator(max_items = 100))]
    pub remove: Vec<Uuid>,
}

/// A new tag.
#[derive(Debug, Object, Validate)]
pub(crate) struct TagRequest {
    /// Name, 1 to 64 characters, not only spaces, no control characters; stored trimmed.
    pub name: TagName,
    /// Colour, `#rrggbb`; none when absent.
    pub colour: Option<Colour>,
}

/// A change to a tag: what is absent stays as it is.
#[derive(Debug, Object, Validate)]
pub(crate) struct TagPatchRequest {
    /// New name, 1 to 64 characters, not only spaces, no control characters; stored trimmed.
    pub name: Option<TagName>,
    /// New colour, `#rrggbb`.
    pub colour: Option<Colour>,
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

#[derive(ApiResponse)]
enum RawMessage {
    /// The message exactly as received.
    #[oai(status = 200, content_type = "message/rfc822")]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
    ),
}

#[derive(ApiResponse)]
enum AttachmentBytes {
    /// The decoded attachment, always as a download so it cannot run as a page of ours.
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Palisade-Content-Type")] String,
    ),
}

pub(crate) async fn message_of(
    state: &AppState,
    user: UserId,
    id: Uuid,
) -> Result<Message, ApiError> {
    state
        .store
        .get_message(user, MessageId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such message"))
}

/// Part `index` of message `m`, decoded, as a download named `name` (`{kind}-{index}` when it
/// has none); 404 "no such {kind}" when the raw message has no such part.
async fn download(
    state: &AppState,
    m: &Message,
    index: u32,
    kind: &str,
    name: Option<String>,
    content_type: String,
) -> Result<AttachmentBytes, ApiError> {
    let raw = state
        .store
        .get_raw(m.user_id, m.id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such message"))?;
    let bytes = palisade_mime::attachment_bytes(&raw, index)
        .ok_or_else(|| ApiError::not_found(format!("no such {kind}")))?;
    let name = name.unwrap_or_else(|| format!("{kind}-{index}"));
    Ok(AttachmentBytes::Ok(
        Binary(bytes),
        disposition(&name),
        content_type,
    ))
}

/// One discussion as the API shows it; 404 when it is not the user's.
async fn discussion_view(
    state: &AppState,
    user: UserId,
    id: DiscussionId,
) -> Result<DiscussionView, ApiError> {
    let d = state
        .store
        .get_discussion(user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such discussion"))?;
    let tags = tags_by_id(state, user).await?;
    let mut view = DiscussionView::new(&d, FolderParam::Inbox, &tags);
    // The discussion shows its newest message, which arrived at its last activity.
    let social = Social::new(state, user)
        .facts(&d.privacy, d.last_activity)
        .await?;
    view.privacy = PrivacyView::with_social(&d.privacy, &social);
    Ok(view)
}

/// The user's tags among `ids`, deduplicated in order; 404 on one the user does not have.
fn known_tags(
    known: &HashMap<TagId, Tag>,
    field: &str,
    ids: &[Uuid],
) -> Result<Vec<TagId>, ApiError> {
    let mut wanted = Vec::new();
    for t in ids {
        let id = TagId(*t);
        if !known.contains_key(&id) {
            // A reference to a tag that does not exist, like one to a missing message.
            return Err(ApiError::not_found(format!("{field}: unknown tag {t}")));
        }
        if !wanted.contains(&id) {
            wanted.push(id);
        }
    }
    Ok(wanted)
}

async fn tags_by_id(state: &AppState, user: UserId) -> Result<HashMap<TagId, Tag>, ApiError> {
    Ok(state
        .store
        .list_tags(user)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect())
}

/// A file name safe inside a quoted Content-Disposition parameter.
pub(crate) fn disposition(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    format!("attachment; filename=\"{}\"", clean.trim())
}

fn parse_date(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|d| d.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                })
                .map_err(|_| {
                    ApiError::bad_request(format!("{field}: expected YYYY-MM-DD or RFC 3339"))
                })
        })
        .transpose()
}

pub(crate) async fn index_status(state: &AppState, user: UserId) -> Result<IndexStatus, ApiError> {
    let stored = state.store.count_messages(user).await?;
    let indexed = state.index.count(user).await?;
    Ok(IndexStatus {
        stored,
        indexed,
        // Equal, not greater-or-equal: a deleted message still in the index is also lag.
        up_to_date: indexed == stored,
    })
}

/// Mail endpoints.
#[derive(Default)]
pub struct MailApi;

#[OpenApi]
impl MailApi {
    /// The user's discussions in a folder, most recent activity first. A discussion is in
    /// the inbox while one of its messages is outside the trash, and in the trash while one
    /// is in it, so it can be listed in both.
    #[oai(path = "/discussions", method = "get", tag = "ApiTags::Mail")]
    async fn discussions(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// `inbox` (the default) or `trash`.
        #[oai(default)]
        folder: Query<FolderParam>,
        cursor: Query<Option<ListCursor>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> Result<SerdeJson<DiscussionPage>, ApiError> {
        let user = auth.0.user_id;
        let list = state
            .store
            .list_discussions(
                user,
                folder.0.into(),
                page(cursor.0.map(ListCursor::into_inner), limit.0),
            )
            .await?;
        let tags = if list.items.iter().any(|d| !d.tags.is_empty()) {
            tags_by_id(&state, user).await?
        } else {
            HashMap::new()
        };
        let mut social = Social::new(&state, user);
        let mut items = Vec::with_capacity(list.items.len());
        for d in &list.items {
            let mut view = DiscussionView::new(d, folder.0, &tags);
            let facts = social.facts(&d.privacy, d.last_activity).await?;
            view.privacy = PrivacyView::with_social(&d.privacy, &facts);
            items.push(view);
        }
        Ok(SerdeJson(DiscussionPage {
            items,
            next: list.next,
        }))
    }

    /// One discussion.
    #[oai(path = "/discussions/:id", method = "get", tag = "ApiTags::Mail")]
    async fn discussion(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<Json<DiscussionView>, ApiError> {
        Ok(Json(
            discussion_view(&state, auth.0.user_id, DiscussionId(id.0)).await?,
        ))
    }

    /// The messages of a discussion, newest first.
    #[oai(
        path = "/discussions/:id/messages",
        method = "get",
        tag = "ApiTags::Mail"
    )]
    async fn discussion_messages(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        /// Only the messages outside the trash (`inbox`) or in it (`trash`); every message
        /// when absent.
        folder: Query<Option<FolderParam>>,
        cursor: Query<Option<ListCursor>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> Result<SerdeJson<MessagePage>, ApiError> {
        let user = auth.0.user_id;
        if state
            .store
            .get_discussion(user, DiscussionId(id.0))
            .await?
            .is_none()
        {
            return Err(ApiError::not_found("no such discussion"));
        }
        let list = state
            .store
            .discussion_messages(
                user,
                DiscussionId(id.0),
                folder.0.map(Into::into),
                page(cursor.0.map(ListCursor::into_inner), limit.0),
            )
            .await?;
        Ok(SerdeJson(MessagePage {
            items: list.items.iter().map(Into::into).collect(),
            next: list.next,
        }))
    }

    /// Marks every message of a discussion read or unread, starred, or trashed, in one call;
    /// the discussion as it is afterwards.
    #[oai(
        path = "/discussions/:id/flags",
        method = "patch",
        tag = "ApiTags::Mail"
    )]
    async fn discussion_flags(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<FlagsRequest>,
    ) -> Result<Json<DiscussionView>, ApiError> {
        let user = auth.0.user_id;
        let patch = FlagsPatch {
            seen: body.seen,
            flagged: body.flagged,
            trashed: body.trashed,
            answered: None,
        };
        state
            .store
            .update_discussion_flags(user, DiscussionId(id.0), patch)
            .await?
            .ok_or_else(|| ApiError::not_found("no such discussion"))?;
        Ok(Json(
            discussion_view(&state, user, DiscussionId(id.0)).await?,
        ))
    }

    /// Adds and removes tags on every message of a discussion, in one call; the discussion
    /// as it is afterwards.
    #[oai(path = "/discussions/:id/tags", method = "post", tag = "ApiTags::Tags")]
    async fn discussion_tags(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<DiscussionTagsRequest>,
    ) -> Result<Json<DiscussionView>, ApiError> {
        let user = auth.0.user_id;
        let known = tags_by_id(&state, user).await?;
        let add = known_tags(&known, "add", &body.add)?;
        let remove = known_tags(&known, "remove", &body.remove)?;
        let changed = state
            .store
            .retag_discussion(user, DiscussionId(id.0), &add, &remove)
            .await?
            .ok_or_else(|| ApiError::not_found("no such discussion"))?;
        // Tags are searchable: each changed message goes back through the indexer.
        for message in changed {
            state.reindex(user, message).await?;
        }
        Ok(Json(
            discussion_view(&state, user, DiscussionId(id.0)).await?,
        ))
    }

    /// The user's messages, newest arrival first.
    #[oai(path = "/messages", method = "get", tag = "ApiTags::Mail")]
    async fn messages(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        cursor: Query<Option<ListCursor>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> Result<SerdeJson<MessagePage>, ApiError> {
        let list = state
            .store
            .list_messages(
                auth.0.user_id,
                page(cursor.0.map(ListCursor::into_inner), limit.0),
            )
            .await?;
        Ok(SerdeJson(MessagePage {
            items: list.items.iter().map(Into::into).collect(),
            next: list.next,
        }))
    }

    /// One message, ready to show. HTML is sanitized, and remote content (images, tracking
    /// pixels) is removed and listed in `blocked` unless `remote_content=true` or the user
    /// always loads it from this authenticated sender or its domain (`/remote/trusted`); then
    /// remote images point at the image proxy (`/remote/image`) and other remote media stay
    /// out.
    #[oai(path = "/messages/:id", method = "get", tag = "ApiTags::Mail")]
    async fn message(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        remote_content: Query<Option<bool>>,
    ) -> Result<Json<MessageView>, ApiError> {
        let user = auth.0.user_id;
        let m = message_of(&state, user, id.0).await?;
        let asked = remote_content.0.unwrap_or(false);
        let sender = crate::remote_trust::authenticated_sender(&m);
        // The settings are read only when they could change what is shown.
        let trusted = match &sender {
            Some(sender) if !asked && m.content.html_body.is_some() => {
                crate::remote_trust::trusted_by(&state, user, sender).await?
            }
            _ => None,
        };
        let allow = asked || trusted.is_some();
        let remote = if allow {
            state.remote.proxied_for(user)
        } else {
            crate::html::RemoteContent::Blocked
        };
        let sanitized = m
            .content
            .html_body
            .as_deref()
            .map(|h| crate::html::sanitize(h, remote, &state.remote.trackers));
        let tags = tags_by_id(&state, user).await?;
        let mut view = MessageView::new(&m, sanitized, allow, &tags);
        let social = Social::new(&state, user)
            .facts(&m.content.privacy, m.envelope.received_at)
            .await?;
        view.privacy = PrivacyView::with_social(&m.content.privacy, &social);
        view.remote_content_trusted = trusted.map(Into::into);
        view.authenticated_sender = sender;
        Ok(Json(view))
    }

    /// The message exactly as received.
    #[oai(path = "/messages/:id/raw", method = "get", tag = "ApiTags::Mail")]
    async fn raw(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<RawMessage, ApiError> {
        let raw = state
            .store
            .get_raw(auth.0.user_id, MessageId(id.0))
            .await?
            .ok_or_else(|| ApiError::not_found("no such message"))?;
        Ok(RawMessage::Ok(
            Binary(raw),
            disposition(&format!("{}.eml", id.0)),
        ))
    }

    /// One attachment, decoded.
    #[oai(
        path = "/messages/:id/attachments/:index",
        method = "get",
        tag = "ApiTags::Mail"
    )]
    async fn attachment(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        /// The attachment's `index` from the message.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        index: Path<u32>,
    ) -> Result<AttachmentBytes, ApiError> {
        let user = auth.0.user_id;
        let m = message_of(&state, user, id.0).await?;
        let Some(meta) = m
            .content
            .attachments
            .iter()
            .find(|a| a.part_index == index.0)
        else {
            return Err(ApiError::not_found("no such attachment"));
        };
        let (name, ctype) = (meta.file_name.clone(), meta.content_type.clone());
        download(&state, &m, index.0, "attachment", name, ctype).await
    }

    /// Any part of the message listed in its `structure`, decoded, as a download; shown
    /// parts too, so a reader can always reach every part. 404 for a multipart container.
    #[oai(
        path = "/messages/:id/parts/:index",
        method = "get",
        tag = "ApiTags::Mail"
    )]
    async fn part(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        /// The part's `index` from the message's `structure`.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        index: Path<u32>,
    ) -> Result<AttachmentBytes, ApiError> {
        let user = auth.0.user_id;
        let m = message_of(&state, user, id.0).await?;
        // A real container is neither shown nor listed; a multipart whose boundary never
        // occurs is shown as text and has bytes.
        let Some(meta) = m.content.structure.iter().find(|p| {
            p.index == index.0
                && !(p.content_type.starts_with("multipart/") && !p.shown_inline && !p.attachment)
        }) else {
            return Err(ApiError::not_found("no such part"));
        };
        let (name, ctype) = (meta.file_name.clone(), meta.content_type.clone());
        download(&state, &m, index.0, "part", name, ctype).await
    }

    /// Marks a message read or unread, starred, or trashed.
    #[oai(path = "/messages/:id/flags", method = "patch", tag = "ApiTags::Mail")]
    async fn flags(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<FlagsRequest>,
    ) -> Result<Json<FlagsView>, ApiError> {
        let patch = FlagsPatch {
            seen: body.seen,
            flagged: body.flagged,
            trashed: body.trashed,
            answered: None,
        };
        let flags = state
            .store
            .update_flags(auth.0.user_id, MessageId(id.0), patch)
            .await?
            .ok_or_else(|| ApiError::not_found("no such message"))?;
        Ok(Json(flags.into()))
    }

    /// Sets the tags of a message.
    #[oai(path = "/messages/:id/tags", method = "put", tag = "ApiTags::Tags")]
    async fn set_tags(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<TagsRequest>,
    ) -> Result<Json<Vec<TagView>>, ApiError> {
        let user = auth.0.user_id;
        let known = tags_by_id(&state, user).await?;
        let wanted = known_tags(&known, "tags", &body.tags)?;
        if !state
            .store
            .set_message_tags(user, MessageId(id.0), &wanted)
            .await?
        {
            return Err(ApiError::not_found("no such message"));
        }
        state.reindex(user, MessageId(id.0)).await?;
        Ok(Json(
            wanted
                .iter()
                .filter_map(|t| known.get(t))
                .map(Into::into)
                .collect(),
        ))
    }

    /// Deletes a message for good (its raw bytes too). To keep it recoverable, set the
    /// `trashed` flag instead.
    #[oai(path = "/messages/:id", method = "delete", tag = "ApiTags::Mail")]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let user = auth.0.user_id;
        if !state.store.delete_message(user, MessageId(id.0)).await? {
            return Err(ApiError::not_found("no such message"));
        }
        // The worker finds the message gone and removes it from the index.
        state.reindex(user, MessageId(id.0)).await?;
        Ok(NoContent::Done)
    }

    /// The user's tags, by name.
    #[oai(path = "/tags", method = "get", tag = "ApiTags::Tags")]
    async fn tags(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<Json<Vec<TagView>>, ApiError> {
        let tags = state.store.list_tags(auth.0.user_id).await?;
        Ok(Json(tags.iter().map(Into::into).collect()))
    }

    /// Creates a tag.
    #[oai(path = "/tags", method = "post", tag = "ApiTags::Tags")]
    async fn create_tag(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: JsonBody<TagRequest>,
    ) -> Result<Created<TagView>, ApiError> {
        let user = auth.0.user_id;
        let tag = state
            .store
            .create_tag(
                user,
                body.name.trim(),
                body.colour.as_deref(),
                palisade_model::MAX_TAGS_PER_USER,
            )
            .await?;
        Ok(Created::Created(Json((&tag).into())))
    }

    /// Renames a tag and/or changes its colour; messages keep it.
    #[oai(path = "/tags/:id", method = "patch", tag = "ApiTags::Tags")]
    async fn update_tag(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<TagPatchRequest>,
    ) -> Result<Json<TagView>, ApiError> {
        let change = palisade_store::TagChange {
            name: body.name.as_deref().map(|n| n.trim().to_string()),
            colour: body.colour.as_deref().map(|c| Some(c.to_string())),
        };
        match state
            .store
            .update_tag(auth.0.user_id, TagId(id.0), &change)
            .await
        {
            Ok(tag) => Ok(Json((&tag).into())),
            Err(palisade_store::StoreError::NotFound(_)) => Err(ApiError::not_found("no such tag")),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a tag; messages simply stop showing it.
    #[oai(path = "/tags/:id", method = "delete", tag = "ApiTags::Tags")]
    async fn delete_tag(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        if state.store.delete_tag(auth.0.user_id, TagId(id.0)).await? {
            Ok(NoContent::Done)
        } else {
            Err(ApiError::not_found("no such tag"))
        }
    }

    /// Searches the user's mail. All given criteria must match; `q` matches subject, body,
    /// senders and recipients. Results carry the index's freshness, so a client can tell
    /// when recent mail may not be searchable yet.
    #[oai(path = "/search", method = "get", tag = "ApiTags::Search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        #[oai(validator(max_length = 2048))] q: Query<Option<String>>,
        #[oai(validator(max_length = 320))] from: Query<Option<String>>,
        #[oai(validator(max_length = 320))] to: Query<Option<String>>,
        #[oai(validator(max_length = 998))] subject: Query<Option<String>>,
        /// Inclusive start date, `YYYY-MM-DD` or RFC 3339.
        after: Query<Option<DateBound>>,
        /// Exclusive end date, `YYYY-MM-DD` or RFC 3339.
        before: Query<Option<DateBound>>,
        has_attachment: Query<Option<bool>>,
        /// Tag name.
        #[oai(validator(max_length = 64))]
        tag: Query<Option<String>>,
        cursor: Query<Option<SearchCursor>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> Result<SerdeJson<SearchResult>, ApiError> {
        let user = auth.0.user_id;
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let tag_id = match nonempty(tag.0) {
            Some(name) => {
                let tags = state.store.list_tags(user).await?;
                match tags.into_iter().find(|t| t.name == name) {
                    Some(t) => Some(t.id.to_string()),
                    // No such tag: nothing can carry it.
                    None => {
                        return Ok(SerdeJson(SearchResult {
                            items: Vec::new(),
                            next: None,
                            index: index_status(&state, user).await?,
                        }));
                    }
                }
            }
            None => None,
        };
        let query = SearchQuery {
            text: nonempty(q.0),
            from: nonempty(from.0),
            to: nonempty(to.0),
            subject: nonempty(subject.0),
            after: parse_date("after", after.0.as_deref())?,
            before: parse_date("before", before.0.as_deref())?,
            has_attachment: has_attachment.0,
            tag: tag_id,
        };
        let offset: usize = match cursor.0.filter(|c| !c.is_empty()) {
            Some(c) => c
                .parse()
                .ok()
                .filter(|o| *o <= MAX_SEARCH_OFFSET)
                .ok_or_else(|| {
                    ApiError::bad_request("cursor: not a cursor from a previous page")
                })?,
            None => 0,
        };
        let limit = limit.0.unwrap_or(crate::DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
        let hits = state.index.search(user, &query, offset + limit + 1).await?;
        let more = hits.len() > offset + limit;
        let page: Vec<_> = hits
            .iter()
            .skip(offset)
            .take(limit)
            .map(|h| h.message_id)
            .collect();
        // One store call for the page; a hit for a message deleted a moment ago is left out.
        let items = state
            .store
            .message_summaries(user, &page)
            .await?
            .iter()
            .map(MessageSummaryView::from)
            .collect();
        let next =
            (more && offset + limit <= MAX_SEARCH_OFFSET).then(|| (offset + limit).to_string());
        Ok(SerdeJson(SearchResult {
            items,
            next,
            index: index_status(&state, user).await?,
        }))
    }

    /// How far search has caught up with stored mail.
    #[oai(path = "/index/status", method = "get", tag = "ApiTags::Search")]
    async fn index_status(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<Json<IndexStatus>, ApiError> {
        Ok(Json(index_status(&state, auth.0.user_id).await?))
    }
}
