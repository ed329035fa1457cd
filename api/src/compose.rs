//! Contacts, drafts, replies, forwards and sending.

use crate::account::current_user;
use crate::body::JsonBody;
use crate::draft_files;
use crate::error::{ApiError, ErrorBody};
use crate::mail::message_of;
use crate::mailer::{Context, MailError, compose};
use crate::rules::{AddressText, DisplayName, IdCursor, Line, ListCursor, PublicKey};
use crate::types::{ContactPage, ContactView, DraftPage, DraftView, SendResult};
use crate::{AppState, Auth, page};
use bytes::Bytes;
use chrono::Utc;
use palisade_ingest::{MailboxCopy, error_chain};
use palisade_model::{
    Address, Contact, ContactHistory, ContactId, Draft, DraftId, Flags, FlagsPatch, MessageId,
    ParticipantRole, User, UserId,
};
use palisade_store::StoreError;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::sync::Arc;
use uuid::Uuid;
use validator::{Validate, ValidationError};

/// Most recipients one message may have.
const MAX_RECIPIENTS: usize = 100;

#[derive(Tags)]
enum ApiTags {
    /// The address book.
    Contacts,
    /// Writing and sending mail.
    Compose,
}

/// The addresses of a request; each passed the address rule, which `Address::parse` accepts.
fn parse_all(list: &[AddressText]) -> Vec<Address> {
    list.iter().filter_map(|a| Address::parse(a).ok()).collect()
}

/// At most [`MAX_RECIPIENTS`] recipients across `to`, `cc` and `bcc`: the one rule of a draft
/// that no single field's schema can state, so the document states it in the description.
fn recipient_total(draft: &DraftRequest) -> Result<(), ValidationError> {
    if draft.to.len() + draft.cc.len() + draft.bcc.len() > MAX_RECIPIENTS {
        return Err(ValidationError::new("recipients")
            .with_message(format!("at most {MAX_RECIPIENTS} recipients in all").into()));
    }
    Ok(())
}

/// A contact as the user writes it.
#[derive(Debug, Object, Validate)]
pub(crate) struct ContactRequest {
    /// Display name; blank means none.
    pub name: Option<DisplayName>,
    /// Addresses, 1 to 20.
    #[oai(validator(min_items = 1, max_items = 20))]
    pub addresses: Vec<AddressText>,
    /// ASCII-armored OpenPGP public keys, at most 10.
    #[oai(default, validator(max_items = 10))]
    pub public_keys: Vec<PublicKey>,
}

/// A draft as the user writes it. At most 100 recipients in all, across `to`, `cc` and `bcc`.
#[derive(Debug, Object, Validate)]
#[validate(schema(function = "recipient_total"))]
pub(crate) struct DraftRequest {
    /// Sender: one of the user's addresses (another one answers 403); the first one when
    /// absent.
    pub from: Option<AddressText>,
    /// Recipients.
    #[oai(default, validator(max_items = 100))]
    pub to: Vec<AddressText>,
    /// Carbon copies.
    #[oai(default, validator(max_items = 100))]
    pub cc: Vec<AddressText>,
    /// Blind carbon copies; never shown to other recipients.
    #[oai(default, validator(max_items = 100))]
    pub bcc: Vec<AddressText>,
    /// Subject; none when absent.
    pub subject: Option<Line>,
    /// Plain-text body, at most 1,000,000 characters.
    #[oai(default, validator(max_length = 1000000))]
    pub body: String,
    /// The message this replies to.
    pub in_reply_to: Option<Uuid>,
    /// The message this forwards.
    pub forward_of: Option<Uuid>,
}

/// Options of a reply.
#[derive(Debug, Object, Validate)]
pub(crate) struct ReplyRequest {
    /// Reply to everyone, not just the author.
    #[oai(default)]
    pub all: bool,
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
enum CreatedContact {
    /// Created.
    #[oai(status = 201)]
    Created(Json<ContactView>),
}

#[derive(ApiResponse)]
enum CreatedDraft {
    /// Created.
    #[oai(status = 201)]
    Created(Json<DraftView>),
}

fn contact_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::conflict(m),
        other => other.into(),
    }
}

