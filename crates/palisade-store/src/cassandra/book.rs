//! The address book on Cassandra. Contact addresses are unique per user through a claim
//! table written with `IF NOT EXISTS` before the contact row. A claim whose holder does not use
//! the address (a write that failed half-way) is taken over once it is older than the grace
//! period, and readers check the row, so a stale claim never makes a contact findable by an
//! address it lost.

use super::{CassandraStore, Claim, fetch_size, json, page_of, to_json};
use crate::AddressBook;
use crate::suggest::{ContactMatch, Matches, normalize_prefix};
use crate::{Page, PageOf, StoreError};
use async_trait::async_trait;
use palisade_model::{Address, Contact, ContactId, UserId};
use uuid::Uuid;

type ContactRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn contact(
    user: UserId,
    (id, name, addresses, keys, state): ContactRow,
) -> Result<Contact, StoreError> {
    let mut contact = Contact {
        id: id
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("contact id {id}: {e}")))?,
        user_id: user,
        name,
        addresses: addresses
            .map(|a| json(&a, "contact addresses"))
            .transpose()?
            .unwrap_or_default(),
        public_keys: keys
            .map(|k| json(&k, "contact keys"))
            .transpose()?
            .unwrap_or_default(),
        history: Default::default(),
        autocrypt: None,
    };
    crate::contact_state::apply(&mut contact, state.as_deref())?;
    Ok(contact)
}

/// Contacts are ordered by the text of their id, like in the embedded store; the cursor is
/// the last id of the page.
pub(super) async fn list_contacts(
    store: &CassandraStore,
    user: UserId,
    page: Page,
) -> Result<PageOf<Contact>, StoreError> {
    let st = store.statements().await?;
    let limit = page.limit.max(1);
    let fetch = fetch_size(limit);
    let rows: Vec<ContactRow> = match page.after.as_deref() {
        None => store.all(&st.contacts_first, (user.0, fetch)).await?,
        Some(after) => {
            store
                .all(&st.contacts_after, (user.0, after, fetch))
                .await?
        }
    };
    let items = rows
        .into_iter()
        .map(|row| contact(user, row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(items, limit, |c: &Contact| c.id.to_string()))
}

/// One contact of the user's.
pub(super) async fn get_contact(
    store: &CassandraStore,
    user: UserId,
    id: ContactId,
) -> Result<Option<Contact>, StoreError> {
    let st = store.statements().await?;
    let row: Option<ContactRow> = store
        .first(&st.select_contact, (user.0, id.to_string()))
        .await?;
    row.map(|row| contact(user, row)).transpose()
}

/// Follows the address claim, and believes it only if the contact still lists the address.
pub(super) async fn find_contact(
    store: &CassandraStore,
    user: UserId,
    address: &Address,
) -> Result<Option<Contact>, StoreError> {
    let st = store.statements().await?;
    let row: Option<(Option<Uuid>,)> = store
        .first(&st.select_contact_address, (user.0, address.as_str()))
        .await?;
    let Some((Some(id),)) = row else {
        return Ok(None);
    };
    let found = get_contact(store, user, ContactId(id)).await?;
    Ok(found.filter(|c| c.addresses.contains(address)))
}

/// Claims every address, writes the contact, then releases the addresses it no longer has.
/// On a conflict the addresses claimed by this call are released again.
pub(super) async fn save_contact(
    store: &CassandraStore,
    contact: Contact,
) -> Result<Contact, StoreError> {
    let st = store.statements().await?;
    let user = contact.user_id;
    let id = contact.id.0;
    let before = get_contact(store, user, contact.id)
        .await?
        .map(|c| c.addresses)
        .unwrap_or_default();
    let mut claimed: Vec<&Address> = Vec::new();
    for address in &contact.addresses {
        if claimed.contains(&address) {
            continue;
        }
        if let Err(e) = claim_address(store, user, address, id).await {
            for taken in claimed.iter().filter(|a| !before.contains(a)) {
                store
                    .release(&st.release_contact_address, user.0, taken.as_str(), id)
                    .await;
            }
            return Err(e);
        }
        claimed.push(address);
    }
    store
        .execute(
            &st.insert_contact,
            (
                user.0,
                contact.id.to_string(),
                contact.name.as_deref(),
                to_json(&contact.addresses)?,
                to_json(&contact.public_keys)?,
                crate::contact_state::json(&contact)?,
            ),
        )
        .await?;
    for dropped in before.iter().filter(|a| !contact.addresses.contains(a)) {
        store
            .release(&st.release_contact_address, user.0, dropped.as_str(), id)
            .await;
    }
    Ok(contact)
}

/// Claims `address` for contact `id`; `Conflict` when another contact of the user has it.
async fn claim_address(
    store: &CassandraStore,
    user: UserId,
    address: &Address,
    id: Uuid,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let key = address.as_str();
    match store
        .claim(&st.claim_contact_address, user.0, key, id, "contact_id")
        .await?
    {
        Claim::Ours => Ok(()),
        Claim::Held { owner, since } => {
            let used = get_contact(store, user, ContactId(owner))
                .await?
                .is_some_and(|c| c.addresses.contains(address));
            if !used
                && store
                    .take_over(&st.take_over_contact_address, user.0, key, id, owner, since)
                    .await?
            {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!(
                    "address {address} belongs to another contact"
                )))
            }
        }
    }
}

