//! Users bring their mail in: an mbox uploaded to `POST /me/import` (alone, or with the
//! `metadata.json` of a Palisade export as a multipart form) goes through the same
//! [`Pipeline::import_mailbox`](palisade_ingest::Pipeline::import_mailbox) as
//! `palisade-admin import`, in the background, and `GET /me/imports/{id}` tells how far it is.
//!
//! The upload is streamed to an unnamed temporary file under the spool directory, never held
//! in memory, and capped by `api.max_import_bytes` for the whole request; the file disappears
//! with the import, or at once when the upload is refused.

use crate::account::current_user;
use crate::error::{ApiError, ErrorBody};
use crate::import_status::{self, Claim, ImportSlot, ImportStatus, MboxFormat, NoSlot};
use crate::{API_PREFIX, AppState, Auth};
use palisade_ingest::{ExportIndex, ExportMetadata, ImportError, read_ahead};
use palisade_mbox::{CountingReader, MboxReader};
use palisade_model::User;
use poem::Body;
use poem::web::{Data, Multipart};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::{ApiRequest, ApiResponse, OpenApi, Tags};
use std::io::{BufRead, BufReader, Seek};
use std::ops::ControlFlow;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};
use uuid::Uuid;

/// The path of the upload, which the body limit treats apart (`api.max_import_bytes`).
pub(crate) const IMPORT_PATH: &str = "/me/import";
/// Imports one node runs at once; each holds its upload on disk and keeps the store busy.
pub(crate) const IMPORTS_AT_ONCE: usize = 2;
/// Largest `metadata` part: it is read into memory to match messages against it.
const MAX_METADATA_BYTES: u64 = 64 * 1024 * 1024;
/// When to try again while an import runs or the node's import slots are taken.
const IMPORT_RETRY_SECS: u64 = 30;
/// How often a running import writes its progress to the cache.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How often a running import looks for a deletion's request to stop: the deletion waits
/// about this long plus the message being stored.
const STOP_CHECK_EVERY: Duration = Duration::from_millis(250);
/// Every how many of those checks it also asks the store whether the account still exists.
const ACCOUNT_CHECK_RATIO: u32 = 8;
/// Bytes looked at to tell whether an upload is an mbox at all.
const SNIFF_BYTES: u64 = 64 * 1024;

#[derive(Tags)]
enum ApiTags {
    /// The user's data: export and import.
    Data,
}

/// A `multipart/form-data` upload, read part by part as the handler asks, so nothing is read
/// before the import is known to be allowed to start.
pub(crate) struct ImportForm(Multipart);

impl Payload for ImportForm {
    const CONTENT_TYPE: &'static str = "multipart/form-data";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(Self::CONTENT_TYPE))
    }

    fn schema_ref() -> MetaSchemaRef {
        let binary =
            || MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")));
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            required: vec!["mailbox"],
            properties: vec![("mailbox", binary()), ("metadata", binary())],
            ..MetaSchema::new("object")
        }))
    }
}

impl ParsePayload for ImportForm {
    const IS_REQUIRED: bool = true;

    async fn from_request(
        request: &poem::Request,
        body: &mut poem::RequestBody,
    ) -> poem::Result<Self> {
        use poem::FromRequest;
        Ok(ImportForm(Multipart::from_request(request, body).await?))
    }
}

/// A mailbox to import.
#[derive(ApiRequest)]
enum ImportUpload {
    /// The mbox file as the request body.
    #[oai(content_type = "application/mbox")]
    Mbox(Binary<Body>),
    /// The same, for clients that cannot name the type.
    #[oai(content_type = "application/octet-stream")]
    Octets(Binary<Body>),
    /// The part `mailbox` (the mbox file) and, optionally, the part `metadata` (the
    /// `metadata.json` of a Palisade export, format `palisade-export/1`, at most 64 MiB),
    /// which brings back flags, tags and envelopes. Other parts are refused.
    Form(ImportForm),
}

