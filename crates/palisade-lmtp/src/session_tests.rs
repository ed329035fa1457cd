//! Sessions driven over an in-memory pipe: protocol edge cases without a daemon or a socket.

use crate::io::Conn;
use crate::session::Session;
use crate::{DeliveryBackend, IncomingMessage, Limits, MemoryBudget, RecipientStatus, Resolution};
use async_trait::async_trait;
use palisade_model::Address;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const MIB: usize = 1024 * 1024;

/// Accepts every recipient but `nobody@…` and records what it was asked to store.
#[derive(Default)]
struct Recorder {
    stored: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl DeliveryBackend for Recorder {
    type Recipient = String;

    async fn resolve(&self, address: &Address) -> Resolution<String> {
        if address.as_str().starts_with("nobody@") {
            Resolution::Unknown
        } else {
            Resolution::Accept(address.to_string())
        }
    }

    async fn deliver(
        &self,
        message: IncomingMessage,
        recipients: Vec<String>,
    ) -> Vec<RecipientStatus> {
        if let Ok(mut stored) = self.stored.lock() {
            stored.push(message.raw.to_vec());
        }
        vec![RecipientStatus::Delivered; recipients.len()]
    }
}

fn limits() -> Limits {
    Limits {
        max_message_bytes: 8 * MIB,
        max_recipients: 10,
        max_header_bytes: 64 * 1024,
        idle_timeout: Duration::from_secs(10),
    }
}

/// Plays `script` as a client and returns every reply line the server sent.
async fn converse(backend: &Recorder, budget: &MemoryBudget, script: Vec<u8>) -> Vec<String> {
    let (mut client, server) = tokio::io::duplex(256 * 1024);
    let limits = limits();
    let shutdown = CancellationToken::new();
    let session = Session::new(
        Conn::new(server, limits.idle_timeout),
        backend,
        &limits,
        budget,
        "test.localhost",
        "127.0.0.1:1".parse().expect("address"),
        &shutdown,
    );
    let (mut reader, mut writer) = tokio::io::split(&mut client);
    let write = async move {
        writer.write_all(&script).await.expect("write script");
        writer.flush().await.expect("flush");
    };
    let read = async move {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.expect("read replies");
        out
    };
    let (_, _, replies) = tokio::join!(session.run(), write, read);
    String::from_utf8_lossy(&replies)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A DATA transaction for `rcpts` with a body of `size` bytes.
fn data_transaction(mail: &str, rcpts: &[&str], size: usize) -> Vec<u8> {
    let mut s = format!("{mail}\r\n");
    for r in rcpts {
        s.push_str(&format!("RCPT TO:<{r}>\r\n"));
    }
    s.push_str("DATA\r\n");
    let mut bytes = s.into_bytes();
    bytes.extend_from_slice(b"Subject: t\r\n\r\n");
    let line = b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n";
    while bytes.len() < size {
        bytes.extend_from_slice(line);
    }
    bytes.extend_from_slice(b".\r\n");
    bytes
}

fn codes(replies: &[String]) -> Vec<&str> {
    replies
        .iter()
        .filter(|l| !l.starts_with("250-"))
        .map(|l| &l[..3])
        .collect()
}

#[tokio::test]
async fn a_message_past_the_memory_budget_is_deferred_for_every_recipient_and_the_next_fits() {
    let backend = Recorder::default();
    let budget = MemoryBudget::new(MIB);
    let mut script = b"LHLO c\r\n".to_vec();
    script.extend(data_transaction(
        "MAIL FROM:<a@x.test>",
        &["one@x.test", "two@x.test"],
        3 * MIB,
    ));
    script.extend(data_transaction(
        "MAIL FROM:<a@x.test>",
        &["one@x.test"],
        1000,
    ));
    script.extend_from_slice(b"QUIT\r\n");
    let replies = converse(&backend, &budget, script).await;
    assert_eq!(
        codes(&replies),
        [
            "220", "250", "250", "250", "250", "354", "452", "452", "250", "250", "354", "250",
            "221"
        ],
        "{replies:?}"
    );
    assert!(replies.iter().any(|l| l.starts_with("452 4.3.1")));
    let stored = backend.stored.lock().expect("lock").clone();
    assert_eq!(
        stored.len(),
        1,
        "only the small message reached the backend"
    );
    assert_eq!(budget.available(), MIB, "every reservation was given back");
}

#[tokio::test]
async fn a_declared_size_past_the_budget_is_deferred_at_mail() {
    let backend = Recorder::default();
    let budget = MemoryBudget::new(MIB);
    let script = b"LHLO c\r\nMAIL FROM:<a@x.test> SIZE=4000000\r\nMAIL FROM:<a@x.test> SIZE=1000\r\nQUIT\r\n";
    let replies = converse(&backend, &budget, script.to_vec()).await;
    assert_eq!(
        codes(&replies),
        ["220", "250", "452", "250", "221"],
        "{replies:?}"
    );
    assert_eq!(budget.available(), MIB);
}

#[tokio::test]
async fn bdat_chunks_past_the_budget_are_deferred() {
    let backend = Recorder::default();
    let budget = MemoryBudget::new(MIB);
    let mut script = b"LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<one@x.test>\r\n".to_vec();
    let chunk = vec![b'x'; 768 * 1024];
    for last in [false, true] {
        let verb = if last { " LAST" } else { "" };
        script.extend(format!("BDAT {}{verb}\r\n", chunk.len()).into_bytes());
        script.extend_from_slice(&chunk);
    }
    script.extend_from_slice(b"QUIT\r\n");
    let replies = converse(&backend, &budget, script).await;
    assert_eq!(
        codes(&replies),
        ["220", "250", "250", "250", "250", "452", "221"],
        "{replies:?}"
    );
    assert!(backend.stored.lock().expect("lock").is_empty());
    assert_eq!(budget.available(), MIB);
}

#[tokio::test]
async fn within_the_budget_recipients_get_their_own_replies() {
    let backend = Recorder::default();
    let budget = MemoryBudget::new(MIB);
    let mut script = b"LHLO c\r\n".to_vec();
    script.extend(data_transaction(
        "MAIL FROM:<a@x.test> SIZE=2000",
        &["one@x.test", "nobody@x.test", "two@x.test"],
        2000,
    ));
    script.extend_from_slice(b"QUIT\r\n");
    let replies = converse(&backend, &budget, script).await;
    assert_eq!(
        codes(&replies),
        [
            "220", "250", "250", "250", "550", "250", "354", "250", "250", "221"
        ],
        "{replies:?}"
    );
    assert_eq!(backend.stored.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn each_transaction_is_named_in_its_replies_by_session_and_number() {
    let backend = Recorder::default();
    let budget = MemoryBudget::new(MIB);
    let mut script = b"LHLO c\r\n".to_vec();
    script.extend(data_transaction(
        "MAIL FROM:<a@x.test>",
        &["one@x.test", "two@x.test"],
        100,
    ));
    script.extend(data_transaction(
        "MAIL FROM:<a@x.test>",
        &["one@x.test"],
        100,
    ));
    script.extend_from_slice(b"QUIT\r\n");
    let replies = converse(&backend, &budget, script).await;
    let named: Vec<&str> = replies
        .iter()
        .filter_map(|l| l.strip_prefix("250 2.0.0 Message accepted for delivery as "))
        .collect();
    assert_eq!(named.len(), 3, "{replies:?}");
    let (session, first) = named[0].split_once('.').expect("session.n");
    assert_eq!(session.len(), 16);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()), "{session}");
    assert_eq!(first, "1");
    assert_eq!(
        named[1], named[0],
        "recipients of one transaction share its id"
    );
    assert_eq!(named[2], format!("{session}.2"));
}

#[tokio::test]
async fn messages_past_the_spill_threshold_go_to_disk_and_arrive_whole() {
    let backend = Recorder::default();
    // 512 KiB for receiving: without spilling, neither 3 MiB message below would fit.
    let budget = MemoryBudget::with_spill(MIB, 64 * 1024, std::env::temp_dir());
    let mut script = b"LHLO c\r\n".to_vec();
    let data = data_transaction(
        "MAIL FROM:<a@x.test> SIZE=3200000",
        &["one@x.test"],
        3 * MIB,
    );
    script.extend_from_slice(&data);
    let start = data
        .windows(6)
        .position(|w| w == b"DATA\r\n")
        .expect("DATA")
        + 6;
    let body = data[start..data.len() - 3].to_vec();
    script.extend_from_slice(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<one@x.test>\r\n");
    let mut chunk = b"Subject: t\r\n\r\n".to_vec();
    chunk.extend((0..1536 * 1024u32).map(|i| b'a' + (i % 26) as u8));
    for last in [false, true] {
        let verb = if last { " LAST" } else { "" };
        script.extend(format!("BDAT {}{verb}\r\n", chunk.len()).into_bytes());
        script.extend_from_slice(&chunk);
    }
    script.extend_from_slice(b"QUIT\r\n");
    let replies = converse(&backend, &budget, script).await;
    assert_eq!(
        codes(&replies),
        [
            "220", "250", "250", "250", "354", "250", "250", "250", "250", "250", "221"
        ],
        "{replies:?}"
    );
    let stored = backend.stored.lock().expect("lock").clone();
    assert_eq!(stored.len(), 2);
    assert!(
        stored[0] == body,
        "the DATA message came back from disk byte for byte"
    );
    assert!(
        stored[1] == [chunk.clone(), chunk].concat(),
        "so did the BDAT one"
    );
    assert_eq!(
        budget.available(),
        MIB / 2,
        "every reservation was given back"
    );
}
