//! Palisade's storage: traits shaped by the domain, one module per backend.
//!
//! Every method that touches mail names the [`UserId`] it works for; backends partition by
//! it, so a bug in a caller cannot reach across tenants by forgetting a filter.
//! [`Mailbox::deliver`] is the durability point of the LMTP path: when it returns `Ok`, the raw
//! bytes, the message row and its follow-up jobs are all on disk, together or not at all.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use palisade_model::{
    Address, AutocryptPeer, Contact, ContactHistory, ContactId, Discussion, DiscussionId, Draft,
    DraftAttachment, DraftAttachmentId, DraftId, Envelope, Flags, FlagsPatch, Message,
    MessageContent, MessageId, MessageSummary, OwnAutocrypt, RawHash, Tag, TagId, User, UserId,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub mod cassandra;
mod contact_state;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
#[cfg(any(test, feature = "contract"))]
mod contract_autocrypt;
#[cfg(any(test, feature = "contract"))]
mod contract_discussions;
#[cfg(any(test, feature = "contract"))]
mod contract_drafts;
#[cfg(any(test, feature = "contract"))]
mod contract_erase;
#[cfg(any(test, feature = "contract"))]
mod contract_mailbox;
#[cfg(any(test, feature = "contract"))]
mod contract_months;
#[cfg(any(test, feature = "contract"))]
mod contract_remote_trust;
#[cfg(any(test, feature = "contract"))]
mod contract_replace;
#[cfg(any(test, feature = "contract"))]
mod contract_suggest;
pub mod metered;
mod replace;
pub mod sqlite;
pub mod suggest;
mod threading;

/// SHA-256 of raw message bytes, the content key of the raw store.
pub fn raw_hash(raw: &[u8]) -> RawHash {
    use sha2::{Digest, Sha256};
    RawHash(Sha256::digest(raw).into())
}

/// Why a storage call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or could not write; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The request conflicts with existing data (a taken user name or address).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The named record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data could not be decoded; a bug or corruption, not a transient fault.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// One message to store for one user, as accepted by LMTP.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The receiving user.
    pub user_id: UserId,
    /// The exact bytes received, shared by every recipient's copy without being copied.
    pub raw: Bytes,
    /// SHA-256 of `raw`, computed once per message rather than per recipient.
    pub raw_sha256: RawHash,
    /// What parsing found, shared between the recipients of one transaction.
    pub content: Arc<MessageContent>,
    /// The envelope for this recipient.
    pub envelope: Envelope,
    /// Flags the message starts with: default for received mail, `seen` and `sent` for the
    /// copy of a message the user sent.
    pub flags: Flags,
}

/// What [`Mailbox::deliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The message's id in the user's mailbox.
    pub message_id: MessageId,
    /// True when the same bytes were already stored for this user, so nothing changed.
    pub duplicate: bool,
}

/// A page request for lists; cursors are opaque strings handed back by the previous page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Continue after this cursor; `None` starts at the newest.
    pub after: Option<String>,
    /// Most items to return.
    pub limit: usize,
}

/// Which of a user's discussions a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Folder {
    /// Discussions with at least one message not in the trash.
    #[default]
    Inbox,
    /// Discussions with at least one message in the trash.
    Trash,
}

impl Folder {
    /// Whether a message with these flags belongs in this folder.
    pub fn holds_message(self, flags: &Flags) -> bool {
        match self {
            Folder::Inbox => !flags.trashed,
            Folder::Trash => flags.trashed,
        }
    }

    /// Whether `discussion` belongs in this folder.
    pub fn holds(self, discussion: &Discussion) -> bool {
        match self {
            Folder::Inbox => discussion.message_count > discussion.trashed_count,
            Folder::Trash => discussion.trashed_count > 0,
        }
    }
}

/// One page of results and the cursor of the next page, if there is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageOf<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Cursor for the next page.
    pub next: Option<String>,
}

