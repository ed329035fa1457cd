//! Recipient autocompletion: the user's contacts whose name or address starts with what
//! is being typed.

use crate::error::ApiError;
use crate::{AppState, Auth};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use std::sync::Arc;
use uuid::Uuid;

/// Suggestions returned when the client names no limit.
const DEFAULT_SUGGESTIONS: u32 = 10;

#[derive(Tags)]
enum ApiTags {
    /// The address book.
    Contacts,
}

/// One address to offer as a recipient.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct ContactSuggestion {
    /// The contact's name, when it has one.
    pub name: Option<String>,
    /// The address.
    pub address: String,
    /// The contact it belongs to.
    pub contact_id: Uuid,
}

/// Autocompletion endpoints.
#[derive(Default)]
pub struct SuggestApi;

#[OpenApi]
impl SuggestApi {
    /// Contact addresses for a recipient being typed: those of contacts with a name word
    /// starting with `q`, and addresses starting with `q` (so the start of the local part
    /// or the whole address), ignoring case. Best first: by the name word or address that
    /// matched, alphabetically.
    #[oai(
        path = "/contacts/autocomplete",
        method = "get",
        tag = "ApiTags::Contacts"
    )]
    async fn autocomplete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// What has been typed, 1 to 100 characters.
        #[oai(validator(min_length = 1, max_length = 100))]
        q: Query<String>,
        /// Most suggestions, 1 to 20 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "20")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<ContactSuggestion>>, ApiError> {
        let limit = limit.0.unwrap_or(DEFAULT_SUGGESTIONS).clamp(1, 20) as usize;
        let found = state
            .store
            .autocomplete_contacts(auth.0.user_id, &q.0, limit)
            .await?;
        Ok(Json(
            found
                .into_iter()
                .map(|m| ContactSuggestion {
                    name: m.name,
                    address: m.address.to_string(),
                    contact_id: m.contact_id.0,
                })
                .collect(),
        ))
    }
}
