//! Palisade's domain model.
//!
//! Every type that crosses a crate boundary lives here, so the storage, index, queue and
//! protocol crates agree on one vocabulary. Everything that belongs to a person is keyed by
//! [`UserId`]: there is no way to name a message without also naming its owner.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

mod address;
pub mod autocrypt;
mod contact;
mod privacy;
mod trust;

pub use address::{Address, AddressError, without_addresses};
pub use autocrypt::{AutocryptHeader, AutocryptKey, AutocryptPeer, OwnAutocrypt, PreferEncrypt};
pub use contact::{
    CORRESPONDENT_MESSAGES, ContactHistory, ContactPrivacyFactor, ContactPrivacyFeature,
};
pub use privacy::{
    AuthResults, CryptoKind, HopTls, LONG_KNOWN_DAYS, PrivacyFactor, PrivacyFeature,
    PrivacyFeatures, SocialFacts, SpamVerdict,
};
pub use trust::{Relay, RelayError, TrustBoundary};

/// Namespace for deterministic message ids, so redelivery maps to the same id.
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x7a1d_5c3e_0b2f_4e8a_9d61_2c4f_8e0a_b317);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

id_type!(
    /// Identifies a user (tenant); every stored record is partitioned by it.
    UserId
);
id_type!(
    /// Identifies one message in one user's mailbox.
    MessageId
);
id_type!(
    /// Identifies a discussion (thread) in one user's mailbox.
    DiscussionId
);
id_type!(
    /// Identifies a contact in one user's address book.
    ContactId
);
id_type!(
    /// Identifies a tag; messages refer to tags by id, so renaming touches only the tag.
    TagId
);
id_type!(
    /// Identifies a draft being written.
    DraftId
);
id_type!(
    /// Identifies a file attached to a draft.
    DraftAttachmentId
);

impl ContactId {
    /// A fresh random contact id, for contacts the user creates.
    pub fn new_random() -> Self {
        ContactId(Uuid::new_v4())
    }

    /// The id of a contact learned from `address`, derived so that learning twice (a retried
    /// job, two workers) yields one contact.
    pub fn for_address(user: UserId, address: &Address) -> Self {
        let mut name = user.0.as_bytes().to_vec();
        name.extend_from_slice(address.as_str().as_bytes());
        ContactId(Uuid::new_v5(&MESSAGE_ID_NAMESPACE, &name))
    }
}

impl TagId {
    /// A fresh random tag id.
    pub fn new_random() -> Self {
        TagId(Uuid::new_v4())
    }
}

impl DraftId {
    /// A fresh random draft id.
    pub fn new_random() -> Self {
        DraftId(Uuid::new_v4())
    }
}

impl DraftAttachmentId {
    /// A fresh random attachment id.
    pub fn new_random() -> Self {
        DraftAttachmentId(Uuid::new_v4())
    }
}

impl UserId {
    /// A fresh random user id.
    pub fn new_random() -> Self {
        UserId(Uuid::new_v4())
    }
}

impl MessageId {
    /// The id a raw message gets in a user's mailbox: the same bytes for the same user always
    /// map to the same id, which is what makes redelivery harmless.
    pub fn for_raw(user: UserId, raw_sha256: &RawHash) -> Self {
        let mut name = Vec::with_capacity(16 + 32);
        name.extend_from_slice(user.0.as_bytes());
        name.extend_from_slice(&raw_sha256.0);
        MessageId(Uuid::new_v5(&MESSAGE_ID_NAMESPACE, &name))
    }
}

impl DiscussionId {
    /// The id of a discussion started by `first`, derived so that replaying a delivery
    /// recreates the same discussion.
    pub fn started_by(first: MessageId) -> Self {
        DiscussionId(Uuid::new_v5(&MESSAGE_ID_NAMESPACE, first.0.as_bytes()))
    }

