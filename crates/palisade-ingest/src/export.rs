//! A user's whole mailbox, out: an mbox any mail client reads, and `metadata.json` for what
//! mbox cannot carry (each message's flags, tags, discussion and envelope, the user's tags and
//! contacts). [`Pipeline::import_mailbox`] reads both back, so export then import gives the
//! same messages (sha256), flags and tags.

use std::collections::HashMap;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use palisade_mbox::write_mbox_message;
use palisade_model::{Contact, DiscussionId, Flags, Message, MessageId, RawHash, TagId, User};
use palisade_store::{AddressBook, Mailbox, Page, StoreError};
use serde::{Deserialize, Serialize};

/// The `format` of a `metadata.json` this version writes and reads.
pub const EXPORT_FORMAT: &str = "palisade-export/1";
/// Messages read from the store per page.
const PAGE: usize = 200;

/// One message in `metadata.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedMessage {
    /// Its id in the exporting mailbox.
    pub id: MessageId,
    /// SHA-256 of the raw bytes, hex: how import finds it in the mbox.
    pub sha256: String,
    /// Size of the raw bytes; mbox adds a final newline to a message without one.
    pub size: u64,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Envelope sender.
    pub mail_from: Option<String>,
    /// Envelope recipient.
    pub rcpt_to: String,
    /// Its discussion in the exporting mailbox.
    pub discussion_id: DiscussionId,
    /// Read, starred, answered, trashed, sent...
    pub flags: Flags,
    /// Tag names.
    pub tags: Vec<String>,
}

/// One tag in `metadata.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedTag {
    /// Its name.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub colour: Option<String>,
}

