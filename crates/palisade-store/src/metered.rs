//! A store that records the latency and failures of every operation, by backend and
//! operation, around any other store: installed once where the daemon opens its backend, so
//! no backend repeats it.

use crate::{
    Accounts, AddressBook, AttachmentLimits, AttachmentRefused, Delivery, DeliveryReceipt, Drafts,
    Folder, Mailbox, Page, PageOf, RemoteTrust, RemoteTrustEntry, Store, StoreError, TagChange,
    suggest,
};
use async_trait::async_trait;
use bytes::Bytes;
use palisade_metrics::observe;
use palisade_model::{
    Address, Contact, ContactId, Discussion, DiscussionId, Draft, DraftAttachment,
    DraftAttachmentId, DraftId, Flags, FlagsPatch, Message, MessageContent, MessageId,
    MessageSummary, OwnAutocrypt, Tag, TagId, User, UserId,
};
use std::sync::Arc;

/// A store whose operations are timed and whose failures are counted.
pub struct Metered {
    inner: Arc<dyn Store>,
    /// The `backend` label: `sqlite` or `cassandra`.
    backend: &'static str,
}

impl Metered {
    /// Meters `inner`, labelled `backend`.
    pub fn new(inner: Arc<dyn Store>, backend: &'static str) -> Self {
        Metered { inner, backend }
    }
}

/// The `error` label of a failure.
fn error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Conflict(_) => "conflict",
        StoreError::NotFound(_) => "not_found",
        StoreError::Corrupt(_) => "corrupt",
    }
}

#[async_trait]
impl Accounts for Metered {
    async fn create_user(
        &self,
        name: &str,
        addresses: &[Address],
        password_hash: Option<String>,
    ) -> Result<User, StoreError> {
        observe(
            self.backend,
            "create_user",
            error_kind,
            self.inner.create_user(name, addresses, password_hash),
        )
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        observe(
            self.backend,
            "list_users",
            error_kind,
            self.inner.list_users(),
        )
        .await
    }

    async fn find_user(&self, name_or_address: &str) -> Result<Option<User>, StoreError> {
        observe(
            self.backend,
            "find_user",
            error_kind,
            self.inner.find_user(name_or_address),
        )
        .await
    }

    async fn resolve_address(&self, address: &Address) -> Result<Option<UserId>, StoreError> {
        observe(
            self.backend,
            "resolve_address",
            error_kind,
            self.inner.resolve_address(address),
        )
        .await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        observe(
            self.backend,
            "get_user",
            error_kind,
            self.inner.get_user(id),
        )
        .await
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        observe(
            self.backend,
            "password_hash",
            error_kind,
            self.inner.password_hash(id),
        )
        .await
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "set_password_hash",
            error_kind,
            self.inner.set_password_hash(id, hash),
        )
        .await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "delete_user",
            error_kind,
            self.inner.delete_user(id),
        )
        .await
    }

    async fn autocrypt_key(&self, id: UserId) -> Result<Option<OwnAutocrypt>, StoreError> {
        observe(
            self.backend,
            "autocrypt_key",
            error_kind,
            self.inner.autocrypt_key(id),
        )
        .await
    }

    async fn set_autocrypt_key(
        &self,
        id: UserId,
        key: Option<&OwnAutocrypt>,
    ) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "set_autocrypt_key",
            error_kind,
            self.inner.set_autocrypt_key(id, key),
        )
        .await
    }
}

#[async_trait]
impl Mailbox for Metered {
    async fn deliver(&self, delivery: Delivery) -> Result<DeliveryReceipt, StoreError> {
        observe(
            self.backend,
            "deliver",
            error_kind,
            self.inner.deliver(delivery),
        )
        .await
    }

    fn queues_jobs(&self) -> bool {
        self.inner.queues_jobs()
    }

    async fn list_messages(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        observe(
            self.backend,
            "list_messages",
            error_kind,
            self.inner.list_messages(user, page),
        )
        .await
    }