    /// The id of a discussion started for the thread whose root key is `root`, derived so
    /// that the thread's messages, delivered at once on several nodes, each name the same
    /// discussion without asking one another.
    pub fn for_thread(user: UserId, root: &str) -> Self {
        let mut name = b"thread\0".to_vec();
        name.extend_from_slice(user.0.as_bytes());
        name.extend_from_slice(root.as_bytes());
        DiscussionId(Uuid::new_v5(&MESSAGE_ID_NAMESPACE, &name))
    }
}

/// The SHA-256 of a raw message, the key of the raw store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawHash(pub [u8; 32]);

impl RawHash {
    /// Lowercase hex form, as stored and shown.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the lowercase or uppercase hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
        }
        Some(RawHash(out))
    }
}

impl fmt::Debug for RawHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawHash({})", self.to_hex())
    }
}

impl fmt::Display for RawHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for RawHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RawHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RawHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("invalid sha256 hex"))
    }
}

/// A person with a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Tenant key.
    pub id: UserId,
    /// Login and display name, unique.
    pub name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// The addresses that deliver to this user.
    pub addresses: Vec<Address>,
}

/// Maps one mail address to the user who receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The normalized address.
    pub address: Address,
    /// Its owner.
    pub user_id: UserId,
}

/// The SMTP/LMTP envelope of one delivery to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// MAIL FROM, `None` for the null reverse-path (bounces).
    pub mail_from: Option<String>,
    /// The RCPT TO address that reached this user.
    pub rcpt_to: String,
    /// When the delivery was accepted.
    pub received_at: DateTime<Utc>,
}

/// The part a participant plays in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantRole {
    /// Author (`From`).
    From,
    /// Transmitter on behalf of the author (`Sender`).
    Sender,
    /// Where replies should go (`Reply-To`).
    ReplyTo,
    /// Primary recipient.
    To,
    /// Carbon copy.
    Cc,
    /// Blind carbon copy (only ever visible on our own sent copies).
    Bcc,
}

impl ParticipantRole {
    /// The role's name as serialised: `from`, `sender`, `reply_to`, `to`, `cc` or `bcc`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantRole::From => "from",
            ParticipantRole::Sender => "sender",
            ParticipantRole::ReplyTo => "reply_to",
            ParticipantRole::To => "to",
            ParticipantRole::Cc => "cc",
            ParticipantRole::Bcc => "bcc",
        }
    }
}

/// One person named in a message's address headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Which header named them.
    pub role: ParticipantRole,
    /// Display name, decoded.
    pub name: Option<String>,
    /// Address as written; may be missing or malformed in hostile mail.
    pub address: Option<String>,
}

/// Metadata of one attachment or inline part; the bytes stay in the raw message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Position of the part in the parsed message, used to extract it from the raw bytes.
    pub part_index: u32,
    /// Decoded file name, if any.
    pub file_name: Option<String>,
    /// MIME type, for example `image/png`.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
    /// `Content-ID` without angle brackets, for `cid:` references.
    pub content_id: Option<String>,
    /// Whether the part is meant to be shown inline rather than offered for download.
    pub inline: bool,
}

/// Most parts a message's `structure` lists; a message with more keeps the first, in tree order.
pub const MAX_STRUCTURE_PARTS: usize = 500;

/// Longest `content_type`, `disposition`, `file_name` or `charset` kept in a [`MimePart`], in bytes.
pub const MAX_MIME_PART_FIELD_BYTES: usize = 200;

/// One part of a message's MIME tree, as a reader can reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimePart {
    /// mail-parser part id of the top-level message; same numbering as `Attachment::part_index`.
    pub index: u32,
    /// Index of the enclosing multipart, `None` for the root.
    pub parent: Option<u32>,
    /// Nesting depth, root = 0.
    pub depth: u32,
    /// `type/subtype`, lowercased, RFC 2045 defaults applied (same function as attachments).
    pub content_type: String,
    /// Decoded size in bytes (0 for multipart containers).
    pub size: u64,
    /// Content-Disposition token, lowercased (`inline`, `attachment`, ...), when present.
    pub disposition: Option<String>,
    /// File name, when the part has one.
    pub file_name: Option<String>,
    /// Declared charset, when present.
    pub charset: Option<String>,
    /// The part's content is in the text or HTML body shown to the reader.
    pub shown_inline: bool,
    /// The part is listed in `attachments`.
    pub attachment: bool,
}

