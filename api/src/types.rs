//! The API's wire types: what the OpenAPI document describes and the web client sees.
//!
//! They are separate from the domain model on purpose: the model can change shape without
//! breaking clients, and nothing internal (raw hashes, envelope details) leaks by accident.

use chrono::{DateTime, Utc};
use palisade_model::{
    AutocryptPeer, Contact, ContactPrivacyFeature, Discussion, Draft, DraftAttachment, Flags,
    Message, MessageSummary, MimePart, OwnAutocrypt, Participant, PreferEncrypt, PrivacyFeature,
    PrivacyFeatures, SocialFacts, Tag, TagId, User,
};
use poem_openapi::{Enum, Object};
use std::collections::HashMap;
use uuid::Uuid;

/// The signed-in user.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Me {
    /// User id.
    pub id: Uuid,
    /// Login name.
    pub name: String,
    /// Addresses that deliver to this user and that they may send as.
    pub addresses: Vec<String>,
}

impl From<&User> for Me {
    fn from(u: &User) -> Self {
        Me {
            id: u.id.0,
            name: u.name.clone(),
            addresses: u.addresses.iter().map(ToString::to_string).collect(),
        }
    }
}

/// One address the user receives at and may send from.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct IdentityView {
    /// The address.
    pub address: String,
    /// Whether it is used when a draft names no sender.
    pub default: bool,
}

/// A new session.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LoginResult {
    /// Bearer token; shown once, stored only as a hash.
    pub token: String,
    /// The session's id, for listing and revoking.
    pub session_id: String,
    /// When the session expires unless used.
    pub expires_at: DateTime<Utc>,
}

/// One signed-in device.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last request seen.
    pub last_seen_at: DateTime<Utc>,
    /// Client address at login, as the proxy reported it.
    pub client_address: String,
    /// User agent at login, truncated.
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

/// Someone named in a message.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ParticipantView {
    /// `from`, `sender`, `reply_to`, `to`, `cc` or `bcc`.
    pub role: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl From<&Participant> for ParticipantView {
    fn from(p: &Participant) -> Self {
        ParticipantView {
            role: p.role.as_str().to_string(),
            name: p.name.clone(),
            address: p.address.clone(),
        }
    }
}

/// What is known about a message's privacy.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PrivacyView {
    /// 0 (unprotected) to 100 (encrypted end to end, over TLS, authenticated).
    pub privacy_index: u8,
    /// Every hop our own relays recorded used TLS.
    pub transport_tls: bool,
    /// Hops our own relays recorded in `Received` headers (the sender's are not counted).
    pub hops: u32,
    /// SPF result, if our own MTA recorded one (under the configured authserv-id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spf: Option<String>,
    /// DKIM result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dkim: Option<String>,
    /// DMARC result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dmarc: Option<String>,
    /// End-to-end encrypted (PGP or S/MIME).
    pub encrypted: bool,
    /// Signed (PGP or S/MIME).
    pub signed: bool,
    /// Carries an Autocrypt header.
    pub autocrypt: bool,
    /// Mailing list id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_id: Option<String>,
    /// Upstream filter marked it as spam.
    pub spam: bool,
    /// More than one `From` field, or one `From` naming several mailboxes: who wrote the
    /// message is ambiguous, a spoofing sign. Every `From` mailbox is among the participants.
    pub multiple_from: bool,
    /// Headers that would have counted but were written outside our own hosts (another
    /// authserv-id, hops below the one where the mail entered, spam headers on mail that
    /// never passed our relays), so were ignored.
    pub untrusted_headers: u32,
    /// Our own MTA authenticated the `From` address (DMARC, or DKIM aligned with it): only
    /// then do the social rules and the sender's Autocrypt header count.
    pub sender_authenticated: bool,
    /// Every feature that raised or lowered `privacy_index`, which is their sum held within
    /// 0 to 100; features that did not count are left out.
    pub factors: Vec<PrivacyFactorView>,
}

