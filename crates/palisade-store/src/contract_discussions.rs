//! Contract checks for discussion-wide actions and the discussion list's folders and tags.
//! Every check also proves that another user cannot reach the discussion.

use crate::contract::{content, delivery, unique};
use crate::{Folder, Page, Store};
use palisade_model::{Discussion, DiscussionId, FlagsPatch, MessageId, TagId, User};

/// Runs the discussion checks in order.
pub(crate) async fn run_all(store: &dyn Store) {
    discussion_flags_reach_every_message(store).await;
    discussion_tags_add_and_remove_on_every_message(store).await;
    folders_split_the_list_by_trash_and_page_exactly(store).await;
    discussion_tags_are_the_union_of_their_messages_tags(store).await;
    password_hash_is_replaced_for_its_user_only(store).await;
    related_messages_delivered_at_once_share_one_discussion(store).await;
}

/// A message and its replies delivered at the same moment (as on several ingest nodes, none
/// seeing the others' keys yet) still make one discussion per thread, holding every message
/// and every author.
async fn related_messages_delivered_at_once_share_one_discussion(store: &dyn Store) {
    let user = user(store, "at-once").await;
    const THREADS: usize = 6;
    let mut deliveries = Vec::new();
    for t in 0..THREADS {
        let root = format!("root{t}@at-once");
        let first = format!("first{t}@at-once");
        let second = format!("second{t}@at-once");
        let thread: [(&str, &str, Vec<&str>); 3] = [
            ("plans", root.as_str(), vec![]),
            ("Re: plans", first.as_str(), vec![root.as_str()]),
            (
                "Re: plans",
                second.as_str(),
                vec![root.as_str(), first.as_str()],
            ),
        ];
        for (i, (subject, mid, refs)) in thread.into_iter().enumerate() {
            let mut c = content(subject, mid, &refs);
            c.participants = vec![palisade_model::Participant {
                role: palisade_model::ParticipantRole::From,
                name: None,
                address: Some(format!("author{i}@at-once.test")),
            }];
            let raw = format!("at once {t} {i}");
            deliveries.push((t, delivery(user.id, raw.as_bytes(), c, 1)));
        }
    }
    let results = futures::future::join_all(
        deliveries
            .into_iter()
            .map(|(t, d)| async move { (t, store.deliver(d).await) }),
    )
    .await;
    let mut by_thread: Vec<Vec<MessageId>> = vec![Vec::new(); THREADS];
    for (t, receipt) in results {
        by_thread[t].push(receipt.expect("deliver").message_id);
    }
    for (t, ids) in by_thread.iter().enumerate() {
        let mut discussions = Vec::new();
        for id in ids {
            let m = store.get_message(user.id, *id).await.expect("get");
            discussions.push(m.expect("stored").discussion_id);
        }
        discussions.sort_by_key(|d| d.0);
        discussions.dedup();
        let [discussion] = discussions[..] else {
            panic!("thread {t} split into discussions {discussions:?}");
        };
        let d = store
            .get_discussion(user.id, discussion)
            .await
            .expect("get discussion")
            .expect("listed");
        assert_eq!(d.message_count, 3, "thread {t}: {d:?}");
        let mut authors: Vec<_> = d
            .participants
            .iter()
            .filter_map(|p| p.address.clone())
            .collect();
        authors.sort();
        assert_eq!(
            authors,
            [
                "author0@at-once.test",
                "author1@at-once.test",
                "author2@at-once.test"
            ],
            "thread {t} lost a participant"
        );
    }
}

