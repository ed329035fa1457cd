//! Contract checks for discussion-wide actions and the discussion list's folders and tags.
//! Every check also proves that another user cannot reach the discussion.

use crate::contract::{content, delivery, unique};
use crate::{Page, Store};
use palisade_model::{DiscussionId, FlagsPatch, MessageId, User};

/// Runs the discussion checks in order.
pub(crate) async fn run_all(store: &dyn Store) {
    discussion_flags_reach_every_message(store).await;
    discussion_tags_add_and_remove_on_every_message(store).await;
}

fn page(limit: usize) -> Page {
    Page { after: None, limit }
}

async fn user(store: &dyn Store, what: &str) -> User {
    store
        .create_user(&unique(what), &[], None)
        .await
        .expect("user")
}

/// Delivers a thread of `n` messages (and one unrelated message) to `user`; the thread's
/// id and its messages, oldest first.
async fn thread(
    store: &dyn Store,
    user: &User,
    name: &str,
    n: usize,
) -> (DiscussionId, Vec<MessageId>) {
    let mut ids = Vec::new();
    let mut refs: Vec<String> = Vec::new();
    for i in 0..n {
        let mid = format!("{name}{i}@x");
        let r: Vec<&str> = refs.iter().map(String::as_str).collect();
        let subject = if i == 0 {
            name.to_string()
        } else {
            format!("Re: {name}")
        };
        let raw = format!("{name} {i}");
        let got = store
            .deliver(delivery(
                user.id,
                raw.as_bytes(),
                content(&subject, &mid, &r),
                i64::try_from(i).unwrap_or_default() + 1,
            ))
            .await
            .expect("deliver");
        ids.push(got.message_id);
        refs.push(mid);
    }
    let raw = format!("{name} elsewhere");
    store
        .deliver(delivery(
            user.id,
            raw.as_bytes(),
            content(&format!("not {name}"), &format!("{name}-other@x"), &[]),
            100,
        ))
        .await
        .expect("unrelated");
    let first = store
        .get_message(user.id, ids[0])
        .await
        .expect("get")
        .expect("exists");
    (first.discussion_id, ids)
}

/// One call marks every message of a discussion, its counts follow, other discussions are
/// untouched, and another user's call changes nothing.
async fn discussion_flags_reach_every_message(store: &dyn Store) {
    let owner = user(store, "dflags").await;
    let other = user(store, "dflags-other").await;
    let (d, ids) = thread(store, &owner, "dflags", 3).await;
    let seen = FlagsPatch {
        seen: Some(true),
        flagged: Some(true),
        ..Default::default()
    };
    assert_eq!(
        store
            .update_discussion_flags(other.id, d, seen)
            .await
            .expect("other"),
        None,
        "another user cannot flag the discussion"
    );
    let disc = store.get_discussion(owner.id, d).await.expect("get");
    assert_eq!(disc.map(|d| d.unread_count), Some(3));

    // One message already read: only the other two change.
    store
        .update_flags(
            owner.id,
            ids[1],
            FlagsPatch {
                seen: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("one read");
    let mut changed = store
        .update_discussion_flags(owner.id, d, seen)
        .await
        .expect("flag")
        .expect("exists");
    changed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(changed, expected, "every message gained `flagged`");
    for id in &ids {
        let m = store
            .get_message(owner.id, *id)
            .await
            .expect("get")
            .expect("exists");
        assert!(m.flags.seen && m.flags.flagged, "{id} flagged");
    }
    let listed = store
        .discussion_messages(owner.id, d, page(10))
        .await
        .expect("messages");
    assert!(listed.items.iter().all(|m| m.flags.seen && m.flags.flagged));
    let disc = store
        .get_discussion(owner.id, d)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((disc.message_count, disc.unread_count), (3, 0));
    // The unrelated discussion is untouched.
    let all = store.list_messages(owner.id, page(10)).await.expect("list");
    let unrelated = all
        .items
        .iter()
        .find(|m| m.discussion_id != d)
        .expect("unrelated");
    assert!(!unrelated.flags.seen && !unrelated.flags.flagged);

    // Again: nothing changes, nothing is counted twice.
    let again = store
        .update_discussion_flags(owner.id, d, seen)
        .await
        .expect("again")
        .expect("exists");
    assert!(again.is_empty());
    let unread = FlagsPatch {
        seen: Some(false),
        ..Default::default()
    };
    store
        .update_discussion_flags(owner.id, d, unread)
        .await
        .expect("unread")
        .expect("exists");
    let disc = store
        .get_discussion(owner.id, d)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(disc.unread_count, 3);
    assert_eq!(
        store
            .update_discussion_flags(owner.id, DiscussionId(uuid::Uuid::new_v4()), seen)
            .await
            .expect("missing"),
        None
    );
}

/// Tags are added to and removed from every message of a discussion; other users' calls
/// and other discussions are untouched.
async fn discussion_tags_add_and_remove_on_every_message(store: &dyn Store) {
    let owner = user(store, "dtags").await;
    let other = user(store, "dtags-other").await;
    let (d, ids) = thread(store, &owner, "dtags", 3).await;
    let work = store.create_tag(owner.id, "work", 500).await.expect("tag");
    let home = store.create_tag(owner.id, "home", 500).await.expect("tag");
    assert_eq!(
        store
            .retag_discussion(other.id, d, &[work.id], &[])
            .await
            .expect("other"),
        None,
        "another user cannot tag the discussion"
    );
    store
        .set_message_tags(owner.id, ids[0], &[home.id])
        .await
        .expect("one tagged");
    let changed = store
        .retag_discussion(owner.id, d, &[work.id], &[])
        .await
        .expect("tag")
        .expect("exists");
    assert_eq!(changed.len(), 3);
    for id in &ids {
        let m = store
            .get_message(owner.id, *id)
            .await
            .expect("get")
            .expect("exists");
        assert!(m.tags.contains(&work.id), "{id} tagged");
    }
    let first = store
        .get_message(owner.id, ids[0])
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(first.tags, [home.id, work.id], "existing tags are kept");

    let changed = store
        .retag_discussion(owner.id, d, &[], &[home.id, work.id])
        .await
        .expect("untag")
        .expect("exists");
    assert_eq!(changed.len(), 3);
    for id in &ids {
        let m = store
            .get_message(owner.id, *id)
            .await
            .expect("get")
            .expect("exists");
        assert!(m.tags.is_empty(), "{id} untagged");
    }
    let all = store.list_messages(owner.id, page(10)).await.expect("list");
    let unrelated = all
        .items
        .iter()
        .find(|m| m.discussion_id != d)
        .expect("unrelated");
    let unrelated = store
        .get_message(owner.id, unrelated.id)
        .await
        .expect("get")
        .expect("exists");
    assert!(unrelated.tags.is_empty());
}