/// The sender the draft asks for, which must be one of the user's own addresses.
fn sender(user: &User, from: Option<&str>) -> Result<Address, ApiError> {
    match from.filter(|f| !f.trim().is_empty()) {
        Some(f) => {
            let a = Address::parse(f)
                .map_err(|_| ApiError::bad_request(format!("from: {f:?} is not an address")))?;
            if user.addresses.contains(&a) {
                Ok(a)
            } else {
                Err(ApiError::forbidden(format!("you cannot send as {a}")))
            }
        }
        None => user
            .addresses
            .first()
            .cloned()
            .ok_or_else(|| ApiError::forbidden("the account has no address to send from")),
    }
}

async fn draft_from_request(
    state: &AppState,
    user: &User,
    id: DraftId,
    body: DraftRequest,
) -> Result<Draft, ApiError> {
    let from = sender(user, body.from.as_deref())?;
    for (field, reference) in [
        ("in_reply_to", body.in_reply_to),
        ("forward_of", body.forward_of),
    ] {
        if let Some(r) = reference
            && state
                .store
                .get_message(user.id, MessageId(r))
                .await?
                .is_none()
        {
            return Err(ApiError::not_found(format!("{field}: no such message")));
        }
    }
    let draft = Draft {
        id,
        user_id: user.id,
        from: Some(from),
        to: parse_all(&body.to),
        cc: parse_all(&body.cc),
        bcc: parse_all(&body.bcc),
        subject: body.subject.map(Line::into_inner).unwrap_or_default(),
        body: body.body,
        in_reply_to: body.in_reply_to.map(MessageId),
        forward_of: body.forward_of.map(MessageId),
        updated_at: Utc::now(),
    };
    Ok(draft)
}

/// The view of a saved draft, with its attachments.
async fn draft_view(state: &AppState, d: &Draft) -> Result<DraftView, ApiError> {
    let attachments = state.store.list_draft_attachments(d.user_id, d.id).await?;
    Ok(DraftView::new(d, &attachments))
}

