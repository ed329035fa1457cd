//! Tags, contacts and drafts on Cassandra.
//!
//! Tag names and contact addresses are unique per user through claim tables written with
//! `IF NOT EXISTS` before the row that uses them. A claim whose holder does not use the key
//! (a write that failed half-way) is taken over once it is older than the grace period, and
//! readers check the row, so a stale claim never makes a contact findable by an address it
//! lost.

use super::{CassandraStore, Claim, decode_cursor, fetch_size, json, page_of, timestamp, to_json};
use crate::{Page, PageOf, StoreError};
use palisade_model::{Address, Contact, ContactId, Draft, DraftId, Tag, TagId, UserId};
use scylla::value::CqlTimestamp;
use uuid::Uuid;

fn tag_conflict(name: &str) -> StoreError {
    StoreError::Conflict(format!("a tag named {name:?} already exists"))
}

/// The name of one of the user's tags.
async fn tag_name(
    store: &CassandraStore,
    user: Uuid,
    id: Uuid,
) -> Result<Option<String>, StoreError> {
    let st = store.statements().await?;
    let row: Option<(Option<String>,)> = store.first(&st.select_tag, (user, id)).await?;
    Ok(row.and_then(|(name,)| name))
}

/// Claims `name` for tag `id`; `Conflict` when another tag of the user has it.
async fn claim_tag_name(
    store: &CassandraStore,
    user: Uuid,
    name: &str,
    id: Uuid,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    match store
        .claim(&st.claim_tag_name, user, name, id, "tag_id")
        .await?
    {
        Claim::Ours => Ok(()),
        Claim::Held { owner, since } => {
            let used = tag_name(store, user, owner).await?.as_deref() == Some(name);
            if !used
                && store
                    .take_over(&st.take_over_tag_name, user, name, id, owner, since)
                    .await?
            {
                Ok(())
            } else {
                Err(tag_conflict(name))
            }
        }
    }
}

/// The user's tags, by name.
pub(super) async fn list_tags(
    store: &CassandraStore,
    user: UserId,
) -> Result<Vec<Tag>, StoreError> {
    let st = store.statements().await?;
    let rows: Vec<(Uuid, Option<String>)> = store.all(&st.select_tags, (user.0,)).await?;
    let mut tags: Vec<Tag> = rows
        .into_iter()
        .filter_map(|(id, name)| {
            name.map(|name| Tag {
                id: TagId(id),
                user_id: user,
                name,
            })
        })
        .collect();
    tags.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(tags)
}

/// Claims the name, then writes the tag row.
pub(super) async fn create_tag(
    store: &CassandraStore,
    user: UserId,
    name: &str,
    max_tags: usize,
) -> Result<Tag, StoreError> {
    // Counting and inserting are two requests: without the lock, concurrent creations
    // would all count below the cap and all insert.
    let lock = store.lock_user(user.0, "tags").await?;
    let created = create_tag_locked(store, user, name, max_tags).await;
    store.unlock_user(lock).await;
    created
}

async fn create_tag_locked(
    store: &CassandraStore,
    user: UserId,
    name: &str,
    max_tags: usize,
) -> Result<Tag, StoreError> {
    let st = store.statements().await?;
    let count: Option<(i64,)> = store.first(&st.count_tags, (user.0,)).await?;
    let count = count.map_or(0, |(n,)| usize::try_from(n).unwrap_or(usize::MAX));
    if count >= max_tags {
        return Err(crate::tag_cap_reached(max_tags));
    }
    let tag = Tag {
        id: TagId::new_random(),
        user_id: user,
        name: name.to_string(),
    };
    claim_tag_name(store, user.0, name, tag.id.0).await?;
    store
        .execute(&st.insert_tag, (user.0, tag.id.0, name))
        .await?;
    Ok(tag)
}