#[derive(ApiResponse)]
enum ImportStarted {
    /// The upload is stored and the import runs in the background; poll the status at
    /// `Location` until its `state` is no longer `running`.
    #[oai(status = 202)]
    Accepted(Json<ImportStatus>, #[oai(header = "Location")] String),
}

/// Import endpoints.
#[derive(Default)]
pub struct ImportApi;

#[OpenApi(tag = "ApiTags::Data")]
impl ImportApi {
    /// Imports an mbox file into the mailbox, as if each message had been delivered: stored
    /// byte for byte, threaded, indexed and scored; a message that was already there is not
    /// stored twice, and one that cannot be parsed is stored raw and listed in the report.
    /// The whole request may be at most `api.max_import_bytes` (1 GiB by default; then 413).
    /// One import per user at a time, and a few per server (then 429 with Retry-After).
    #[oai(path = "/me/import", method = "post")]
    async fn start(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// How `From ` lines inside messages were escaped: `mboxrd` (the default, and what
        /// Palisade exports) or `mboxo`.
        format: Query<Option<MboxFormat>>,
        body: ImportUpload,
    ) -> Result<ImportStarted, ApiError> {
        let state: &Arc<AppState> = &state;
        let user = current_user(state, auth.0.user_id).await?;
        let format = format.0.unwrap_or_default();
        // Refused before a byte of the upload is read.
        let slot = state.imports.try_take(user.id).map_err(|no| match no {
            NoSlot::User => already_running(),
            NoSlot::Node => ApiError::busy(
                "other imports are running on this server; try again shortly",
                IMPORT_RETRY_SECS,
            ),
        })?;
        if import_status::running(state.cache.as_ref(), user.id)
            .await?
            .is_some()
        {
            return Err(already_running());
        }
        // Other nodes refuse this user from here on (two nodes checking at the same moment
        // may both go ahead: harmless, since no message is stored twice).
        let claim = Claim::take(state.cache.clone(), user.id).await?;
        let dir = state.import_settings.spool_dir.as_path();
        let accepted = async {
            let upload = match body {
                ImportUpload::Mbox(Binary(body)) | ImportUpload::Octets(Binary(body)) => Upload {
                    mailbox: Some(spool(body.into_async_read(), dir, None).await?),
                    metadata: None,
                },
                ImportUpload::Form(ImportForm(form)) => read_form(form, dir).await?,
            };
            let Some(mut mailbox) = upload.mailbox else {
                return Err(ApiError::invalid(
                    "mailbox: the part with the mbox file is missing",
                ));
            };
            let bytes_total = check_mbox(&mut mailbox)?;
            let export = upload.metadata.map(read_metadata).transpose()?;
            let status = ImportStatus::started(claim.id(), format, export.is_some(), bytes_total);
            import_status::save(state.cache.as_ref(), user.id, &status).await?;
            Ok((mailbox, export, status, bytes_total))
        }
        .await;
        let (mailbox, export, status, bytes_total) = match accepted {
            Ok(accepted) => accepted,
            Err(refused) => {
                claim.release().await;
                return Err(refused);
            }
        };
        claim.keep();
        tracing::info!(user = %user.id, import = %status.id, bytes = bytes_total, "import started");
        let location = format!("{API_PREFIX}/me/imports/{}", status.id);
        let job = Job {
            state: state.clone(),
            user,
            mailbox,
            format,
            export,
            status: status.clone(),
            slot,
        };
        tokio::spawn(job.run());
        Ok(ImportStarted::Accepted(Json(status), location))
    }

    /// Where an import stands, and at the end its report: counts, and the messages that
    /// could not be parsed (stored raw all the same) or were too large. Kept for a day after
    /// its last change.
    #[oai(path = "/me/imports/:id", method = "get")]
    async fn status(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<Json<ImportStatus>, ApiError> {
        import_status::load(state.cache.as_ref(), auth.0.user_id, id.0)
            .await?
            .map(Json)
            .ok_or_else(|| ApiError::not_found("no such import"))
    }
}

/// Where uploads wait and how large one message may be: the daemon's spool directory and its
/// LMTP size limit, so an import takes what delivery takes.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Directory for the temporary files of uploads (`<data_dir>/spool`).
    pub spool_dir: PathBuf,
    /// Messages larger than this are reported and skipped (`lmtp.max_message_bytes`).
    pub max_message_bytes: usize,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            spool_dir: std::env::temp_dir(),
            max_message_bytes: palisade_config::LmtpConfig::default().max_message_bytes,
        }
    }
}