/// One of the user's drafts; 404 for another user's, like a missing one.
pub(crate) async fn draft_of(state: &AppState, user: UserId, id: Uuid) -> Result<Draft, ApiError> {
    state
        .store
        .get_draft(user, DraftId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such draft"))
}

fn prefixed(prefix: &str, subject: Option<&str>) -> String {
    let s = subject.unwrap_or_default().trim();
    if s.to_lowercase().starts_with(&prefix.to_lowercase()) {
        s.to_string()
    } else {
        format!("{prefix} {s}").trim_end().to_string()
    }
}

fn quoted(text: Option<&str>) -> String {
    let body = text.unwrap_or_default();
    let mut out = String::from("\n\n");
    for line in body.lines().take(2000) {
        out.push_str("> ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Contacts, drafts and sending.
#[derive(Default)]
pub struct ComposeApi;

#[OpenApi]
impl ComposeApi {
    /// The user's contacts, learned from correspondence and edited by hand.
    #[oai(path = "/contacts", method = "get", tag = "ApiTags::Contacts")]
    async fn contacts(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        cursor: Query<Option<IdCursor>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> Result<Json<ContactPage>, ApiError> {
        let list = state
            .store
            .list_contacts(
                auth.0.user_id,
                page(cursor.0.map(IdCursor::into_inner), limit.0),
            )
            .await?;
        let now = Utc::now();
        Ok(Json(ContactPage {
            items: list
                .items
                .iter()
                .map(|c| ContactView::new(c, now))
                .collect(),
            next: list.next,
        }))
    }

    /// Adds a contact.
    #[oai(path = "/contacts", method = "post", tag = "ApiTags::Contacts")]
    async fn create_contact(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: JsonBody<ContactRequest>,
    ) -> Result<CreatedContact, ApiError> {
        let contact = Contact {
            id: ContactId::new_random(),
            user_id: auth.0.user_id,
            name: body
                .name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .map(str::to_string),
            addresses: parse_all(&body.addresses),
            public_keys: body.public_keys.iter().map(|k| k.to_string()).collect(),
            history: ContactHistory {
                first_seen: Some(Utc::now()),
                ..ContactHistory::default()
            },
            autocrypt: None,
        };
        let saved = state
            .store
            .save_contact(contact)
            .await
            .map_err(contact_conflict)?;
        Ok(CreatedContact::Created(Json(ContactView::new(
            &saved,
            Utc::now(),
        ))))
    }

    /// One contact.
    #[oai(path = "/contacts/:id", method = "get", tag = "ApiTags::Contacts")]
    async fn contact(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<Json<ContactView>, ApiError> {
        let c = state
            .store
            .get_contact(auth.0.user_id, ContactId(id.0))
            .await?
            .ok_or_else(|| ApiError::not_found("no such contact"))?;
        Ok(Json(ContactView::new(&c, Utc::now())))
    }

    /// Replaces a contact's name, addresses and keys.
    #[oai(path = "/contacts/:id", method = "put", tag = "ApiTags::Contacts")]
    async fn update_contact(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<ContactRequest>,
    ) -> Result<Json<ContactView>, ApiError> {
        let user = auth.0.user_id;
        // What mail taught about the contact (history, Autocrypt key) is kept.
        let Some(existing) = state.store.get_contact(user, ContactId(id.0)).await? else {
            return Err(ApiError::not_found("no such contact"));
        };
        let contact = Contact {
            id: ContactId(id.0),
            user_id: user,
            name: body
                .name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .map(str::to_string),
            addresses: parse_all(&body.addresses),
            public_keys: body.public_keys.iter().map(|k| k.to_string()).collect(),
            history: existing.history,
            autocrypt: existing.autocrypt,
        };
        let saved = state
            .store
            .save_contact(contact)
            .await
            .map_err(contact_conflict)?;
        Ok(Json(ContactView::new(&saved, Utc::now())))
    }

    /// Deletes a contact.
    #[oai(path = "/contacts/:id", method = "delete", tag = "ApiTags::Contacts")]
    async fn delete_contact(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        if state
            .store
            .delete_contact(auth.0.user_id, ContactId(id.0))
            .await?
        {
            Ok(NoContent::Done)
        } else {
            Err(ApiError::not_found("no such contact"))
        }
    }

    /// The user's drafts, most recently changed first.
    #[oai(path = "/drafts", method = "get", tag = "ApiTags::Compose")]
    async fn drafts(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        cursor: Query<Option<ListCursor>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> Result<Json<DraftPage>, ApiError> {
        let list = state
            .store
            .list_drafts(
                auth.0.user_id,
                page(cursor.0.map(ListCursor::into_inner), limit.0),
            )
            .await?;
        let items =
            futures::future::try_join_all(list.items.iter().map(|d| draft_view(&state, d))).await?;
        Ok(Json(DraftPage {
            items,
            next: list.next,
        }))
    }

    /// Starts a draft.
    #[oai(path = "/drafts", method = "post", tag = "ApiTags::Compose")]
    async fn create_draft(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: JsonBody<DraftRequest>,
    ) -> Result<CreatedDraft, ApiError> {
        let user = current_user(&state, auth.0.user_id).await?;
        let draft = draft_from_request(&state, &user, DraftId::new_random(), body.0).await?;
        let saved = state.store.save_draft(draft).await?;
        Ok(CreatedDraft::Created(Json(DraftView::new(&saved, &[]))))
    }

    /// One draft.
    #[oai(path = "/drafts/:id", method = "get", tag = "ApiTags::Compose")]
    async fn draft(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<Json<DraftView>, ApiError> {
        let d = draft_of(&state, auth.0.user_id, id.0).await?;
        Ok(Json(draft_view(&state, &d).await?))
    }

    /// Replaces a draft's content.
    #[oai(path = "/drafts/:id", method = "put", tag = "ApiTags::Compose")]
    async fn update_draft(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<DraftRequest>,
    ) -> Result<Json<DraftView>, ApiError> {
        let user = current_user(&state, auth.0.user_id).await?;
        draft_of(&state, user.id, id.0).await?;
        let draft = draft_from_request(&state, &user, DraftId(id.0), body.0).await?;
        let saved = state.store.save_draft(draft).await?;
        Ok(Json(draft_view(&state, &saved).await?))
    }

    /// Discards a draft.
    #[oai(path = "/drafts/:id", method = "delete", tag = "ApiTags::Compose")]
    async fn delete_draft(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        if state
            .store
            .delete_draft(auth.0.user_id, DraftId(id.0))
            .await?
        {
            Ok(NoContent::Done)
        } else {
            Err(ApiError::not_found("no such draft"))
        }
    }

    /// Starts a reply to a message: addressed to its author (or Reply-To), or with `all` to
    /// everyone else too, quoted, and threaded with In-Reply-To and References when sent.
    #[oai(
        path = "/messages/:id/reply",
        method = "post",
        tag = "ApiTags::Compose"
    )]
    async fn reply(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: JsonBody<ReplyRequest>,
    ) -> Result<CreatedDraft, ApiError> {
        let user = current_user(&state, auth.0.user_id).await?;
        let m = message_of(&state, user.id, id.0).await?;
        let people = |role: ParticipantRole| -> Vec<Address> {
            m.content
                .participants
                .iter()
                .filter(|p| p.role == role)
                .filter_map(|p| p.address.as_deref().and_then(|a| Address::parse(a).ok()))
                .filter(|a| !user.addresses.contains(a))
                .collect()
        };
        let mut to = people(ParticipantRole::ReplyTo);
        if to.is_empty() {
            to = people(ParticipantRole::From);
        }
        let mut cc = Vec::new();
        if body.all {
            for a in people(ParticipantRole::To)
                .into_iter()
                .chain(people(ParticipantRole::Cc))
            {
                if !to.contains(&a) && !cc.contains(&a) {
                    cc.push(a);
                }
            }
        }
        // Replying to our own sent copy goes to its recipients again.
        if to.is_empty() && m.flags.sent {
            to = people(ParticipantRole::To);
        }
        let from = m
            .content
            .participants
            .iter()
            .filter(|p| matches!(p.role, ParticipantRole::To | ParticipantRole::Cc))
            .filter_map(|p| p.address.as_deref().and_then(|a| Address::parse(a).ok()))
            .find(|a| user.addresses.contains(a))
            .or_else(|| user.addresses.first().cloned());
        let draft = Draft {
            id: DraftId::new_random(),
            user_id: user.id,
            from,
            to,
            cc,
            bcc: Vec::new(),
            subject: prefixed("Re:", m.content.subject.as_deref()),
            body: quoted(m.content.text_body.as_deref()),
            in_reply_to: Some(m.id),
            forward_of: None,
            updated_at: Utc::now(),
        };
        let saved = state.store.save_draft(draft).await?;
        Ok(CreatedDraft::Created(Json(DraftView::new(&saved, &[]))))
    }

    /// Starts a forward of a message, which is attached whole when sent.
    #[oai(
        path = "/messages/:id/forward",
        method = "post",
        tag = "ApiTags::Compose"
    )]
    async fn forward(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<CreatedDraft, ApiError> {
        let user = current_user(&state, auth.0.user_id).await?;
        let m = message_of(&state, user.id, id.0).await?;
        let draft = Draft {
            id: DraftId::new_random(),
            user_id: user.id,
            from: user.addresses.first().cloned(),
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: prefixed("Fwd:", m.content.subject.as_deref()),
            body: String::new(),
            in_reply_to: None,
            forward_of: Some(m.id),
            updated_at: Utc::now(),
        };
        let saved = state.store.save_draft(draft).await?;
        Ok(CreatedDraft::Created(Json(DraftView::new(&saved, &[]))))
    }

    /// Sends a draft with its attachments through the configured relay, stores the sent copy
    /// (read, marked sent, in the replied discussion) and discards the draft and its files.
    /// When the relay fails, the draft and its files are kept.
    ///
    /// Each user may send a limited number of messages per hour (100 by default); past it
    /// the answer is 429 with `Retry-After` and the draft is kept. Every attempt that
    /// reaches the relay counts, failed ones included.
    #[oai(path = "/drafts/:id/send", method = "post", tag = "ApiTags::Compose")]
    async fn send(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> Result<Json<SendResult>, ApiError> {
        let user = current_user(&state, auth.0.user_id).await?;
        let draft = draft_of(&state, user.id, id.0).await?;
        let from = sender(&user, draft.from.as_ref().map(Address::as_str))?;
        let reply_to = match draft.in_reply_to {
            Some(r) => state.store.get_message(user.id, r).await?,
            None => None,
        };
        let forward = match draft.forward_of {
            Some(f) => match state.store.get_message(user.id, f).await? {
                Some(m) => {
                    let raw = state
                        .store
                        .get_raw(user.id, f)
                        .await?
                        .ok_or_else(|| ApiError::not_found("forwarded message is gone"))?;
                    Some((m, raw))
                }
                None => return Err(ApiError::not_found("forwarded message is gone")),
            },
            None => None,
        };
        let files = draft_files::load_all(&state, &draft).await?;
        let own_key = state.store.autocrypt_key(user.id).await?;
        let ctx = Context {
            reply_to: reply_to.as_ref(),
            forward: forward.as_ref().map(|(m, raw)| (m, raw.clone())),
            attachments: &files,
            autocrypt: own_key.as_ref(),
        };
        // The request itself is well formed; it is the stored draft that cannot be sent yet
        // (no recipient, say), which is a conflict with the resource's state, not a bad request.
        let composed = compose(&draft, &from, &ctx, &state.mailer.message_id_domain)
            .map_err(|e| ApiError::conflict(e.to_string()))?;
        send_allowed(&state, user.id).await?;
        state
            .mailer
            .send(&from, &composed)
            .await
            .map_err(|e| match e {
                MailError::Invalid(m) => ApiError::bad_request(m),
                MailError::Refused(m) => ApiError::bad_gateway(m),
                MailError::Unavailable(m) => {
                    tracing::warn!(error = %palisade_model::without_addresses(&m), "relay unavailable");
                    ApiError::unavailable("the mail relay is unavailable; the draft is kept")
                }
            })?;
        tracing::info!(user = %user.id, recipients = composed.recipients.len(), "message sent");

        // The message has left; from here on failures must not make the client send again.
        // The copy goes the way received mail goes: parsed off the async threads, stored,
        // queued for indexing, announced to the user's other devices.
        let copy = MailboxCopy {
            user: user.id,
            envelope: palisade_model::Envelope {
                mail_from: Some(from.to_string()),
                rcpt_to: from.to_string(),
                received_at: Utc::now(),
            },
            flags: Flags {
                seen: true,
                sent: true,
                ..Flags::default()
            },
        };
        let stored = match state
            .pipeline
            .store_one(Bytes::from(composed.sent_copy), copy)
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %palisade_model::without_addresses(&error_chain(&e)), "message sent but its copy could not be stored");
                None
            }
        };
        if let Some(parent) = &reply_to {
            let answered = FlagsPatch {
                answered: Some(true),
                ..FlagsPatch::default()
            };
            if let Err(e) = state.store.update_flags(user.id, parent.id, answered).await {
                tracing::warn!(error = %e, "could not mark the original answered");
            }
        }
        if let Err(e) = state.store.delete_draft(user.id, draft.id).await {
            tracing::warn!(error = %e, "sent draft not discarded");
        }
        Ok(Json(SendResult {
            message_id: stored.map(|m| m.0),
            message_id_header: composed.message_id,
        }))
    }
}

/// Window of the per-user send limit.
const SEND_WINDOW: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Counts one message against the user's hourly send limit; 429 with `Retry-After` past it.
async fn send_allowed(state: &AppState, user: UserId) -> Result<(), ApiError> {
    let limit = state.config.messages_sent_per_hour;
    let decision = state
        .cache
        .hit(
            &palisade_cache::scoped_key(&user.to_string(), "limit", "send"),
            limit,
            SEND_WINDOW,
        )
        .await?;
    if decision.allowed {
        return Ok(());
    }
    tracing::info!(%user, "send refused: hourly limit reached");
    Err(ApiError::TooManyRequests(
        ErrorBody::json(
            "rate_limited",
            format!("at most {limit} messages may be sent per hour; the draft is kept"),
        ),
        decision.retry_after.as_secs().max(1),
    ))
}
