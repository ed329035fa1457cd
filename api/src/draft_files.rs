//! Files attached to drafts: upload, list, download and delete. They are sent with the draft
//! and deleted with it.

use crate::compose::draft_of;
use crate::error::{ApiError, ErrorBody};
use crate::mail::disposition;
use crate::types::DraftAttachmentView;
use crate::{AppState, Auth};
use bytes::Bytes;
use chrono::Utc;
use palisade_model::{Draft, DraftAttachment, DraftAttachmentId, DraftId};
use palisade_store::{AttachmentLimits, AttachmentRefused, StoreError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromMultipartField, ParseResult, Type};
use poem_openapi::{ApiResponse, Multipart, OpenApi, Tags};
use std::borrow::Cow;
use std::sync::Arc;
use uuid::Uuid;

/// Most files one draft may carry.
pub(crate) const MAX_DRAFT_ATTACHMENTS: usize = 20;
/// Longest file name kept, in bytes of UTF-8.
const MAX_FILE_NAME_BYTES: usize = 255;
/// Longest content type accepted (RFC 6838 caps each half at 127 characters).
const MAX_CONTENT_TYPE_CHARS: usize = 255;
/// The name a file gets when its part names none, or only a path.
const DEFAULT_FILE_NAME: &str = "attachment";
/// The type a file gets when its part states none.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

#[derive(Tags)]
enum ApiTags {
    /// Writing and sending mail.
    Compose,
}

/// One file for a draft, as `multipart/form-data`; other parts are refused.
#[derive(Debug, Multipart)]
#[oai(deny_unknown_fields)]
pub(crate) struct AttachmentUpload {
    /// The file. Its name comes from the part's `filename`: any directories are dropped, it
    /// may not contain control characters, and it may be at most 255 bytes long (UTF-8);
    /// without one the file is called `attachment`. Its type comes from the part's
    /// `Content-Type` (`application/octet-stream` when absent). The whole request must fit
    /// the server's body limit (`api.max_body_bytes`, 25 MiB by default), and all of a
    /// draft's files together `api.max_draft_attachment_bytes` (20 MiB by default): past
    /// either the answer is 413. A draft holds at most 20 files; past that the answer is 409.
    file: FilePart,
}

/// An uploaded file part, read into memory. poem-openapi's `Upload` would spool it to a
/// temporary file first: a copy of the user's mail outside the store, left behind by a crash.
/// The request's size is already bounded by the body limit.
#[derive(Debug)]
pub(crate) struct FilePart {
    /// `filename` of the part's `Content-Disposition`.
    file_name: Option<String>,
    /// The part's `Content-Type`, parameters dropped.
    content_type: Option<String>,
    /// The bytes.
    data: Vec<u8>,
}

impl Type for FilePart {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_binary".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromMultipartField for FilePart {
    async fn parse_from_multipart(field: Option<poem::web::Field>) -> ParseResult<Self> {
        let field = field.ok_or_else(ParseError::expected_input)?;
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        let data = field.bytes().await.map_err(ParseError::custom)?;
        Ok(FilePart {
            file_name,
            content_type,
            data,
        })
    }
}

#[derive(ApiResponse)]
enum Uploaded {
    /// Stored on the draft.
    #[oai(status = 201)]
    Created(Json<DraftAttachmentView>),
}

#[derive(ApiResponse)]
enum FileBytes {
    /// The file, always as a download so it cannot run as a page of ours; its type is in
    /// `X-Palisade-Content-Type`.
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Palisade-Content-Type")] String,
    ),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// The name a file is stored and sent under: the base name of what the client gave (browsers
/// send only that, other clients may send a path), refused with a reason when it holds
/// control characters or is too long.
fn file_name(given: Option<&str>) -> Result<String, ApiError> {
    let given = given.unwrap_or_default();
    if given.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "file: the file name may not contain control characters",
        ));
    }
    let base = given.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.len() > MAX_FILE_NAME_BYTES {
        return Err(ApiError::invalid(format!(
            "file: the file name may be at most {MAX_FILE_NAME_BYTES} bytes long"
        )));
    }
    Ok(match base {
        "" | "." | ".." => DEFAULT_FILE_NAME.to_string(),
        name => name.to_string(),
    })
}

/// The type a file is sent with: the part's own (already parsed as a MIME type), or
/// `application/octet-stream`.
fn content_type(given: Option<&str>) -> Result<String, ApiError> {
    match given.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(DEFAULT_CONTENT_TYPE.to_string()),
        Some(t) if t.len() > MAX_CONTENT_TYPE_CHARS || !t.is_ascii() || !t.contains('/') => Err(
            ApiError::invalid(format!("file: {t:?} is not a content type")),
        ),
        Some(t) => Ok(t.to_ascii_lowercase()),
    }
}

/// Every file of a draft with its bytes, in upload order: what sending attaches.
pub(crate) async fn load_all(
    state: &AppState,
    draft: &Draft,
) -> Result<Vec<(DraftAttachment, Vec<u8>)>, ApiError> {
    let mut files = Vec::new();
    for a in state
        .store
        .list_draft_attachments(draft.user_id, draft.id)
        .await?
    {
        let file = state
            .store
            .get_draft_attachment(draft.user_id, draft.id, a.id)
            .await?;
        // A file deleted by another request since the list is no longer part of the draft.
        files.extend(file);
    }
    Ok(files)
}

/// Uploads, lists, downloads and deletes the files of drafts.
#[derive(Default)]
pub struct DraftFilesApi;

