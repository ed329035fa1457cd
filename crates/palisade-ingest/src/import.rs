//! Importing a mailbox file: every message goes through the [`Pipeline`], as if LMTP had
//! delivered it. It is stored idempotently (same bytes, same id), threaded, queued for
//! indexing and scored. A message that cannot be parsed is stored raw anyway and reported.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use palisade_mbox::{Entry, Message};
use palisade_model::{Envelope, Flags, User};
use serde::Serialize;
use tokio::sync::mpsc;

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

impl ImportReport {
    fn problem(&mut self, origin: String, problem: String) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(ImportProblem { origin, problem });
        }
    }
}

impl Pipeline {
    /// Stores every message `entries` yields into `user`'s mailbox, in order, calling
    /// `progress` after each. The receiving address is the user's first one; the date of
    /// arrival is the one the mailbox recorded, or now.
    pub async fn import_mailbox(
        &self,
        user: &User,
        mut entries: mpsc::Receiver<std::io::Result<Entry>>,
        progress: &mut (dyn FnMut(&ImportReport) + Send),
    ) -> Result<ImportReport, ImportError> {
        let rcpt_to = user
            .addresses
            .first()
            .map_or_else(|| user.name.clone(), ToString::to_string);
        let mut report = ImportReport::default();
        while let Some(entry) = entries.recv().await {
            report.messages += 1;
            match entry.map_err(ImportError::Read)? {
                Entry::TooLarge { origin, size, .. } => {
                    report.too_large += 1;
                    report.problem(origin, format!("{size} bytes: over the size limit"));
                }
                Entry::Message(message) => {
                    self.import_one(user, &rcpt_to, message, &mut report)
                        .await?;
                }
            }
            progress(&report);
        }
        Ok(report)
    }

    async fn import_one(
        &self,
        user: &User,
        rcpt_to: &str,
        message: Message,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
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
        let copy = MailboxCopy {
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
        };
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=STORE_ATTEMPTS {
            match self.store(&parsed, vec![copy.clone()]).await.pop() {
                Some(Ok(_)) => {
                    report.stored += 1;
                    report.bytes += size;
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
}