/// A feature of a message that counts in its privacy index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PrivacyFeatureView {
    /// Every recorded hop used TLS.
    TransportTls,
    /// The receiving relay verified a DKIM signature.
    DkimPass,
    /// A DKIM signature is present but was not verified as passing.
    DkimSignature,
    /// SPF passed.
    SpfPass,
    /// DMARC passed.
    DmarcPass,
    /// End-to-end encrypted (PGP or S/MIME).
    Encrypted,
    /// Signed (PGP or S/MIME).
    Signed,
    /// The upstream filter marked it as spam.
    Spam,
    /// The authenticated sender was in the address book before the message arrived.
    KnownContact,
    /// ... for at least 30 days.
    LongKnownContact,
    /// The authenticated sender's contact has a public key.
    ContactKey,
}

impl From<PrivacyFeature> for PrivacyFeatureView {
    fn from(f: PrivacyFeature) -> Self {
        match f {
            PrivacyFeature::TransportTls => PrivacyFeatureView::TransportTls,
            PrivacyFeature::DkimPass => PrivacyFeatureView::DkimPass,
            PrivacyFeature::DkimSignature => PrivacyFeatureView::DkimSignature,
            PrivacyFeature::SpfPass => PrivacyFeatureView::SpfPass,
            PrivacyFeature::DmarcPass => PrivacyFeatureView::DmarcPass,
            PrivacyFeature::Encrypted => PrivacyFeatureView::Encrypted,
            PrivacyFeature::Signed => PrivacyFeatureView::Signed,
            PrivacyFeature::Spam => PrivacyFeatureView::Spam,
            PrivacyFeature::KnownContact => PrivacyFeatureView::KnownContact,
            PrivacyFeature::LongKnownContact => PrivacyFeatureView::LongKnownContact,
            PrivacyFeature::ContactKey => PrivacyFeatureView::ContactKey,
        }
    }
}

/// One feature's contribution to the privacy index.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct PrivacyFactorView {
    /// What was found.
    pub feature: PrivacyFeatureView,
    /// Points it added (positive) or took away (negative).
    pub points: i32,
}

impl From<&PrivacyFeatures> for PrivacyView {
    /// The structural rules alone; [`PrivacyView::with_social`] adds the address book's.
    fn from(p: &PrivacyFeatures) -> Self {
        PrivacyView::with_social(p, &SocialFacts::default())
    }
}

impl PrivacyView {
    /// The privacy of a message with `p`, given what the address book says of its sender.
    pub fn with_social(p: &PrivacyFeatures, social: &SocialFacts) -> Self {
        let auth = p.auth_results.clone().unwrap_or_default();
        PrivacyView {
            privacy_index: p.privacy_index_with(social),
            transport_tls: p.all_hops_tls(),
            hops: u32::try_from(p.transport.len()).unwrap_or(u32::MAX),
            spf: auth.spf,
            dkim: auth.dkim,
            dmarc: auth.dmarc,
            encrypted: p.encrypted(),
            signed: p.signed(),
            autocrypt: p.autocrypt,
            list_id: p.list_id.clone(),
            spam: p.spam.is_spam == Some(true),
            multiple_from: p.multiple_from,
            untrusted_headers: p.untrusted_headers,
            sender_authenticated: p.authenticated_sender.is_some(),
            factors: p
                .privacy_factors_with(social)
                .into_iter()
                .map(|f| PrivacyFactorView {
                    feature: f.feature.into(),
                    points: f.points,
                })
                .collect(),
        }
    }
}

/// A discussion in the list.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct DiscussionView {
    /// Discussion id.
    pub id: Uuid,
    /// Subject of the first message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Newest activity.
    #[serde(serialize_with = "crate::serde_payload::rfc3339")]
    pub last_activity: DateTime<Utc>,
    /// Messages in it, in the folder listed (`inbox` when not listing): those outside the
    /// trash in the inbox, those in it in the trash.
    pub message_count: u32,
    /// Unread messages among those.
    pub unread_count: u32,
    /// Messages of it in the trash, whatever the folder.
    pub trashed_count: u32,
    /// Preview of the newest message.
    pub snippet: String,
    /// People in it.
    pub participants: Vec<ParticipantView>,
    /// Privacy of the newest message.
    pub privacy: PrivacyView,
    /// Tags carried by any of its messages, by name; deleted tags are left out.
    pub tags: Vec<TagView>,
}

