//! The behaviour every [`Store`] backend must have, as runnable checks.
//!
//! Backends' test suites call [`run_all`] on a fresh, empty store. The checks panic with a
//! message on the first violation, like ordinary test assertions.

use crate::{Delivery, Page, Store, StoreError, raw_hash};
use bytes::Bytes;
use chrono::{Duration as Days, TimeZone, Utc};
use palisade_model::{
    Address, Envelope, MessageContent, MessageId, Participant, ParticipantRole, UserId,
};
use std::sync::Arc;

pub use crate::contract_erase::furnished_user;

/// Runs every check in order on a fresh store.
pub async fn run_all(store: &dyn Store) {
    users_and_addresses(store).await;
    delivery_is_durable_idempotent_and_scoped(store).await;
    threads_follow_references_and_reply_subjects(store).await;
    long_header_values_are_stored_and_still_thread(store).await;
    the_largest_parsed_content_is_stored(store).await;
    summaries_by_id_keep_order_and_owner(store).await;
    lists_paginate_newest_first(store).await;
    crate::contract_mailbox::run_all(store).await;
    crate::contract_drafts::run_all(store).await;
    crate::contract_discussions::run_all(store).await;
    crate::contract_suggest::run_all(store).await;
    crate::contract_replace::run_all(store).await;
    crate::contract_months::run_all(store).await;
    crate::contract_erase::run_all(store).await;
    crate::contract_autocrypt::run_all(store).await;
    crate::contract_remote_trust::run_all(store).await;
}

pub(crate) fn addr(s: &str) -> Address {
    Address::parse(s).unwrap_or_else(|e| panic!("test address {s}: {e}"))
}

/// A unique suffix so checks never collide with each other's users.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", UserId::new_random())
}

/// Builds a delivery of `raw` with hand-made content, so this suite needs no parser.
pub fn delivery(user: UserId, raw: &[u8], content: MessageContent, minutes: i64) -> Delivery {
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    Delivery {
        user_id: user,
        raw: Bytes::copy_from_slice(raw),
        raw_sha256: raw_hash(raw),
        content: Arc::new(content),
        envelope: Envelope {
            mail_from: Some("sender@example.test".into()),
            rcpt_to: "rcpt@example.test".into(),
            received_at: base + Days::minutes(minutes),
        },
        flags: Default::default(),
    }
}

/// Hand-made content of a message with these headers, from one sender.
pub fn content(subject: &str, message_id: &str, refs: &[&str]) -> MessageContent {
    let normalized = subject
        .trim_start_matches("Re: ")
        .trim_start_matches("Fwd: ")
        .to_lowercase();
    MessageContent {
        message_id_header: Some(message_id.to_string()),
        in_reply_to: refs.last().map(|r| vec![r.to_string()]).unwrap_or_default(),
        references: refs.iter().map(|r| r.to_string()).collect(),
        subject: Some(subject.to_string()),
        normalized_subject: Some(normalized),
        participants: vec![Participant {
            role: ParticipantRole::From,
            name: Some("Sender".into()),
            address: Some("sender@example.test".into()),
        }],
        text_body: Some(format!("body of {message_id}")),
        ..Default::default()
    }
}

/// Users own addresses exclusively and are found by name or address.
pub async fn users_and_addresses(store: &dyn Store) {
    let name = unique("alice");
    let a1 = addr(&format!("{name}@example.test"));
    let a2 = addr(&format!("{name}@alias.example.test"));
    let user = store
        .create_user(&name, &[a1.clone(), a2.clone()], None)
        .await
        .expect("create user");
    assert_eq!(user.addresses.len(), 2);
    assert_eq!(
        store.resolve_address(&a2).await.expect("resolve"),
        Some(user.id)
    );
    let unknown = addr(&format!("{}@example.test", unique("nobody")));
    assert_eq!(
        store.resolve_address(&unknown).await.expect("resolve"),
        None
    );

    let by_name = store
        .find_user(&name)
        .await
        .expect("find")
        .expect("by name");
    assert_eq!(by_name.id, user.id);
    let by_address = store
        .find_user(&a1.to_string().to_uppercase())
        .await
        .expect("find")
        .expect("by address, case-insensitively");
    assert_eq!(by_address.id, user.id);

    let same_name = store.create_user(&name, &[], None).await;
    assert!(
        matches!(same_name, Err(StoreError::Conflict(_))),
        "{same_name:?}"
    );
    let other = unique("bob");
    let stolen = store
        .create_user(&other, std::slice::from_ref(&a1), None)
        .await;
    assert!(matches!(stolen, Err(StoreError::Conflict(_))), "{stolen:?}");
    assert!(
        store.find_user(&other).await.expect("find").is_none(),
        "a failed create must leave nothing behind"
    );
    let listed = store.list_users().await.expect("list");
    assert!(listed.iter().any(|u| u.id == user.id));
}

