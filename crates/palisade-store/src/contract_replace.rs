//! Contract checks for replacing a message's parsed content (re-parsing stored mail after a
//! parser change): every view derived from the content follows it, the raw bytes, flags and
//! discussion membership do not move, and another user cannot reach the message.

use crate::contract::{content, delivery, unique};
use crate::{Folder, Page, Store};
use chrono::{TimeZone, Utc};
use palisade_model::{MessageContent, MessageId, Participant, ParticipantRole, UserId};

/// Runs the replacement checks in order.
pub(crate) async fn run_all(store: &dyn Store) {
    replaced_content_shows_in_every_view_and_raw_stays(store).await;
}

fn page(limit: usize) -> Page {
    Page { after: None, limit }
}

fn from(c: MessageContent, who: &str) -> MessageContent {
    MessageContent {
        participants: vec![Participant {
            role: ParticipantRole::From,
            name: Some(who.to_uppercase()),
            address: Some(format!("{who}@example.test")),
        }],
        ..c
    }
}

async fn addresses_of_discussion(store: &dyn Store, user: UserId, id: MessageId) -> Vec<String> {
    let message = store
        .get_message(user, id)
        .await
        .expect("get")
        .expect("exists");
    store
        .get_discussion(user, message.discussion_id)
        .await
        .expect("discussion")
        .expect("exists")
        .participants
        .iter()
        .filter_map(|p| p.address.clone())
        .collect()
}

/// A starting message and a reply; the starter's content is replaced (subject, sender, date,
/// body, parse error), then the reply's (snippet, privacy). Every view follows, raw bytes and
/// membership stay, and a second identical replacement changes nothing.
async fn replaced_content_shows_in_every_view_and_raw_stays(store: &dyn Store) {
    let user = store
        .create_user(&unique("reparse"), &[], None)
        .await
        .expect("user");
    let other = store
        .create_user(&unique("reparse-other"), &[], None)
        .await
        .expect("other");
    let raw_a = b"Subject: old\r\n \r\nFrom: new@example.test\r\n\r\nbody\r\n".as_slice();
    let raw_b = b"Subject: Re: old\r\nIn-Reply-To: <a@x>\r\n\r\nreply \xff\r\n".as_slice();
    let mut stale = from(content("old", "a@x", &[]), "old");
    stale.parse_error = Some("header section ended early".into());
    let a = store
        .deliver(delivery(user.id, raw_a, stale, 1))
        .await
        .expect("a")
        .message_id;
    let b = store
        .deliver(delivery(
            user.id,
            raw_b,
            from(content("Re: old", "b@x", &["a@x"]), "bo"),
            2,
        ))
        .await
        .expect("b")
        .message_id;
    let before = store
        .get_message(user.id, a)
        .await
        .expect("get")
        .expect("a");
    assert_eq!(
        addresses_of_discussion(store, user.id, a).await,
        ["old@example.test", "bo@example.test"]
    );

    let date = Utc.with_ymd_and_hms(2025, 6, 1, 9, 55, 6).single();
    let fresh = MessageContent {
        date,
        html_body: Some("<p>new body</p>".into()),
        text_body: Some("new body".into()),
        ..from(content("new subject", "a@x", &[]), "new")
    };
    assert!(
        store
            .replace_content(user.id, a, &fresh)
            .await
            .expect("replace"),
        "an existing message is replaced"
    );

    let after = store
        .get_message(user.id, a)
        .await
        .expect("get")
        .expect("a");
    assert_eq!(after.content, fresh);
    assert_eq!(
        (
            after.discussion_id,
            after.flags,
            &after.tags,
            after.raw_sha256,
            &after.envelope
        ),
        (
            before.discussion_id,
            before.flags,
            &before.tags,
            before.raw_sha256,
            &before.envelope
        ),
        "only the content changes"
    );
    assert_eq!(
        store.get_raw(user.id, a).await.expect("raw").as_deref(),
        Some(raw_a),
        "raw bytes never change"
    );

    let listed = store.list_messages(user.id, page(10)).await.expect("list");
    let summary = listed.items.iter().find(|s| s.id == a).expect("listed");
    assert_eq!(summary.subject.as_deref(), Some("new subject"));
    assert_eq!(
        summary.from.as_ref().and_then(|f| f.address.as_deref()),
        Some("new@example.test")
    );
    assert_eq!(Some(summary.date), date);
    assert!(!summary.parse_error);
    let by_id = store
        .message_summaries(user.id, &[a])
        .await
        .expect("summaries");
    assert_eq!(by_id.as_slice(), std::slice::from_ref(summary));
    let in_discussion = store
        .discussion_messages(user.id, after.discussion_id, None, page(10))
        .await
        .expect("discussion messages");
    assert_eq!(
        in_discussion.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        [b, a],
        "membership stays"
    );
    assert_eq!(in_discussion.items[1], *summary);

    let discussion = store
        .get_discussion(user.id, after.discussion_id)
        .await
        .expect("discussion")
        .expect("exists");
    assert_eq!(
        discussion.subject.as_deref(),
        Some("new subject"),
        "a discussion shows its starting message's subject"
    );
    assert_eq!(discussion.message_count, 2);
    assert_eq!(
        discussion.snippet, "body of b@x",
        "the reply is still the newest"
    );
    assert_eq!(
        addresses_of_discussion(store, user.id, a).await,
        ["new@example.test", "bo@example.test"],
        "the discussion's people follow its messages'"
    );

    // The newest message decides the discussion's snippet and privacy.
    let mut reply = from(content("Re: new subject", "b@x", &["a@x"]), "bo");
    reply.text_body = Some("the reply, read again".into());
    reply.privacy.list_id = Some("list.example.test".into());
    assert!(
        store
            .replace_content(user.id, b, &reply)
            .await
            .expect("replace")
    );
    let listed = store
        .list_discussions(user.id, Folder::Inbox, page(10))
        .await
        .expect("discussions");
    let shown = listed
        .items
        .iter()
        .find(|d| d.id == discussion.id)
        .expect("listed");
    assert_eq!(shown.snippet, "the reply, read again");
    assert_eq!(shown.privacy.list_id.as_deref(), Some("list.example.test"));
    assert_eq!(
        shown.subject.as_deref(),
        Some("new subject"),
        "a reply's subject is its own"
    );
    assert_eq!(
        store.get_raw(user.id, b).await.expect("raw").as_deref(),
        Some(raw_b)
    );

    // Idempotent: the same content again changes nothing anyone sees.
    assert!(
        store
            .replace_content(user.id, a, &fresh)
            .await
            .expect("again")
    );
    assert_eq!(
        store
            .get_discussion(user.id, discussion.id)
            .await
            .expect("get"),
        Some(shown.clone())
    );

    // Absent, or another user's: nothing to replace, nothing changed.
    assert!(
        !store
            .replace_content(other.id, a, &reply)
            .await
            .expect("other user")
    );
    assert!(
        !store
            .replace_content(
                user.id,
                MessageId::for_raw(user.id, &crate::raw_hash(b"never delivered")),
                &reply
            )
            .await
            .expect("unknown")
    );
    assert_eq!(
        store
            .get_message(user.id, a)
            .await
            .expect("get")
            .map(|m| m.content),
        Some(fresh)
    );
    assert_eq!(store.count_messages(other.id).await.expect("count"), 0);
}