/// Which discussions a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum FolderParam {
    /// Discussions with at least one message outside the trash.
    #[default]
    Inbox,
    /// Discussions with at least one message in the trash.
    Trash,
}

impl From<FolderParam> for palisade_store::Folder {
    fn from(f: FolderParam) -> Self {
        match f {
            FolderParam::Inbox => palisade_store::Folder::Inbox,
            FolderParam::Trash => palisade_store::Folder::Trash,
        }
    }
}

impl DiscussionView {
    /// The discussion as listed in `folder`, its tag ids resolved through `tags`.
    pub fn new(d: &Discussion, folder: FolderParam, tags: &HashMap<TagId, Tag>) -> Self {
        let (message_count, unread_count) = match folder {
            FolderParam::Inbox => (
                d.message_count.saturating_sub(d.trashed_count),
                d.unread_count.saturating_sub(d.trashed_unread_count),
            ),
            FolderParam::Trash => (d.trashed_count, d.trashed_unread_count),
        };
        let mut tag_views: Vec<TagView> = d
            .tags
            .iter()
            .filter_map(|t| tags.get(t))
            .map(Into::into)
            .collect();
        tag_views.sort_by(|a, b| a.name.cmp(&b.name));
        DiscussionView {
            id: d.id.0,
            subject: d.subject.clone(),
            last_activity: d.last_activity,
            message_count,
            unread_count,
            trashed_count: d.trashed_count,
            snippet: d.snippet.clone(),
            participants: d.participants.iter().map(Into::into).collect(),
            privacy: (&d.privacy).into(),
            tags: tag_views,
        }
    }
}

/// A page of discussions.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct DiscussionPage {
    /// Discussions, newest activity first.
    pub items: Vec<DiscussionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A message's user-set state.
#[derive(Debug, Clone, Copy, Object, serde::Serialize)]
pub struct FlagsView {
    /// Read.
    pub seen: bool,
    /// Starred.
    pub flagged: bool,
    /// Replied to.
    pub answered: bool,
    /// In the trash.
    pub trashed: bool,
    /// The user's own sent copy.
    pub sent: bool,
}

impl From<Flags> for FlagsView {
    fn from(f: Flags) -> Self {
        FlagsView {
            seen: f.seen,
            flagged: f.flagged,
            answered: f.answered,
            trashed: f.trashed,
            sent: f.sent,
        }
    }
}

/// A message in a list.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct MessageSummaryView {
    /// Message id.
    pub id: Uuid,
    /// Its discussion.
    pub discussion_id: Uuid,
    /// `Date` header, or arrival when missing.
    #[serde(serialize_with = "crate::serde_payload::rfc3339")]
    pub date: DateTime<Utc>,
    /// Arrival at Palisade.
    #[serde(serialize_with = "crate::serde_payload::rfc3339")]
    pub received_at: DateTime<Utc>,
    /// Author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<ParticipantView>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Flags.
    pub flags: FlagsView,
    /// The message could not be fully parsed; its raw form is still available.
    pub parse_error: bool,
    /// Size in bytes.
    pub size: u64,
}

impl From<&MessageSummary> for MessageSummaryView {
    fn from(m: &MessageSummary) -> Self {
        MessageSummaryView {
            id: m.id.0,
            discussion_id: m.discussion_id.0,
            date: m.date,
            received_at: m.received_at,
            from: m.from.as_ref().map(Into::into),
            subject: m.subject.clone(),
            flags: m.flags.into(),
            parse_error: m.parse_error,
            size: m.raw_size,
        }
    }
}

/// A page of messages.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct MessagePage {
    /// Messages, newest first.
    pub items: Vec<MessageSummaryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// An attachment's metadata; the bytes come from the attachment endpoint.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AttachmentView {
    /// Index to pass to the attachment endpoint.
    pub index: u32,
    /// File name.
    pub file_name: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Decoded size.
    pub size: u64,
    /// `Content-ID`, for inline images.
    pub content_id: Option<String>,
    /// Meant to be shown inline.
    pub inline: bool,
}

