//! Importing a mailbox file: every message goes through the [`Pipeline`], as if LMTP had
//! delivered it. It is stored idempotently (same bytes, same id), threaded, queued for
//! indexing and scored. A message that cannot be parsed is stored raw anyway and reported.
//! With the `metadata.json` of a Palisade export beside the mbox, flags, tags and envelopes
//! come back too.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use palisade_mbox::{Entry, Message};
use palisade_model::{Envelope, Flags, MAX_TAGS_PER_USER, TagId, User};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::export::ExportIndex;
use crate::{MailboxCopy, Pipeline, PipelineError};

/// Problems listed by name in the report; the rest are only counted.
const MAX_LISTED_PROBLEMS: usize = 100;
/// Attempts for one message while the store is unavailable, before the import stops.
const STORE_ATTEMPTS: u32 = 6;

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Messages found in the mailbox file.
    pub messages: u64,
    /// Messages stored, including those the mailbox already held (same bytes).
    pub stored: u64,
    /// Stored messages that could not be parsed (kept raw, shown as such).
    pub unparsable: u64,
    /// Messages over the size limit, not imported.
    pub too_large: u64,
    /// Bytes of the stored messages.
    pub bytes: u64,
    /// Stored messages found in the export's metadata (flags, tags and envelope restored).
    pub restored: u64,
    /// The first problems, each with where in the file it was.
    pub problems: Vec<ImportProblem>,
}

/// One message that was not imported as it was, and why.
#[derive(Debug, Clone, Serialize)]
pub struct ImportProblem {
    /// Where it was in the mailbox file (mbox line, Maildir file).
    pub origin: String,
    /// What happened.
    pub problem: String,
}

