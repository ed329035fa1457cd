//! Palisade's full-text search index.
//!
//! [`SearchIndex`] is the backend-neutral contract: documents are always owned by one
//! [`UserId`], every search is scoped to one user, and results come newest first. The
//! embedded backend lives in [`tantivy`], the distributed one in [`elasticsearch`]; both
//! analyze text with the one analyzer of `analysis`. The `contract` module (feature
//! `contract`, for test builds) holds the behaviour suite every backend must pass.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use palisade_model::{DiscussionId, Message, MessageId, Participant, ParticipantRole, UserId};

mod analysis;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod elasticsearch;
mod limits;
pub mod metered;
pub mod tantivy;

/// The embedded backend under its earlier path, which the daemon and the worker's tests use.
pub mod tantivy_backend {
    pub use crate::tantivy::TantivyIndex;
}

/// The searchable projection of one message in one user's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDocument {
    /// Owner; every search is scoped to it.
    pub user_id: UserId,
    /// The message this document describes; unique per user.
    pub message_id: MessageId,
    /// The thread the message belongs to, returned with hits.
    pub discussion_id: DiscussionId,
    /// Sort and range key: the `Date` header, or the reception time when it is missing.
    pub date: DateTime<Utc>,
    /// Authors, each as `Name <addr>` (or just the address or name when one is missing).
    pub from: Vec<String>,
    /// Recipients (To, Cc and Bcc), formatted like `from`.
    pub to: Vec<String>,
    /// Decoded subject, empty when missing.
    pub subject: String,
    /// Plain-text body, or the HTML body with its markup stripped.
    pub body: String,
    /// Whether the message carries at least one non-inline attachment.
    pub has_attachment: bool,
    /// Tag ids (as text), matched exactly.
    pub tags: Vec<String>,
}

impl IndexDocument {
    /// Builds the searchable projection of a stored message.
    pub fn from_message(m: &Message) -> Self {
        let content = &m.content;
        let people = |roles: &[ParticipantRole]| -> Vec<String> {
            content
                .participants
                .iter()
                .filter(|p| roles.contains(&p.role))
                .filter_map(format_participant)
                .collect()
        };
        let body = match content.text_body.as_deref() {
            Some(text) if !text.trim().is_empty() => text.to_string(),
            _ => content
                .html_body
                .as_deref()
                .map(strip_html)
                .unwrap_or_default(),
        };
        IndexDocument {
            user_id: m.user_id,
            message_id: m.id,
            discussion_id: m.discussion_id,
            date: content.date.unwrap_or(m.envelope.received_at),
            from: people(&[ParticipantRole::From]),
            to: people(&[
                ParticipantRole::To,
                ParticipantRole::Cc,
                ParticipantRole::Bcc,
            ]),
            subject: content.subject.clone().unwrap_or_default(),
            body,
            has_attachment: content.attachments.iter().any(|a| !a.inline),
            tags: m.tags.iter().map(ToString::to_string).collect(),
        }
    }
}

/// What to look for; every criterion that is present must match (logical AND).
///
/// Blank strings count as absent. The default query matches all of the user's documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Free text matched against subject, body, senders and recipients; all words must match.
    pub text: Option<String>,
    /// Matches senders containing these words in order, e.g. `alice` or `alice@example.test`.
    pub from: Option<String>,
    /// Matches recipients (To, Cc, Bcc) the same way as `from`.
    pub to: Option<String>,
    /// Matches subjects containing all these words.
    pub subject: Option<String>,
    /// Inclusive lower bound on the document date.
    pub after: Option<DateTime<Utc>>,
    /// Exclusive upper bound on the document date.
    pub before: Option<DateTime<Utc>>,
    /// Restricts to messages with (`true`) or without (`false`) attachments.
    pub has_attachment: Option<bool>,
    /// Restricts to messages carrying exactly this tag id (as text).
    pub tag: Option<String>,
}

/// One search result: enough to fetch the message and its thread from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchHit {
    /// The matching message.
    pub message_id: MessageId,
    /// Its thread.
    pub discussion_id: DiscussionId,
    /// Its indexed date, the sort key.
    pub date: DateTime<Utc>,
}

