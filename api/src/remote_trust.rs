//! "Always load remote content" per sender and per domain: the user's settings, and when they
//! apply. They apply only to mail whose sender is proven: DMARC passed in the
//! Authentication-Results of our own MTA (the only ones the privacy features believe) and the
//! message names a single From address. A forged or unauthenticated sender never gets its
//! remote content loaded, whatever the user trusted.

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::types::{RemoteTrustView, TrustKindView};
use crate::{AppState, Auth};
use palisade_model::{Address, Message, ParticipantRole, UserId};
use palisade_store::{RemoteTrustEntry, StoreError, TrustKind};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::sync::Arc;
use validator::Validate;

/// The From address of `m` when the message proves it, lowercase.
pub(crate) fn authenticated_sender(m: &Message) -> Option<String> {
    let privacy = &m.content.privacy;
    let dmarc_pass = privacy
        .auth_results
        .as_ref()
        .and_then(|a| a.dmarc.as_deref())
        == Some("pass");
    if !dmarc_pass || privacy.multiple_from {
        return None;
    }
    let mut from = m
        .content
        .participants
        .iter()
        .filter(|p| p.role == ParticipantRole::From);
    let sender = from.next()?.address.as_deref()?;
    if from.next().is_some() {
        return None;
    }
    Address::parse(sender).ok().map(|a| a.as_str().to_string())
}

/// The domain of a normalized address.
fn domain_of(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d)
}

/// Which of the user's settings makes remote content of mail from `sender` load, if any; the
/// sender's own setting wins over its domain's.
pub(crate) async fn trusted_by(
    state: &AppState,
    user: UserId,
    sender: &str,
) -> Result<Option<TrustKind>, ApiError> {
    let entries = state.store.list_remote_trust(user).await?;
    let has =
        |kind: TrustKind, value: &str| entries.iter().any(|e| e.kind == kind && e.value == value);
    if has(TrustKind::Sender, sender) {
        return Ok(Some(TrustKind::Sender));
    }
    Ok(domain_of(sender)
        .filter(|d| has(TrustKind::Domain, d))
        .map(|_| TrustKind::Domain))
}

/// The setting as stored: a valid address or domain, lowercase.
fn normalized(kind: TrustKindView, value: &str) -> Result<RemoteTrustEntry, ApiError> {
    let value = match kind {
        TrustKindView::Sender => Address::parse(value)
            .map_err(|_| ApiError::invalid("value: not an email address"))?
            .as_str()
            .to_string(),
        TrustKindView::Domain => {
            let domain = value.trim().trim_end_matches('.').to_lowercase();
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            if domain.len() > 253 || !domain.contains('.') || !domain.split('.').all(label_ok) {
                return Err(ApiError::invalid("value: not a domain name"));
            }
            domain
        }
    };
    Ok(RemoteTrustEntry {
        kind: kind.into(),
        value,
    })
}

impl From<RemoteTrustEntry> for RemoteTrustView {
    fn from(e: RemoteTrustEntry) -> Self {
        RemoteTrustView {
            kind: e.kind.into(),
            value: e.value,
        }
    }
}

#[derive(Tags)]
enum ApiTags {
    /// Remote content of messages.
    Remote,
}

/// A setting to add.
#[derive(Debug, Object, Validate)]
pub(crate) struct RemoteTrustRequest {
    /// A sender address or a whole domain.
    pub kind: TrustKindView,
    /// The address (`news@shop.example`) or domain (`shop.example`).
    #[validate(length(min = 1, max = 254))]
    #[oai(validator(min_length = 1, max_length = 254))]
    pub value: String,
}

#[derive(ApiResponse)]
enum Removed {
    /// Removed.
    #[oai(status = 204)]
    Done,
}

/// "Always load remote content" settings.
pub struct RemoteTrustApi;

#[OpenApi]
impl RemoteTrustApi {
    /// The senders and domains whose authenticated mail shows its remote content at once,
    /// senders first.
    #[oai(path = "/remote/trusted", method = "get", tag = "ApiTags::Remote")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<Json<Vec<RemoteTrustView>>, ApiError> {
        let entries = state.store.list_remote_trust(auth.0.user_id).await?;
        Ok(Json(entries.into_iter().map(Into::into).collect()))
    }

    /// Always loads remote content of authenticated mail from a sender or a domain; adding
    /// one twice is harmless. 409 past 1000 settings.
    #[oai(path = "/remote/trusted", method = "post", tag = "ApiTags::Remote")]
    async fn add(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: JsonBody<RemoteTrustRequest>,
    ) -> Result<Json<RemoteTrustView>, ApiError> {
        let entry = normalized(body.kind, &body.value)?;
        match state.store.add_remote_trust(auth.0.user_id, &entry).await {
            Ok(_) => Ok(Json(entry.into())),
            Err(StoreError::Conflict(reason)) => Err(ApiError::conflict(reason)),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops always loading remote content from a sender or domain.
    #[oai(
        path = "/remote/trusted/:kind/:value",
        method = "delete",
        tag = "ApiTags::Remote"
    )]
    async fn remove(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        kind: Path<TrustKindView>,
        /// The address or domain.
        #[oai(validator(min_length = 1, max_length = 254))]
        value: Path<String>,
    ) -> Result<Removed, ApiError> {
        let entry = normalized(kind.0, &value.0)?;
        if state
            .store
            .remove_remote_trust(auth.0.user_id, &entry)
            .await?
        {
            Ok(Removed::Done)
        } else {
            Err(ApiError::not_found("no such setting"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_normalized_and_checked() {
        let n = |kind, v: &str| normalized(kind, v).map(|e| e.value).ok();
        assert_eq!(
            n(TrustKindView::Sender, " News@Shop.Example ").as_deref(),
            Some("news@shop.example")
        );
        assert_eq!(
            n(TrustKindView::Domain, "Shop.Example.").as_deref(),
            Some("shop.example")
        );
        for bad in ["shop", "-x.example", "a b.example", "x@shop.example", ""] {
            assert_eq!(n(TrustKindView::Domain, bad), None, "{bad}");
        }
        assert_eq!(n(TrustKindView::Sender, "no-at-sign"), None);
    }
}