/// Per-message state the user changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flags {
    /// Has been read.
    pub seen: bool,
    /// Starred.
    pub flagged: bool,
    /// Has been replied to.
    pub answered: bool,
    /// Is a draft.
    pub draft: bool,
    /// Is in the trash.
    pub trashed: bool,
    /// Is our own copy of a message the user sent.
    pub sent: bool,
}

/// A change to a message's user-set flags; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagsPatch {
    /// Read or unread.
    pub seen: Option<bool>,
    /// Starred or not.
    pub flagged: Option<bool>,
    /// In the trash or restored.
    pub trashed: Option<bool>,
    /// Replied to.
    pub answered: Option<bool>,
}

impl Flags {
    /// The flags after `patch`.
    pub fn patched(self, patch: FlagsPatch) -> Flags {
        Flags {
            seen: patch.seen.unwrap_or(self.seen),
            flagged: patch.flagged.unwrap_or(self.flagged),
            trashed: patch.trashed.unwrap_or(self.trashed),
            answered: patch.answered.unwrap_or(self.answered),
            ..self
        }
    }
}

/// The longest text or HTML body a message keeps once parsed, in bytes (about 250 pages of
/// text); the raw message is always kept whole. Every store must accept a message whose
/// bodies are this long, whatever characters they hold.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The most tags one user may have, however they are created (API, import), so the tag list
/// stays small enough to return whole.
pub const MAX_TAGS_PER_USER: usize = 500;

/// Everything the MIME parser learns from a raw message, before it is placed in a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageContent {
    /// `Message-ID` without angle brackets.
    pub message_id_header: Option<String>,
    /// `In-Reply-To` ids without angle brackets.
    pub in_reply_to: Vec<String>,
    /// `References` ids without angle brackets, oldest first.
    pub references: Vec<String>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// Subject with reply/forward prefixes and list tags removed, lowercased; the thread fallback key.
    pub normalized_subject: Option<String>,
    /// `Date` header.
    pub date: Option<DateTime<Utc>>,
    /// Everyone named in the address headers.
    pub participants: Vec<Participant>,
    /// Plain-text body, decoded to UTF-8.
    pub text_body: Option<String>,
    /// HTML body, decoded to UTF-8, unsanitized (sanitizing is the reader's job).
    pub html_body: Option<String>,
    /// Set when a body was longer than the parser keeps and was cut; the raw message is
    /// always complete, so a reader can still download it whole.
    #[serde(default)]
    pub body_truncated: bool,
    /// Attachment and inline-part metadata.
    pub attachments: Vec<Attachment>,
    /// The MIME tree as a flat list in tree order, at most [`MAX_STRUCTURE_PARTS`] parts;
    /// empty for mail parsed before the structure was recorded.
    #[serde(default)]
    pub structure: Vec<MimePart>,
    /// What the headers and structure tell about the message's privacy.
    pub privacy: PrivacyFeatures,
    /// The sender's `Autocrypt:` header, when there is exactly one, it parses, and its
    /// `addr` is the (single) `From` address; whether it is believed is decided by
    /// `privacy.authenticated_sender`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autocrypt: Option<AutocryptHeader>,
    /// Number of header fields at the top level.
    pub header_count: u32,
    /// Set when the message could not be fully parsed; the raw bytes are kept regardless.
    pub parse_error: Option<String>,
}

