//! The embedded store against the shared contract, plus its group-commit fault isolation.

use palisade_jobs::{JobKind, JobQueue};
use palisade_model::MessageContent;
use palisade_store::contract::{self, delivery};
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Accounts, Mailbox, Page, StoreError};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open");
    contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_job_queue_meets_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open");
    palisade_jobs::contract::run_all(&store).await;
    palisade_jobs::contract::expired_leases_return(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_queues_its_index_job_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open");
    let user = store.create_user("jobs", &[], None).await.expect("user");
    let raw = b"Subject: x\r\n\r\nbody\r\n";
    let first = store
        .deliver(delivery(user.id, raw, MessageContent::default(), 0))
        .await
        .expect("deliver");
    store
        .deliver(delivery(user.id, raw, MessageContent::default(), 1))
        .await
        .expect("redeliver");
    let jobs = palisade_jobs::contract::claim_at_least(&store, 1).await;
    assert_eq!(jobs[0].spec.kind, JobKind::Index);
    assert_eq!(jobs[0].spec.user_id, user.id);
    assert_eq!(jobs[0].spec.message_id, first.message_id);
    let more = store
        .claim(10, std::time::Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(
        more.is_empty(),
        "redelivery must not queue the job twice: {more:?}"
    );
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_job_is_dead_lettered_and_the_rest_still_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    let user = store.create_user("poison", &[], None).await.expect("user");
    for (i, raw) in [b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n"]
        .iter()
        .enumerate()
    {
        store
            .deliver(delivery(user.id, *raw, MessageContent::default(), i as i64))
            .await
            .expect("deliver");
    }
    let admin = rusqlite::Connection::open(&path).expect("admin connection");
    admin
        .execute(
            "UPDATE jobs SET kind = 'no-such-kind' WHERE id = (SELECT MIN(id) FROM jobs)",
            [],
        )
        .expect("corrupt one job");
    let jobs = store
        .claim(10, std::time::Duration::from_secs(60))
        .await
        .expect("a corrupt row must not fail the claim");
    assert_eq!(jobs.len(), 1, "the sound job is still handed out");
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.dead, 1, "the corrupt one is dead-lettered: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_leave_the_outbox_and_are_still_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    let user = store.create_user("steady", &[], None).await.expect("user");
    let admin = rusqlite::Connection::open(&path).expect("admin connection");
    let rows = || -> i64 {
        admin
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .expect("count")
    };
    // A steady stream: the outbox holds only what is in flight, never the history.
    for round in 0..20i64 {
        let raw = format!("Subject: {round}\r\n\r\nbody {round}\r\n");
        store
            .deliver(delivery(
                user.id,
                raw.as_bytes(),
                MessageContent::default(),
                round,
            ))
            .await
            .expect("deliver");
        let jobs = palisade_jobs::contract::claim_at_least(&store, 1).await;
        store.complete(&jobs).await.expect("complete");
        assert_eq!(rows(), 0, "round {round}: finished jobs are pruned");
    }
    assert_eq!(store.stats().await.expect("stats").done, 20);
}

/// Every byte in the files of the database (main file, WAL, shared memory).
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        all.extend(std::fs::read(&path).expect("read file"));
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_mail_leaves_no_bytes_in_the_database_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open");
    let token = "zqvxtokenleaving";
    let user = store.create_user("leaving", &[], None).await.expect("user");
    let kept = store.create_user("staying", &[], None).await.expect("user");
    for (i, who) in [user.id, kept.id].into_iter().enumerate() {
        let mine = if who == user.id { token } else { "keptwords" };
        // A large body, so the raw bytes take overflow pages.
        let raw = format!("Subject: {mine}\r\n\r\n{}\r\n", mine.repeat(2000));
        let content = MessageContent {
            subject: Some(mine.into()),
            text_body: Some(mine.into()),
            ..Default::default()
        };
        store
            .deliver(delivery(who, raw.as_bytes(), content, i as i64))
            .await
            .expect("deliver");
    }
    // An update rewrites the row, leaving its old copy in free space unless zeroed.
    let message = store
        .list_messages(
            user.id,
            Page {
                after: None,
                limit: 1,
            },
        )
        .await
        .expect("list")
        .items[0]
        .id;
    store
        .update_flags(
            user.id,
            message,
            palisade_model::FlagsPatch {
                seen: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("flags");
    assert!(contains(&database_bytes(dir.path()), token.as_bytes()));

    assert!(store.delete_user(user.id).await.expect("delete"));

    let bytes = database_bytes(dir.path());
    assert!(!contains(&bytes, token.as_bytes()), "the token survived");
    assert!(
        contains(&bytes, b"keptwords"),
        "the other user's mail went too"
    );
}

/// Deliveries reach the database file without any commit copying them there: SQLite's own
/// checkpoint waits for 16,000 WAL pages, which a few deliveries are far from, so only the
/// checkpoint thread can have grown the file (in WAL mode nothing else writes it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_thread_copies_commits_home_without_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    let user = store.create_user("home", &[], None).await.expect("user");
    // Whatever the thread had already copied of the schema and the user.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = std::fs::metadata(&path).expect("db file").len();
    for i in 0..20u8 {
        let raw = format!("Subject: {i}\r\n\r\n{}\r\n", "body ".repeat(2_000));
        store
            .deliver(delivery(
                user.id,
                raw.as_bytes(),
                MessageContent::default(),
                i.into(),
            ))
            .await
            .expect("deliver");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).expect("db file").len();
        if now > before + 20 * 10_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {now} bytes (from {before}) for 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