/// `metadata.json`, whole (import reads it whole; export writes it message by message).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportMetadata {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// The exported user's name.
    pub user: String,
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// Every tag of the user.
    pub tags: Vec<ExportedTag>,
    /// Every contact of the user.
    pub contacts: Vec<Contact>,
    /// Every message, in the mbox's order.
    pub messages: Vec<ExportedMessage>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// Messages written.
    pub messages: u64,
    /// Their raw bytes.
    pub bytes: u64,
    /// Tags listed.
    pub tags: u64,
    /// Contacts listed.
    pub contacts: u64,
    /// Messages listed whose raw bytes were missing (none in a healthy store).
    pub missing_raw: u64,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed.
    #[error("reading the mailbox failed")]
    Store(#[from] StoreError),
    /// A file could not be written.
    #[error("writing the export failed")]
    Write(#[from] io::Error),
    /// The metadata could not be encoded.
    #[error("encoding the metadata failed")]
    Json(#[from] serde_json::Error),
}

/// What an export calls with each message it wrote, and its raw bytes when an mbox was asked
/// for, so a caller can write more of it without reading the mailbox a second time.
pub type EachExported<'a> =
    dyn FnMut(&Message, Option<&[u8]>, &ExportReport) -> io::Result<()> + Send + 'a;

/// Writes `user`'s whole mailbox to `metadata` and, when given, `mbox`, a page at a time:
/// memory holds one page of messages whatever the mailbox's size. Raw bytes are read only for
/// the mbox. `each` is called after every message.
pub async fn export_mailbox<S>(
    store: &S,
    user: &User,
    mut mbox: Option<&mut (dyn Write + Send)>,
    metadata: &mut (dyn Write + Send),
    each: &mut EachExported<'_>,
) -> Result<ExportReport, ExportError>
where
    S: Mailbox + AddressBook + ?Sized,
{
    let mut report = ExportReport::default();
    let tags = store.list_tags(user.id).await?;
    let tag_names: HashMap<TagId, String> = tags.iter().map(|t| (t.id, t.name.clone())).collect();
    let mut contacts = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_contacts(user.id, Page { after, limit: PAGE })
            .await?;
        contacts.extend(page.items);
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    report.tags = tags.len() as u64;
    report.contacts = contacts.len() as u64;
    // The header by hand, then one message at a time: the messages array can be long.
    let head = ExportMetadata {
        format: EXPORT_FORMAT.into(),
        user: user.name.clone(),
        exported_at: Utc::now(),
        tags: tags
            .into_iter()
            .map(|t| ExportedTag {
                name: t.name,
                colour: t.colour,
            })
            .collect(),
        contacts,
        messages: Vec::new(),
    };
    let mut head = serde_json::to_vec(&head)?;
    // `{"format":...,"messages":[]}` without its last two bytes leaves the array open.
    head.truncate(head.len().saturating_sub(2));
    metadata.write_all(&head)?;
    let mut after = None;
    let mut first = true;
    loop {
        let page = store
            .list_messages(user.id, Page { after, limit: PAGE })
            .await?;
        for summary in &page.items {
            let Some(message) = store.get_message(user.id, summary.id).await? else {
                // Deleted since the page was listed.
                continue;
            };
            let raw = match &mut mbox {
                Some(mbox) => {
                    let Some(raw) = store.get_raw(user.id, summary.id).await? else {
                        report.missing_raw += 1;
                        continue;
                    };
                    write_mbox_message(
                        &mut **mbox,
                        message.envelope.mail_from.as_deref(),
                        message.envelope.received_at,
                        &raw,
                    )?;
                    Some(raw)
                }
                None => None,
            };
            let size = raw.as_ref().map_or(message.raw_size, |r| r.len() as u64);
            let entry = ExportedMessage {
                id: message.id,
                sha256: message.raw_sha256.to_hex(),
                size,
                received_at: message.envelope.received_at,
                mail_from: message.envelope.mail_from.clone(),
                rcpt_to: message.envelope.rcpt_to.clone(),
                discussion_id: message.discussion_id,
                flags: message.flags,
                tags: message
                    .tags
                    .iter()
                    .filter_map(|t| tag_names.get(t).cloned())
                    .collect(),
            };
            if !first {
                metadata.write_all(b",")?;
            }
            first = false;
            metadata.write_all(b"\n")?;
            serde_json::to_writer(&mut *metadata, &entry)?;
            report.messages += 1;
            report.bytes += size;
            each(&message, raw.as_deref(), &report)?;
        }
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    metadata.write_all(b"\n]}\n")?;
    if let Some(mbox) = mbox {
        mbox.flush()?;
    }
    metadata.flush()?;
    Ok(report)
}

/// A loaded `metadata.json`, indexed for import.
pub struct ExportIndex {
    by_sha: HashMap<RawHash, ExportedMessage>,
    /// The exported user's tags.
    pub tags: Vec<ExportedTag>,
}

impl ExportIndex {
    /// Indexes `metadata` by raw sha256; refuses another format.
    pub fn new(metadata: ExportMetadata) -> Result<Self, String> {
        if metadata.format != EXPORT_FORMAT {
            return Err(format!(
                "metadata format {:?}, expected {EXPORT_FORMAT:?}",
                metadata.format
            ));
        }
        let by_sha = metadata
            .messages
            .into_iter()
            .filter_map(|m| RawHash::from_hex(&m.sha256).map(|h| (h, m)))
            .collect();
        Ok(ExportIndex {
            by_sha,
            tags: metadata.tags,
        })
    }

    /// The exported message `raw` is, and its exact bytes: the mbox adds a newline to a
    /// message that ended without one, which the recorded size and sha256 undo.
    pub fn find(&self, raw: &mut Vec<u8>) -> Option<&ExportedMessage> {
        if let Some(m) = self.by_sha.get(&palisade_store::raw_hash(raw)) {
            return Some(m);
        }
        let trimmed = raw.len().checked_sub(1).filter(|_| raw.ends_with(b"\n"))?;
        let m = self
            .by_sha
            .get(&palisade_store::raw_hash(&raw[..trimmed]))?;
        (m.size == trimmed as u64).then(|| {
            raw.truncate(trimmed);
            m
        })
    }
}