/// Deletes the contact row, then releases its addresses.
pub(super) async fn delete_contact(
    store: &CassandraStore,
    user: UserId,
    id: ContactId,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    let Some(existing) = get_contact(store, user, id).await? else {
        return Ok(false);
    };
    store
        .execute(&st.delete_contact, (user.0, id.to_string()))
        .await?;
    for address in &existing.addresses {
        store
            .release(&st.release_contact_address, user.0, address.as_str(), id.0)
            .await;
    }
    Ok(true)
}

/// Most contacts one autocompletion reads. The contacts partition is scanned rather than
/// indexed by prefix: a user has at most a few thousand contacts, whose names and
/// addresses (not their keys) make a few hundred kilobytes read in pages of 500, which
/// costs less than keeping a second table in step with every contact change. Past this
/// bound, later contacts (by id) are not suggested.
const AUTOCOMPLETE_SCAN: usize = 10_000;

/// Scans the user's contacts (at most [`AUTOCOMPLETE_SCAN`]) for matches of `prefix`.
pub(super) async fn autocomplete_contacts(
    store: &CassandraStore,
    user: UserId,
    prefix: &str,
    limit: usize,
) -> Result<Vec<ContactMatch>, StoreError> {
    let prefix = normalize_prefix(prefix);
    if prefix.is_empty() {
        return Ok(Vec::new());
    }
    let st = store.statements().await?;
    let mut matches = Matches::default();
    let mut scanned = 0;
    store
        .scan(
            &st.scan_contact_names,
            (user.0,),
            st.scan_contact_names.get_page_size(),
            |(id, name, addresses): (String, Option<String>, Option<String>)| {
                let contact = self::contact(user, (id, name, addresses, None, None))?;
                matches.offer(&prefix, &contact);
                scanned += 1;
                Ok(scanned < AUTOCOMPLETE_SCAN)
            },
        )
        .await?;
    Ok(matches.best(limit))
}

#[async_trait]
impl AddressBook for CassandraStore {
    async fn list_contacts(&self, user: UserId, page: Page) -> Result<PageOf<Contact>, StoreError> {
        list_contacts(self, user, page).await
    }

    async fn get_contact(
        &self,
        user: UserId,
        id: ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        get_contact(self, user, id).await
    }

    async fn find_contact(
        &self,
        user: UserId,
        address: &Address,
    ) -> Result<Option<Contact>, StoreError> {
        find_contact(self, user, address).await
    }

    async fn save_contact(&self, contact: Contact) -> Result<Contact, StoreError> {
        save_contact(self, contact).await
    }

    async fn delete_contact(&self, user: UserId, id: ContactId) -> Result<bool, StoreError> {
        delete_contact(self, user, id).await
    }

    async fn autocomplete_contacts(
        &self,
        user: UserId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<ContactMatch>, StoreError> {
        autocomplete_contacts(self, user, prefix, limit).await
    }
}
