//! Contract checks for files uploaded to drafts: stored and read back byte for byte, listed
//! in upload order, limited per draft, deleted with their draft, and never reachable by
//! another user.

use crate::contract::{addr, unique};
use crate::{AttachmentLimits, AttachmentRefused, Store, StoreError};
use bytes::Bytes;
use chrono::{Duration, TimeZone, Utc};
use palisade_model::{Draft, DraftAttachment, DraftAttachmentId, DraftId, User, UserId};

/// Runs the draft attachment checks in order.
pub(crate) async fn run_all(store: &dyn Store) {
    attachments_round_trip_per_user(store).await;
    attachment_limits_count_every_file_of_the_draft(store).await;
    deleting_a_draft_deletes_its_attachments(store).await;
}

/// Limits no check here reaches by accident.
const ROOMY: AttachmentLimits = AttachmentLimits {
    max_count: 20,
    max_total_bytes: 20 * 1024 * 1024,
};

async fn user(store: &dyn Store, what: &str) -> User {
    store
        .create_user(&unique(what), &[], None)
        .await
        .expect("user")
}

async fn draft(store: &dyn Store, user: UserId) -> Draft {
    let draft = Draft {
        id: DraftId::new_random(),
        user_id: user,
        from: None,
        to: vec![addr("ann@example.test")],
        cc: vec![],
        bcc: vec![],
        subject: "with files".into(),
        body: "see attached".into(),
        in_reply_to: None,
        forward_of: None,
        updated_at: Utc::now(),
    };
    store.save_draft(draft).await.expect("save draft")
}

/// An attachment of `data` on `draft`, uploaded `second` seconds into the test's clock.
fn file(draft: &Draft, name: &str, data: &[u8], second: i64) -> (DraftAttachment, Bytes) {
    let base = Utc
        .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    (
        DraftAttachment {
            id: DraftAttachmentId::new_random(),
            user_id: draft.user_id,
            draft_id: draft.id,
            file_name: name.into(),
            content_type: "application/octet-stream".into(),
            size: data.len() as u64,
            created_at: base + Duration::seconds(second),
        },
        Bytes::copy_from_slice(data),
    )
}

async fn add(
    store: &dyn Store,
    (a, data): (DraftAttachment, Bytes),
    limits: AttachmentLimits,
) -> Result<Result<DraftAttachment, AttachmentRefused>, StoreError> {
    store.add_draft_attachment(a, data, limits).await
}