fn already_running() -> ApiError {
    ApiError::busy(
        "an import is already running for this account; wait for it to end",
        IMPORT_RETRY_SECS,
    )
}

/// The spooled parts of an upload.
struct Upload {
    mailbox: Option<std::fs::File>,
    metadata: Option<std::fs::File>,
}

/// Spools the parts of a form, refusing unknown or repeated ones.
async fn read_form(mut form: Multipart, dir: &FsPath) -> Result<Upload, ApiError> {
    let mut upload = Upload {
        mailbox: None,
        metadata: None,
    };
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("the form could not be read: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let (slot, cap) = match name.as_str() {
            "mailbox" => (&mut upload.mailbox, None),
            "metadata" => (&mut upload.metadata, Some(MAX_METADATA_BYTES)),
            other => {
                return Err(ApiError::invalid(format!(
                    "{other:?}: unknown part; the form takes `mailbox` and `metadata`"
                )));
            }
        };
        if slot.is_some() {
            return Err(ApiError::invalid(format!(
                "{name}: the part is given twice"
            )));
        }
        let file = spool(field.into_async_read(), dir, cap)
            .await
            .map_err(|e| match e {
                ApiError::PayloadTooLarge(_) => ApiError::PayloadTooLarge(ErrorBody::json(
                    "payload_too_large",
                    format!("metadata: the part is limited to {MAX_METADATA_BYTES} bytes"),
                )),
                other => other,
            })?;
        *slot = Some(file);
    }
    Ok(upload)
}

/// Copies `input` into a new unnamed file in `dir`, at most `cap` bytes (the request's own
/// limit applies besides), and rewinds it.
async fn spool(
    input: impl AsyncRead + Send + Unpin,
    dir: &FsPath,
    cap: Option<u64>,
) -> Result<std::fs::File, ApiError> {
    let file = tempfile::tempfile_in(dir).map_err(|e| {
        tracing::warn!(error = %e, dir = %dir.display(), "no temporary file for an import");
        ApiError::unavailable("the upload could not be stored")
    })?;
    let mut out = tokio::fs::File::from_std(file);
    let limit = cap.map_or(u64::MAX, |c| c.saturating_add(1));
    let mut input = tokio::io::AsyncReadExt::take(input, limit);
    // A failed read is a cut or over-size upload: the body limit answers 413 for the latter.
    let copied = tokio::io::copy(&mut input, &mut out).await;
    let copied = match copied {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
            tracing::warn!(error = %e, "the spool directory is full");
            return Err(ApiError::unavailable("the upload could not be stored"));
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "the upload could not be read to its end: {e}"
            )));
        }
    };
    if cap.is_some_and(|c| copied > c) {
        return Err(ApiError::PayloadTooLarge(ErrorBody::json(
            "payload_too_large",
            "the part is over its size limit",
        )));
    }
    out.flush().await.map_err(|e| {
        tracing::warn!(error = %e, "upload not written");
        ApiError::unavailable("the upload could not be stored")
    })?;
    let mut file = out.into_std().await;
    file.rewind().map_err(|e| {
        tracing::warn!(error = %e, "upload not rewound");
        ApiError::unavailable("the upload could not be stored")
    })?;
    Ok(file)
}