impl MessageContent {
    /// A short plain-text preview for lists.
    pub fn snippet(&self, max_chars: usize) -> String {
        let source = self.text_body.as_deref().unwrap_or_default();
        let mut out = String::new();
        // Counted as pushed: counting `out` again at every character made this quadratic.
        let mut chars = 0;
        let mut last_space = true;
        for c in source.chars() {
            if chars >= max_chars {
                break;
            }
            if c.is_whitespace() {
                if !last_space {
                    out.push(' ');
                    chars += 1;
                }
                last_space = true;
            } else {
                out.push(c);
                chars += 1;
                last_space = false;
            }
        }
        out.trim_end().to_string()
    }

    /// The first `From` participant, if any.
    pub fn from(&self) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|p| p.role == ParticipantRole::From)
    }

    /// Every id this message refers to, for threading.
    pub fn thread_references(&self) -> impl Iterator<Item = &str> {
        self.in_reply_to
            .iter()
            .chain(self.references.iter())
            .map(String::as_str)
    }
}

/// One message in one user's mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Deterministic id, see [`MessageId::for_raw`].
    pub id: MessageId,
    /// Owner.
    pub user_id: UserId,
    /// Thread it belongs to.
    pub discussion_id: DiscussionId,
    /// Key of the raw bytes.
    pub raw_sha256: RawHash,
    /// Size of the raw bytes.
    pub raw_size: u64,
    /// How it reached us.
    pub envelope: Envelope,
    /// What parsing found.
    pub content: MessageContent,
    /// User-set state.
    pub flags: Flags,
    /// Tags assigned; ids of deleted tags may linger and are ignored by readers.
    pub tags: Vec<TagId>,
}

/// A compact view of a message, for lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSummary {
    /// Message id.
    pub id: MessageId,
    /// Thread.
    pub discussion_id: DiscussionId,
    /// `Date` header, or the reception time when it is missing.
    pub date: DateTime<Utc>,
    /// When Palisade accepted it; lists are ordered by this, since `Date` is sender-chosen
    /// and spam dated years ahead would otherwise stay on top forever.
    pub received_at: DateTime<Utc>,
    /// First `From` participant.
    pub from: Option<Participant>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// User-set state.
    pub flags: Flags,
    /// Whether parsing failed.
    pub parse_error: bool,
    /// Raw size in bytes.
    pub raw_size: u64,
}

impl From<&Message> for MessageSummary {
    fn from(m: &Message) -> Self {
        MessageSummary {
            id: m.id,
            discussion_id: m.discussion_id,
            date: m.content.date.unwrap_or(m.envelope.received_at),
            received_at: m.envelope.received_at,
            from: m.content.from().cloned(),
            subject: m.content.subject.clone(),
            flags: m.flags,
            parse_error: m.content.parse_error.is_some(),
            raw_size: m.raw_size,
        }
    }
}

/// A thread of messages in one user's mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discussion {
    /// Thread id.
    pub id: DiscussionId,
    /// Owner.
    pub user_id: UserId,
    /// Subject of the message that started it.
    pub subject: Option<String>,
    /// Date of the newest message.
    pub last_activity: DateTime<Utc>,
    /// How many messages it holds.
    pub message_count: u32,
    /// How many of those are unread.
    pub unread_count: u32,
    /// Preview of the newest message.
    pub snippet: String,
    /// Distinct people named in its messages (authors first), at most [`DISCUSSION_PARTICIPANTS`].
    pub participants: Vec<Participant>,
    /// Privacy features of the newest message.
    pub privacy: PrivacyFeatures,
    /// How many of its messages are in the trash.
    #[serde(default)]
    pub trashed_count: u32,
    /// How many of those are unread.
    #[serde(default)]
    pub trashed_unread_count: u32,
    /// The tags carried by any of its messages, each once.
    #[serde(default)]
    pub tags: Vec<TagId>,
}

/// Most participants a discussion keeps for display.
pub const DISCUSSION_PARTICIPANTS: usize = 10;