/// One part of the message's MIME tree; leaves' bytes come from the parts endpoint.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MimePartView {
    /// Part index, the same numbering as attachments' `index`; pass it to the parts endpoint.
    pub index: u32,
    /// Index of the enclosing multipart; absent for the root.
    pub parent: Option<u32>,
    /// Nesting depth, root = 0.
    pub depth: u32,
    /// `type/subtype`, lowercased.
    pub content_type: String,
    /// Decoded size in bytes (0 for multipart containers).
    pub size: u64,
    /// Content-Disposition token, lowercased (`inline`, `attachment`, ...), when present.
    pub disposition: Option<String>,
    /// File name, when the part has one.
    pub file_name: Option<String>,
    /// Declared charset, when present.
    pub charset: Option<String>,
    /// The part's content is in the text or HTML body.
    pub shown_inline: bool,
    /// The part is listed in `attachments`.
    pub attachment: bool,
}

impl From<&MimePart> for MimePartView {
    fn from(p: &MimePart) -> Self {
        MimePartView {
            index: p.index,
            parent: p.parent,
            depth: p.depth,
            content_type: p.content_type.clone(),
            size: p.size,
            disposition: p.disposition.clone(),
            file_name: p.file_name.clone(),
            charset: p.charset.clone(),
            shown_inline: p.shown_inline,
            attachment: p.attachment,
        }
    }
}

/// One remote resource that was kept out of the HTML.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BlockedContent {
    /// Element and attribute it was in, for example `img src`.
    pub kind: String,
    /// The URL that would have been fetched.
    pub url: String,
    /// Whether it exists to report that the message was opened (see `reason`).
    pub tracker: bool,
    /// Why it is a tracker; absent when it is not one.
    pub reason: Option<TrackerReason>,
    /// The tracker list's category of its host (`advertising`, `site_analytics`, ...), when
    /// `reason` is `tracking_host`.
    pub category: Option<String>,
}

/// What an "always load remote content" setting covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum TrustKindView {
    /// One sender address.
    Sender,
    /// Every sender of a domain.
    Domain,
}

impl From<palisade_store::TrustKind> for TrustKindView {
    fn from(k: palisade_store::TrustKind) -> Self {
        match k {
            palisade_store::TrustKind::Sender => TrustKindView::Sender,
            palisade_store::TrustKind::Domain => TrustKindView::Domain,
        }
    }
}

impl From<TrustKindView> for palisade_store::TrustKind {
    fn from(k: TrustKindView) -> Self {
        match k {
            TrustKindView::Sender => palisade_store::TrustKind::Sender,
            TrustKindView::Domain => palisade_store::TrustKind::Domain,
        }
    }
}

/// One "always load remote content" setting.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct RemoteTrustView {
    /// A sender address or a whole domain.
    pub kind: TrustKindView,
    /// The address or domain, lowercase.
    pub value: String,
}

/// Why a blocked resource is taken for a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum TrackerReason {
    /// An image the message sizes to at most 3×3 pixels or hides: nobody is meant to see it.
    Pixel,
    /// Its host is on the maintained list of tracking hosts.
    TrackingHost,
}

/// A tag as assigned to a message.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TagView {
    /// Tag id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Colour, `#rrggbb`; absent when the user chose none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
}

impl From<&Tag> for TagView {
    fn from(t: &Tag) -> Self {
        TagView {
            id: t.id.0,
            name: t.name.clone(),
            colour: t.colour.clone(),
        }
    }
}

