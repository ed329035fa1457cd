//! Whole LMTP sessions into the real embedded store, over an in-memory pipe: what Postfix
//! sees, and what ends up in the mailbox, without a daemon or a socket.

use palisade_ingest::{IngestBackend, Pipeline};
use palisade_lmtp::{Limits, MemoryBudget, ServerConfig, serve_stream};
use palisade_mime::ParseLimits;
use palisade_model::{Address, User};
use palisade_proxy::ProxyPolicy;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Accounts, Mailbox, Page};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

struct Harness {
    store: Arc<SqliteStore>,
    backend: IngestBackend,
    config: ServerConfig,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open(dir.path()));
        let pipeline = Pipeline::new(
            store.clone(),
            store.clone(),
            ParseLimits::default(),
            Arc::new(Notify::new()),
        );
        Harness {
            backend: IngestBackend::new(store.clone(), Arc::new(pipeline)),
            store,
            config: ServerConfig {
                hostname: "test.localhost".into(),
                limits: Limits {
                    max_message_bytes: 1024 * 1024,
                    max_recipients: 10,
                    max_header_bytes: 64 * 1024,
                    idle_timeout: Duration::from_secs(10),
                },
                max_connections: 1,
                budget: MemoryBudget::new(1024 * 1024),
                proxy: ProxyPolicy {
                    enabled: false,
                    trusted: Vec::new(),
                },
                shutdown_grace: Duration::from_secs(1),
            },
            _dir: dir,
        }
    }

    async fn user(&self, name: &str) -> User {
        let address = Address::parse(&format!("{name}@example.test")).expect("address");
        self.store
            .create_user(name, &[address], None)
            .await
            .expect("create user")
    }

    /// Plays `script` as the client and returns the reply codes, one per reply line.
    async fn converse(&self, script: &[u8]) -> Vec<String> {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let peer = "127.0.0.1:1".parse().expect("address");
        let session = serve_stream(server, peer, &self.config, &self.backend, &shutdown);
        let talk = async {
            client.write_all(script).await.expect("write");
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.expect("read");
            out
        };
        let ((), replies) = tokio::join!(session, talk);
        String::from_utf8_lossy(&replies)
            .lines()
            .filter(|l| !l.starts_with("250-"))
            .map(|l| l[..3].to_string())
            .collect()
    }

    async fn messages(&self, user: &User) -> usize {
        self.store
            .list_messages(
                user.id,
                Page {
                    after: None,
                    limit: 100,
                },
            )
            .await
            .expect("list")
            .items
            .len()
    }
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("db.sqlite3")).expect("open store")
}

fn transaction(rcpts: &[&str], body: &str) -> String {
    let mut s = String::from("MAIL FROM:<sender@example.test>\r\n");
    for r in rcpts {
        s.push_str(&format!("RCPT TO:<{r}>\r\n"));
    }
    s.push_str("DATA\r\n");
    s.push_str(body);
    s.push_str(".\r\n");
    s
}

const MESSAGE: &str =
    "From: <sender@example.test>\r\nSubject: hello\r\nMessage-ID: <m1@example.test>\r\n\r\nHi.\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_recipient_gets_its_own_reply_and_its_own_copy() {
    let h = Harness::new();
    let (alice, bob) = (h.user("alice").await, h.user("bob").await);
    let script = format!(
        "LHLO c\r\n{}QUIT\r\n",
        transaction(
            &[
                "alice@example.test",
                "nobody@example.test",
                "bob@example.test"
            ],
            MESSAGE
        )
    );
    let codes = h.converse(script.as_bytes()).await;
    // Greeting, LHLO, MAIL, three RCPTs (one unknown), DATA, one reply per accepted recipient.
    assert_eq!(
        codes,
        [
            "220", "250", "250", "250", "550", "250", "354", "250", "250", "221"
        ]
    );
    assert_eq!(h.messages(&alice).await, 1);
    assert_eq!(h.messages(&bob).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_of_the_same_bytes_stores_one_message() {
    let h = Harness::new();
    let alice = h.user("alice").await;
    let once = transaction(&["alice@example.test"], MESSAGE);
    let script = format!("LHLO c\r\n{once}{once}QUIT\r\n");
    let codes = h.converse(script.as_bytes()).await;
    assert_eq!(codes.iter().filter(|c| *c == "250").count(), 1 + 2 * 3);
    assert_eq!(
        h.messages(&alice).await,
        1,
        "a retry after a lost reply is harmless"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mail_is_accepted_and_kept_byte_for_byte() {
    let h = Harness::new();
    let alice = h.user("alice").await;
    let body = "Content-Type: multipart/mixed; boundary=\"never\"\r\nSubject: =?bogus?Q?x\r\n\r\n--not-the-boundary\r\n\x7f\r\n";
    let script = format!(
        "LHLO c\r\n{}QUIT\r\n",
        transaction(&["alice@example.test"], body)
    );
    let codes = h.converse(script.as_bytes()).await;
    assert_eq!(codes[codes.len() - 2], "250", "{codes:?}");
    let page = h
        .store
        .list_messages(
            alice.id,
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    let raw = h
        .store
        .get_raw(alice.id, page.items[0].id)
        .await
        .expect("raw")
        .expect("stored");
    assert_eq!(raw, body.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_fault_answers_451_and_keeps_nothing() {
    let h = Harness::new();
    let alice = h.user("alice").await;
    let admin = rusqlite::Connection::open(h._dir.path().join("db.sqlite3")).expect("admin");
    admin
        .execute_batch(
            "CREATE TRIGGER fault BEFORE INSERT ON messages
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .expect("trigger");
    let script = format!(
        "LHLO c\r\n{}QUIT\r\n",
        transaction(&["alice@example.test"], MESSAGE)
    );
    let codes = h.converse(script.as_bytes()).await;
    assert_eq!(
        codes[codes.len() - 2],
        "451",
        "Postfix must keep it and retry: {codes:?}"
    );
    assert_eq!(h.messages(&alice).await, 0);
    admin
        .execute_batch("DROP TRIGGER fault;")
        .expect("drop trigger");
    let codes = h.converse(script.as_bytes()).await;
    assert_eq!(
        codes[codes.len() - 2],
        "250",
        "the retry delivers: {codes:?}"
    );
    assert_eq!(h.messages(&alice).await, 1);
}
