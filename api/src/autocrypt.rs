//! The user's own Autocrypt key: set once, then announced in the `Autocrypt:` header of
//! every message they send, so correspondents' mail programs can encrypt to them.

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::types::{OwnAutocryptView, PreferEncryptView};
use crate::{AppState, Auth};
use chrono::{DateTime, Utc};
use palisade_model::{Address, Contact, PrivacyFeatures, SocialFacts, UserId};
use palisade_model::{AutocryptKey, OwnAutocrypt};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::collections::HashMap;
use std::sync::Arc;

/// The key a user sets.
#[derive(Debug, Object, validator::Validate)]
pub(crate) struct AutocryptRequest {
    /// The user's OpenPGP v4 transferable public key (never a secret key): ASCII-armored,
    /// or the binary key in base64. At most 16 KiB once decoded.
    #[oai(validator(min_length = 1, max_length = 24000))]
    pub key: String,
    /// Whether correspondents are asked to encrypt by default; `nopreference` when absent.
    pub prefer_encrypt: Option<PreferEncryptView>,
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
enum OwnKey {
    /// The key the user's mail announces.
    #[oai(status = 200)]
    Set(Json<OwnAutocryptView>),
    /// The user has set no key: their mail carries no Autocrypt header.
    #[oai(status = 204)]
    Unset,
}

/// The user's Autocrypt setup.
#[derive(Default)]
pub struct AutocryptApi;

#[OpenApi]
impl AutocryptApi {
    /// The key the user's outgoing mail announces, if any.
    #[oai(path = "/me/autocrypt", method = "get")]
    async fn own_key(&self, state: Data<&Arc<AppState>>, auth: Auth) -> Result<OwnKey, ApiError> {
        Ok(match state.store.autocrypt_key(auth.0.user_id).await? {
            Some(own) => OwnKey::Set(Json((&own).into())),
            None => OwnKey::Unset,
        })
    }

    /// Sets the public key the user's outgoing mail announces in its `Autocrypt:` header
    /// (Autocrypt Level 1). The key is checked (an OpenPGP v4 public key with a user id,
    /// at most 16 KiB) and answered with its fingerprint; 400 otherwise.
    #[oai(path = "/me/autocrypt", method = "put")]
    async fn set_key(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: JsonBody<AutocryptRequest>,
    ) -> Result<Json<OwnAutocryptView>, ApiError> {
        let body = body.0;
        let key = AutocryptKey::parse(&body.key)
            .map_err(|e| ApiError::bad_request(format!("key: {e}")))?;
        let own = OwnAutocrypt {
            key,
            prefer_encrypt: body
                .prefer_encrypt
                .unwrap_or(PreferEncryptView::NoPreference)
                .into(),
        };
        if !state
            .store
            .set_autocrypt_key(auth.0.user_id, Some(&own))
            .await?
        {
            return Err(ApiError::unauthorized("the account no longer exists"));
        }
        Ok(Json((&own).into()))
    }

    /// Removes the user's key: their mail no longer carries an Autocrypt header.
    #[oai(path = "/me/autocrypt", method = "delete")]
    async fn remove_key(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<NoContent, ApiError> {
        state.store.set_autocrypt_key(auth.0.user_id, None).await?;
        Ok(NoContent::Done)
    }
}

/// The social facts of messages, from the user's address book: each authenticated sender's
/// contact is looked up once, however many of the messages shown are theirs.
pub(crate) struct Social<'a> {
    state: &'a AppState,
    user: UserId,
    contacts: HashMap<String, Option<Contact>>,
}

impl<'a> Social<'a> {
    /// An empty lookup for `user`'s messages.
    pub(crate) fn new(state: &'a AppState, user: UserId) -> Self {
        Social {
            state,
            user,
            contacts: HashMap::new(),
        }
    }

    /// The social facts of a message with `features` that arrived at `arrived`.
    pub(crate) async fn facts(
        &mut self,
        features: &PrivacyFeatures,
        arrived: DateTime<Utc>,
    ) -> Result<SocialFacts, ApiError> {
        let Some(sender) = features.authenticated_sender.as_deref() else {
            return Ok(SocialFacts::default());
        };
        if !self.contacts.contains_key(sender) {
            let contact = match Address::parse(sender) {
                Ok(address) => self.state.store.find_contact(self.user, &address).await?,
                Err(_) => None,
            };
            self.contacts.insert(sender.to_string(), contact);
        }
        let contact = self.contacts.get(sender).and_then(Option::as_ref);
        Ok(SocialFacts::of(features, contact, arrived))
    }
}