/// A full message, ready to show.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MessageView {
    /// Message id.
    pub id: Uuid,
    /// Its discussion.
    pub discussion_id: Uuid,
    /// `Message-ID` header.
    pub message_id_header: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// `Date` header, or arrival when missing.
    pub date: DateTime<Utc>,
    /// Arrival at Palisade.
    pub received_at: DateTime<Utc>,
    /// Everyone in the address headers.
    pub participants: Vec<ParticipantView>,
    /// Plain-text body.
    pub text: Option<String>,
    /// HTML body, sanitized: no scripts, no styles that fetch, remote content removed
    /// unless asked for.
    pub html: Option<String>,
    /// Remote resources removed from the HTML.
    pub blocked: Vec<BlockedContent>,
    /// Whether remote content was loaded (through the image proxy): the request asked for it,
    /// or the user always loads it from this sender or domain (`remote_content_trusted`).
    pub remote_content_allowed: bool,
    /// Why remote content was loaded without being asked for: the user always loads it from
    /// this authenticated sender or its domain.
    pub remote_content_trusted: Option<TrustKindView>,
    /// The sender's address when our own MTA authenticated it (DMARC, or DKIM aligned with
    /// the From domain; one From address): only then can "always load remote content"
    /// be set for, or apply to, this sender or domain.
    pub authenticated_sender: Option<String>,
    /// Tracking parameters (`utm_*`, `fbclid` and the like) removed from the HTML's links.
    pub tracking_params_removed: u32,
    /// Attachments.
    pub attachments: Vec<AttachmentView>,
    /// The MIME tree in tree order (at most 500 parts), so every part can be reached;
    /// empty for mail stored before it was recorded.
    pub structure: Vec<MimePartView>,
    /// Flags.
    pub flags: FlagsView,
    /// Tags, resolved to names; deleted tags are left out.
    pub tags: Vec<TagView>,
    /// Privacy facts.
    pub privacy: PrivacyView,
    /// Why parsing failed, when it did; the raw message is still available.
    pub parse_error: Option<String>,
    /// The body was longer than Palisade keeps and is cut; the raw message is whole.
    pub body_truncated: bool,
}

impl MessageView {
    /// Builds the view of `m` with its HTML body already sanitized.
    pub fn new(
        m: &Message,
        sanitized: Option<crate::html::Sanitized>,
        remote_content_allowed: bool,
        tags: &HashMap<TagId, Tag>,
    ) -> Self {
        let c = &m.content;
        let crate::html::Sanitized {
            html,
            blocked,
            tracking_params_removed,
        } = sanitized.unwrap_or_default();
        let html = c.html_body.as_ref().map(|_| html);
        MessageView {
            id: m.id.0,
            discussion_id: m.discussion_id.0,
            message_id_header: c.message_id_header.clone(),
            subject: c.subject.clone(),
            date: c.date.unwrap_or(m.envelope.received_at),
            received_at: m.envelope.received_at,
            participants: c.participants.iter().map(Into::into).collect(),
            text: c.text_body.clone(),
            html,
            blocked,
            remote_content_allowed,
            remote_content_trusted: None,
            authenticated_sender: None,
            tracking_params_removed,
            attachments: c
                .attachments
                .iter()
                .map(|a| AttachmentView {
                    index: a.part_index,
                    file_name: a.file_name.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size,
                    content_id: a.content_id.clone(),
                    inline: a.inline,
                })
                .collect(),
            structure: c.structure.iter().map(Into::into).collect(),
            flags: m.flags.into(),
            tags: m
                .tags
                .iter()
                .filter_map(|id| tags.get(id))
                .map(Into::into)
                .collect(),
            privacy: (&c.privacy).into(),
            parse_error: c.parse_error.clone(),
            body_truncated: c.body_truncated,
        }
    }
}

/// A contact.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ContactView {
    /// Contact id.
    pub id: Uuid,
    /// Display name.
    pub name: Option<String>,
    /// Addresses.
    pub addresses: Vec<String>,
    /// ASCII-armored OpenPGP public keys.
    pub public_keys: Vec<String>,
    /// The key their authenticated mail announced with Autocrypt, if any.
    pub autocrypt: Option<AutocryptPeerView>,
    /// Their record as a sender.
    pub history: ContactHistoryView,
    /// The contact's privacy index and the rules that fired.
    pub privacy: ContactPrivacyView,
}