    async fn message_summaries(
        &self,
        user: UserId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageSummary>, StoreError> {
        observe(
            self.backend,
            "message_summaries",
            error_kind,
            self.inner.message_summaries(user, ids),
        )
        .await
    }

    async fn get_message(
        &self,
        user: UserId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        observe(
            self.backend,
            "get_message",
            error_kind,
            self.inner.get_message(user, id),
        )
        .await
    }

    async fn get_messages(
        &self,
        keys: &[(UserId, MessageId)],
    ) -> Result<Vec<Option<Message>>, StoreError> {
        observe(
            self.backend,
            "get_messages",
            error_kind,
            self.inner.get_messages(keys),
        )
        .await
    }

    async fn get_raw(&self, user: UserId, id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        observe(
            self.backend,
            "get_raw",
            error_kind,
            self.inner.get_raw(user, id),
        )
        .await
    }

    async fn count_messages(&self, user: UserId) -> Result<u64, StoreError> {
        observe(
            self.backend,
            "count_messages",
            error_kind,
            self.inner.count_messages(user),
        )
        .await
    }

    async fn list_discussions(
        &self,
        user: UserId,
        folder: Folder,
        page: Page,
    ) -> Result<PageOf<Discussion>, StoreError> {
        observe(
            self.backend,
            "list_discussions",
            error_kind,
            self.inner.list_discussions(user, folder, page),
        )
        .await
    }

    async fn get_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
    ) -> Result<Option<Discussion>, StoreError> {
        observe(
            self.backend,
            "get_discussion",
            error_kind,
            self.inner.get_discussion(user, id),
        )
        .await
    }

    async fn discussion_messages(
        &self,
        user: UserId,
        id: DiscussionId,
        folder: Option<Folder>,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        observe(
            self.backend,
            "discussion_messages",
            error_kind,
            self.inner.discussion_messages(user, id, folder, page),
        )
        .await
    }

    async fn update_flags(
        &self,
        user: UserId,
        id: MessageId,
        patch: FlagsPatch,
    ) -> Result<Option<Flags>, StoreError> {
        observe(
            self.backend,
            "update_flags",
            error_kind,
            self.inner.update_flags(user, id, patch),
        )
        .await
    }

    async fn set_message_tags(
        &self,
        user: UserId,
        id: MessageId,
        tags: &[TagId],
    ) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "set_message_tags",
            error_kind,
            self.inner.set_message_tags(user, id, tags),
        )
        .await
    }

    async fn update_discussion_flags(
        &self,
        user: UserId,
        id: DiscussionId,
        patch: FlagsPatch,
    ) -> Result<Option<Vec<MessageId>>, StoreError> {
        observe(
            self.backend,
            "update_discussion_flags",
            error_kind,
            self.inner.update_discussion_flags(user, id, patch),
        )
        .await
    }

    async fn retag_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
        add: &[TagId],
        remove: &[TagId],
    ) -> Result<Option<Vec<MessageId>>, StoreError> {
        observe(
            self.backend,
            "retag_discussion",
            error_kind,
            self.inner.retag_discussion(user, id, add, remove),
        )
        .await
    }

    async fn replace_content(
        &self,
        user: UserId,
        id: MessageId,
        content: &MessageContent,
    ) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "replace_content",
            error_kind,
            self.inner.replace_content(user, id, content),
        )
        .await
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "delete_message",
            error_kind,
            self.inner.delete_message(user, id),
        )
        .await
    }

    async fn list_tags(&self, user: UserId) -> Result<Vec<Tag>, StoreError> {
        observe(
            self.backend,
            "list_tags",
            error_kind,
            self.inner.list_tags(user),
        )
        .await
    }

    async fn create_tag(
        &self,
        user: UserId,
        name: &str,
        colour: Option<&str>,
        max_tags: usize,
    ) -> Result<Tag, StoreError> {
        observe(
            self.backend,
            "create_tag",
            error_kind,
            self.inner.create_tag(user, name, colour, max_tags),
        )
        .await
    }

    async fn update_tag(
        &self,
        user: UserId,
        id: TagId,
        change: &TagChange,
    ) -> Result<Tag, StoreError> {
        observe(
            self.backend,
            "update_tag",
            error_kind,
            self.inner.update_tag(user, id, change),
        )
        .await
    }

    async fn delete_tag(&self, user: UserId, id: TagId) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "delete_tag",
            error_kind,
            self.inner.delete_tag(user, id),
        )
        .await
    }
}