/// The people who have mailboxes: accounts, their addresses and credentials.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates a user owning `addresses`; fails with `Conflict` if the name or an address is taken.
    async fn create_user(
        &self,
        name: &str,
        addresses: &[Address],
        password_hash: Option<String>,
    ) -> Result<User, StoreError>;

    /// All users, by name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// Finds a user by name or by one of their addresses.
    async fn find_user(&self, name_or_address: &str) -> Result<Option<User>, StoreError>;

    /// The user an address delivers to.
    async fn resolve_address(&self, address: &Address) -> Result<Option<UserId>, StoreError>;

    /// A user by id.
    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The user's argon2id password hash (PHC string), if a password is set.
    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError>;

    /// Replaces the user's password hash; `false` when the user does not exist.
    async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<bool, StoreError>;

    /// Deletes an account for good: its addresses first (mail to them is refused from then
    /// on), then its messages and raw bytes, discussions, tags, contacts, drafts and their
    /// files, counters and queued jobs, and the user row with its password hash last, so a
    /// run cut short is finished by running it again. `false` when no such user existed; run
    /// for the id of a user already deleted, it still removes what is left under that id (a
    /// delivery that was past the address check when the address went).
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;

    /// The user's own Autocrypt key, announced in the mail they send.
    async fn autocrypt_key(&self, id: UserId) -> Result<Option<OwnAutocrypt>, StoreError>;

    /// Sets the user's own Autocrypt key, or removes it (`None`); `false` when the user
    /// does not exist.
    async fn set_autocrypt_key(
        &self,
        id: UserId,
        key: Option<&OwnAutocrypt>,
    ) -> Result<bool, StoreError>;
}

/// A user's mail: delivery, messages, discussions, flags, tags and deletion.
#[async_trait]
pub trait Mailbox: Send + Sync {
    /// Durably stores raw bytes, message and thread placement (and its follow-up jobs, when
    /// [`Mailbox::queues_jobs`]), idempotently: redelivery of the same bytes changes nothing.
    async fn deliver(&self, delivery: Delivery) -> Result<DeliveryReceipt, StoreError>;

    /// Whether [`Mailbox::deliver`] also queues the message's follow-up jobs, in the same
    /// transaction (the embedded store, which is its own job queue). When it does not, the
    /// caller publishes them; `palisade_ingest::Pipeline` does.
    fn queues_jobs(&self) -> bool;