/// The size of an mbox upload, once it is known to look like one: not empty, and its first
/// line that is not blank a `From ` separator (the reader would skip anything else, and the
/// import would silently find nothing).
fn check_mbox(file: &mut std::fs::File) -> Result<u64, ApiError> {
    let unreadable = |e: std::io::Error| {
        tracing::warn!(error = %e, "upload not readable");
        ApiError::unavailable("the upload could not be read back")
    };
    let size = file.metadata().map_err(unreadable)?.len();
    if size == 0 {
        return Err(ApiError::invalid("mailbox: the mbox file is empty"));
    }
    let mut head = BufReader::new(std::io::Read::take(&mut *file, SNIFF_BYTES));
    let mut line = Vec::new();
    let first = loop {
        line.clear();
        if head.read_until(b'\n', &mut line).map_err(unreadable)? == 0 {
            break None;
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            break Some(line.starts_with(b"From "));
        }
    };
    if first != Some(true) {
        return Err(ApiError::invalid(
            "mailbox: not an mbox file: its first line must be a `From ` separator",
        ));
    }
    drop(head);
    file.rewind().map_err(unreadable)?;
    Ok(size)
}

/// The export's metadata, indexed for the import, or why it is refused.
fn read_metadata(file: std::fs::File) -> Result<ExportIndex, ApiError> {
    let metadata: ExportMetadata = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| ApiError::invalid(format!("metadata: not an export's metadata.json: {e}")))?;
    ExportIndex::new(metadata).map_err(|e| ApiError::invalid(format!("metadata: {e}")))
}

/// One import running in the background, with everything it holds until it ends.
struct Job {
    state: Arc<AppState>,
    user: User,
    /// The spooled mbox; removed when the job drops it.
    mailbox: std::fs::File,
    format: MboxFormat,
    export: Option<ExportIndex>,
    status: ImportStatus,
    /// Freed when the import ends.
    slot: ImportSlot,
}

