//! Contract checks for account deletion: everything of the user's goes, another user's
//! mail stays, addresses and the name are free again, and deleting twice is harmless.

use crate::contract::{addr, content, delivery, unique};
use crate::{AttachmentLimits, Folder, Page, RemoteTrustEntry, Store, TrustKind};
use bytes::Bytes;
use chrono::Utc;
use palisade_model::{
    Contact, ContactId, Draft, DraftAttachment, DraftAttachmentId, DraftId, FlagsPatch, User,
};

/// Runs the deletion checks in order.
pub(crate) async fn run_all(store: &dyn Store) {
    deleting_a_user_removes_everything_of_theirs_only(store).await;
}

/// A user with two messages in one discussion, a tag on one, a contact, and a draft with a
/// file; `token` is in every piece of text. Backends' own tests look for what deletion left.
pub async fn furnished_user(store: &dyn Store, token: &str) -> User {
    let name = unique("leaving");
    let user = store
        .create_user(
            &name,
            &[addr(&format!("{name}@example.test"))],
            Some(format!("hash-{token}")),
        )
        .await
        .expect("create user");
    let first = content(&format!("plans {token}"), &format!("<{token}-1@x>"), &[]);
    let reply = content(
        &format!("Re: plans {token}"),
        &format!("<{token}-2@x>"),
        &[&format!("<{token}-1@x>")],
    );
    let mut ids = Vec::new();
    for (i, c) in [first, reply].into_iter().enumerate() {
        let raw = format!("Subject: {token}\r\n\r\nbody {token} {i}\r\n");
        let receipt = store
            .deliver(delivery(user.id, raw.as_bytes(), c, i as i64))
            .await
            .expect("deliver");
        ids.push(receipt.message_id);
    }
    let tag = store
        .create_tag(user.id, &format!("tag-{token}"), None, 100)
        .await
        .expect("tag");
    assert!(
        store
            .set_message_tags(user.id, ids[0], &[tag.id])
            .await
            .expect("set tags")
    );
    store
        .update_flags(
            user.id,
            ids[1],
            FlagsPatch {
                seen: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("flags");
    store
        .save_contact(Contact {
            id: ContactId::new_random(),
            user_id: user.id,
            name: Some(format!("Contact {token}")),
            addresses: vec![addr(&format!("{token}@contact.example.test"))],
            public_keys: vec![],
            autocrypt: None,
            history: Default::default(),
        })
        .await
        .expect("contact");
    let draft = store
        .save_draft(Draft {
            id: DraftId::new_random(),
            user_id: user.id,
            from: None,
            to: vec![addr("ann@example.test")],
            cc: vec![],
            bcc: vec![],
            subject: format!("draft {token}"),
            body: format!("draft body {token}"),
            in_reply_to: None,
            forward_of: None,
            updated_at: Utc::now(),
        })
        .await
        .expect("draft");
    let data = Bytes::from(format!("file {token}"));
    store
        .add_draft_attachment(
            DraftAttachment {
                id: DraftAttachmentId::new_random(),
                user_id: user.id,
                draft_id: draft.id,
                file_name: format!("{token}.txt"),
                content_type: "text/plain".into(),
                size: data.len() as u64,
                created_at: Utc::now(),
            },
            data,
            AttachmentLimits {
                max_count: 5,
                max_total_bytes: 1024,
            },
        )
        .await
        .expect("attachment")
        .expect("within limits");
    store
        .add_remote_trust(
            user.id,
            &RemoteTrustEntry {
                kind: TrustKind::Domain,
                value: format!("{token}.example.test"),
            },
        )
        .await
        .expect("remote trust");
    user
}

/// What a user has, as counts a reader can see.
async fn holdings(store: &dyn Store, user: &User) -> [usize; 8] {
    let page = || Page {
        after: None,
        limit: 100,
    };
    [
        store
            .list_messages(user.id, page())
            .await
            .expect("messages")
            .items
            .len(),
        store.count_messages(user.id).await.expect("count") as usize,
        store
            .list_discussions(user.id, Folder::Inbox, page())
            .await
            .expect("discussions")
            .items
            .len(),
        store.list_tags(user.id).await.expect("tags").len(),
        store
            .list_contacts(user.id, page())
            .await
            .expect("contacts")
            .items
            .len(),
        store
            .list_drafts(user.id, page())
            .await
            .expect("drafts")
            .items
            .len(),
        usize::from(store.password_hash(user.id).await.expect("hash").is_some()),
        store
            .list_remote_trust(user.id)
            .await
            .expect("remote trust")
            .len(),
    ]
}

/// After deletion the user, their addresses, mail, discussions, tags, contacts, drafts,
/// files, password and remote-content settings are gone; the other user keeps everything; the name and address can
/// be taken again by a new account, which starts empty; deleting again reports `false`.
async fn deleting_a_user_removes_everything_of_theirs_only(store: &dyn Store) {
    let leaving = furnished_user(store, &unique("tokenleave")).await;
    let staying = furnished_user(store, &unique("tokenstay")).await;
    let full = [2, 2, 1, 1, 1, 1, 1, 1];
    assert_eq!(holdings(store, &leaving).await, full);
    let messages = store
        .list_messages(
            leaving.id,
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("messages")
        .items;
    let drafts = store
        .list_drafts(
            leaving.id,
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("drafts")
        .items;
    let files = store
        .list_draft_attachments(leaving.id, drafts[0].id)
        .await
        .expect("files");

    assert!(store.delete_user(leaving.id).await.expect("delete user"));

    assert_eq!(holdings(store, &leaving).await, [0; 8]);
    assert_eq!(holdings(store, &staying).await, full);
    assert!(store.get_user(leaving.id).await.expect("get").is_none());
    assert!(
        store
            .find_user(&leaving.name)
            .await
            .expect("find")
            .is_none()
    );
    let address = &leaving.addresses[0];
    assert_eq!(store.resolve_address(address).await.expect("resolve"), None);
    assert!(
        !store
            .list_users()
            .await
            .expect("users")
            .iter()
            .any(|u| u.id == leaving.id)
    );
    for m in &messages {
        assert!(
            store
                .get_message(leaving.id, m.id)
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            store
                .get_raw(leaving.id, m.id)
                .await
                .expect("raw")
                .is_none()
        );
        assert!(
            store
                .get_discussion(leaving.id, m.discussion_id)
                .await
                .expect("discussion")
                .is_none()
        );
    }
    assert!(
        store
            .get_draft_attachment(leaving.id, drafts[0].id, files[0].id)
            .await
            .expect("file")
            .is_none()
    );

    assert!(!store.delete_user(leaving.id).await.expect("delete again"));
    // A delivery that had resolved the address just before it went, landing afterwards: a
    // second run removes it.
    store
        .deliver(delivery(
            leaving.id,
            b"Subject: late\r\n\r\nlate\r\n",
            content("late", "<late@x>", &[]),
            10,
        ))
        .await
        .expect("late delivery");
    assert!(!store.delete_user(leaving.id).await.expect("sweep"));
    assert_eq!(holdings(store, &leaving).await, [0; 8]);
    let again = store
        .create_user(&leaving.name, &leaving.addresses, None)
        .await
        .expect("name and address are free again");
    assert_ne!(again.id, leaving.id);
    assert_eq!(holdings(store, &again).await, [0; 8]);
}
