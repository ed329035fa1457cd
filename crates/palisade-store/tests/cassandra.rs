//! The Cassandra store against the shared contract, on a real node.
//!
//! Each test migrates its own fresh keyspace and drops it afterwards. The node comes from
//! `PALISADE_CASSANDRA_NODES` (comma-separated, default `127.0.0.1:9042`); when it cannot be
//! reached the tests fail, because a skipped backend test looks exactly like a passing one.

use futures::FutureExt;
use palisade_config::CassandraConfig;
use palisade_model::{MessageContent, MessageId, UserId};
use palisade_store::cassandra::CassandraStore;
use palisade_store::contract::{self, delivery};
use palisade_store::{Accounts, Mailbox, Page, StoreError};
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Statement;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Schema changes from parallel tests are serialized: one node handles them one at a time
/// anyway, and concurrent ones can time out waiting for schema agreement.
static SCHEMA: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn nodes() -> Vec<String> {
    std::env::var("PALISADE_CASSANDRA_NODES")
        .unwrap_or_else(|_| "127.0.0.1:9042".into())
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

fn config(keyspace: &str, raw_chunk_bytes: usize) -> CassandraConfig {
    CassandraConfig {
        nodes: nodes(),
        keyspace: keyspace.into(),
        replication_factor: 1,
        consistency: palisade_config::Consistency::One,
        raw_chunk_bytes,
        request_timeout_secs: 30,
    }
}

async fn connect(config: &CassandraConfig) -> CassandraStore {
    CassandraStore::connect(config).await.unwrap_or_else(|e| {
        panic!(
            "Cassandra is not reachable at {}: {e}\n\
             Start it with `devtools/services up cassandra`, or point \
             PALISADE_CASSANDRA_NODES at a running node.",
            config.nodes.join(",")
        )
    })
}

/// Runs `body` on a store over a fresh, migrated keyspace, then drops the keyspace even if
/// `body` panicked.
async fn with_fresh_keyspace<F, Fut>(raw_chunk_bytes: usize, body: F)
where
    F: FnOnce(CassandraStore, CassandraConfig, u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let keyspace = format!("palisade_test_{}", uuid::Uuid::new_v4().simple());
    let config = config(&keyspace, raw_chunk_bytes);
    let store = connect(&config).await;
    let applied = {
        let _schema = SCHEMA.lock().await;
        store.migrate().await.expect("first migration")
    };
    // On the heap: a test body is one large future, and a debug build's test thread has a
    // 2 MiB stack.
    let outcome = AssertUnwindSafe(Box::pin(body(store, config, applied)))
        .catch_unwind()
        .await;
    drop_keyspace(&keyspace).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A plain driver session, for what the store's API does not do: dropping keyspaces, and
/// putting rows in the states that faults leave.
async fn raw_session() -> scylla::client::session::Session {
    SessionBuilder::new()
        .known_nodes(nodes())
        .build()
        .await
        .expect("a session to the test node")
}

async fn drop_keyspace(keyspace: &str) {
    let _schema = SCHEMA.lock().await;
    let session = raw_session().await;
    let mut drop = Statement::new(format!("DROP KEYSPACE IF EXISTS {keyspace}"));
    drop.set_request_timeout(Some(Duration::from_secs(120)));
    session
        .query_unpaged(drop, ())
        .await
        .expect("drop test keyspace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_store_meets_the_contract() {
    with_fresh_keyspace(512 * 1024, |store, _, applied| async move {
        assert!(applied >= 1, "a fresh keyspace applies every migration");
        contract::run_all(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent() {
    with_fresh_keyspace(512 * 1024, |store, config, _| async move {
        let _schema = SCHEMA.lock().await;
        assert_eq!(store.migrate().await.expect("second migration"), 0);
        let other = connect(&config).await;
        assert_eq!(
            other
                .migrate()
                .await
                .expect("migration from a second process"),
            0
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_messages_round_trip_across_chunks() {
    with_fresh_keyspace(1000, |store, _, _| async move {
        let user = store.create_user("chunks", &[], None).await.expect("user");
        // Every byte value, over more than three chunks and ending mid-chunk.
        let large: Vec<u8> = (0..3_700u32).map(|i| (i * 7 % 256) as u8).collect();
        let exact: Vec<u8> = (0..3_000u32).map(|i| (255 - i % 256) as u8).collect();
        let cases: [(&str, &[u8]); 3] = [
            ("large", &large),
            ("exact multiple", &exact),
            ("empty", &[]),
        ];
        for (minute, (what, raw)) in (0_i64..).zip(cases) {
            let receipt = store
                .deliver(delivery(user.id, raw, MessageContent::default(), minute))
                .await
                .unwrap_or_else(|e| panic!("deliver {what}: {e}"));
            let stored = store
                .get_raw(user.id, receipt.message_id)
                .await
                .unwrap_or_else(|e| panic!("get_raw {what}: {e}"))
                .unwrap_or_else(|| panic!("{what} raw exists"));
            assert_eq!(stored, raw, "{what} comes back byte-exactly");
            let message = store
                .get_message(user.id, receipt.message_id)
                .await
                .expect("get")
                .expect("exists");
            assert_eq!(message.raw_size, raw.len() as u64);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redeliveries_store_one_message() {
    with_fresh_keyspace(1000, |store, _, _| async move {
        let store = Arc::new(store);
        let user = store.create_user("racing", &[], None).await.expect("user");
        let raw = b"Subject: twice\r\n\r\nthe LMTP client retried while we were writing\r\n";
        let mut tasks = Vec::new();
        for minute in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .deliver(delivery(user.id, raw, MessageContent::default(), minute))
                    .await
            }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.expect("join").expect("deliver").message_id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one message id for the same bytes");
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
        assert_eq!(listed.items.len(), 1, "listed once: {:?}", listed.items);
        let again = store
            .deliver(delivery(user.id, raw, MessageContent::default(), 9))
            .await
            .expect("redeliver");
        assert!(again.duplicate);
    })
    .await;
}

/// A commit that Cassandra applied but whose reply was lost (the node killed at that moment)
/// leaves a delivered message that its attempt never counted; the LMTP client's retry finds
/// it delivered, and must count it, once, or the index watermark never catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_counts_a_commit_whose_reply_was_lost() {
    with_fresh_keyspace(1000, |store, config, _| async move {
        let user = store
            .create_user("lost-reply", &[], None)
            .await
            .expect("user");
        let raw = b"Subject: applied\r\n\r\nthe node died before it answered\r\n";
        let first = store
            .deliver(delivery(user.id, raw, MessageContent::default(), 0))
            .await
            .expect("deliver");
        assert_eq!(store.count_messages(user.id).await.expect("count"), 1);

        leave_uncounted(&config.keyspace, user.id, first.message_id).await;
        assert_eq!(store.count_messages(user.id).await.expect("count"), 0);

        for minute in 1..=2 {
            let retry = store
                .deliver(delivery(user.id, raw, MessageContent::default(), minute))
                .await
                .expect("retry");
            assert!(retry.duplicate);
            assert_eq!(
                store.count_messages(user.id).await.expect("count"),
                1,
                "counted by the first retry only"
            );
        }
    })
    .await;
}

/// What a delivery attempt leaves when it fails between its commit and its count: the message
/// marked uncounted, the user's count one short.
async fn leave_uncounted(ks: &str, user: UserId, message: MessageId) {
    let session = raw_session().await;
    session
        .query_unpaged(
            format!("UPDATE {ks}.messages SET uncounted = true WHERE user_id = ? AND id = ?"),
            (user.0, message.0),
        )
        .await
        .expect("mark uncounted");
    session
        .query_unpaged(
            format!("UPDATE {ks}.message_counts SET stored = stored - 1 WHERE user_id = ?"),
            (user.0,),
        )
        .await
        .expect("uncount");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_message_never_counted_leaves_the_count_alone() {
    with_fresh_keyspace(1000, |store, config, _| async move {
        let user = store
            .create_user("deleted-uncounted", &[], None)
            .await
            .expect("user");
        let raw = b"Subject: uncounted\r\n\r\ndeleted before a retry counted it\r\n";
        let kept = b"Subject: kept\r\n\r\nstays\r\n";
        let first = store
            .deliver(delivery(user.id, raw, MessageContent::default(), 0))
            .await
            .expect("deliver");
        store
            .deliver(delivery(user.id, kept, MessageContent::default(), 1))
            .await
            .expect("deliver");
        leave_uncounted(&config.keyspace, user.id, first.message_id).await;
        assert_eq!(store.count_messages(user.id).await.expect("count"), 1);

        assert!(
            store
                .delete_message(user.id, first.message_id)
                .await
                .expect("delete")
        );
        assert_eq!(
            store.count_messages(user.id).await.expect("count"),
            1,
            "the message left was counted once and still is"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_is_unavailable_quickly() {
    let config = CassandraConfig {
        nodes: vec!["127.0.0.1:1".into()],
        keyspace: "palisade_unreachable".into(),
        replication_factor: 1,
        consistency: palisade_config::Consistency::One,
        raw_chunk_bytes: 1000,
        request_timeout_secs: 2,
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        let store = CassandraStore::connect(&config).await?;
        let raw = b"Subject: lost\r\n\r\n";
        store
            .deliver(delivery(
                UserId::new_random(),
                raw,
                MessageContent::default(),
                0,
            ))
            .await
            .map(|_| ())
    })
    .await
    .expect("an unreachable cluster must fail, not hang");
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_refused_before_connecting() {
    let config = config("not a keyspace; DROP", 1000);
    let refused = CassandraStore::connect(&config).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_arrival_times_page_by_descending_id_like_sqlite() {
    with_fresh_keyspace(1000, |store, _, _| async move {
        let user = store.create_user("ties", &[], None).await.expect("user");
        let mut expected = Vec::new();
        for i in 0..6 {
            let raw = format!("Subject: tie {i}\r\n\r\n{i}\r\n");
            let receipt = store
                .deliver(delivery(
                    user.id,
                    raw.as_bytes(),
                    MessageContent::default(),
                    0,
                ))
                .await
                .expect("deliver");
            expected.push(receipt.message_id);
        }
        // The embedded store orders ties by the id's text; Cassandra's uuid order must agree.
        expected.sort_by_key(|id| std::cmp::Reverse(id.to_string()));
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_messages(user.id, Page { after, limit: 1 })
                .await
                .expect("page");
            seen.extend(page.items.iter().map(|m| m.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
    })
    .await;
}

/// Moves a keyspace's lists back to the layout before schema version 6: the month tables'
/// rows go to the old per-user tables, and the month tables, the month list and the counters
/// are emptied, as are the thread keys' and discussion rows' own partitions (back to the
/// per-user tables), as in a keyspace written by an older Palisade.
async fn back_to_unbucketed_lists(keyspace: &str) {
    let session = raw_session().await;
    for (new, old) in [
        ("messages_by_arrival_month", "messages_by_arrival"),
        ("discussions_by_activity_month", "discussions_by_activity"),
        ("thread_keys_by_key", "thread_keys"),
        ("discussions_by_id", "discussions"),
    ] {
        let rows = session
            .query_unpaged(format!("SELECT JSON * FROM {keyspace}.{new}"), ())
            .await
            .expect("select month rows")
            .into_rows_result()
            .expect("rows");
        for row in rows.rows::<(String,)>().expect("json rows") {
            let (json,) = row.expect("json row");
            let mut value: serde_json::Value = serde_json::from_str(&json).expect("json");
            if let Some(object) = value.as_object_mut() {
                object.remove("month");
            }
            session
                .query_unpaged(
                    format!("INSERT INTO {keyspace}.{old} JSON ?"),
                    (value.to_string(),),
                )
                .await
                .expect("insert old row");
        }
    }
    let _schema = SCHEMA.lock().await;
    for table in [
        "thread_keys_by_key",
        "discussions_by_id",
        "messages_by_arrival_month",
        "discussions_by_activity_month",
        "mailbox_months",
        "message_counts",
    ] {
        let mut truncate = Statement::new(format!("TRUNCATE {keyspace}.{table}"));
        truncate.set_request_timeout(Some(Duration::from_secs(120)));
        session.query_unpaged(truncate, ()).await.expect("truncate");
    }
}

/// Every message and discussion id of the user's lists, in order.
async fn lists(store: &CassandraStore, user: UserId) -> (Vec<uuid::Uuid>, Vec<uuid::Uuid>) {
    let messages = store
        .list_messages(
            user,
            Page {
                after: None,
                limit: 1000,
            },
        )
        .await
        .expect("list messages");
    let discussions = store
        .list_discussions(
            user,
            palisade_store::Folder::Inbox,
            Page {
                after: None,
                limit: 1000,
            },
        )
        .await
        .expect("list discussions");
    (
        messages.items.iter().map(|m| m.id.0).collect(),
        discussions.items.iter().map(|d| d.id.0).collect(),
    )
}

/// The user's discussions in the inbox and in the trash, as the API shows them.
async fn discussions(store: &CassandraStore, user: UserId) -> Vec<palisade_model::Discussion> {
    let mut all = Vec::new();
    for folder in [palisade_store::Folder::Inbox, palisade_store::Folder::Trash] {
        let page = Page {
            after: None,
            limit: 1000,
        };
        let listed = store
            .list_discussions(user, folder, page)
            .await
            .expect("list discussions");
        all.extend(listed.items);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_lists_an_upgraded_keyspace_and_is_idempotent() {
    with_fresh_keyspace(512 * 1024, |store, config, _| async move {
        let user = store
            .create_user("upgraded", &[], None)
            .await
            .expect("user");
        let mut refs: Vec<String> = Vec::new();
        // A thread over three months, and two messages of their own.
        for (i, day) in [0_i64, 40, 75].into_iter().enumerate() {
            let mid = format!("t{i}@x");
            let r: Vec<&str> = refs.iter().map(String::as_str).collect();
            let subject = if i == 0 { "thread" } else { "Re: thread" };
            let content = contract::content(subject, &mid, &r);
            store
                .deliver(delivery(user.id, mid.as_bytes(), content, day * 24 * 60))
                .await
                .expect("deliver thread");
            refs.push(mid);
        }
        for (i, day) in [10_i64, 50].into_iter().enumerate() {
            let mid = format!("alone{i}@x");
            let content = contract::content(&format!("alone {i}"), &mid, &[]);
            store
                .deliver(delivery(user.id, mid.as_bytes(), content, day * 24 * 60))
                .await
                .expect("deliver");
        }
        let before = lists(&store, user.id).await;
        assert_eq!((before.0.len(), before.1.len()), (5, 3));
        assert_eq!(store.count_messages(user.id).await.expect("count"), 5);
        // Read, trashed and tagged messages, so the discussion rows' id sets have something
        // to carry over. `before.0` is newest first: t2, alone1, t1, alone0, t0.
        let id = |i: usize| palisade_model::MessageId(before.0[i]);
        let seen = palisade_model::FlagsPatch {
            seen: Some(true),
            ..Default::default()
        };
        let trashed = palisade_model::FlagsPatch {
            trashed: Some(true),
            ..Default::default()
        };
        store
            .update_flags(user.id, id(4), seen)
            .await
            .expect("seen");
        store
            .update_flags(user.id, id(3), seen)
            .await
            .expect("seen");
        store
            .update_flags(user.id, id(4), trashed)
            .await
            .expect("trash");
        let tag = store
            .create_tag(user.id, "kept", None, 10)
            .await
            .expect("tag");
        assert!(
            store
                .set_message_tags(user.id, id(2), &[tag.id])
                .await
                .expect("tag message")
        );
        let shown = discussions(&store, user.id).await;
        let thread = shown
            .iter()
            .find(|d| d.message_count == 3)
            .expect("the thread");
        assert_eq!(
            (thread.unread_count, thread.trashed_count, &thread.tags[..]),
            (2, 1, &[tag.id][..])
        );
        assert!(!thread.participants.is_empty());

        back_to_unbucketed_lists(&config.keyspace).await;
        assert_eq!(lists(&store, user.id).await, (vec![], vec![]));
        assert_eq!(store.count_messages(user.id).await.expect("count"), 0);

        let mut seen = Vec::new();
        let report = store
            .backfill(&mut |_, name: &str| seen.push(name.to_string()))
            .await
            .expect("backfill");
        assert_eq!(seen, vec!["upgraded".to_string()], "progress per user");
        assert_eq!(
            (
                report.users,
                report.messages,
                report.discussions,
                report.discussion_rows
            ),
            (1, 5, 3, 3)
        );
        assert!(report.thread_keys >= 5, "every message's own id at least");
        assert_eq!(report.recounted, 1);
        assert_eq!(lists(&store, user.id).await, before);
        assert_eq!(discussions(&store, user.id).await, shown);
        assert_eq!(store.count_messages(user.id).await.expect("count"), 5);

        // Again: nothing changes, and the counter is not counted twice.
        let again = store
            .backfill(&mut |_, _| {})
            .await
            .expect("backfill again");
        assert_eq!((again.recounted, again.discussion_rows), (0, 0));
        assert_eq!(lists(&store, user.id).await, before);
        assert_eq!(discussions(&store, user.id).await, shown);
        assert_eq!(store.count_messages(user.id).await.expect("count"), 5);

        // The old thread keys lead a new reply into its discussion.
        let reply = contract::content("Re: thread", "t3@x", &["t2@x"]);
        let receipt = store
            .deliver(delivery(user.id, b"t3@x", reply, 80 * 24 * 60))
            .await
            .expect("deliver reply");
        let reply = store
            .get_message(user.id, receipt.message_id)
            .await
            .expect("get reply")
            .expect("reply stored");
        let (messages, discussions) = lists(&store, user.id).await;
        assert_eq!(discussions.len(), 3, "the reply joined its thread");
        assert_eq!(discussions[0], reply.discussion_id.0);
        assert_eq!(messages.len(), 6);
        assert!(
            store
                .delete_message(user.id, receipt.message_id)
                .await
                .expect("delete")
        );
        assert_eq!(lists(&store, user.id).await, before);

        // A message deleted since is not brought back by the old list's row.
        let gone = palisade_model::MessageId(before.0[0]);
        assert!(store.delete_message(user.id, gone).await.expect("delete"));
        store
            .backfill(&mut |_, _| {})
            .await
            .expect("backfill after delete");
        let after = lists(&store, user.id).await;
        assert_eq!(after.0, before.0[1..].to_vec());
        assert_eq!(store.count_messages(user.id).await.expect("count"), 4);
    })
    .await;
}

/// What a new daemon changes on a discussion before the backfill wins over the old row: the
/// copy is written at a time older than any daemon's. Here the people rebuilt by a deletion
/// must not get back the deleted message's sender from the old row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_keeps_what_changed_since_the_upgrade() {
    with_fresh_keyspace(512 * 1024, |store, config, _| async move {
        let user = store.create_user("changed", &[], None).await.expect("user");
        let first = contract::content("thread", "c0@x", &[]);
        let mut reply = contract::content("Re: thread", "c1@x", &["c0@x"]);
        reply.participants = vec![palisade_model::Participant {
            role: palisade_model::ParticipantRole::From,
            name: Some("Other".into()),
            address: Some("other@example.test".into()),
        }];
        let first = store
            .deliver(delivery(user.id, b"c0@x", first, 0))
            .await
            .expect("deliver");
        let reply = store
            .deliver(delivery(user.id, b"c1@x", reply, 60))
            .await
            .expect("deliver reply");
        let discussion = store
            .get_message(user.id, first.message_id)
            .await
            .expect("get")
            .expect("stored")
            .discussion_id;
        let shown = store
            .get_discussion(user.id, discussion)
            .await
            .expect("get discussion")
            .expect("discussion");
        assert_eq!((shown.message_count, shown.participants.len()), (2, 2));

        back_to_unbucketed_lists(&config.keyspace).await;
        // A daemon of the new release deletes the reply before the backfill ran: it rebuilds
        // the people of the (new, still empty) discussion row from the messages left.
        assert!(
            store
                .delete_message(user.id, reply.message_id)
                .await
                .expect("delete")
        );
        let report = store.backfill(&mut |_, _| {}).await.expect("backfill");
        assert_eq!(report.discussion_rows, 1);
        let after = store
            .get_discussion(user.id, discussion)
            .await
            .expect("get discussion")
            .expect("discussion");
        assert_eq!(after.subject.as_deref(), Some("thread"));
        assert_eq!((after.message_count, after.unread_count), (1, 1));
        let people: Vec<Option<&str>> = after
            .participants
            .iter()
            .map(|p| p.address.as_deref())
            .collect();
        assert_eq!(people, vec![Some("sender@example.test")]);

        let again = store
            .backfill(&mut |_, _| {})
            .await
            .expect("backfill again");
        assert_eq!(again.discussion_rows, 0);
        assert_eq!(
            store
                .get_discussion(user.id, discussion)
                .await
                .expect("get discussion"),
            Some(after)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_has_no_row_left_in_any_table() {
    with_fresh_keyspace(1000, |store, config, _| async move {
        let user = contract::furnished_user(&store, "cassleaving").await;
        let kept = contract::furnished_user(&store, "cassstaying").await;
        let session = raw_session().await;
        let ks = &config.keyspace;
        // Every table with a user column; a full scan is fine on a test keyspace.
        let tables: Vec<(String, String)> = session
            .query_unpaged(
                "SELECT table_name, column_name FROM system_schema.columns \
                 WHERE keyspace_name = ?",
                (ks.as_str(),),
            )
            .await
            .expect("tables")
            .into_rows_result()
            .expect("rows")
            .rows::<(String, String)>()
            .expect("typed")
            .map(|r| r.expect("row"))
            .filter(|(_, column)| column == "user_id")
            .collect();
        assert!(tables.len() > 20, "{tables:?}");
        let rows_of = |id: uuid::Uuid| {
            let session = &session;
            let tables = &tables;
            async move {
                let mut found = Vec::new();
                for (table, _) in tables {
                    let n = session
                        .query_unpaged(
                            format!("SELECT * FROM {ks}.{table} WHERE user_id = ? ALLOW FILTERING"),
                            (id,),
                        )
                        .await
                        .expect("scan")
                        .into_rows_result()
                        .expect("rows")
                        .rows_num();
                    if n > 0 {
                        found.push(format!("{table}: {n}"));
                    }
                }
                let users = session
                    .query_unpaged(format!("SELECT * FROM {ks}.users WHERE id = ?"), (id,))
                    .await
                    .expect("users")
                    .into_rows_result()
                    .expect("rows")
                    .rows_num();
                if users > 0 {
                    found.push(format!("users: {users}"));
                }
                found
            }
        };
        assert!(!rows_of(user.id.0).await.is_empty(), "the check sees rows");

        assert!(store.delete_user(user.id).await.expect("delete"));

        assert_eq!(rows_of(user.id.0).await, Vec::<String>::new());
        assert!(
            rows_of(kept.id.0).await.len() > 10,
            "the other user keeps mail"
        );
    })
    .await;
}