    /// The user's messages, newest arrival first.
    async fn list_messages(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError>;

    /// The summaries of the user's messages among `ids`, in the order given, in one call:
    /// search hits become a page without a read per hit. Ids that are not the user's, or no
    /// longer exist, are left out.
    async fn message_summaries(
        &self,
        user: UserId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageSummary>, StoreError>;

    /// One message of the user's.
    async fn get_message(&self, user: UserId, id: MessageId)
    -> Result<Option<Message>, StoreError>;

    /// Several messages, each as [`Mailbox::get_message`] gives it, in the order of `keys`:
    /// the index worker reads a whole batch in one call. Any failure fails the call; the
    /// caller reads one by one to find which message it was.
    async fn get_messages(
        &self,
        keys: &[(UserId, MessageId)],
    ) -> Result<Vec<Option<Message>>, StoreError>;

    /// The exact bytes of one of the user's messages.
    async fn get_raw(&self, user: UserId, id: MessageId) -> Result<Option<Vec<u8>>, StoreError>;

    /// How many messages the user has, the stored side of the search watermark.
    async fn count_messages(&self, user: UserId) -> Result<u64, StoreError>;

    /// The user's discussions in `folder`, most recent activity first.
    async fn list_discussions(
        &self,
        user: UserId,
        folder: Folder,
        page: Page,
    ) -> Result<PageOf<Discussion>, StoreError>;

    /// One discussion of the user's.
    async fn get_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
    ) -> Result<Option<Discussion>, StoreError>;

    /// The messages of one discussion, newest arrival first: all of them, or only those of
    /// `folder` (outside the trash for the inbox, in it for the trash).
    async fn discussion_messages(
        &self,
        user: UserId,
        id: DiscussionId,
        folder: Option<Folder>,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError>;

    /// Changes a message's flags, keeping its discussion's unread count in step; `None` when
    /// the message does not exist.
    async fn update_flags(
        &self,
        user: UserId,
        id: MessageId,
        patch: FlagsPatch,
    ) -> Result<Option<Flags>, StoreError>;

    /// Replaces the tags on a message; `false` when the message does not exist. Callers check
    /// that the tags are the user's.
    async fn set_message_tags(
        &self,
        user: UserId,
        id: MessageId,
        tags: &[TagId],
    ) -> Result<bool, StoreError>;

    /// Applies `patch` to every message of a discussion, keeping its counts in step; the
    /// messages whose flags changed, or `None` when the discussion does not exist.
    async fn update_discussion_flags(
        &self,
        user: UserId,
        id: DiscussionId,
        patch: FlagsPatch,
    ) -> Result<Option<Vec<MessageId>>, StoreError>;

    /// Adds `add` to and removes `remove` from the tags of every message of a discussion;
    /// the messages whose tags changed, or `None` when the discussion does not exist. Callers
    /// check that the tags are the user's.
    async fn retag_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
        add: &[TagId],
        remove: &[TagId],
    ) -> Result<Option<Vec<MessageId>>, StoreError>;

    /// Replaces what parsing found in one of the user's messages, after a parser change, and
    /// everything stored beside it that derives from it: the message's summary (subject,
    /// sender, date, parse error) and its discussion's people, snippet and privacy, and
    /// subject when the message started the discussion. Raw bytes, flags, tags and threading
    /// (discussion membership and the keys replies are matched on) stay as delivered, so mail
    /// never moves between discussions under the user's eyes. Idempotent; `false` when the
    /// message does not exist. The caller queues the message for reindexing.
    async fn replace_content(
        &self,
        user: UserId,
        id: MessageId,
        content: &MessageContent,
    ) -> Result<bool, StoreError>;

    /// Deletes a message for good (row, raw bytes, discussion membership); `false` when it did
    /// not exist.
    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<bool, StoreError>;

    /// The user's tags, by name.
    async fn list_tags(&self, user: UserId) -> Result<Vec<Tag>, StoreError>;

    /// Creates a tag, with a colour if given; `Conflict` when the user already has one of
    /// that name, or already has `max_tags` tags. The cap holds under concurrent requests.
    async fn create_tag(
        &self,
        user: UserId,
        name: &str,
        colour: Option<&str>,
        max_tags: usize,
    ) -> Result<Tag, StoreError>;

    /// Renames a tag and/or changes its colour, keeping what the change leaves out;
    /// `NotFound` or `Conflict` as appropriate.
    async fn update_tag(
        &self,
        user: UserId,
        id: TagId,
        change: &TagChange,
    ) -> Result<Tag, StoreError>;

    /// Deletes a tag; messages keep the dangling id, which readers ignore. `false` when absent.
    async fn delete_tag(&self, user: UserId, id: TagId) -> Result<bool, StoreError>;
}

/// A user's contacts and their public keys.
#[async_trait]
pub trait AddressBook: Send + Sync {
    /// The user's contacts, ordered by id, paged.
    async fn list_contacts(&self, user: UserId, page: Page) -> Result<PageOf<Contact>, StoreError>;

    /// One contact of the user's.
    async fn get_contact(&self, user: UserId, id: ContactId)
    -> Result<Option<Contact>, StoreError>;

    /// The contact owning `address` in the user's address book.
    async fn find_contact(
        &self,
        user: UserId,
        address: &Address,
    ) -> Result<Option<Contact>, StoreError>;

    /// Creates or replaces a contact; `Conflict` when one of its addresses belongs to another
    /// of the user's contacts.
    async fn save_contact(&self, contact: Contact) -> Result<Contact, StoreError>;

    /// Deletes a contact; `false` when absent.
    async fn delete_contact(&self, user: UserId, id: ContactId) -> Result<bool, StoreError>;

    /// The user's contact addresses whose contact has a name word, or whose address starts
    /// with `prefix` (see [`suggest::contact_terms`]), case-insensitively; at most `limit`,
    /// ordered by the first matching term, then contact, then address.
    async fn autocomplete_contacts(
        &self,
        user: UserId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<suggest::ContactMatch>, StoreError>;
}

/// Messages a user is still writing.
#[async_trait]
pub trait Drafts: Send + Sync {
    /// Creates or replaces a draft.
    async fn save_draft(&self, draft: Draft) -> Result<Draft, StoreError>;