/// A new password hash replaces the old one for that user only.
async fn password_hash_is_replaced_for_its_user_only(store: &dyn Store) {
    let a = store
        .create_user(&unique("pw-a"), &[], Some("old-a".into()))
        .await
        .expect("user a");
    let b = store
        .create_user(&unique("pw-b"), &[], Some("old-b".into()))
        .await
        .expect("user b");
    assert!(store.set_password_hash(a.id, "new-a").await.expect("set"));
    assert_eq!(
        store.password_hash(a.id).await.expect("get").as_deref(),
        Some("new-a")
    );
    assert_eq!(
        store.password_hash(b.id).await.expect("get").as_deref(),
        Some("old-b")
    );
    let nobody = palisade_model::UserId::new_random();
    assert!(!store.set_password_hash(nobody, "x").await.expect("set"));
    assert!(store.get_user(nobody).await.expect("get").is_none());
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
        .discussion_messages(owner.id, d, None, page(10))
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
    let work = store
        .create_tag(owner.id, "work", None, 500)
        .await
        .expect("tag");
    let home = store
        .create_tag(owner.id, "home", None, 500)
        .await
        .expect("tag");
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

/// Every discussion of a folder, walking its pages two at a time.
async fn walk(store: &dyn Store, user: &User, folder: Folder) -> Vec<Discussion> {
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = store
            .list_discussions(user.id, folder, Page { after, limit: 2 })
            .await
            .expect("list");
        assert!(page.items.len() <= 2);
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
    panic!("the {folder:?} list never ended");
}

fn trash(trashed: bool) -> FlagsPatch {
    FlagsPatch {
        trashed: Some(trashed),
        ..Default::default()
    }
}

/// The inbox lists discussions with a message outside the trash, the trash those with one
/// in it; both page without gaps or repeats, with counts of their own messages.
async fn folders_split_the_list_by_trash_and_page_exactly(store: &dyn Store) {
    let owner = user(store, "folders").await;
    let other = user(store, "folders-other").await;
    let mut singles = Vec::new();
    for i in 0..7 {
        let raw = format!("folder single {i}");
        let got = store
            .deliver(delivery(
                owner.id,
                raw.as_bytes(),
                content(&format!("single {i}"), &format!("single{i}@x"), &[]),
                10 + i,
            ))
            .await
            .expect("deliver");
        let m = store
            .get_message(owner.id, got.message_id)
            .await
            .expect("get")
            .expect("exists");
        singles.push(m.discussion_id);
    }
    let (both, ids) = thread(store, &owner, "halftrash", 2).await;
    for i in [1, 3, 4] {
        store
            .update_discussion_flags(owner.id, singles[i], trash(true))
            .await
            .expect("trash")
            .expect("exists");
    }
    store
        .update_flags(owner.id, ids[1], trash(true))
        .await
        .expect("trash one")
        .expect("exists");

    let inbox = walk(store, &owner, Folder::Inbox).await;
    let listed: Vec<DiscussionId> = inbox.iter().map(|d| d.id).collect();
    let mut expected: Vec<DiscussionId> = [6, 5, 2, 0].iter().map(|i| singles[*i]).collect();
    // The thread (minutes 1-2) and its unrelated message (minute 100) are the oldest and
    // the newest activity.
    let unrelated = listed[0];
    expected.insert(0, unrelated);
    expected.push(both);
    assert_eq!(
        listed, expected,
        "inbox: newest first, no trashed-only discussion"
    );
    let half = inbox.iter().find(|d| d.id == both).expect("half-trashed");
    assert_eq!((half.message_count, half.trashed_count), (2, 1));
    assert_eq!((half.unread_count, half.trashed_unread_count), (2, 1));

    let trashed: Vec<DiscussionId> = walk(store, &owner, Folder::Trash)
        .await
        .iter()
        .map(|d| d.id)
        .collect();
    let expected: Vec<DiscussionId> = [4, 3, 1]
        .iter()
        .map(|i| singles[*i])
        .chain([both])
        .collect();
    assert_eq!(trashed, expected, "trash: newest first");
    for (folder, wanted) in [
        (None, vec![ids[1], ids[0]]),
        (Some(Folder::Inbox), vec![ids[0]]),
        (Some(Folder::Trash), vec![ids[1]]),
    ] {
        let listed: Vec<MessageId> = store
            .discussion_messages(
                owner.id,
                both,
                folder,
                Page {
                    after: None,
                    limit: 1,
                },
            )
            .await
            .expect("messages")
            .items
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(listed, wanted[..1], "first page of {folder:?}");
    }
    let inbox_only = store
        .discussion_messages(owner.id, both, Some(Folder::Inbox), page(10))
        .await
        .expect("messages");
    assert_eq!(
        inbox_only.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[0]]
    );
    assert!(inbox_only.next.is_none());
    assert!(walk(store, &other, Folder::Trash).await.is_empty());
    assert!(walk(store, &other, Folder::Inbox).await.is_empty());

    // Out of the trash, back in the inbox; a deleted trashed message leaves the trash.
    store
        .update_discussion_flags(owner.id, singles[3], trash(false))
        .await
        .expect("untrash")
        .expect("exists");
    assert!(
        store
            .delete_message(owner.id, ids[1])
            .await
            .expect("delete")
    );
    let trashed: Vec<DiscussionId> = walk(store, &owner, Folder::Trash)
        .await
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(trashed, [singles[4], singles[1]]);
    let inbox = walk(store, &owner, Folder::Inbox).await;
    assert!(inbox.iter().any(|d| d.id == singles[3]));
    let half = inbox.iter().find(|d| d.id == both).expect("still listed");
    assert_eq!((half.message_count, half.trashed_count), (1, 0));
}