impl ContactView {
    /// The contact as the API shows it, its index as of `now`.
    pub fn new(c: &Contact, now: DateTime<Utc>) -> Self {
        ContactView {
            id: c.id.0,
            name: c.name.clone(),
            addresses: c.addresses.iter().map(ToString::to_string).collect(),
            public_keys: c.public_keys.clone(),
            autocrypt: c.autocrypt.as_ref().map(Into::into),
            history: ContactHistoryView {
                first_seen: c.history.first_seen,
                last_seen: c.history.last_seen,
                messages: c.history.messages,
                authenticated: c.history.authenticated,
            },
            privacy: ContactPrivacyView {
                privacy_index: c.privacy_index(now),
                factors: c
                    .privacy_factors(now)
                    .into_iter()
                    .map(|f| ContactPrivacyFactorView {
                        feature: f.feature.into(),
                        points: f.points,
                    })
                    .collect(),
            },
        }
    }
}

/// The Autocrypt `prefer-encrypt` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PreferEncryptView {
    /// No preference stated.
    NoPreference,
    /// Encrypt by default when both sides ask for it.
    Mutual,
}

impl From<PreferEncrypt> for PreferEncryptView {
    fn from(p: PreferEncrypt) -> Self {
        match p {
            PreferEncrypt::NoPreference => PreferEncryptView::NoPreference,
            PreferEncrypt::Mutual => PreferEncryptView::Mutual,
        }
    }
}

impl From<PreferEncryptView> for PreferEncrypt {
    fn from(p: PreferEncryptView) -> Self {
        match p {
            PreferEncryptView::NoPreference => PreferEncrypt::NoPreference,
            PreferEncryptView::Mutual => PreferEncrypt::Mutual,
        }
    }
}

/// A contact's key as Autocrypt taught it.
#[derive(Debug, Clone, Object)]
pub struct AutocryptPeerView {
    /// The key's OpenPGP v4 fingerprint, 40 hex digits.
    pub fingerprint: String,
    /// The transferable public key, base64.
    pub keydata: String,
    /// Their encryption preference.
    pub prefer_encrypt: PreferEncryptView,
    /// The date of their newest authenticated message.
    pub last_seen: DateTime<Utc>,
    /// The date of the message the key came from.
    pub autocrypt_timestamp: DateTime<Utc>,
}

impl From<&AutocryptPeer> for AutocryptPeerView {
    fn from(p: &AutocryptPeer) -> Self {
        AutocryptPeerView {
            fingerprint: p.key.fingerprint.clone(),
            keydata: p.key.keydata.clone(),
            prefer_encrypt: p.prefer_encrypt.into(),
            last_seen: p.last_seen,
            autocrypt_timestamp: p.autocrypt_timestamp,
        }
    }
}

/// A contact's record as a sender.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ContactHistoryView {
    /// When they entered the address book; absent for contacts older than the record.
    pub first_seen: Option<DateTime<Utc>>,
    /// When their newest message arrived.
    pub last_seen: Option<DateTime<Utc>>,
    /// Messages received from them (spam left out).
    pub messages: u32,
    /// Of those, how many our own MTA authenticated.
    pub authenticated: u32,
}

/// A contact's privacy index.
#[derive(Debug, Clone, Object)]
pub struct ContactPrivacyView {
    /// 0 to 100: the sum of `factors`, held within that range.
    pub privacy_index: u8,
    /// Every feature that raised the index, with its points.
    pub factors: Vec<ContactPrivacyFactorView>,
}

/// A feature of a contact that counts in its privacy index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ContactPrivacyFeatureView {
    /// We hold a public key for them.
    Key,
    /// Their Autocrypt header asks for encryption by default.
    PreferEncryptMutual,
    /// In the address book for at least 30 days.
    LongKnown,
    /// At least 5 messages received from them.
    Correspondent,
    /// The share of their mail our own MTA authenticated.
    AuthenticatedMail,
}

impl From<ContactPrivacyFeature> for ContactPrivacyFeatureView {
    fn from(f: ContactPrivacyFeature) -> Self {
        match f {
            ContactPrivacyFeature::Key => ContactPrivacyFeatureView::Key,
            ContactPrivacyFeature::PreferEncryptMutual => {
                ContactPrivacyFeatureView::PreferEncryptMutual
            }
            ContactPrivacyFeature::LongKnown => ContactPrivacyFeatureView::LongKnown,
            ContactPrivacyFeature::Correspondent => ContactPrivacyFeatureView::Correspondent,
            ContactPrivacyFeature::AuthenticatedMail => {
                ContactPrivacyFeatureView::AuthenticatedMail
            }
        }
    }
}