    /// One draft of the user's.
    async fn get_draft(&self, user: UserId, id: DraftId) -> Result<Option<Draft>, StoreError>;

    /// The user's drafts, most recently changed first.
    async fn list_drafts(&self, user: UserId, page: Page) -> Result<PageOf<Draft>, StoreError>;

    /// Deletes a draft and its attachments; `false` when absent.
    async fn delete_draft(&self, user: UserId, id: DraftId) -> Result<bool, StoreError>;

    /// Stores a file on one of the user's drafts (`attachment` names user, draft and size,
    /// which must be `data`'s length). `NotFound` when the user has no such draft; refused,
    /// storing nothing, when it would pass `limits`, which hold under concurrent uploads.
    async fn add_draft_attachment(
        &self,
        attachment: DraftAttachment,
        data: Bytes,
        limits: AttachmentLimits,
    ) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError>;

    /// The attachments of one of the user's drafts, in upload order; empty when the draft
    /// has none or is not the user's.
    async fn list_draft_attachments(
        &self,
        user: UserId,
        draft: DraftId,
    ) -> Result<Vec<DraftAttachment>, StoreError>;

    /// One attachment of one of the user's drafts, with its bytes.
    async fn get_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<Option<(DraftAttachment, Vec<u8>)>, StoreError>;

    /// Removes one attachment from a draft; `false` when absent.
    async fn delete_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<bool, StoreError>;
}

/// What a user always loads remote content from: one sender, or every sender of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustKind {
    /// One sender address.
    Sender,
    /// Every address of a domain.
    Domain,
}

impl TrustKind {
    /// The kind's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustKind::Sender => "sender",
            TrustKind::Domain => "domain",
        }
    }

    /// The kind named `s`, as stored.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sender" => Some(TrustKind::Sender),
            "domain" => Some(TrustKind::Domain),
            _ => None,
        }
    }
}

/// One "always load remote content" setting: a sender address or a domain, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RemoteTrustEntry {
    /// Sender or domain.
    pub kind: TrustKind,
    /// The address or domain, lowercase.
    pub value: String,
}

/// Most "always load" settings one user may have.
pub const MAX_REMOTE_TRUST: usize = 1000;

/// Whose remote content each user chose to always load.
#[async_trait]
pub trait RemoteTrust: Send + Sync {
    /// The user's settings, ordered by kind then value.
    async fn list_remote_trust(&self, user: UserId) -> Result<Vec<RemoteTrustEntry>, StoreError>;

    /// Adds a setting; false when it was there already, `Conflict` past
    /// [`MAX_REMOTE_TRUST`].
    async fn add_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError>;

    /// Removes a setting; false when there was none.
    async fn remove_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError>;
}

/// The refusal of a setting past the cap.
pub(crate) fn remote_trust_cap_reached() -> StoreError {
    StoreError::Conflict(format!(
        "a user may always load remote content from at most {MAX_REMOTE_TRUST} senders and domains"
    ))
}

/// A change to a tag; what is `None` stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagChange {
    /// The new name.
    pub name: Option<String>,
    /// The new colour; `Some(None)` removes it.
    pub colour: Option<Option<String>>,
}

/// How much a single draft may carry, so a draft stays sendable and storable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentLimits {
    /// Most attachments on one draft.
    pub max_count: usize,
    /// Most bytes of all of a draft's attachments together.
    pub max_total_bytes: u64,
}

/// Why an attachment was not added to a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentRefused {
    /// The draft already has the most attachments allowed.
    #[error("a draft may have at most {0} attachments")]
    TooMany(usize),
    /// The draft's attachments would pass the allowed total size.
    #[error("a draft's attachments may total at most {0} bytes")]
    TooLarge(u64),
}

impl AttachmentLimits {
    /// Whether one more attachment of `size` bytes fits beside `existing` (count, bytes).
    pub fn admit(&self, existing: (usize, u64), size: u64) -> Result<(), AttachmentRefused> {
        let (count, bytes) = existing;
        if count >= self.max_count {
            return Err(AttachmentRefused::TooMany(self.max_count));
        }
        if bytes.saturating_add(size) > self.max_total_bytes {
            return Err(AttachmentRefused::TooLarge(self.max_total_bytes));
        }
        Ok(())
    }
}