impl Job {
    /// Reads the mbox on a thread of its own into the pipeline, writing progress to the
    /// cache at most every second, and the final report at the end.
    async fn run(self) {
        let Job {
            state,
            user,
            mailbox,
            format,
            export,
            mut status,
            slot,
        } = self;
        let (counted, read) = CountingReader::new(mailbox);
        let reader = MboxReader::new(
            BufReader::with_capacity(256 * 1024, counted),
            format.into(),
            state.import_settings.max_message_bytes,
        );
        let (entries, reader) = read_ahead(reader);

        let (tx, mut rx) = tokio::sync::watch::channel(status.clone());
        let writer = {
            let cache = state.cache.clone();
            let user = user.id;
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let latest = rx.borrow_and_update().clone();
                    if let Err(e) = import_status::save(cache.as_ref(), user, &latest).await {
                        tracing::warn!(error = ?e, "import progress not saved");
                    }
                    tokio::time::sleep(PROGRESS_EVERY).await;
                }
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(watch_for_deletion(state.clone(), user.id, stop.clone()));
        let mut progress = {
            let mut current = status.clone();
            let read = read.clone();
            let stop = stop.clone();
            move |report: &palisade_ingest::ImportReport| {
                current.progress(report, read.load(Ordering::Relaxed));
                // Only the latest counts: the writer takes it when it is ready.
                tx.send_replace(current.clone());
                if stop.load(Ordering::Relaxed) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
        };
        let outcome = state
            .pipeline
            .import_mailbox(&user, entries, export.as_ref(), &mut progress)
            .await;
        watcher.abort();
        drop(progress);
        // The writer ends once it has saved the last progress: the final record comes after.
        let _ = writer.await;
        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        // Deleted as it ended, between the last check and now, counts too.
        if stop.load(Ordering::Relaxed) || matches!(state.store.get_user(user.id).await, Ok(None)) {
            // Its records and marker go first: the deletion waits for the marker. Then what
            // it stored, in case the deletion's pass ran before it stopped.
            let swept = crate::deletion::sweep(
                state.store.as_ref(),
                state.index.as_ref(),
                state.cache.as_ref(),
                user.id,
            )
            .await;
            let import = status.id;
            match swept {
                Ok(()) => {
                    tracing::info!(user = %user.id, %import, "import stopped: account deleted")
                }
                Err(e) => tracing::warn!(
                    user = %user.id,
                    %import,
                    error = %e,
                    "import stopped: account deleted; sweep failed, run the deletion again"
                ),
            }
            return;
        }

        let error = match &outcome {
            Ok(report) => {
                status.progress(report, read.load(Ordering::Relaxed));
                None
            }
            Err(e) => {
                let chain = palisade_ingest::error_chain(e);
                tracing::warn!(
                    user = %user.id,
                    import = %status.id,
                    error = %palisade_model::without_addresses(&chain),
                    "import stopped"
                );
                Some(failure(e))
            }
        };
        status.finish(error);
        // Free before the report says it ended: a client that reads "done" and uploads the
        // next mailbox at once must not be told an import is still running.
        drop(slot);
        if let Err(e) = import_status::save(state.cache.as_ref(), user.id, &status).await {
            tracing::warn!(error = ?e, "import report not saved");
        }
        tracing::info!(
            user = %user.id,
            import = %status.id,
            messages = status.messages,
            stored = status.stored,
            unparsable = status.unparsable,
            too_large = status.too_large,
            "import ended"
        );
    }
}

/// Sets `stop` once a deletion asks `user`'s imports to stop, or the account is gone (deleted
/// by a node that could not ask). A backend that cannot answer is not a deletion.
async fn watch_for_deletion(
    state: Arc<AppState>,
    user: palisade_model::UserId,
    stop: Arc<AtomicBool>,
) {
    for check in 0u32.. {
        let asked = import_status::stop_requested(state.cache.as_ref(), user)
            .await
            .unwrap_or(false);
        let gone = check % ACCOUNT_CHECK_RATIO == 0
            && matches!(state.store.get_user(user).await, Ok(None));
        if asked || gone {
            stop.store(true, Ordering::Relaxed);
            return;
        }
        tokio::time::sleep(STOP_CHECK_EVERY).await;
    }
}

/// Why an import stopped, in words for its user: never a backend's own message.
fn failure(e: &ImportError) -> String {
    match e {
        ImportError::Read(_) => "the uploaded file could not be read".to_string(),
        ImportError::Tags(_) => "the export's tags could not be created".to_string(),
        ImportError::Store { origin, .. } => format!(
            "storing the message at {origin} failed; upload the file again to resume: \
             messages already imported are not stored twice"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(bytes).expect("written");
        f.rewind().expect("rewound");
        f
    }

    #[test]
    fn an_mbox_starts_with_a_from_line_after_any_blank_lines() {
        let mbox = b"\n\r\nFrom a@b Thu Nov 12 10:00:00 2026\nSubject: x\n\nbody\n";
        assert_eq!(check_mbox(&mut file(mbox)).ok(), Some(mbox.len() as u64));
        assert!(check_mbox(&mut file(b"")).is_err(), "empty");
        assert!(check_mbox(&mut file(b"\n\n")).is_err(), "blank");
        assert!(
            check_mbox(&mut file(b"Subject: one message\n\nbody\n")).is_err(),
            "an .eml"
        );
        assert!(check_mbox(&mut file(b"PK\x03\x04...")).is_err(), "a zip");
    }

    #[test]
    fn metadata_must_be_an_export_of_the_known_format() {
        assert!(read_metadata(file(b"{not json")).is_err());
        assert!(
            read_metadata(file(
                br#"{"format":"other/9","user":"a","exported_at":"2026-01-01T00:00:00Z","messages":[],"tags":[],"contacts":[]}"#
            ))
            .is_err()
        );
    }

    #[tokio::test]
    async fn spooling_stops_past_the_cap() {
        let dir = tempfile::tempdir().expect("dir");
        let mut f = spool(&b"0123456789"[..], dir.path(), Some(10))
            .await
            .expect("fits");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut back).expect("read");
        assert_eq!(back, b"0123456789");
        assert!(matches!(
            spool(&b"0123456789x"[..], dir.path(), Some(10)).await,
            Err(ApiError::PayloadTooLarge(_))
        ));
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("listed").count(),
            0,
            "nothing left behind"
        );
    }
}