#[OpenApi]
impl DraftFilesApi {
    /// Adds a file to a draft; it is sent as an attachment with the draft.
    #[oai(
        path = "/drafts/:id/attachments",
        method = "post",
        tag = "ApiTags::Compose"
    )]
    async fn upload(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: AttachmentUpload,
    ) -> Result<Uploaded, ApiError> {
        let user = auth.0.user_id;
        let draft = draft_of(&state, user, id.0).await?;
        let file_name = file_name(body.file.file_name.as_deref())?;
        let content_type = content_type(body.file.content_type.as_deref())?;
        let data = body.file.data;
        let attachment = DraftAttachment {
            id: DraftAttachmentId::new_random(),
            user_id: user,
            draft_id: draft.id,
            file_name,
            content_type,
            size: data.len() as u64,
            created_at: Utc::now(),
        };
        let limits = AttachmentLimits {
            max_count: MAX_DRAFT_ATTACHMENTS,
            max_total_bytes: state.config.max_draft_attachment_bytes,
        };
        match state
            .store
            .add_draft_attachment(attachment, Bytes::from(data), limits)
            .await
        {
            Ok(Ok(added)) => Ok(Uploaded::Created(Json((&added).into()))),
            Ok(Err(refused @ AttachmentRefused::TooMany(_))) => {
                Err(ApiError::conflict(refused.to_string()))
            }
            Ok(Err(refused @ AttachmentRefused::TooLarge(_))) => Err(ApiError::PayloadTooLarge(
                ErrorBody::json("payload_too_large", refused.to_string()),
            )),
            // Deleted while the file was arriving.
            Err(StoreError::NotFound(_)) => Err(ApiError::not_found("no such draft")),
            Err(e) => Err(e.into()),
        }
    }

    /// The files of a draft, in upload order.
    #[oai(
        path = "/drafts/:id/attachments",
        method = "get",
        tag = "ApiTags::Compose"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<Json<Vec<DraftAttachmentView>>, ApiError> {
        let draft = draft_of(&state, auth.0.user_id, id.0).await?;
        let files = state
            .store
            .list_draft_attachments(draft.user_id, draft.id)
            .await?;
        Ok(Json(files.iter().map(Into::into).collect()))
    }

    /// One file of a draft, as uploaded.
    #[oai(
        path = "/drafts/:id/attachments/:attachment_id",
        method = "get",
        tag = "ApiTags::Compose"
    )]
    async fn download(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        attachment_id: Path<Uuid>,
    ) -> Result<FileBytes, ApiError> {
        let (file, data) = state
            .store
            .get_draft_attachment(
                auth.0.user_id,
                DraftId(id.0),
                DraftAttachmentId(attachment_id.0),
            )
            .await?
            .ok_or_else(|| ApiError::not_found("no such attachment"))?;
        Ok(FileBytes::Ok(
            Binary(data),
            disposition(&file.file_name),
            file.content_type,
        ))
    }

    /// Removes a file from a draft.
    #[oai(
        path = "/drafts/:id/attachments/:attachment_id",
        method = "delete",
        tag = "ApiTags::Compose"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        attachment_id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        if state
            .store
            .delete_draft_attachment(
                auth.0.user_id,
                DraftId(id.0),
                DraftAttachmentId(attachment_id.0),
            )
            .await?
        {
            Ok(Deleted::Done)
        } else {
            Err(ApiError::not_found("no such attachment"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(given: Option<&str>) -> Option<String> {
        file_name(given).ok()
    }

    #[test]
    fn file_names_keep_only_the_base_name() {
        assert_eq!(name(Some("report.pdf")).as_deref(), Some("report.pdf"));
        assert_eq!(name(Some("/etc/passwd")).as_deref(), Some("passwd"));
        assert_eq!(
            name(Some("C:\\Users\\me\\notes .txt ")).as_deref(),
            Some("notes .txt")
        );
        assert_eq!(name(Some("../../x")).as_deref(), Some("x"));
        assert_eq!(name(Some("dir/")).as_deref(), Some(DEFAULT_FILE_NAME));
        assert_eq!(name(Some("..")).as_deref(), Some(DEFAULT_FILE_NAME));
        assert_eq!(name(None).as_deref(), Some(DEFAULT_FILE_NAME));
        assert_eq!(name(Some("été.txt")).as_deref(), Some("été.txt"));
    }

    #[test]
    fn file_names_with_control_characters_or_too_long_are_refused() {
        assert_eq!(name(Some("a\nb.txt")), None);
        assert_eq!(name(Some("a\u{0}b")), None);
        assert_eq!(name(Some("a\u{85}b")), None);
        assert_eq!(name(Some(&"x".repeat(255))), Some("x".repeat(255)));
        assert_eq!(name(Some(&"x".repeat(256))), None);
        // Bytes, not characters: 128 two-byte letters are 256 bytes.
        assert_eq!(name(Some(&"é".repeat(128))), None);
        assert_eq!(
            name(Some(&format!("{}/{}", "d".repeat(300), "ok.txt"))).as_deref(),
            Some("ok.txt")
        );
    }

    #[test]
    fn content_types_default_to_octet_stream() {
        assert_eq!(
            content_type(None).ok().as_deref(),
            Some(DEFAULT_CONTENT_TYPE)
        );
        assert_eq!(
            content_type(Some("Text/Plain")).ok().as_deref(),
            Some("text/plain")
        );
        assert!(content_type(Some("nonsense")).is_err());
    }
}
