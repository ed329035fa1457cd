//! Re-reading stored mail after a parser change: each message's raw bytes are parsed again
//! by the pipeline (the same parser and limits as delivery), and where the result differs
//! from what is stored, the stored content and every view derived from it are replaced
//! ([`Mailbox::replace_content`]) and the message is queued for reindexing, as a delivery
//! queues it.
//!
//! Raw bytes never change. Threading does not either: re-threading could move mail between
//! discussions under the user's eyes, so each message stays in the discussion it was
//! delivered into. Running it again finds nothing to change, so an interrupted run is simply
//! run again. A mailbox is walked a page of summaries at a time and one message is held at
//! once, so memory does not grow with the mailbox.

use crate::pipeline::{Pipeline, PipelineError};
use bytes::Bytes;
use palisade_model::{MessageContent, UserId};
use palisade_store::{Mailbox, Page, StoreError};
use serde::Serialize;

/// Summaries read per page of a mailbox walk.
const WALK_PAGE: usize = 200;

/// Counts over the messages whose raw bytes were read, so an operator sees what a new
/// parser found that the old one did not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ContentTotals {
    /// Messages flagged as not fully parsed.
    pub parse_errors: u64,
    /// Messages with an HTML body.
    pub with_html_body: u64,
    /// Attachments listed, over all messages.
    pub attachments: u64,
    /// Messages with a date.
    pub with_date: u64,
    /// Messages with a subject.
    pub with_subject: u64,
}

impl ContentTotals {
    fn add(&mut self, c: &MessageContent) {
        self.parse_errors += u64::from(c.parse_error.is_some());
        self.with_html_body += u64::from(c.html_body.is_some());
        self.attachments += c.attachments.len() as u64;
        self.with_date += u64::from(c.date.is_some());
        self.with_subject += u64::from(c.subject.is_some());
    }
}

/// How many changed messages changed in each part of their content; one message may count
/// in several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FieldChanges {
    /// The subject.
    pub subject: u64,
    /// Senders and recipients.
    pub participants: u64,
    /// The date.
    pub date: u64,
    /// The plain-text body.
    pub text_body: u64,
    /// The HTML body.
    pub html_body: u64,
    /// The attachments listed.
    pub attachments: u64,
    /// The privacy features.
    pub privacy: u64,
    /// Anything else (threading headers, parse error, header count, fields added later).
    pub other: u64,
}

impl FieldChanges {
    fn add(&mut self, old: &MessageContent, new: &MessageContent) {
        self.subject += u64::from(old.subject != new.subject);
        self.participants += u64::from(old.participants != new.participants);
        self.date += u64::from(old.date != new.date);
        self.text_body += u64::from(old.text_body != new.text_body);
        self.html_body += u64::from(old.html_body != new.html_body);
        self.attachments += u64::from(old.attachments != new.attachments);
        self.privacy += u64::from(old.privacy != new.privacy);
        // Whatever differs once the fields counted above are made equal.
        let rest = MessageContent {
            subject: new.subject.clone(),
            participants: new.participants.clone(),
            date: new.date,
            text_body: new.text_body.clone(),
            html_body: new.html_body.clone(),
            attachments: new.attachments.clone(),
            privacy: new.privacy.clone(),
            ..old.clone()
        };
        self.other += u64::from(rest != *new);
    }
}

/// What a reparse did, over every mailbox it walked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReparseReport {
    /// Mailboxes walked.
    pub users: u64,
    /// Messages found.
    pub messages: u64,
    /// Messages whose stored content was replaced (and queued for reindexing).
    pub changed: u64,
    /// Messages whose stored content already matched the parser's.
    pub unchanged: u64,
    /// Messages whose raw bytes are missing or incomplete; skipped and left as they are.
    pub missing_raw: u64,
    /// Messages whose stored record does not decode; skipped and left as they are.
    pub unreadable: u64,
    /// Messages deleted while the walk ran; skipped.
    pub vanished: u64,
    /// Totals of the stored contents before the run, over messages with raw bytes.
    pub before: ContentTotals,
    /// The same totals after the run.
    pub after: ContentTotals,
    /// Which parts of the changed messages changed.
    pub fields_changed: FieldChanges,
}

/// Why a reparse stopped. Every cause is temporary, and running it again is safe.
#[derive(Debug, thiserror::Error)]
pub enum ReparseError {
    /// The store could not be read or written.
    #[error("storage failed during reparse")]
    Store(#[from] StoreError),
    /// Parsing or queueing the reindex failed.
    #[error("reparsing a message failed")]
    Pipeline(#[from] PipelineError),
}

/// What the walk reports as it goes, for progress lines.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The mailbox being walked.
    pub user: UserId,
    /// Set once the mailbox is finished.
    pub user_done: bool,
    /// Everything so far.
    pub report: &'a ReparseReport,
}

impl Pipeline {
    /// Re-parses every message of `user`'s mailbox from its raw bytes, replacing stored
    /// contents that differ and queueing those messages for reindexing; adds to `report`.
    /// `progress` is called every `every` messages and once the mailbox is done.
    pub async fn reparse_mailbox(
        &self,
        user: UserId,
        report: &mut ReparseReport,
        every: u64,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<(), ReparseError> {
        let store = self.mailbox();
        report.users += 1;
        let mut after = None;
        loop {
            let page = store
                .list_messages(
                    user,
                    Page {
                        after: after.take(),
                        limit: WALK_PAGE,
                    },
                )
                .await?;
            for summary in &page.items {
                self.reparse_one(store.as_ref(), user, summary.id, report)
                    .await?;
                if every > 0 && report.messages.is_multiple_of(every) {
                    progress(Progress {
                        user,
                        user_done: false,
                        report,
                    });
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        progress(Progress {
            user,
            user_done: true,
            report,
        });
        Ok(())
    }

    async fn reparse_one(
        &self,
        store: &dyn Mailbox,
        user: UserId,
        id: palisade_model::MessageId,
        report: &mut ReparseReport,
    ) -> Result<(), ReparseError> {
        let message = match store.get_message(user, id).await {
            Ok(Some(message)) => message,
            Ok(None) => {
                report.vanished += 1;
                return Ok(());
            }
            Err(StoreError::Corrupt(e)) => {
                tracing::warn!(user = %user, message = %id, error = %e, "stored message unreadable; not reparsed");
                report.unreadable += 1;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        report.messages += 1;
        let raw = match store.get_raw(user, id).await {
            Ok(Some(raw)) => raw,
            // Gone since the message was read: deleted meanwhile.
            Ok(None) if store.get_message(user, id).await?.is_none() => {
                report.messages -= 1;
                report.vanished += 1;
                return Ok(());
            }
            // Chunks lost by a replica: nothing to parse, and nothing to change.
            Ok(None) | Err(StoreError::Corrupt(_)) => {
                tracing::warn!(user = %user, message = %id, "raw bytes missing; not reparsed");
                report.missing_raw += 1;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let parsed = self.parse(Bytes::from(raw)).await?;
        let old = &message.content;
        let new = parsed.content.as_ref();
        report.before.add(old);
        report.after.add(new);
        if old == new {
            report.unchanged += 1;
            return Ok(());
        }
        if !store.replace_content(user, id, new).await? {
            // Deleted between reading and writing: nothing to show or index.
            report.vanished += 1;
            return Ok(());
        }
        report.fields_changed.add(old, new);
        report.changed += 1;
        self.requeue(user, id).await?;
        Ok(())
    }
}