/// One feature's contribution to a contact's privacy index.
#[derive(Debug, Clone, Object)]
pub struct ContactPrivacyFactorView {
    /// What was found.
    pub feature: ContactPrivacyFeatureView,
    /// Points it added.
    pub points: i32,
}

/// The user's own Autocrypt key, announced in the mail they send.
#[derive(Debug, Clone, Object)]
pub struct OwnAutocryptView {
    /// The key's OpenPGP v4 fingerprint.
    pub fingerprint: String,
    /// Whether correspondents are asked to encrypt by default.
    pub prefer_encrypt: PreferEncryptView,
}

impl From<&OwnAutocrypt> for OwnAutocryptView {
    fn from(o: &OwnAutocrypt) -> Self {
        OwnAutocryptView {
            fingerprint: o.key.fingerprint.clone(),
            prefer_encrypt: o.prefer_encrypt.into(),
        }
    }
}

/// A page of contacts.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ContactPage {
    /// Contacts.
    pub items: Vec<ContactView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A draft.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DraftView {
    /// Draft id.
    pub id: Uuid,
    /// Sender address, one of the user's identities.
    pub from: Option<String>,
    /// Recipients.
    pub to: Vec<String>,
    /// Carbon copies.
    pub cc: Vec<String>,
    /// Blind carbon copies.
    pub bcc: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Message this replies to.
    pub in_reply_to: Option<Uuid>,
    /// Message this forwards.
    pub forward_of: Option<Uuid>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Files sent with it, in upload order.
    pub attachments: Vec<DraftAttachmentView>,
}

/// A file uploaded to a draft; its bytes come from the draft attachment endpoint.
#[derive(Debug, Clone, Object)]
pub struct DraftAttachmentView {
    /// Attachment id.
    pub id: Uuid,
    /// File name, without any path.
    pub file_name: String,
    /// MIME type it is sent with.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

impl From<&DraftAttachment> for DraftAttachmentView {
    fn from(a: &DraftAttachment) -> Self {
        DraftAttachmentView {
            id: a.id.0,
            file_name: a.file_name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
        }
    }
}

impl DraftView {
    /// The view of a draft and its attachments.
    pub fn new(d: &Draft, attachments: &[DraftAttachment]) -> Self {
        let list = |v: &[palisade_model::Address]| v.iter().map(ToString::to_string).collect();
        DraftView {
            id: d.id.0,
            from: d.from.as_ref().map(ToString::to_string),
            to: list(&d.to),
            cc: list(&d.cc),
            bcc: list(&d.bcc),
            subject: d.subject.clone(),
            body: d.body.clone(),
            in_reply_to: d.in_reply_to.map(|m| m.0),
            forward_of: d.forward_of.map(|m| m.0),
            updated_at: d.updated_at,
            attachments: attachments.iter().map(Into::into).collect(),
        }
    }
}

/// A page of drafts.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DraftPage {
    /// Drafts, most recently changed first.
    pub items: Vec<DraftView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// How far search has caught up with stored mail.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct IndexStatus {
    /// Messages stored.
    pub stored: u64,
    /// Messages searchable.
    pub indexed: u64,
    /// True when every stored message is searchable; otherwise results may be missing
    /// recent mail, and the client should say so.
    pub up_to_date: bool,
}

/// Search results.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchResult {
    /// Matching messages, newest first.
    pub items: Vec<MessageSummaryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Freshness of the index these results came from.
    pub index: IndexStatus,
}

/// Result of sending a draft.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SendResult {
    /// The stored sent copy; absent in the rare case the message left but its copy could not
    /// be stored (the send is not repeated, and the server log says why).
    pub message_id: Option<Uuid>,
    /// `Message-ID` header of what was sent.
    pub message_id_header: String,
}