/// Adds `incoming` people to a discussion's participant list: distinct by address (or name when
/// the address is missing), existing order kept, capped at [`DISCUSSION_PARTICIPANTS`].
pub fn merge_participants(existing: &mut Vec<Participant>, incoming: &[Participant]) {
    let key = |p: &Participant| {
        p.address
            .as_deref()
            .map(str::to_lowercase)
            .or_else(|| p.name.clone())
    };
    for p in incoming {
        if existing.len() >= DISCUSSION_PARTICIPANTS {
            break;
        }
        if !matches!(
            p.role,
            ParticipantRole::From | ParticipantRole::To | ParticipantRole::Cc
        ) {
            continue;
        }
        let k = key(p);
        if k.is_some() && !existing.iter().any(|e| key(e) == k) {
            existing.push(p.clone());
        }
    }
}

/// Someone the user corresponds with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Contact id.
    pub id: ContactId,
    /// Owner.
    pub user_id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// Known addresses.
    pub addresses: Vec<Address>,
    /// ASCII-armored public keys.
    pub public_keys: Vec<String>,
    /// Their record as a sender.
    #[serde(default)]
    pub history: ContactHistory,
    /// Their key as Autocrypt taught it, when their authenticated mail carried one.
    #[serde(default)]
    pub autocrypt: Option<AutocryptPeer>,
}

/// A user-defined label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Tag id, what messages refer to.
    pub id: TagId,
    /// Owner.
    pub user_id: UserId,
    /// Unique name within the user.
    pub name: String,
    /// Colour the client shows it in, `#rrggbb`; `None` leaves the choice to the client.
    #[serde(default)]
    pub colour: Option<String>,
}

/// A message being written; becomes a real message only when sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// Draft id.
    pub id: DraftId,
    /// Owner.
    pub user_id: UserId,
    /// Sender, one of the owner's addresses; `None` means their first address.
    pub from: Option<Address>,
    /// Primary recipients.
    pub to: Vec<Address>,
    /// Carbon-copy recipients.
    pub cc: Vec<Address>,
    /// Blind carbon-copy recipients.
    pub bcc: Vec<Address>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The message this answers; sets In-Reply-To and References when sent.
    pub in_reply_to: Option<MessageId>,
    /// The message this forwards; attached when sent.
    pub forward_of: Option<MessageId>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A file uploaded to a draft, sent as an attachment with it; its bytes are stored apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftAttachment {
    /// Attachment id.
    pub id: DraftAttachmentId,
    /// Owner.
    pub user_id: UserId,
    /// The draft it belongs to.
    pub draft_id: DraftId,
    /// File name, a base name without path or control characters.
    pub file_name: String,
    /// MIME type, `type/subtype`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time; attachments are listed and sent in upload order.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_deterministic_and_user_scoped() {
        let hash = RawHash([7; 32]);
        let a = UserId(Uuid::from_u128(1));
        let b = UserId(Uuid::from_u128(2));
        assert_eq!(MessageId::for_raw(a, &hash), MessageId::for_raw(a, &hash));
        assert_ne!(MessageId::for_raw(a, &hash), MessageId::for_raw(b, &hash));
    }

    #[test]
    fn raw_hash_hex_round_trips() {
        let hash = RawHash([0xab; 32]);
        assert_eq!(RawHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(RawHash::from_hex("zz"), None);
    }

    #[test]
    fn a_role_is_named_as_serde_names_it() {
        use ParticipantRole::*;
        for role in [From, Sender, ReplyTo, To, Cc, Bcc] {
            assert_eq!(
                serde_json::to_value(role).ok(),
                Some(serde_json::Value::from(role.as_str()))
            );
        }
    }

    #[test]
    fn snippet_collapses_whitespace_and_truncates() {
        let content = MessageContent {
            text_body: Some("Hello\n\n  world, this is long".into()),
            ..Default::default()
        };
        assert_eq!(content.snippet(12), "Hello world,");
    }
}