fn sorted(mut tags: Vec<TagId>) -> Vec<TagId> {
    tags.sort();
    tags
}

async fn discussion_tags(store: &dyn Store, user: &User, id: DiscussionId) -> Vec<TagId> {
    let got = store
        .get_discussion(user.id, id)
        .await
        .expect("get")
        .expect("exists");
    let listed = walk(store, user, Folder::Inbox).await;
    let in_list = listed.iter().find(|d| d.id == id).expect("listed");
    assert_eq!(sorted(in_list.tags.clone()), sorted(got.tags.clone()));
    sorted(got.tags)
}

/// A discussion carries the tags of any of its messages, however they were set, and loses
/// a tag only when no message keeps it.
async fn discussion_tags_are_the_union_of_their_messages_tags(store: &dyn Store) {
    let owner = user(store, "dtagunion").await;
    let (d, ids) = thread(store, &owner, "tagunion", 2).await;
    let work = store
        .create_tag(owner.id, "work", None, 500)
        .await
        .expect("tag");
    let home = store
        .create_tag(owner.id, "home", None, 500)
        .await
        .expect("tag");
    assert!(discussion_tags(store, &owner, d).await.is_empty());
    store
        .set_message_tags(owner.id, ids[0], &[work.id])
        .await
        .expect("tag");
    store
        .set_message_tags(owner.id, ids[1], &[home.id, work.id])
        .await
        .expect("tag");
    let both = sorted(vec![work.id, home.id]);
    assert_eq!(discussion_tags(store, &owner, d).await, both);
    store
        .set_message_tags(owner.id, ids[1], &[])
        .await
        .expect("untag");
    assert_eq!(
        discussion_tags(store, &owner, d).await,
        [work.id],
        "work is still on the first message"
    );
    store
        .retag_discussion(owner.id, d, &[home.id], &[])
        .await
        .expect("retag")
        .expect("exists");
    assert_eq!(discussion_tags(store, &owner, d).await, both);
    store
        .retag_discussion(owner.id, d, &[], &[work.id])
        .await
        .expect("retag")
        .expect("exists");
    assert_eq!(discussion_tags(store, &owner, d).await, [home.id]);
    store
        .set_message_tags(owner.id, ids[0], &[work.id, home.id])
        .await
        .expect("tag");
    assert!(
        store
            .delete_message(owner.id, ids[0])
            .await
            .expect("delete")
    );
    assert_eq!(
        discussion_tags(store, &owner, d).await,
        [home.id],
        "a deleted message's tags go with it"
    );
}