impl SearchHit {
    /// The hit for ids and a date that a backend stored; ids that no longer parse, or a date
    /// out of range (`None`), mean the index is damaged.
    pub(crate) fn from_stored(
        message_id: &str,
        discussion_id: &str,
        date: Option<DateTime<Utc>>,
    ) -> Result<Self, IndexError> {
        Ok(SearchHit {
            message_id: message_id
                .parse::<MessageId>()
                .map_err(|e| unavailable("stored message id", e))?,
            discussion_id: discussion_id
                .parse::<DiscussionId>()
                .map_err(|e| unavailable("stored discussion id", e))?,
            date: date.ok_or_else(|| IndexError::Unavailable("stored date out of range".into()))?,
        })
    }
}

/// Why an index operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The backend failed or is unreachable; retrying later may succeed.
    #[error("search index unavailable: {0}")]
    Unavailable(String),
    /// The query cannot be run as written (too long, too deeply nested, malformed).
    #[error("invalid search query: {0}")]
    InvalidQuery(String),
    /// A write was attempted through an instance opened read-only.
    #[error("search index is opened read-only")]
    ReadOnly,
    /// The backend refused documents permanently; retrying the same batch fails the same way.
    #[error("search index rejected documents: {0}")]
    Rejected(String),
}

/// A backend failure, with what was being done when it happened.
pub(crate) fn unavailable(context: &str, e: impl fmt::Display) -> IndexError {
    IndexError::Unavailable(format!("{context}: {e}"))
}

/// A per-user full-text index of messages; implemented by each search backend.
#[async_trait::async_trait]
pub trait SearchIndex: Send + Sync {
    /// Adds or replaces documents; idempotent by (user, message id); durable and searchable when it returns Ok.
    async fn index(&self, docs: Vec<IndexDocument>) -> Result<(), IndexError>;

    /// Newest first, at most `limit` hits, only ever the given user's documents.
    async fn search(
        &self,
        user: UserId,
        query: &SearchQuery,
        limit: usize,
    ) -> Result<Vec<SearchHit>, IndexError>;

    /// Removes one message of one user; removing an absent message is not an error.
    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<(), IndexError>;

    /// Removes every document of one user.
    async fn delete_user(&self, user: UserId) -> Result<(), IndexError>;

    /// Number of documents the user has in the index (used by tests and the freshness watermark).
    async fn count(&self, user: UserId) -> Result<u64, IndexError>;

    /// How long a writer that has caught up should let new documents gather before its next
    /// [`index`](Self::index) call. Zero where a call costs about the same whatever its size.
    fn gather(&self) -> Duration {
        Duration::ZERO
    }
}

/// `Name <addr>`, or whichever half is present; `None` when both are blank.
fn format_participant(p: &Participant) -> Option<String> {
    let name = p.name.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let address = p
        .address
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match (name, address) {
        (Some(n), Some(a)) => Some(format!("{n} <{a}>")),
        (None, Some(a)) => Some(a.to_string()),
        (Some(n), None) => Some(n.to_string()),
        (None, None) => None,
    }
}

