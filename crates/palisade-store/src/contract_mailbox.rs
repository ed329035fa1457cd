//! Contract checks for the mailbox side of [`Store`]: discussions, flags, tags, deletion,
//! contacts and drafts. Every check also proves that another user cannot reach the data.

use crate::contract::{addr, content, delivery, unique};
use crate::{Folder, Page, Store, StoreError, TagChange, raw_hash};
use chrono::{TimeZone, Utc};
use palisade_model::{
    Contact, ContactId, Draft, DraftId, Flags, FlagsPatch, Message, MessageContent, MessageId,
    Participant, ParticipantRole, TagId, User,
};

/// Runs the mailbox checks in order.
pub(crate) async fn run_all(store: &dyn Store) {
    users_by_id_and_credentials(store).await;
    discussions_list_by_activity_with_counts(store).await;
    flags_keep_unread_counts(store).await;
    tags_by_id_survive_rename(store).await;
    tags_keep_their_colour_unless_changed(store).await;
    tag_cap_holds_under_concurrent_creation(store).await;
    delete_removes_message_and_updates_discussion(store).await;
    contacts_are_unique_by_address(store).await;
    drafts_round_trip(store).await;
    batch_reads_give_what_single_reads_give(store).await;
}

/// `get_messages` answers in the order asked, as `get_message` answers each key: another
/// user's message and an unknown id are `None`, and a key asked twice is answered twice.
async fn batch_reads_give_what_single_reads_give(store: &dyn Store) {
    let (user, other) = two_users(store, "batch").await;
    let mut delivered = Vec::new();
    for (raw, minutes) in [(&b"batch a"[..], 1), (&b"batch b"[..], 2)] {
        let receipt = store
            .deliver(delivery(
                user.id,
                raw,
                content("batch", &format!("batch-{minutes}@x"), &[]),
                minutes,
            ))
            .await
            .expect("deliver");
        delivered.push(receipt.message_id);
    }
    let (a, b) = (delivered[0], delivered[1]);
    let unknown = MessageId::for_raw(user.id, &raw_hash(b"never delivered"));
    let keys = [
        (user.id, b),
        (other.id, a),
        (user.id, unknown),
        (user.id, a),
        (user.id, b),
    ];
    let batch = store.get_messages(&keys).await.expect("batch read");
    let mut single = Vec::new();
    for (u, id) in keys {
        single.push(store.get_message(u, id).await.expect("single read"));
    }
    let ids = |v: &[Option<Message>]| -> Vec<Option<MessageId>> {
        v.iter().map(|m| m.as_ref().map(|m| m.id)).collect()
    };
    assert_eq!(ids(&batch), vec![Some(b), None, None, Some(a), Some(b)]);
    assert_eq!(batch, single, "each message as a single read gives it");
    assert!(
        store.get_messages(&[]).await.expect("empty").is_empty(),
        "an empty batch reads nothing"
    );
}

/// A change that renames a tag and keeps its colour.
fn rename(name: &str) -> TagChange {
    TagChange {
        name: Some(name.to_string()),
        colour: None,
    }
}

fn page(limit: usize) -> Page {
    Page { after: None, limit }
}

async fn two_users(store: &dyn Store, what: &str) -> (User, User) {
    let a = store
        .create_user(&unique(&format!("{what}-a")), &[], Some("hash-a".into()))
        .await
        .expect("user a");
    let b = store
        .create_user(&unique(&format!("{what}-b")), &[], None)
        .await
        .expect("user b");
    (a, b)
}

fn with_people(mut c: MessageContent, from: &str, to: &str) -> MessageContent {
    c.participants = vec![
        Participant {
            role: ParticipantRole::From,
            name: Some(from.to_uppercase()),
            address: Some(format!("{from}@example.test")),
        },
        Participant {
            role: ParticipantRole::To,
            name: None,
            address: Some(format!("{to}@example.test")),
        },
    ];
    c
}

/// Users are found by id; the password hash is readable only through its own call.
async fn users_by_id_and_credentials(store: &dyn Store) {
    let (a, b) = two_users(store, "creds").await;
    let found = store.get_user(a.id).await.expect("get").expect("exists");
    assert_eq!((found.id, &found.name), (a.id, &a.name));
    assert_eq!(
        store.password_hash(a.id).await.expect("hash").as_deref(),
        Some("hash-a")
    );
    assert_eq!(store.password_hash(b.id).await.expect("hash"), None);
    assert_eq!(
        store
            .get_user(palisade_model::UserId::new_random())
            .await
            .expect("get"),
        None
    );
}

