//! The address book of the embedded store: contacts, unique by address per user.

use super::mailbox::{limit_param, paged};
use super::rows::{json, parse_id, to_json};
use super::{SqliteStore, unavailable};
use crate::AddressBook;
use crate::suggest::{ContactMatch, contact_terms, normalize_prefix};
use crate::{Page, PageOf, StoreError};
use async_trait::async_trait;
use palisade_model::{Address, Contact, ContactId, UserId};
use rusqlite::{Connection, OptionalExtension, Row, params};

type ContactRow = (String, Option<String>, String, String, Option<String>);

fn contact_row(user: UserId, r: &Row<'_>) -> rusqlite::Result<ContactRow> {
    let _ = user;
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode_contact(
    user: UserId,
    (id, name, addresses, keys, state): ContactRow,
) -> Result<Contact, StoreError> {
    let mut contact = Contact {
        id: parse_id(&id)?,
        user_id: user,
        name,
        addresses: json(&addresses, "contact addresses")?,
        public_keys: json(&keys, "contact keys")?,
        history: Default::default(),
        autocrypt: None,
    };
    crate::contact_state::apply(&mut contact, state.as_deref())?;
    Ok(contact)
}

pub(crate) fn list_contacts(
    conn: &Connection,
    user: UserId,
    page: &Page,
) -> Result<PageOf<Contact>, StoreError> {
    let after = page.after.clone().unwrap_or_default();
    let rows = conn
        .prepare_cached(
            "SELECT id, name, addresses_json, public_keys_json, state_json FROM contacts
             WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )
        .and_then(|mut s| {
            s.query_map(
                params![user.to_string(), after, limit_param(page.limit)],
                |r| contact_row(user, r),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    let page = paged(rows, page.limit.max(1), |c| c.0.clone())?;
    Ok(PageOf {
        items: page
            .items
            .into_iter()
            .map(|row| decode_contact(user, row))
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}

pub(crate) fn get_contact(
    conn: &Connection,
    user: UserId,
    id: ContactId,
) -> Result<Option<Contact>, StoreError> {
    conn.prepare_cached(
        "SELECT id, name, addresses_json, public_keys_json, state_json FROM contacts
         WHERE user_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![user.to_string(), id.to_string()], |r| {
            contact_row(user, r)
        })
        .optional()
    })
    .map_err(unavailable)?
    .map(|row| decode_contact(user, row))
    .transpose()
}

pub(crate) fn find_contact(
    conn: &Connection,
    user: UserId,
    address: &Address,
) -> Result<Option<Contact>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT contact_id FROM contact_addresses WHERE user_id = ?1 AND address = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![user.to_string(), address.as_str()], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    match id {
        Some(id) => get_contact(conn, user, parse_id(&id)?),
        None => Ok(None),
    }
}

pub(crate) fn save_contact(conn: &Connection, contact: &Contact) -> Result<(), StoreError> {
    let (user, id) = (contact.user_id.to_string(), contact.id.to_string());
    for address in &contact.addresses {
        let owner: Option<String> = conn
            .prepare_cached(
                "SELECT contact_id FROM contact_addresses WHERE user_id = ?1 AND address = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![user, address.as_str()], |r| r.get(0))
                    .optional()
            })
            .map_err(unavailable)?;
        if owner.is_some_and(|o| o != id) {
            return Err(StoreError::Conflict(format!(
                "address {address} belongs to another contact"
            )));
        }
    }
    conn.execute(
        "DELETE FROM contact_addresses WHERE user_id = ?1 AND contact_id = ?2",
        params![user, id],
    )
    .map_err(unavailable)?;
    for address in &contact.addresses {
        conn.execute(
            "INSERT OR REPLACE INTO contact_addresses (user_id, address, contact_id)
             VALUES (?1, ?2, ?3)",
            params![user, address.as_str(), id],
        )
        .map_err(unavailable)?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO contacts
             (user_id, id, name, addresses_json, public_keys_json, state_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user,
            id,
            contact.name,
            to_json(&contact.addresses)?,
            to_json(&contact.public_keys)?,
            crate::contact_state::json(contact)?
        ],
    )
    .map_err(unavailable)?;
    index_contact(
        conn,
        &user,
        &id,
        contact.name.as_deref(),
        &contact.addresses,
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Replaces the autocompletion terms of a contact.
fn index_contact(
    conn: &Connection,
    user: &str,
    id: &str,
    name: Option<&str>,
    addresses: &[Address],
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM contact_terms WHERE user_id = ?1 AND contact_id = ?2")?
        .execute(params![user, id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO contact_terms (user_id, term, contact_id, address)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (term, address) in contact_terms(name, addresses) {
        insert.execute(params![user, term, id, address])?;
    }
    Ok(())
}

/// Fills the autocompletion terms of every stored contact; part of the schema migration
/// that adds them. A contact whose addresses do not decode cannot be listed either, and is
/// skipped.
pub(crate) fn index_all_contacts(conn: &Connection) -> rusqlite::Result<()> {
    let contacts: Vec<(String, String, Option<String>, String)> = conn
        .prepare("SELECT user_id, id, name, addresses_json FROM contacts")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (user, id, name, addresses) in contacts {
        if let Ok(addresses) = serde_json::from_str::<Vec<Address>>(&addresses) {
            index_contact(conn, &user, &id, name.as_deref(), &addresses)?;
        }
    }
    Ok(())
}

/// The best `limit` matches of `prefix`: one range of the terms' primary key, grouped so
/// an address found by several terms is suggested once, at its first term.
pub(crate) fn autocomplete_contacts(
    conn: &Connection,
    user: UserId,
    prefix: &str,
    limit: usize,
) -> Result<Vec<ContactMatch>, StoreError> {
    let prefix = normalize_prefix(prefix);
    if prefix.is_empty() {
        return Ok(Vec::new());
    }
    // Every text starting with the prefix sorts below the prefix followed by the last code
    // point: SQLite compares text by its UTF-8 bytes, which keeps code point order.
    let upper = format!("{prefix}{}", char::MAX);
    let rows: Vec<(String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT t.contact_id, t.address, c.name, MIN(t.term) AS first_term
             FROM contact_terms t
             JOIN contacts c ON c.user_id = t.user_id AND c.id = t.contact_id
             WHERE t.user_id = ?1 AND t.term >= ?2 AND t.term < ?3
             GROUP BY t.contact_id, t.address
             ORDER BY first_term, t.contact_id, t.address
             LIMIT ?4",
        )
        .and_then(|mut s| {
            s.query_map(
                params![
                    user.to_string(),
                    prefix,
                    upper,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(id, address, name)| {
            Ok(ContactMatch {
                contact_id: parse_id(&id)?,
                name,
                address: Address::parse(&address)
                    .map_err(|e| StoreError::Corrupt(format!("contact address {address}: {e}")))?,
            })
        })
        .collect()
}

pub(crate) fn delete_contact(
    conn: &Connection,
    user: UserId,
    id: ContactId,
) -> Result<bool, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    conn.execute(
        "DELETE FROM contact_terms WHERE user_id = ?1 AND contact_id = ?2",
        params![user, id],
    )
    .map_err(unavailable)?;
    conn.execute(
        "DELETE FROM contact_addresses WHERE user_id = ?1 AND contact_id = ?2",
        params![user, id],
    )
    .map_err(unavailable)?;
    conn.execute(
        "DELETE FROM contacts WHERE user_id = ?1 AND id = ?2",
        params![user, id],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

#[async_trait]
impl AddressBook for SqliteStore {
    async fn list_contacts(&self, user: UserId, page: Page) -> Result<PageOf<Contact>, StoreError> {
        self.read(move |conn| list_contacts(conn, user, &page))
            .await
    }

    async fn get_contact(
        &self,
        user: UserId,
        id: ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        self.read(move |conn| get_contact(conn, user, id)).await
    }

    async fn find_contact(
        &self,
        user: UserId,
        address: &Address,
    ) -> Result<Option<Contact>, StoreError> {
        let address = address.clone();
        self.read(move |conn| find_contact(conn, user, &address))
            .await
    }

    async fn save_contact(&self, contact: Contact) -> Result<Contact, StoreError> {
        let record = contact.clone();
        self.writer
            .write(move |conn| save_contact(conn, &record))
            .await?;
        Ok(contact)
    }

    async fn delete_contact(&self, user: UserId, id: ContactId) -> Result<bool, StoreError> {
        self.writer
            .write_alone(move |conn| delete_contact(conn, user, id))
            .await
    }

    async fn autocomplete_contacts(
        &self,
        user: UserId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<ContactMatch>, StoreError> {
        let prefix = prefix.to_string();
        self.read(move |conn| autocomplete_contacts(conn, user, &prefix, limit))
            .await
    }
}
