//! Reparsing stored mail in the real embedded store: stale parsed views are replaced from the
//! raw bytes and queued for reindexing, a second run changes nothing, and a message whose raw
//! bytes are gone is counted and skipped.

use bytes::Bytes;
use chrono::Utc;
use palisade_ingest::{MailboxCopy, Pipeline, ReparseReport};
use palisade_jobs::JobQueue;
use palisade_mime::ParseLimits;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Accounts, Mailbox};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const PLAIN: &[u8] = b"From: Ann <ann@example.test>\r\nTo: bo@example.test\r\n\
Subject: quarterly figures\r\nDate: Mon, 1 Jun 2026 09:55:06 +0000\r\n\
Message-ID: <q1@example.test>\r\n\r\nThe figures are attached.\r\n";
const HTML: &[u8] = b"From: cy@example.test\r\nSubject: newsletter\r\n\
Message-ID: <n1@example.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nplain\r\n--b\r\nContent-Type: text/html\r\n\r\n\
<p>html</p>\r\n--b--\r\n";

async fn reparse(pipeline: &Pipeline, user: palisade_model::UserId) -> ReparseReport {
    let mut report = ReparseReport::default();
    let mut lines = 0;
    pipeline
        .reparse_mailbox(user, &mut report, 1, &mut |_| lines += 1)
        .await
        .expect("reparse");
    assert!(lines > 0, "progress is reported");
    report
}

#[tokio::test]
async fn reparse_restores_stale_views_once_and_skips_missing_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("palisade.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    let pipeline = Pipeline::new(
        store.clone(),
        store.clone(),
        ParseLimits::default(),
        Arc::new(Notify::new()),
    );
    let user = store.create_user("ann", &[], None).await.expect("user").id;
    let mut ids = Vec::new();
    for raw in [PLAIN, HTML, b"Subject: gone\r\n\r\nraw lost\r\n".as_slice()] {
        let copy = MailboxCopy::received(user, None, "ann@example.test".into(), Utc::now());
        ids.push(
            pipeline
                .store_one(Bytes::from_static(raw), copy)
                .await
                .expect("store"),
        );
    }
    // Drain the delivery jobs, so the queue then holds only what the reparse publishes.
    let delivered = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    store.complete(&delivered).await.expect("complete");

    let fresh = reparse(&pipeline, user).await;
    assert_eq!((fresh.messages, fresh.changed, fresh.unchanged), (3, 0, 3));
    assert_eq!(fresh.before, fresh.after);
    assert_eq!(fresh.after.with_html_body, 1);
    assert_eq!(fresh.after.with_date, 1);
    assert_eq!(fresh.after.with_subject, 3);

    // What an older parser might have stored: no subject, no HTML, a parse error.
    let mut stale = store
        .get_message(user, ids[1])
        .await
        .expect("get")
        .expect("html message")
        .content;
    stale.subject = None;
    stale.html_body = None;
    stale.parse_error = Some("old parser".into());
    assert!(
        store
            .replace_content(user, ids[1], &stale)
            .await
            .expect("stale")
    );
    // A raw message lost outside Palisade.
    rusqlite::Connection::open(&path)
        .expect("sqlite")
        .execute(
            "DELETE FROM raw_messages WHERE sha256 = (SELECT raw_sha256 FROM messages WHERE id = ?1)",
            [ids[2].to_string()],
        )
        .expect("drop raw");

    let repaired = reparse(&pipeline, user).await;
    assert_eq!(
        (
            repaired.messages,
            repaired.changed,
            repaired.unchanged,
            repaired.missing_raw
        ),
        (3, 1, 1, 1)
    );
    assert_eq!(repaired.before.with_html_body, 0);
    assert_eq!(repaired.after.with_html_body, 1);
    assert_eq!(repaired.before.parse_errors, 1);
    assert_eq!(repaired.after.parse_errors, 0);
    let f = repaired.fields_changed;
    assert_eq!((f.subject, f.html_body, f.other, f.text_body), (1, 1, 1, 0));
    let message = store
        .get_message(user, ids[1])
        .await
        .expect("get")
        .expect("html");
    assert_eq!(message.content.subject.as_deref(), Some("newsletter"));
    let listed = store
        .message_summaries(user, &[ids[1]])
        .await
        .expect("summary");
    assert_eq!(listed[0].subject.as_deref(), Some("newsletter"));
    assert!(!listed[0].parse_error);
    let queued = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(
        queued.iter().map(|j| j.spec.message_id).collect::<Vec<_>>(),
        [ids[1]],
        "the changed message, and only it, is queued for reindexing"
    );

    let again = reparse(&pipeline, user).await;
    assert_eq!(
        (again.changed, again.unchanged, again.missing_raw),
        (0, 2, 1)
    );
    assert_eq!(again.before, again.after);
}
