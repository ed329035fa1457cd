//! The embedded store against the shared contract, plus its group-commit fault isolation.

use palisade_model::{MessageContent, UserId};
use palisade_store::contract::{self, delivery};
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Page, Store, StoreError};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open");
    contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_delivery_does_not_sink_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    let user = store.create_user("batch", &[], None).await.expect("user");
    // A real SQLite failure, injected from another connection as an operator's fault would be.
    let admin = rusqlite::Connection::open(&path).expect("admin connection");
    admin
        .execute_batch(
            "CREATE TRIGGER fault BEFORE INSERT ON messages WHEN NEW.subject = 'poison'
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .expect("trigger");

    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let subject = if i == 17 {
                "poison".to_string()
            } else {
                format!("ok {i}")
            };
            let content = MessageContent {
                subject: Some(subject.clone()),
                ..Default::default()
            };
            let raw = format!("Subject: {subject}\r\n\r\n{i}\r\n");
            (
                i,
                store
                    .deliver(delivery(user.id, raw.as_bytes(), content, i))
                    .await,
            )
        }));
    }
    for task in tasks {
        let (i, result) = task.await.expect("join");
        if i == 17 {
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "{result:?}"
            );
        } else {
            result.expect("healthy delivery in the same batch");
        }
    }
    let listed = store
        .list_messages(
            user.id,
            Page {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 39);
    let leftovers: i64 = admin
        .query_row(
            "SELECT (SELECT COUNT(*) FROM raw_messages) + (SELECT COUNT(*) FROM jobs)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(
        leftovers,
        39 * 2,
        "the failed delivery left no raw bytes or job behind"
    );
    let _ = UserId::new_random();
}