/// Crude HTML to text: drops tags, comments, scripts and styles, decodes common entities.
///
/// Only used to feed the tokenizer, so it errs on the side of simplicity.
fn strip_html(html: &str) -> String {
    // ASCII lowercasing keeps byte offsets identical, so indices are shared with `html`.
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with('<') {
            let skip_to = if rest.starts_with("<!--") {
                rest.find("-->").map(|end| end + 3)
            } else if let Some(block) = ["script", "style"]
                .into_iter()
                .find(|tag| rest[1..].starts_with(tag))
            {
                let closing = format!("</{block}");
                rest.find(&closing)
                    .and_then(|start| rest[start..].find('>').map(|end| start + end + 1))
            } else {
                rest.find('>').map(|end| end + 1)
            };
            match skip_to {
                Some(len) => i += len,
                None => break,
            }
            out.push(' ');
        } else {
            let next = rest.find('<').map_or(html.len(), |p| i + p);
            decode_entities(&html[i..next], &mut out);
            i = next;
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Appends `text` to `out`, decoding the handful of entities common in mail.
fn decode_entities(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use palisade_model::{Attachment, Envelope, Flags, MessageContent, RawHash, TagId};

    fn participant(role: ParticipantRole, name: Option<&str>, addr: Option<&str>) -> Participant {
        Participant {
            role,
            name: name.map(Into::into),
            address: addr.map(Into::into),
        }
    }

    fn message(content: MessageContent) -> Message {
        let user = UserId::new_random();
        let id = MessageId::for_raw(user, &RawHash([1; 32]));
        Message {
            id,
            user_id: user,
            discussion_id: DiscussionId::started_by(id),
            raw_sha256: RawHash([1; 32]),
            raw_size: 10,
            envelope: Envelope {
                mail_from: None,
                rcpt_to: "me@example.test".into(),
                received_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
            },
            content,
            flags: Flags::default(),
            tags: vec![TagId(uuid::Uuid::from_u128(7))],
        }
    }

    #[test]
    fn from_message_projects_fields() {
        let date = Utc.with_ymd_and_hms(2024, 4, 1, 8, 0, 0).unwrap();
        let m = message(MessageContent {
            subject: Some("Hello".into()),
            date: Some(date),
            participants: vec![
                participant(
                    ParticipantRole::From,
                    Some("Alice"),
                    Some("alice@example.test"),
                ),
                participant(ParticipantRole::ReplyTo, None, Some("noreply@example.test")),
                participant(ParticipantRole::To, None, Some("bob@example.test")),
                participant(ParticipantRole::Cc, Some("Carol"), None),
                participant(ParticipantRole::Bcc, Some(" "), Some("dave@example.test")),
                participant(ParticipantRole::To, None, None),
            ],
            text_body: Some("plain body".into()),
            html_body: Some("<p>html body</p>".into()),
            attachments: vec![Attachment {
                part_index: 2,
                file_name: Some("a.pdf".into()),
                content_type: "application/pdf".into(),
                size: 3,
                content_id: None,
                inline: false,
            }],
            ..Default::default()
        });
        let doc = IndexDocument::from_message(&m);
        assert_eq!(doc.user_id, m.user_id);
        assert_eq!(doc.message_id, m.id);
        assert_eq!(doc.discussion_id, m.discussion_id);
        assert_eq!(doc.date, date);
        assert_eq!(doc.from, vec!["Alice <alice@example.test>"]);
        assert_eq!(
            doc.to,
            vec!["bob@example.test", "Carol", "dave@example.test"]
        );
        assert_eq!(doc.subject, "Hello");
        assert_eq!(doc.body, "plain body");
        assert!(doc.has_attachment);
        assert_eq!(doc.tags, vec![TagId(uuid::Uuid::from_u128(7)).to_string()]);
    }

    #[test]
    fn from_message_falls_back_to_html_and_reception_time() {
        let m = message(MessageContent {
            text_body: Some("  \n".into()),
            html_body: Some(
                "<html><head><style>p { color: red }</style><script>var x = '<b>';</script></head>\
                 <body><!-- hidden --><p>Fish &amp; chips&nbsp;at&#32;caf&#xE9;</p><br/>done</body></html>"
                    .into(),
            ),
            attachments: vec![Attachment {
                part_index: 1,
                file_name: None,
                content_type: "image/png".into(),
                size: 3,
                content_id: Some("logo".into()),
                inline: true,
            }],
            ..Default::default()
        });
        let doc = IndexDocument::from_message(&m);
        assert_eq!(doc.body, "Fish & chips at café done");
        assert_eq!(doc.date, m.envelope.received_at);
        assert_eq!(doc.subject, "");
        assert!(!doc.has_attachment);
    }

    #[test]
    fn strip_html_survives_garbage() {
        assert_eq!(strip_html("a < b"), "a");
        assert_eq!(strip_html("<script>never closed"), "");
        assert_eq!(
            strip_html("x &bogus; &#xFFFFFFFF; &"),
            "x &bogus; &#xFFFFFFFF; &"
        );
        assert_eq!(strip_html("é<b>ü</b>ß"), "é ü ß");
    }
}