/// Files come back byte for byte (across several storage rows, and empty), list in upload
/// order, and are deleted one at a time; another user reaches none of it.
async fn attachments_round_trip_per_user(store: &dyn Store) {
    let owner = user(store, "attach").await;
    let other = user(store, "attach-other").await;
    let d = draft(store, owner.id).await;
    // Every byte value, over more than a megabyte: several rows on a chunked backend.
    let large: Vec<u8> = (0..1_300_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let first = add(store, file(&d, "large.bin", &large, 2), ROOMY)
        .await
        .expect("add")
        .expect("fits");
    let second = add(store, file(&d, "empty.txt", b"", 1), ROOMY)
        .await
        .expect("add")
        .expect("fits");
    let listed = store
        .list_draft_attachments(owner.id, d.id)
        .await
        .expect("list");
    assert_eq!(
        listed,
        [second.clone(), first.clone()],
        "upload order, metadata intact"
    );
    let (meta, bytes) = store
        .get_draft_attachment(owner.id, d.id, first.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(meta, first);
    assert!(bytes == large, "bytes come back exactly");
    let (_, empty) = store
        .get_draft_attachment(owner.id, d.id, second.id)
        .await
        .expect("get")
        .expect("exists");
    assert!(empty.is_empty());

    // Another user sees nothing and can change nothing, even knowing the ids.
    assert!(
        store
            .list_draft_attachments(other.id, d.id)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .get_draft_attachment(other.id, d.id, first.id)
            .await
            .expect("get"),
        None
    );
    assert!(
        !store
            .delete_draft_attachment(other.id, d.id, first.id)
            .await
            .expect("delete")
    );
    let (mut stolen, data) = file(&d, "stolen.txt", b"x", 3);
    stolen.user_id = other.id;
    assert!(
        matches!(
            add(store, (stolen, data), ROOMY).await,
            Err(StoreError::NotFound(_))
        ),
        "a file cannot be added to another user's draft"
    );
    assert!(matches!(
        add(
            store,
            file(
                &Draft {
                    id: DraftId::new_random(),
                    ..d.clone()
                },
                "nowhere.txt",
                b"x",
                3
            ),
            ROOMY
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    // Another draft of the same user does not share its files.
    let sibling = draft(store, owner.id).await;
    assert_eq!(
        store
            .get_draft_attachment(owner.id, sibling.id, first.id)
            .await
            .expect("get"),
        None
    );

    assert!(
        store
            .delete_draft_attachment(owner.id, d.id, first.id)
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_draft_attachment(owner.id, d.id, first.id)
            .await
            .expect("twice")
    );
    assert_eq!(
        store
            .get_draft_attachment(owner.id, d.id, first.id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .list_draft_attachments(owner.id, d.id)
            .await
            .expect("list"),
        [second]
    );
}

/// The count and the total size of a draft's files are both capped, deleting a file frees
/// its room, and concurrent uploads cannot pass the caps together.
async fn attachment_limits_count_every_file_of_the_draft(store: &dyn Store) {
    let owner = user(store, "attach-limits").await;
    let d = draft(store, owner.id).await;
    let limits = AttachmentLimits {
        max_count: 3,
        max_total_bytes: 100,
    };
    let sixty = add(store, file(&d, "a", &[1; 60], 0), limits)
        .await
        .expect("add")
        .expect("fits");
    assert_eq!(
        add(store, file(&d, "b", &[2; 41], 1), limits)
            .await
            .expect("add"),
        Err(AttachmentRefused::TooLarge(100)),
        "60 + 41 passes 100 bytes"
    );
    add(store, file(&d, "c", &[3; 40], 2), limits)
        .await
        .expect("add")
        .expect("60 + 40 is exactly the total allowed");
    add(store, file(&d, "d", b"", 3), limits)
        .await
        .expect("add")
        .expect("an empty file fits in no room");
    assert_eq!(
        add(store, file(&d, "e", b"", 4), limits)
            .await
            .expect("add"),
        Err(AttachmentRefused::TooMany(3))
    );
    assert_eq!(
        store
            .list_draft_attachments(owner.id, d.id)
            .await
            .expect("list")
            .len(),
        3,
        "refused files are not stored"
    );
    assert!(
        store
            .delete_draft_attachment(owner.id, d.id, sixty.id)
            .await
            .expect("delete")
    );
    add(store, file(&d, "f", &[4; 60], 5), limits)
        .await
        .expect("add")
        .expect("a deleted file frees its count and bytes");

    // Racing uploads: exactly the room left is used.
    let racing = draft(store, owner.id).await;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let upload = file(&racing, &format!("r{i}"), &[5; 30], i);
            async move { add(store, upload, limits).await }
        })
        .collect();
    let results = futures::future::join_all(attempts).await;
    let added = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(added, 3, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(Ok(_)) | Ok(Err(AttachmentRefused::TooMany(3))))),
        "{results:?}"
    );
}

/// A deleted draft takes its files with it; the user's other drafts keep theirs.
async fn deleting_a_draft_deletes_its_attachments(store: &dyn Store) {
    let owner = user(store, "attach-delete").await;
    let gone = draft(store, owner.id).await;
    let kept = draft(store, owner.id).await;
    let doomed = add(store, file(&gone, "doomed", b"bytes", 0), ROOMY)
        .await
        .expect("add")
        .expect("fits");
    let survivor = add(store, file(&kept, "kept", b"bytes", 0), ROOMY)
        .await
        .expect("add")
        .expect("fits");
    assert!(store.delete_draft(owner.id, gone.id).await.expect("delete"));
    assert!(
        store
            .list_draft_attachments(owner.id, gone.id)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .get_draft_attachment(owner.id, gone.id, doomed.id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .list_draft_attachments(owner.id, kept.id)
            .await
            .expect("list"),
        [survivor]
    );
}