#[async_trait]
impl AddressBook for Metered {
    async fn list_contacts(&self, user: UserId, page: Page) -> Result<PageOf<Contact>, StoreError> {
        observe(
            self.backend,
            "list_contacts",
            error_kind,
            self.inner.list_contacts(user, page),
        )
        .await
    }

    async fn get_contact(
        &self,
        user: UserId,
        id: ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        observe(
            self.backend,
            "get_contact",
            error_kind,
            self.inner.get_contact(user, id),
        )
        .await
    }

    async fn find_contact(
        &self,
        user: UserId,
        address: &Address,
    ) -> Result<Option<Contact>, StoreError> {
        observe(
            self.backend,
            "find_contact",
            error_kind,
            self.inner.find_contact(user, address),
        )
        .await
    }

    async fn save_contact(&self, contact: Contact) -> Result<Contact, StoreError> {
        observe(
            self.backend,
            "save_contact",
            error_kind,
            self.inner.save_contact(contact),
        )
        .await
    }

    async fn delete_contact(&self, user: UserId, id: ContactId) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "delete_contact",
            error_kind,
            self.inner.delete_contact(user, id),
        )
        .await
    }

    async fn autocomplete_contacts(
        &self,
        user: UserId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<suggest::ContactMatch>, StoreError> {
        observe(
            self.backend,
            "autocomplete_contacts",
            error_kind,
            self.inner.autocomplete_contacts(user, prefix, limit),
        )
        .await
    }
}

#[async_trait]
impl Drafts for Metered {
    async fn save_draft(&self, draft: Draft) -> Result<Draft, StoreError> {
        observe(
            self.backend,
            "save_draft",
            error_kind,
            self.inner.save_draft(draft),
        )
        .await
    }

    async fn get_draft(&self, user: UserId, id: DraftId) -> Result<Option<Draft>, StoreError> {
        observe(
            self.backend,
            "get_draft",
            error_kind,
            self.inner.get_draft(user, id),
        )
        .await
    }

    async fn list_drafts(&self, user: UserId, page: Page) -> Result<PageOf<Draft>, StoreError> {
        observe(
            self.backend,
            "list_drafts",
            error_kind,
            self.inner.list_drafts(user, page),
        )
        .await
    }

    async fn delete_draft(&self, user: UserId, id: DraftId) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "delete_draft",
            error_kind,
            self.inner.delete_draft(user, id),
        )
        .await
    }

    async fn add_draft_attachment(
        &self,
        attachment: DraftAttachment,
        data: Bytes,
        limits: AttachmentLimits,
    ) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError> {
        observe(
            self.backend,
            "add_draft_attachment",
            error_kind,
            self.inner.add_draft_attachment(attachment, data, limits),
        )
        .await
    }

    async fn list_draft_attachments(
        &self,
        user: UserId,
        draft: DraftId,
    ) -> Result<Vec<DraftAttachment>, StoreError> {
        observe(
            self.backend,
            "list_draft_attachments",
            error_kind,
            self.inner.list_draft_attachments(user, draft),
        )
        .await
    }

    async fn get_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<Option<(DraftAttachment, Vec<u8>)>, StoreError> {
        observe(
            self.backend,
            "get_draft_attachment",
            error_kind,
            self.inner.get_draft_attachment(user, draft, id),
        )
        .await
    }

    async fn delete_draft_attachment(
        &self,
        user: UserId,
        draft: DraftId,
        id: DraftAttachmentId,
    ) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "delete_draft_attachment",
            error_kind,
            self.inner.delete_draft_attachment(user, draft, id),
        )
        .await
    }
}

#[async_trait]
impl RemoteTrust for Metered {
    async fn list_remote_trust(&self, user: UserId) -> Result<Vec<RemoteTrustEntry>, StoreError> {
        observe(
            self.backend,
            "list_remote_trust",
            error_kind,
            self.inner.list_remote_trust(user),
        )
        .await
    }

    async fn add_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "add_remote_trust",
            error_kind,
            self.inner.add_remote_trust(user, entry),
        )
        .await
    }

    async fn remove_remote_trust(
        &self,
        user: UserId,
        entry: &RemoteTrustEntry,
    ) -> Result<bool, StoreError> {
        observe(
            self.backend,
            "remove_remote_trust",
            error_kind,
            self.inner.remove_remote_trust(user, entry),
        )
        .await
    }
}
