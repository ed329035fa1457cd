//! "Always load remote content" per sender and per domain: the user's settings, and when they
//! apply. They apply only to mail whose sender is proven: DMARC, or DKIM aligned with the From
//! domain, passed in the Authentication-Results of our own MTA (the only ones the privacy
//! features believe), and the message names a single From address. A forged or unauthenticated sender never gets its
//! remote content loaded, whatever the user trusted.

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::rules::{AddressText, DomainName};
use crate::types::RemoteTrustView;
use crate::{AppState, Auth};
use palisade_model::{Address, Message, UserId};
use palisade_store::{RemoteTrustEntry, StoreError, TrustKind};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::sync::Arc;
use validator::Validate;

/// The From address of `m` when the message proves it: the parser's verdict from our own
/// MTA's results (see `PrivacyFeatures::authenticated_sender`), the one home of that rule.
pub(crate) fn authenticated_sender(m: &Message) -> Option<String> {
    m.content.privacy.authenticated_sender.clone()
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

/// The setting for a sender, as stored: the address, normalized.
fn sender_entry(address: &AddressText) -> Result<RemoteTrustEntry, ApiError> {
    let address =
        Address::parse(address).map_err(|_| ApiError::invalid("address: not a mail address"))?;
    Ok(RemoteTrustEntry {
        kind: TrustKind::Sender,
        value: address.as_str().to_string(),
    })
}

/// The setting for a domain, as stored: lowercase.
fn domain_entry(domain: &DomainName) -> RemoteTrustEntry {
    RemoteTrustEntry {
        kind: TrustKind::Domain,
        value: domain.to_ascii_lowercase(),
    }
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

/// A sender to always load remote content from.
#[derive(Debug, Object, Validate)]
pub(crate) struct TrustedSenderRequest {
    /// The sender's address.
    pub address: AddressText,
}

/// A domain to always load remote content from.
#[derive(Debug, Object, Validate)]
pub(crate) struct TrustedDomainRequest {
    /// The domain, for example `shop.example`.
    pub domain: DomainName,
}

#[derive(ApiResponse)]
enum Removed {
    /// Removed.
    #[oai(status = 204)]
    Done,
}

/// "Always load remote content" settings.
#[derive(Default)]
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

    /// Always loads remote content of authenticated mail from a sender; adding one twice is
    /// harmless. 409 past 1000 settings.
    #[oai(
        path = "/remote/trusted/senders",
        method = "post",
        tag = "ApiTags::Remote"
    )]
    async fn add_sender(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: JsonBody<TrustedSenderRequest>,
    ) -> Result<Json<RemoteTrustView>, ApiError> {
        add(&state, auth.0.user_id, sender_entry(&body.address)?).await
    }

    /// Always loads remote content of authenticated mail from every sender of a domain;
    /// adding one twice is harmless. 409 past 1000 settings.
    #[oai(
        path = "/remote/trusted/domains",
        method = "post",
        tag = "ApiTags::Remote"
    )]
    async fn add_domain(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: JsonBody<TrustedDomainRequest>,
    ) -> Result<Json<RemoteTrustView>, ApiError> {
        add(&state, auth.0.user_id, domain_entry(&body.domain)).await
    }

    /// Stops always loading remote content from a sender.
    #[oai(
        path = "/remote/trusted/senders/:address",
        method = "delete",
        tag = "ApiTags::Remote"
    )]
    async fn remove_sender(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// The sender's address.
        address: Path<AddressText>,
    ) -> Result<Removed, ApiError> {
        remove(&state, auth.0.user_id, sender_entry(&address.0)?).await
    }

    /// Stops always loading remote content from a domain.
    #[oai(
        path = "/remote/trusted/domains/:domain",
        method = "delete",
        tag = "ApiTags::Remote"
    )]
    async fn remove_domain(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// The domain.
        domain: Path<DomainName>,
    ) -> Result<Removed, ApiError> {
        remove(&state, auth.0.user_id, domain_entry(&domain.0)).await
    }
}

async fn add(
    state: &AppState,
    user: UserId,
    entry: RemoteTrustEntry,
) -> Result<Json<RemoteTrustView>, ApiError> {
    match state.store.add_remote_trust(user, &entry).await {
        Ok(_) => Ok(Json(entry.into())),
        Err(StoreError::Conflict(reason)) => Err(ApiError::conflict(reason)),
        Err(e) => Err(e.into()),
    }
}

async fn remove(
    state: &AppState,
    user: UserId,
    entry: RemoteTrustEntry,
) -> Result<Removed, ApiError> {
    if state.store.remove_remote_trust(user, &entry).await? {
        Ok(Removed::Done)
    } else {
        Err(ApiError::not_found("no such setting"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_stored_lowercase() {
        let address = AddressText::new("News@Shop.Example").expect("valid address");
        assert_eq!(
            sender_entry(&address).expect("entry").value,
            "news@shop.example"
        );
        let domain = DomainName::new("Shop.Example").expect("valid domain");
        assert_eq!(domain_entry(&domain).value, "shop.example");
        for bad in [
            "shop",
            "-x.example",
            "a b.example",
            "x@shop.example",
            "",
            "shop.example.",
        ] {
            assert!(DomainName::new(bad).is_err(), "{bad}");
        }
    }
}