/// Why an import stopped before the end of the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The mailbox file could not be read further.
    #[error("reading the mailbox failed")]
    Read(#[source] std::io::Error),
    /// The export's tags could not be created.
    #[error("creating the exported tags failed")]
    Tags(#[source] palisade_store::StoreError),
    /// The store stayed unavailable; the import can be run again and resumes idempotently.
    #[error("storing a message failed at {origin}")]
    Store {
        /// Where in the file.
        origin: String,
        /// The last error.
        #[source]
        source: PipelineError,
    },
}

/// Messages read ahead of the store: enough to keep it busy, few enough to bound memory.
const READ_AHEAD: usize = 4;

/// Reads `entries` (an mbox or Maildir reader) on a thread of its own, a few messages ahead of
/// [`Pipeline::import_mailbox`], so memory holds at most those few messages whatever the size
/// of the file. The thread ends at its next message once the receiver is dropped.
pub fn read_ahead<I>(
    entries: I,
) -> (
    mpsc::Receiver<std::io::Result<Entry>>,
    std::thread::JoinHandle<()>,
)
where
    I: Iterator<Item = std::io::Result<Entry>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let reader = std::thread::spawn(move || {
        for entry in entries {
            if tx.blocking_send(entry).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

impl ImportReport {
    fn problem(&mut self, origin: String, problem: String) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(ImportProblem { origin, problem });
        }
    }
}

impl Pipeline {
    /// Stores every message `entries` yields into `user`'s mailbox, in order, calling
    /// `progress` after each. When `progress` breaks, the import stops there, between two
    /// messages (never within one, which would leave a message half written), and returns
    /// what it did so far. The receiving address is the user's first one; the date of
    /// arrival is the one the mailbox recorded, or now.
    pub async fn import_mailbox(
        &self,
        user: &User,
        mut entries: mpsc::Receiver<std::io::Result<Entry>>,
        export: Option<&ExportIndex>,
        progress: &mut (dyn FnMut(&ImportReport) -> ControlFlow<()> + Send),
    ) -> Result<ImportReport, ImportError> {
        let rcpt_to = user
            .addresses
            .first()
            .map_or_else(|| user.name.clone(), ToString::to_string);
        let tags = match export {
            Some(export) => self.ensure_tags(user, export).await?,
            None => HashMap::new(),
        };
        let known = export.map(|e| (e, &tags));
        let mut report = ImportReport::default();
        while let Some(entry) = entries.recv().await {
            report.messages += 1;
            match entry.map_err(ImportError::Read)? {
                Entry::TooLarge { origin, size, .. } => {
                    report.too_large += 1;
                    report.problem(origin, format!("{size} bytes: over the size limit"));
                }
                Entry::Message(message) => {
                    self.import_one(user, &rcpt_to, message, known, &mut report)
                        .await?;
                }
            }
            if progress(&report).is_break() {
                break;
            }
        }
        Ok(report)
    }

    /// The export's tags in `user`'s mailbox, by name, created where missing.
    async fn ensure_tags(
        &self,
        user: &User,
        export: &ExportIndex,
    ) -> Result<HashMap<String, TagId>, ImportError> {
        let mut ids: HashMap<String, TagId> = self
            .store
            .list_tags(user.id)
            .await
            .map_err(ImportError::Tags)?
            .into_iter()
            .map(|t| (t.name, t.id))
            .collect();
        for tag in &export.tags {
            if !ids.contains_key(&tag.name) {
                let created = self
                    .store
                    .create_tag(user.id, &tag.name, tag.colour.as_deref(), MAX_TAGS_PER_USER)
                    .await
                    .map_err(ImportError::Tags)?;
                ids.insert(created.name, created.id);
            }
        }
        Ok(ids)
    }

    async fn import_one(
        &self,
        user: &User,
        rcpt_to: &str,
        mut message: Message,
        known: Option<(&ExportIndex, &HashMap<String, TagId>)>,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let exported = known.and_then(|(export, _)| export.find(&mut message.raw).cloned());
        let size = message.raw.len() as u64;
        let parsed = self
            .parse(Bytes::from(message.raw))
            .await
            .map_err(|source| ImportError::Store {
                origin: message.origin.clone(),
                source,
            })?;
        if let Some(error) = &parsed.content.parse_error {
            report.unparsable += 1;
            report.problem(message.origin.clone(), format!("stored raw: {error}"));
        }
        let copy = match &exported {
            Some(m) => MailboxCopy {
                user: user.id,
                envelope: Envelope {
                    mail_from: m.mail_from.clone(),
                    rcpt_to: m.rcpt_to.clone(),
                    received_at: m.received_at,
                },
                flags: m.flags,
            },
            None => MailboxCopy {
                user: user.id,
                envelope: Envelope {
                    mail_from: message.sender,
                    rcpt_to: rcpt_to.to_string(),
                    received_at: message.delivered_at.unwrap_or_else(Utc::now),
                },
                flags: Flags {
                    seen: message.flags.seen,
                    flagged: message.flags.flagged,
                    answered: message.flags.replied,
                    trashed: message.flags.trashed,
                    draft: message.flags.draft,
                    ..Flags::default()
                },
            },
        };
        let tags: Vec<TagId> = match (&exported, known) {
            (Some(m), Some((_, ids))) => {
                m.tags.iter().filter_map(|n| ids.get(n).copied()).collect()
            }
            _ => Vec::new(),
        };
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=STORE_ATTEMPTS {
            match self.store(&parsed, vec![copy.clone()]).await.pop() {
                Some(Ok(id)) => {
                    report.stored += 1;
                    report.bytes += size;
                    if exported.is_some() {
                        report.restored += 1;
                    }
                    if !tags.is_empty() {
                        self.tag_imported(user, id, &tags, &message.origin).await?;
                    }
                    return Ok(());
                }
                Some(Err(e)) if attempt == STORE_ATTEMPTS => {
                    return Err(ImportError::Store {
                        origin: message.origin,
                        source: e,
                    });
                }
                _ => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        Ok(())
    }

    /// Puts the exported tags on a stored copy, then queues it again so search sees them.
    async fn tag_imported(
        &self,
        user: &User,
        id: palisade_model::MessageId,
        tags: &[TagId],
        origin: &str,
    ) -> Result<(), ImportError> {
        let failed = |source: PipelineError| ImportError::Store {
            origin: origin.to_string(),
            source,
        };
        self.store
            .set_message_tags(user.id, id, tags)
            .await
            .map_err(|e| failed(e.into()))?;
        self.requeue(user.id, id).await.map_err(failed)
    }
}