/// Claims the new name, renames, then releases the old name.
pub(super) async fn rename_tag(
    store: &CassandraStore,
    user: UserId,
    id: TagId,
    name: &str,
) -> Result<Tag, StoreError> {
    let st = store.statements().await?;
    let Some(current) = tag_name(store, user.0, id.0).await? else {
        return Err(StoreError::NotFound(format!("tag {id}")));
    };
    let tag = Tag {
        id,
        user_id: user,
        name: name.to_string(),
    };
    if current == name {
        return Ok(tag);
    }
    claim_tag_name(store, user.0, name, id.0).await?;
    store.execute(&st.insert_tag, (user.0, id.0, name)).await?;
    store
        .release(&st.release_tag_name, user.0, &current, id.0)
        .await;
    Ok(tag)
}

/// Deletes the tag row, then releases its name.
pub(super) async fn delete_tag(
    store: &CassandraStore,
    user: UserId,
    id: TagId,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    let Some(name) = tag_name(store, user.0, id.0).await? else {
        return Ok(false);
    };
    store.execute(&st.delete_tag, (user.0, id.0)).await?;
    store
        .release(&st.release_tag_name, user.0, &name, id.0)
        .await;
    Ok(true)
}

type ContactRow = (String, Option<String>, Option<String>, Option<String>);

fn contact(user: UserId, (id, name, addresses, keys): ContactRow) -> Result<Contact, StoreError> {
    Ok(Contact {
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
    })
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

/// Creates or replaces a draft.
pub(super) async fn save_draft(store: &CassandraStore, draft: Draft) -> Result<Draft, StoreError> {
    let st = store.statements().await?;
    store
        .execute(
            &st.insert_draft,
            (
                draft.user_id.0,
                draft.id.0,
                timestamp(draft.updated_at),
                to_json(&draft)?,
            ),
        )
        .await?;
    Ok(draft)
}

/// One draft of the user's.
pub(super) async fn get_draft(
    store: &CassandraStore,
    user: UserId,
    id: DraftId,
) -> Result<Option<Draft>, StoreError> {
    let st = store.statements().await?;
    let row: Option<(Option<String>,)> = store.first(&st.select_draft, (user.0, id.0)).await?;
    row.and_then(|(draft,)| draft)
        .map(|d| json(&d, "draft"))
        .transpose()
}

/// A user has few drafts: they are read whole and ordered here, most recently changed first
/// and then by descending id text, like the embedded store; the cursor is `updated:id`.
pub(super) async fn list_drafts(
    store: &CassandraStore,
    user: UserId,
    page: Page,
) -> Result<PageOf<Draft>, StoreError> {
    let st = store.statements().await?;
    let limit = page.limit.max(1);
    let after = page
        .after
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map(|(ms, id)| (ms, id.to_string()));
    let mut drafts = Vec::new();
    store
        .scan(
            &st.select_drafts,
            (user.0,),
            st.select_drafts.get_page_size(),
            |(updated, id, draft): (CqlTimestamp, Uuid, Option<String>)| {
                let key = (updated.0, id.to_string());
                if let Some(draft) = draft
                    && after.as_ref().is_none_or(|after| key < *after)
                {
                    drafts.push((key, json::<Draft>(&draft, "draft")?));
                }
                Ok(true)
            },
        )
        .await?;
    drafts.sort_by(|a, b| b.0.cmp(&a.0));
    drafts.truncate(limit + 1);
    let page = page_of(drafts, limit, |((ms, id), _)| format!("{ms}:{id}"));
    Ok(PageOf {
        items: page.items.into_iter().map(|(_, d)| d).collect(),
        next: page.next,
    })
}

/// Deletes a draft; `false` when it did not exist.
pub(super) async fn delete_draft(
    store: &CassandraStore,
    user: UserId,
    id: DraftId,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    if get_draft(store, user, id).await?.is_none() {
        return Ok(false);
    }
    store.execute(&st.delete_draft, (user.0, id.0)).await?;
    Ok(true)
}
