//! A job whose message cannot be decoded is dead-lettered, not retried as if a backend were down.

use palisade_index::SearchIndex;
use palisade_index::tantivy_backend::TantivyIndex;
use palisade_jobs::JobQueue;
use palisade_model::MessageContent;
use palisade_store::contract::delivery;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Accounts, AddressBook, Mailbox};
use palisade_worker::IndexWorker;
use std::sync::Arc;

mod common;

/// A worker over the embedded store, as its queue too, retrying at once.
fn worker(store: Arc<SqliteStore>, index: Arc<TantivyIndex>) -> IndexWorker {
    common::worker(store.clone(), store, index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_corrupt_stored_data_is_dead_lettered_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    let index = Arc::new(TantivyIndex::open(&dir.path().join("index")).expect("index"));
    let user = store.create_user("corrupt", &[], None).await.expect("user");
    let broken = store
        .deliver(delivery(user.id, b"broken", MessageContent::default(), 0))
        .await
        .expect("deliver");
    store
        .deliver(delivery(user.id, b"sound", MessageContent::default(), 1))
        .await
        .expect("deliver");
    let admin = rusqlite::Connection::open(&path).expect("admin connection");
    let changed = admin
        .execute(
            "UPDATE messages SET content_json = 'not json' WHERE id = ?1",
            [broken.message_id.to_string()],
        )
        .expect("corrupt the stored message");
    assert_eq!(changed, 1);

    let worker = worker(store.clone(), index);
    worker.run_once().await.expect("run");
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        stats.dead, 1,
        "dead-lettered on the first attempt: {stats:?}"
    );
    assert_eq!(stats.retrying, 0, "not retried as an outage: {stats:?}");
    assert_eq!(stats.done, 1, "the sound message is indexed: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_deleted_account_is_acknowledged_without_touching_the_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open"));
    drop(TantivyIndex::open(&dir.path().join("index")).expect("create index"));
    // Read-only: any index call fails, so the job must be settled without one.
    let index = Arc::new(TantivyIndex::open_read_only(&dir.path().join("index")).expect("index"));
    let user = store.create_user("leaving", &[], None).await.expect("user");
    let message = store
        .deliver(delivery(user.id, b"mail", MessageContent::default(), 0))
        .await
        .expect("deliver")
        .message_id;
    assert!(store.delete_user(user.id).await.expect("delete user"));
    // What RabbitMQ still holds after the deletion: it cannot drop one user's jobs.
    store
        .publish(&[palisade_jobs::JobSpec {
            kind: palisade_jobs::JobKind::Index,
            user_id: user.id,
            message_id: message,
        }])
        .await
        .expect("publish");

    let worker = worker(store.clone(), index);
    assert_eq!(worker.run_once().await.expect("run"), 1);
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.pending, stats.retrying, stats.dead),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.done, 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_read_as_its_account_is_deleted_is_neither_indexed_nor_learned_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    let index = Arc::new(TantivyIndex::open(&dir.path().join("index")).expect("index"));
    let user = store.create_user("leaving", &[], None).await.expect("user");
    let content = MessageContent {
        participants: vec![palisade_model::Participant {
            role: palisade_model::ParticipantRole::From,
            name: Some("Ann".into()),
            address: Some("ann@remote.test".into()),
        }],
        ..Default::default()
    };
    store
        .deliver(delivery(user.id, b"mail", content, 0))
        .await
        .expect("deliver");
    // What a worker sees when it read the message just before the deletion and looks the
    // account up just after: the message, but no user.
    let admin = rusqlite::Connection::open(&path).expect("admin connection");
    admin
        .execute("DELETE FROM users WHERE id = ?1", [user.id.to_string()])
        .expect("remove the user row");

    let search: Arc<dyn SearchIndex> = index.clone();
    assert_eq!(
        worker(store.clone(), index).run_once().await.expect("run"),
        1
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.retrying, stats.dead, stats.done),
        (0, 0, 1),
        "{stats:?}"
    );
    assert_eq!(
        search.count(user.id).await.expect("count"),
        0,
        "not indexed"
    );
    let contacts = store
        .list_contacts(
            user.id,
            palisade_store::Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("contacts");
    assert!(
        contacts.items.is_empty(),
        "no contact learned for a deleted account"
    );
}
