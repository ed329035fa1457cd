//! What mail taught about a contact (its history and Autocrypt key), stored by every backend
//! as one JSON document beside the contact's row, so a new fact needs no new column.

use crate::StoreError;
use palisade_model::{AutocryptPeer, Contact, ContactHistory};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct StateRef<'a> {
    history: &'a ContactHistory,
    autocrypt: &'a Option<AutocryptPeer>,
}

#[derive(Deserialize)]
struct State {
    #[serde(default)]
    history: ContactHistory,
    #[serde(default)]
    autocrypt: Option<AutocryptPeer>,
}

/// The contact's state as stored.
pub(crate) fn json(contact: &Contact) -> Result<String, StoreError> {
    serde_json::to_string(&StateRef {
        history: &contact.history,
        autocrypt: &contact.autocrypt,
    })
    .map_err(|e| StoreError::Corrupt(format!("contact state: {e}")))
}

/// Fills the contact's state from its stored document; none (a contact stored before the
/// state was) leaves it empty.
pub(crate) fn apply(contact: &mut Contact, stored: Option<&str>) -> Result<(), StoreError> {
    let Some(text) = stored else {
        return Ok(());
    };
    let state: State = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("contact {} state: {e}", contact.id)))?;
    contact.history = state.history;
    contact.autocrypt = state.autocrypt;
    Ok(())
}