/// Discussions list newest activity first, with counts, snippet and participants; another
/// user sees none of them.
async fn discussions_list_by_activity_with_counts(store: &dyn Store) {
    let (user, other) = two_users(store, "disc").await;
    let d =
        |raw: &'static str, c, minute| store.deliver(delivery(user.id, raw.as_bytes(), c, minute));
    let first = d(
        "t1",
        with_people(content("trip", "t1@x", &[]), "ann", "me"),
        1,
    )
    .await
    .expect("t1");
    d(
        "o1",
        with_people(content("other", "o1@x", &[]), "bo", "me"),
        2,
    )
    .await
    .expect("o1");
    let reply = d(
        "t2",
        with_people(content("Re: trip", "t2@x", &["t1@x"]), "cy", "ann"),
        3,
    )
    .await
    .expect("t2");
    let list = store
        .list_discussions(user.id, Folder::Inbox, page(10))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 2);
    let trip = &list.items[0];
    assert_eq!(
        trip.subject.as_deref(),
        Some("trip"),
        "newest activity first"
    );
    assert_eq!(trip.message_count, 2);
    assert_eq!(trip.unread_count, 2);
    assert_eq!(trip.snippet, "body of t2@x");
    let people: Vec<_> = trip
        .participants
        .iter()
        .filter_map(|p| p.address.clone())
        .collect();
    assert_eq!(
        people,
        ["ann@example.test", "me@example.test", "cy@example.test"]
    );
    assert_eq!(list.items[1].subject.as_deref(), Some("other"));

    // Paging walks both without repeats.
    let p1 = store
        .list_discussions(user.id, Folder::Inbox, page(1))
        .await
        .expect("p1");
    assert_eq!(p1.items.len(), 1);
    let p2 = store
        .list_discussions(
            user.id,
            Folder::Inbox,
            Page {
                after: p1.next.clone(),
                limit: 1,
            },
        )
        .await
        .expect("p2");
    assert_eq!(p2.items.len(), 1);
    assert_ne!(p1.items[0].id, p2.items[0].id);
    assert!(p2.next.is_none(), "the last page has no next cursor");

    let messages = store
        .discussion_messages(user.id, trip.id, None, page(10))
        .await
        .expect("messages");
    let ids: Vec<_> = messages.items.iter().map(|m| m.id).collect();
    assert_eq!(ids, [reply.message_id, first.message_id]);
    assert_eq!(
        store.get_discussion(user.id, trip.id).await.expect("get"),
        Some(trip.clone())
    );

    assert!(
        store
            .get_discussion(other.id, trip.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .discussion_messages(other.id, trip.id, None, page(10))
            .await
            .expect("messages")
            .items
            .is_empty()
    );
    assert!(
        store
            .list_discussions(other.id, Folder::Inbox, page(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert_eq!(store.count_messages(user.id).await.expect("count"), 3);
    assert_eq!(store.count_messages(other.id).await.expect("count"), 0);
}

/// Flag changes show on the message, in lists and in the discussion's unread count; sent
/// copies start read.
async fn flags_keep_unread_counts(store: &dyn Store) {
    let (user, other) = two_users(store, "flags").await;
    let r = store
        .deliver(delivery(user.id, b"f1", content("flags", "f1@x", &[]), 1))
        .await
        .expect("deliver");
    let seen = FlagsPatch {
        seen: Some(true),
        flagged: Some(true),
        ..Default::default()
    };
    assert_eq!(
        store
            .update_flags(other.id, r.message_id, seen)
            .await
            .expect("other"),
        None,
        "another user cannot flag it"
    );
    let flags = store
        .update_flags(user.id, r.message_id, seen)
        .await
        .expect("flag")
        .expect("exists");
    assert!(flags.seen && flags.flagged && !flags.trashed);
    // Setting it twice must not count twice.
    store
        .update_flags(user.id, r.message_id, seen)
        .await
        .expect("again");
    let message = store
        .get_message(user.id, r.message_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(message.flags, flags);
    let listed = store.list_messages(user.id, page(5)).await.expect("list");
    assert_eq!(listed.items[0].flags, flags);
    let disc = store
        .get_discussion(user.id, message.discussion_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(disc.unread_count, 0);
    store
        .update_flags(
            user.id,
            r.message_id,
            FlagsPatch {
                seen: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("unread");
    let disc = store
        .get_discussion(user.id, message.discussion_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(disc.unread_count, 1);

    let mut sent = delivery(user.id, b"sent copy", content("sent", "s@x", &[]), 2);
    sent.flags = Flags {
        seen: true,
        sent: true,
        ..Default::default()
    };
    let s = store.deliver(sent).await.expect("sent copy");
    let copy = store
        .get_message(user.id, s.message_id)
        .await
        .expect("get")
        .expect("exists");
    assert!(copy.flags.sent && copy.flags.seen);
    let disc = store
        .get_discussion(user.id, copy.discussion_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(disc.unread_count, 0, "a sent copy is not unread");
}

/// However many creations race, a user never ends up with more tags than the cap, and a
/// deleted tag frees its place.
async fn tag_cap_holds_under_concurrent_creation(store: &dyn Store) {
    let (user, _) = two_users(store, "tag-cap").await;
    const CAP: usize = 4;
    store
        .create_tag(user.id, "first", None, CAP)
        .await
        .expect("under the cap");
    let attempts: Vec<_> = (0..12)
        .map(|i| {
            let name = format!("racer-{i}");
            async move { store.create_tag(user.id, &name, None, CAP).await }
        })
        .collect();
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        created,
        CAP - 1,
        "exactly the room left is used: {results:?}"
    );
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(refused, StoreError::Conflict(m) if m.contains("at most")),
            "{refused:?}"
        );
    }
    let tags = store.list_tags(user.id).await.expect("list");
    assert_eq!(tags.len(), CAP);
    assert!(store.delete_tag(user.id, tags[0].id).await.expect("delete"));
    store
        .create_tag(user.id, "after-delete", None, CAP)
        .await
        .expect("a deleted tag frees its place");
}

/// Tags are per user, unique by name, renamed without touching messages, and deleted ones
/// stop mattering.
async fn tags_by_id_survive_rename(store: &dyn Store) {
    let (user, other) = two_users(store, "tags").await;
    let work = store
        .create_tag(user.id, "work", None, 500)
        .await
        .expect("create");
    assert!(matches!(
        store.create_tag(user.id, "work", None, 500).await,
        Err(StoreError::Conflict(_))
    ));
    // Same name for another user is fine: tags are per user.
    store
        .create_tag(other.id, "work", None, 500)
        .await
        .expect("other's own tag");
    let home = store
        .create_tag(user.id, "home", None, 500)
        .await
        .expect("create");
    let names: Vec<_> = store
        .list_tags(user.id)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["home", "work"]);

    let r = store
        .deliver(delivery(
            user.id,
            b"tagged",
            content("tagged", "tg@x", &[]),
            1,
        ))
        .await
        .expect("deliver");
    assert!(
        !store
            .set_message_tags(other.id, r.message_id, &[work.id])
            .await
            .expect("other")
    );
    assert!(
        store
            .set_message_tags(user.id, r.message_id, &[work.id, home.id])
            .await
            .expect("tag")
    );
    let renamed = store
        .update_tag(user.id, work.id, &rename("job"))
        .await
        .expect("rename");
    assert_eq!(renamed.id, work.id);
    assert_eq!(renamed.name, "job");
    assert!(matches!(
        store.update_tag(user.id, work.id, &rename("home")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.update_tag(other.id, work.id, &rename("stolen")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update_tag(user.id, TagId::new_random(), &rename("x"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let message = store
        .get_message(user.id, r.message_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(message.tags, [work.id, home.id]);
    assert!(!store.delete_tag(other.id, home.id).await.expect("other"));
    assert!(store.delete_tag(user.id, home.id).await.expect("delete"));
    assert!(!store.delete_tag(user.id, home.id).await.expect("twice"));
    let names: Vec<_> = store
        .list_tags(user.id)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["job"]);
    // The freed name can be taken again, as a new tag.
    let again = store
        .create_tag(user.id, "home", None, 500)
        .await
        .expect("recreate");
    assert_ne!(again.id, home.id);
}

/// A tag's colour is stored with it, survives a rename, changes or goes only when asked,
/// and is the user's own.
async fn tags_keep_their_colour_unless_changed(store: &dyn Store) {
    let (user, other) = two_users(store, "tag-colour").await;
    let red = store
        .create_tag(user.id, "urgent", Some("#ff0000"), 500)
        .await
        .expect("create");
    assert_eq!(red.colour.as_deref(), Some("#ff0000"));
    let plain = store
        .create_tag(user.id, "plain", None, 500)
        .await
        .expect("create");
    assert_eq!(plain.colour, None);
    let colours = |tags: Vec<palisade_model::Tag>| -> Vec<(String, Option<String>)> {
        tags.into_iter().map(|t| (t.name, t.colour)).collect()
    };
    assert_eq!(
        colours(store.list_tags(user.id).await.expect("list")),
        [
            ("plain".to_string(), None),
            ("urgent".to_string(), Some("#ff0000".to_string()))
        ]
    );

    let renamed = store
        .update_tag(user.id, red.id, &rename("now"))
        .await
        .expect("rename");
    assert_eq!(
        (renamed.name.as_str(), renamed.colour.as_deref()),
        ("now", Some("#ff0000"))
    );
    let recoloured = store
        .update_tag(
            user.id,
            red.id,
            &TagChange {
                name: None,
                colour: Some(Some("#00AA00".into())),
            },
        )
        .await
        .expect("recolour");
    assert_eq!(
        (recoloured.name.as_str(), recoloured.colour.as_deref()),
        ("now", Some("#00AA00"))
    );
    let both = store
        .update_tag(
            user.id,
            plain.id,
            &TagChange {
                name: Some("blue".into()),
                colour: Some(Some("#0000ff".into())),
            },
        )
        .await
        .expect("rename and colour");
    assert_eq!(
        (both.name.as_str(), both.colour.as_deref()),
        ("blue", Some("#0000ff"))
    );
    assert!(matches!(
        store
            .update_tag(
                other.id,
                red.id,
                &TagChange {
                    name: None,
                    colour: Some(Some("#123456".into())),
                },
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    let cleared = store
        .update_tag(
            user.id,
            red.id,
            &TagChange {
                name: None,
                colour: Some(None),
            },
        )
        .await
        .expect("clear");
    assert_eq!(cleared.colour, None);
    assert_eq!(
        colours(store.list_tags(user.id).await.expect("list")),
        [
            ("blue".to_string(), Some("#0000ff".to_string())),
            ("now".to_string(), None)
        ]
    );
    assert!(store.list_tags(other.id).await.expect("list").is_empty());
}

/// Deleting a message removes it everywhere it was listed and leaves the rest of its thread.
async fn delete_removes_message_and_updates_discussion(store: &dyn Store) {
    let (user, other) = two_users(store, "delete").await;
    let a = store
        .deliver(delivery(user.id, b"del-a", content("gone", "da@x", &[]), 1))
        .await
        .expect("a");
    let b = store
        .deliver(delivery(
            user.id,
            b"del-b",
            content("Re: gone", "db@x", &["da@x"]),
            2,
        ))
        .await
        .expect("b");
    assert!(
        !store
            .delete_message(other.id, a.message_id)
            .await
            .expect("other")
    );
    assert!(
        store
            .delete_message(user.id, b.message_id)
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_message(user.id, b.message_id)
            .await
            .expect("twice")
    );
    assert!(
        store
            .get_message(user.id, b.message_id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .get_raw(user.id, b.message_id)
            .await
            .expect("raw")
            .is_none()
    );
    let listed = store.list_messages(user.id, page(10)).await.expect("list");
    assert_eq!(listed.items.len(), 1);
    let disc = store
        .list_discussions(user.id, Folder::Inbox, page(10))
        .await
        .expect("discussions");
    assert_eq!(disc.items.len(), 1);
    assert_eq!(disc.items[0].message_count, 1);
    assert_eq!(disc.items[0].unread_count, 1);
    assert_eq!(
        disc.items[0].snippet, "body of da@x",
        "preview falls back to the survivor"
    );
    assert!(
        store
            .delete_message(user.id, a.message_id)
            .await
            .expect("delete")
    );
    assert!(
        store
            .list_discussions(user.id, Folder::Inbox, page(10))
            .await
            .expect("discussions")
            .items
            .is_empty(),
        "an emptied discussion disappears"
    );
    assert_eq!(store.count_messages(user.id).await.expect("count"), 0);
    // Redelivering deleted bytes stores them again (the user may want them back).
    let again = store
        .deliver(delivery(user.id, b"del-a", content("gone", "da@x", &[]), 3))
        .await
        .expect("again");
    assert!(!again.duplicate);
}

/// Contacts are found by address, unique by address within a user, and learned idempotently.
async fn contacts_are_unique_by_address(store: &dyn Store) {
    let (user, other) = two_users(store, "contacts").await;
    let ann = addr("ann@example.test");
    let contact = Contact {
        id: ContactId::new_random(),
        user_id: user.id,
        name: Some("Ann".into()),
        addresses: vec![ann.clone(), addr("ann@work.example.test")],
        public_keys: vec![
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\nx\n-----END PGP PUBLIC KEY BLOCK-----".into(),
        ],
        history: Default::default(),
        autocrypt: None,
    };
    let saved = store.save_contact(contact.clone()).await.expect("save");
    assert_eq!(saved, contact);
    assert_eq!(
        store.find_contact(user.id, &ann).await.expect("find"),
        Some(contact.clone())
    );
    assert_eq!(
        store.find_contact(other.id, &ann).await.expect("find"),
        None
    );
    assert_eq!(
        store.get_contact(other.id, contact.id).await.expect("get"),
        None
    );
    // Another contact cannot claim Ann's address.
    let dup = Contact {
        id: ContactId::new_random(),
        addresses: vec![ann.clone()],
        ..contact.clone()
    };
    assert!(matches!(
        store.save_contact(dup).await,
        Err(StoreError::Conflict(_))
    ));
    // Editing drops an address, which frees it.
    let edited = Contact {
        name: Some("Ann B.".into()),
        addresses: vec![addr("ann@work.example.test")],
        ..contact.clone()
    };
    store.save_contact(edited.clone()).await.expect("edit");
    assert_eq!(store.find_contact(user.id, &ann).await.expect("find"), None);
    assert_eq!(
        store.get_contact(user.id, contact.id).await.expect("get"),
        Some(edited)
    );

    let people = [
        Participant {
            role: ParticipantRole::From,
            name: Some("Bo".into()),
            address: Some("Bo@Example.test".into()),
        },
        Participant {
            role: ParticipantRole::To,
            name: None,
            address: Some("me@example.test".into()),
        },
    ];
    let own = [addr("me@example.test")];
    let n = crate::learn_contacts(store, user.id, &people, &own, chrono::Utc::now())
        .await
        .expect("learn");
    assert_eq!(n, 1, "learns Bo, not the user's own address");
    let n = crate::learn_contacts(store, user.id, &people, &own, chrono::Utc::now())
        .await
        .expect("learn again");
    assert_eq!(n, 0);
    let all = store.list_contacts(user.id, page(10)).await.expect("list");
    assert_eq!(all.items.len(), 2);
    let p1 = store.list_contacts(user.id, page(1)).await.expect("p1");
    let p2 = store
        .list_contacts(
            user.id,
            Page {
                after: p1.next.clone(),
                limit: 1,
            },
        )
        .await
        .expect("p2");
    assert_ne!(p1.items[0].id, p2.items[0].id);
    assert!(
        store
            .list_contacts(other.id, page(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(
        !store
            .delete_contact(other.id, contact.id)
            .await
            .expect("other")
    );
    assert!(
        store
            .delete_contact(user.id, contact.id)
            .await
            .expect("delete")
    );
    assert_eq!(
        store
            .find_contact(user.id, &addr("ann@work.example.test"))
            .await
            .expect("find"),
        None,
        "deleting frees its addresses"
    );
}

/// Drafts save, update, list newest change first and delete, per user.
async fn drafts_round_trip(store: &dyn Store) {
    let (user, other) = two_users(store, "drafts").await;
    let at = |m| {
        Utc.with_ymd_and_hms(2026, 2, 1, 0, m, 0)
            .single()
            .unwrap_or_default()
    };
    let draft = Draft {
        id: DraftId::new_random(),
        user_id: user.id,
        from: None,
        to: vec![addr("ann@example.test")],
        cc: vec![],
        bcc: vec![addr("secret@example.test")],
        subject: "plan".into(),
        body: "hello".into(),
        in_reply_to: None,
        forward_of: None,
        updated_at: at(1),
    };
    store.save_draft(draft.clone()).await.expect("save");
    let second = Draft {
        id: DraftId::new_random(),
        updated_at: at(2),
        ..draft.clone()
    };
    store.save_draft(second.clone()).await.expect("save 2");
    let updated = Draft {
        body: "hello again".into(),
        updated_at: at(3),
        ..draft.clone()
    };
    store.save_draft(updated.clone()).await.expect("update");
    assert_eq!(
        store.get_draft(user.id, draft.id).await.expect("get"),
        Some(updated.clone())
    );
    assert_eq!(
        store.get_draft(other.id, draft.id).await.expect("get"),
        None
    );
    let list = store.list_drafts(user.id, page(10)).await.expect("list");
    let ids: Vec<_> = list.items.iter().map(|d| d.id).collect();
    assert_eq!(ids, [draft.id, second.id]);
    let p1 = store.list_drafts(user.id, page(1)).await.expect("p1");
    let p2 = store
        .list_drafts(
            user.id,
            Page {
                after: p1.next.clone(),
                limit: 1,
            },
        )
        .await
        .expect("p2");
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.items[0].id, second.id);
    assert!(
        store
            .list_drafts(other.id, page(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(!store.delete_draft(other.id, draft.id).await.expect("other"));
    assert!(store.delete_draft(user.id, draft.id).await.expect("delete"));
    assert!(!store.delete_draft(user.id, draft.id).await.expect("twice"));
}