/// Delivery keeps exact bytes, is idempotent per user, and never leaks across users.
pub async fn delivery_is_durable_idempotent_and_scoped(store: &dyn Store) {
    let alice = store
        .create_user(&unique("alice"), &[], None)
        .await
        .expect("alice");
    let bob = store
        .create_user(&unique("bob"), &[], None)
        .await
        .expect("bob");
    let raw = b"Subject: hi\r\n\r\nexact \x00 bytes \xff\r\n".as_slice();
    let first = store
        .deliver(delivery(alice.id, raw, content("hi", "m1@x", &[]), 0))
        .await
        .expect("deliver");
    assert!(!first.duplicate);
    assert_eq!(
        first.message_id,
        MessageId::for_raw(alice.id, &raw_hash(raw))
    );
    let again = store
        .deliver(delivery(alice.id, raw, content("hi", "m1@x", &[]), 5))
        .await
        .expect("redeliver");
    assert!(again.duplicate, "same bytes, same user: one message");
    assert_eq!(again.message_id, first.message_id);
    let page = store
        .list_messages(
            alice.id,
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].subject.as_deref(), Some("hi"));

    let stored = store
        .get_raw(alice.id, first.message_id)
        .await
        .expect("raw")
        .expect("raw exists");
    assert_eq!(stored, raw);
    let message = store
        .get_message(alice.id, first.message_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(message.raw_sha256, raw_hash(raw));
    assert_eq!(message.content.text_body.as_deref(), Some("body of m1@x"));

    // Bob guessing Alice's id gets nothing.
    assert!(
        store
            .get_message(bob.id, first.message_id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .get_raw(bob.id, first.message_id)
            .await
            .expect("raw")
            .is_none()
    );
    let bobs = store
        .list_messages(
            bob.id,
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert!(bobs.items.is_empty());

    // The same bytes to Bob are Bob's own message.
    let for_bob = store
        .deliver(delivery(bob.id, raw, content("hi", "m1@x", &[]), 0))
        .await
        .expect("deliver to bob");
    assert!(!for_bob.duplicate);
    assert_ne!(for_bob.message_id, first.message_id);
}

/// References and In-Reply-To join threads in any arrival order; a bare subject match only
/// joins replies.
pub async fn threads_follow_references_and_reply_subjects(store: &dyn Store) {
    let user = store
        .create_user(&unique("threads"), &[], None)
        .await
        .expect("user");
    let deliver = |raw: &'static str, c: MessageContent, minute: i64| {
        store.deliver(delivery(user.id, raw.as_bytes(), c, minute))
    };
    // The reply arrives before its parent.
    let reply = deliver("reply", content("Re: plans", "b@x", &["a@x"]), 1)
        .await
        .expect("reply");
    let parent = deliver("parent", content("plans", "a@x", &[]), 2)
        .await
        .expect("parent");
    let grandchild = deliver(
        "grandchild",
        content("Re: plans", "c@x", &["a@x", "b@x"]),
        3,
    )
    .await
    .expect("grandchild");
    let by_subject = deliver("by-subject", content("Re: plans", "d@x", &[]), 4)
        .await
        .expect("subject reply");
    let unrelated = deliver("unrelated", content("plans", "e@x", &[]), 5)
        .await
        .expect("unrelated");
    // A reply into a thread this mailbox has not seen yet: its thread, not the subject,
    // decides, whatever order the thread's messages arrive in.
    let other_thread = deliver(
        "other-thread",
        content("Re: plans", "f@x", &["elsewhere@x"]),
        6,
    )
    .await
    .expect("reply into another thread");
    let discussion = |id| async move {
        store
            .get_message(user.id, id)
            .await
            .expect("get")
            .expect("exists")
            .discussion_id
    };
    let d = discussion(reply.message_id).await;
    assert_eq!(discussion(parent.message_id).await, d);
    assert_eq!(discussion(grandchild.message_id).await, d);
    assert_eq!(discussion(by_subject.message_id).await, d);
    let listed = store
        .get_discussion(user.id, d)
        .await
        .expect("get discussion")
        .expect("listed");
    assert_eq!(
        listed.subject.as_deref(),
        Some("plans"),
        "the thread's root gives the discussion its subject, though a reply started it"
    );
    assert_ne!(
        discussion(unrelated.message_id).await,
        d,
        "a non-reply with the same subject starts its own discussion"
    );
    assert_ne!(
        discussion(other_thread.message_id).await,
        d,
        "a reply naming another thread does not join by subject"
    );
}

/// Headers far longer than any key a backend accepts (Cassandra: 64 KiB) are still stored,
/// listed and threaded: a backend refusing them would answer 451 to the same mail forever.
pub async fn long_header_values_are_stored_and_still_thread(store: &dyn Store) {
    let user = store
        .create_user(&unique("long-headers"), &[], None)
        .await
        .expect("user");
    // Well within lmtp.max_header_bytes (256 KiB), and over Cassandra's key limit.
    let subject = format!("Re: {}", "long subject ".repeat(8 * 1024));
    let root_id = format!("{}@x", "r".repeat(70 * 1024));
    let own_id = format!("{}@x", "m".repeat(100 * 1024));
    let first = store
        .deliver(delivery(
            user.id,
            b"long-1",
            content(&subject, &own_id, &[root_id.as_str()]),
            0,
        ))
        .await
        .expect("a long subject, Message-ID and References are accepted");
    let again = store
        .deliver(delivery(
            user.id,
            b"long-1",
            content(&subject, &own_id, &[root_id.as_str()]),
            1,
        ))
        .await
        .expect("redelivery");
    assert!(again.duplicate);
    let by_reference = store
        .deliver(delivery(
            user.id,
            b"long-2",
            content(&subject, "short@x", &[own_id.as_str()]),
            2,
        ))
        .await
        .expect("a reply to the long id");
    let by_subject = store
        .deliver(delivery(
            user.id,
            b"long-3",
            content(&subject, "s@x", &[]),
            3,
        ))
        .await
        .expect("a reply by the long subject");
    let discussion = |id| async move {
        store
            .get_message(user.id, id)
            .await
            .expect("get")
            .expect("exists")
            .discussion_id
    };
    let d = discussion(first.message_id).await;
    assert_eq!(
        discussion(by_reference.message_id).await,
        d,
        "joined by its long id"
    );
    assert_eq!(
        discussion(by_subject.message_id).await,
        d,
        "joined by its long subject"
    );
    let stored = store
        .get_message(user.id, first.message_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        stored.content.subject.as_deref(),
        Some(subject.as_str()),
        "shown in full"
    );
    assert_eq!(
        stored.content.message_id_header.as_deref(),
        Some(own_id.as_str())
    );
    let listed = store
        .list_discussions(
            user.id,
            crate::Folder::Inbox,
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list discussions");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].message_count, 3);
}

/// The most a parsed message can hold (two bodies of `MAX_BODY_BYTES`, of characters that
/// JSON escapes sixfold, and a long subject) fits every store: one that refused it would
/// answer 451 to the same mail forever.
pub async fn the_largest_parsed_content_is_stored(store: &dyn Store) {
    let user = store
        .create_user(&unique("largest"), &[], None)
        .await
        .expect("user");
    let escaped = "\u{1}".repeat(palisade_model::MAX_BODY_BYTES);
    let mut c = content(&"\u{2}".repeat(200 * 1024), "largest@x", &[]);
    c.text_body = Some(escaped.clone());
    c.html_body = Some(escaped.clone());
    c.body_truncated = true;
    let receipt = store
        .deliver(delivery(user.id, b"largest", c, 0))
        .await
        .expect("the largest parsed content is accepted");
    let stored = store
        .get_message(user.id, receipt.message_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.content.text_body.as_deref(), Some(escaped.as_str()));
    assert!(stored.content.body_truncated);
}

/// Summaries fetched by id (a page of search hits) come in the order asked, leave out ids
/// that are not the user's or no longer exist, and match the summaries in lists.
pub async fn summaries_by_id_keep_order_and_owner(store: &dyn Store) {
    let user = store
        .create_user(&unique("summaries"), &[], None)
        .await
        .expect("user");
    let other = store
        .create_user(&unique("summaries-other"), &[], None)
        .await
        .expect("other");
    let mut ids = Vec::new();
    for i in 0..3 {
        let raw = format!("summary {i}");
        let receipt = store
            .deliver(delivery(
                user.id,
                raw.as_bytes(),
                content(&format!("subject {i}"), &format!("s{i}@x"), &[]),
                i,
            ))
            .await
            .expect("deliver");
        ids.push(receipt.message_id);
    }
    let foreign = store
        .deliver(delivery(
            other.id,
            b"foreign",
            content("theirs", "f@x", &[]),
            0,
        ))
        .await
        .expect("deliver to other")
        .message_id;
    let deleted = ids[1];
    assert!(
        store
            .delete_message(user.id, deleted)
            .await
            .expect("delete")
    );
    let asked = [
        ids[2],
        foreign,
        deleted,
        ids[0],
        MessageId::for_raw(user.id, &raw_hash(b"never")),
    ];
    let got = store
        .message_summaries(user.id, &asked)
        .await
        .expect("summaries");
    let got_ids: Vec<_> = got.iter().map(|s| s.id).collect();
    assert_eq!(
        got_ids,
        [ids[2], ids[0]],
        "in the order asked, only the user's live ones"
    );
    let listed = store
        .list_messages(
            user.id,
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(got, listed.items, "the same summaries as the list shows");
    assert!(
        store
            .message_summaries(user.id, &[])
            .await
            .expect("no ids")
            .is_empty()
    );
}

/// Message lists are newest arrival first and page without gaps or repeats.
pub async fn lists_paginate_newest_first(store: &dyn Store) {
    let user = store
        .create_user(&unique("pages"), &[], None)
        .await
        .expect("user");
    let mut ids = Vec::new();
    for i in 0..5 {
        let raw = format!("Subject: {i}\r\n\r\n{i}\r\n");
        let r = store
            .deliver(delivery(
                user.id,
                raw.as_bytes(),
                content(&format!("n{i}"), &format!("{i}@p"), &[]),
                i,
            ))
            .await
            .expect("deliver");
        ids.push(r.message_id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_messages(user.id, Page { after, limit: 2 })
            .await
            .expect("page");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|m| m.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}
