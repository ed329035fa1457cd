//! Tags on Cassandra. Names are unique per user through a claim table written with
//! `IF NOT EXISTS` before the tag row; the cap on a user's tags is checked under a lock.

use super::{CassandraStore, Claim, unset};
use crate::{StoreError, TagChange};
use palisade_model::{Tag, TagId, UserId};
use uuid::Uuid;

/// The name and colour of one of the user's tags.
async fn tag_row(
    store: &CassandraStore,
    user: Uuid,
    id: Uuid,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    let st = store.statements().await?;
    let row: Option<(Option<String>, Option<String>)> =
        store.first(&st.select_tag, (user, id)).await?;
    Ok(row.and_then(|(name, colour)| name.map(|name| (name, colour))))
}

/// The name of one of the user's tags.
async fn tag_name(
    store: &CassandraStore,
    user: Uuid,
    id: Uuid,
) -> Result<Option<String>, StoreError> {
    Ok(tag_row(store, user, id).await?.map(|(name, _)| name))
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
                Err(crate::tag_conflict(name))
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
    let rows: Vec<(Uuid, Option<String>, Option<String>)> =
        store.all(&st.select_tags, (user.0,)).await?;
    let mut tags: Vec<Tag> = rows
        .into_iter()
        .filter_map(|(id, name, colour)| {
            name.map(|name| Tag {
                id: TagId(id),
                user_id: user,
                name,
                colour,
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
    colour: Option<&str>,
    max_tags: usize,
) -> Result<Tag, StoreError> {
    // Counting and inserting are two requests: without the lock, concurrent creations
    // would all count below the cap and all insert.
    let lock = store.lock_user(user.0, "tags").await?;
    let created = create_tag_locked(store, user, name, colour, max_tags).await;
    store.unlock_user(lock).await;
    created
}

async fn create_tag_locked(
    store: &CassandraStore,
    user: UserId,
    name: &str,
    colour: Option<&str>,
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
        colour: colour.map(str::to_string),
    };
    claim_tag_name(store, user.0, name, tag.id.0).await?;
    store
        .execute(&st.insert_tag, (user.0, tag.id.0, name, unset(colour)))
        .await?;
    Ok(tag)
}

/// Claims the new name if it changes, writes the tag row, then releases the old name.
pub(super) async fn update_tag(
    store: &CassandraStore,
    user: UserId,
    id: TagId,
    change: &TagChange,
) -> Result<Tag, StoreError> {
    let st = store.statements().await?;
    let Some((current, colour)) = tag_row(store, user.0, id.0).await? else {
        return Err(StoreError::NotFound(format!("tag {id}")));
    };
    let tag = Tag {
        id,
        user_id: user,
        name: change.name.clone().unwrap_or(current.clone()),
        colour: change.colour.clone().unwrap_or(colour),
    };
    let renamed = current != tag.name;
    if renamed {
        claim_tag_name(store, user.0, &tag.name, id.0).await?;
    }
    store
        .execute(
            &st.insert_tag,
            (user.0, id.0, tag.name.as_str(), tag.colour.as_deref()),
        )
        .await?;
    if renamed {
        store
            .release(&st.release_tag_name, user.0, &current, id.0)
            .await;
    }
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