/// `tags` with `add` appended (those not already there) and `remove` taken out, in order:
/// what a discussion-wide tag change makes of one message's tags.
pub(crate) fn retagged(tags: &[TagId], add: &[TagId], remove: &[TagId]) -> Vec<TagId> {
    let mut out: Vec<TagId> = tags
        .iter()
        .filter(|t| !remove.contains(t))
        .copied()
        .collect();
    for t in add {
        if !remove.contains(t) && !out.contains(t) {
            out.push(*t);
        }
    }
    out
}

/// Everything a backend stores: the union of the concerns, for the daemon that wires one
/// backend into every part. Callers that need one concern should ask for that trait.
pub trait Store: Accounts + Mailbox + AddressBook + Drafts + RemoteTrust {}

impl<T: Accounts + Mailbox + AddressBook + Drafts + RemoteTrust + ?Sized> Store for T {}

/// The refusal of a second tag of the same name.
pub(crate) fn tag_conflict(name: &str) -> StoreError {
    StoreError::Conflict(format!("a tag named {name:?} already exists"))
}

/// The refusal of a tag past the user's cap.
pub(crate) fn tag_cap_reached(max_tags: usize) -> StoreError {
    StoreError::Conflict(format!("a user may have at most {max_tags} tags"))
}

/// Learns contacts from the people named in a message that arrived `at`: each address not
/// yet in the user's address book becomes a contact, first seen then. Idempotent, so the
/// worker may run it again on retry.
pub async fn learn_contacts(
    store: &dyn AddressBook,
    user: UserId,
    people: &[palisade_model::Participant],
    own: &[Address],
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut learned = 0;
    for p in people {
        let Some(address) = p.address.as_deref().and_then(|a| Address::parse(a).ok()) else {
            continue;
        };
        if own.contains(&address) || store.find_contact(user, &address).await?.is_some() {
            continue;
        }
        let contact = Contact {
            id: ContactId::for_address(user, &address),
            user_id: user,
            name: p.name.clone().filter(|n| !n.trim().is_empty()),
            addresses: vec![address],
            public_keys: Vec::new(),
            history: ContactHistory {
                first_seen: Some(at),
                ..ContactHistory::default()
            },
            autocrypt: None,
        };
        match store.save_contact(contact).await {
            Ok(_) => learned += 1,
            // Learned concurrently by another worker: fine.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(learned)
}

/// Records a received message in its sender's contact: the history (messages, how many our
/// MTA authenticated, last seen) and, for authenticated mail, the Autocrypt state as the
/// spec updates it. `false` when the sender has no contact (learn it first). A message
/// already counted last is not counted again, so a retried job changes nothing; two
/// workers recording the same sender at once may lose one count, which only history shows.
pub async fn record_sender(store: &dyn AddressBook, message: &Message) -> Result<bool, StoreError> {
    match author(message) {
        Some(from) => record_author(store, message.user_id, &from, &[message]).await,
        None => Ok(false),
    }
}

/// The parsed address of a message's author, when it has one.
fn author(message: &Message) -> Option<Address> {
    message
        .content
        .from()
        .and_then(|p| p.address.as_deref())
        .and_then(|a| Address::parse(a).ok())
}

/// [`record_sender`] for messages of one author, in arrival order, with one read and at most
/// one write of their contact.
async fn record_author(
    store: &dyn AddressBook,
    user: UserId,
    from: &Address,
    messages: &[&Message],
) -> Result<bool, StoreError> {
    let Some(mut contact) = store.find_contact(user, from).await? else {
        return Ok(false);
    };
    let mut changed = false;
    for message in messages {
        changed |= count_message(&mut contact, from, message);
    }
    if changed {
        store.save_contact(contact).await?;
    }
    Ok(true)
}

/// Counts one received message in its author's contact; `false` when it was counted last.
fn count_message(contact: &mut Contact, from: &Address, message: &Message) -> bool {
    if contact.history.last_message == Some(message.id) {
        return false;
    }
    let content = &message.content;
    let arrived = message.envelope.received_at;
    let authenticated = content.privacy.authenticated_sender.as_deref() == Some(from.as_str());
    let h = &mut contact.history;
    h.messages = h.messages.saturating_add(1);
    h.authenticated = h.authenticated.saturating_add(u32::from(authenticated));
    h.last_seen = Some(h.last_seen.map_or(arrived, |l| l.max(arrived)));
    h.last_message = Some(message.id);
    if authenticated {
        // The spec's effective date: the Date header, but never later than the arrival.
        let effective = content.date.map_or(arrived, |d| d.min(arrived));
        contact.autocrypt = AutocryptPeer::updated(
            contact.autocrypt.as_ref(),
            content.autocrypt.as_ref(),
            effective,
        );
    }
    true
}

/// [`learn_contacts`] for one person, owning its arguments so that many run at once.
async fn learn_person(
    store: &dyn AddressBook,
    user: UserId,
    person: palisade_model::Participant,
    own: &[Address],
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    learn_contacts(store, user, std::slice::from_ref(&person), own, at).await
}

/// [`record_author`] owning its arguments, so that many run at once.
async fn record_authored(
    store: &dyn AddressBook,
    user: UserId,
    from: Address,
    messages: Vec<&Message>,
) -> Result<bool, StoreError> {
    record_author(store, user, &from, &messages).await
}

/// Address-book reads and writes a batch of mail keeps in flight at once.
const LEARN_CONCURRENCY: usize = 16;

/// What one user's mail teaches their address book, for a batch at once, in arrival order:
/// the people they correspond with become contacts (the authors of received mail, the
/// recipients of sent mail), then each author's contact counts their messages
/// ([`record_sender`]). Spam teaches nothing. Each contact is read and written at most once
/// per batch and different contacts concurrently, so a batch shares commits instead of
/// waiting for one per message. Retries are harmless, as for [`learn_contacts`].
pub async fn learn_from_mail(
    store: &dyn AddressBook,
    user: UserId,
    own: &[Address],
    messages: &[&Message],
) -> Result<(), StoreError> {
    use futures::{FutureExt, StreamExt, TryStreamExt};
    use palisade_model::ParticipantRole;
    let mut people = Vec::new();
    let mut known = std::collections::HashSet::new();
    let mut authors: Vec<(Address, Vec<&Message>)> = Vec::new();
    let mut author_slot = std::collections::HashMap::new();
    for &message in messages {
        if message.content.privacy.spam.is_spam == Some(true) {
            continue;
        }
        let wanted: &[ParticipantRole] = if message.flags.sent {
            &[
                ParticipantRole::To,
                ParticipantRole::Cc,
                ParticipantRole::Bcc,
            ]
        } else {
            &[ParticipantRole::From]
        };
        let at = message.envelope.received_at;
        for p in message.content.participants.iter() {
            let Some(address) = p.address.as_deref().and_then(|a| Address::parse(a).ok()) else {
                continue;
            };
            if wanted.contains(&p.role) && known.insert(address) {
                people.push((p.clone(), at));
            }
        }
        // The user's own mail teaches nothing about a correspondent.
        if let Some(from) = author(message).filter(|_| !message.flags.sent) {
            let slot = *author_slot.entry(from.clone()).or_insert_with(|| {
                authors.push((from, Vec::new()));
                authors.len() - 1
            });
            authors[slot].1.push(message);
        }
    }
    // Boxed and made before the stream: a spawned caller must prove its future `Send`,
    // which the compiler cannot do through closures over borrowed arguments.
    let learning: Vec<_> = people
        .into_iter()
        .map(|(person, at)| learn_person(store, user, person, own, at).boxed())
        .collect();
    futures::stream::iter(learning)
        .buffer_unordered(LEARN_CONCURRENCY)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await?;
    let recording: Vec<_> = authors
        .into_iter()
        .map(|(from, mail)| record_authored(store, user, from, mail).boxed())
        .collect();
    futures::stream::iter(recording)
        .buffer_unordered(LEARN_CONCURRENCY)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await
}
