//! Users own their data: the whole mailbox as a download, in the same format as
//! `palisade-admin export` (an mbox and its `metadata.json`), which `palisade-admin import`
//! reads back into any Palisade.

use crate::account::current_user;
use crate::error::ApiError;
use crate::mail::disposition;
use crate::{AppState, Auth};
use palisade_ingest::{ExportError, export_mailbox};
use palisade_model::User;
use palisade_store::Store;
use poem::Body;
use poem::web::Data;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use std::io::{Seek, Write};
use std::sync::Arc;

#[derive(Tags)]
enum ApiTags {
    /// The user's data: export and import.
    Data,
}

#[derive(ApiResponse)]
enum MailboxFile {
    /// Every message, in mboxrd format.
    #[oai(status = 200, content_type = "application/mbox")]
    Ok(Binary<Body>, #[oai(header = "Content-Disposition")] String),
}

#[derive(ApiResponse)]
enum MetadataFile {
    /// Flags, tags, discussions and envelopes of every message, and the user's tags and
    /// contacts, keyed by each message's sha256 in the mbox: a JSON file (format
    /// `palisade-export/1`), sent as a download.
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(Binary<Body>, #[oai(header = "Content-Disposition")] String),
}

/// When to try again while the node's export slots are taken.
const EXPORT_RETRY_SECS: u64 = 10;

/// Which half of the export a request asked for.
#[derive(Clone, Copy)]
enum Part {
    Mailbox,
    Metadata,
}

/// Export endpoints.
#[derive(Default)]
pub struct OwnershipApi;

#[OpenApi(prefix_path = "/me/export", tag = "ApiTags::Data")]
impl OwnershipApi {
    /// The whole mailbox as an mbox file (mboxrd), which any mail client reads.
    #[oai(path = "/mailbox.mbox", method = "get")]
    async fn mailbox(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<MailboxFile, ApiError> {
        let body = export(&state, &auth, Part::Mailbox).await?;
        Ok(MailboxFile::Ok(
            Binary(body),
            disposition("palisade-mailbox.mbox"),
        ))
    }

    /// What the mbox cannot carry: `palisade-admin import` of both restores the mailbox with
    /// the same messages, flags and tags.
    #[oai(path = "/metadata.json", method = "get")]
    async fn metadata(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<MetadataFile, ApiError> {
        let body = export(&state, &auth, Part::Metadata).await?;
        Ok(MetadataFile::Ok(
            Binary(body),
            disposition("palisade-metadata.json"),
        ))
    }
}

/// Writes the export into an unnamed temporary file and streams it from there: a mailbox can
/// be far larger than memory, and the file disappears with the response.
async fn export(state: &AppState, auth: &Auth, part: Part) -> Result<Body, ApiError> {
    let user = current_user(state, auth.0.user_id).await?;
    let Ok(slot) = state.exports.clone().try_acquire_owned() else {
        return Err(ApiError::busy(
            "other exports are being prepared on this server; try again shortly",
            EXPORT_RETRY_SECS,
        ));
    };
    let store = state.store.clone();
    let runtime = tokio::runtime::Handle::current();
    // Every page of the export is a file write: on a blocking thread, so a slow or full disk
    // stalls this export only, never the requests sharing the runtime's workers. The slot
    // travels with it, so the bound on exports is also the bound on these threads.
    let written = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        runtime.block_on(write_export(store.as_ref(), &user, part))
    })
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "export task failed");
        ApiError::unavailable("the export could not be prepared")
    })??;
    Ok(Body::from_async_read(tokio::fs::File::from_std(written)))
}

/// The export of `user`, written and rewound, ready to stream.
async fn write_export(
    store: &dyn Store,
    user: &User,
    part: Part,
) -> Result<std::fs::File, ApiError> {
    let file = tempfile::tempfile().map_err(|e| {
        tracing::warn!(error = %e, "no temporary file for an export");
        ApiError::unavailable("the export could not be prepared")
    })?;
    let mut out = std::io::BufWriter::new(file);
    let mut sink = std::io::sink();
    // The metadata alone needs no raw bytes: no mbox, and it is not read.
    let (mbox, metadata): (Option<&mut (dyn Write + Send)>, &mut (dyn Write + Send)) = match part {
        Part::Mailbox => (Some(&mut out), &mut sink),
        Part::Metadata => (None, &mut out),
    };
    let report = export_mailbox(store, user, mbox, metadata, &mut |_, _, _| Ok(()))
        .await
        .map_err(|e| match e {
            ExportError::Store(e) => ApiError::from(e),
            other => {
                tracing::warn!(error = %other, "export failed");
                ApiError::unavailable("the export could not be prepared")
            }
        })?;
    tracing::info!(user = %user.id, messages = report.messages, bytes = report.bytes, "export served");
    let mut file = out.into_inner().map_err(|e| {
        tracing::warn!(error = %e.error(), "export not written");
        ApiError::unavailable("the export could not be prepared")
    })?;
    file.rewind().map_err(|e| {
        tracing::warn!(error = %e, "export not rewound");
        ApiError::unavailable("the export could not be prepared")
    })?;
    Ok(file)
}
