//! The cheapest durable LMTP server this crate can make: the floor under a group-committed store.
//!
//! It serves LMTP with this crate's sessions on a runtime like `lmtp-ingest`'s, accepts every
//! recipient, and answers 250 only once the message's bytes are in a file and `fdatasync` has
//! returned, one sync shared by every delivery that queued while the last one ran (the group
//! commit of the embedded store's writer, with nothing else on that thread). The file is
//! written once in full before the first session, then overwritten as a ring, as SQLite
//! reuses its WAL, so a sync never has to journal the file's new size.
//!
//! `devtools/bench/bench.py` runs it as the durable floor beside `smtp-sink` and the daemons,
//! and `devtools/bench/floor.py` in every mode. What it measures is how fast a store that
//! answers after a group-committed sync could answer on this machine, disk and protocol:
//!
//! ```sh
//! cargo build --release -p palisade-lmtp --example durable_sink
//! target/release/examples/durable_sink 127.0.0.1:2525 /var/tmp/ring fdatasync 57600
//! ```
//!
//! Arguments: the address to listen on, the ring's path (a number is appended), `fdatasync` or
//! `none` (answer at once, which measures the sessions alone), and optionally the bytes written
//! per delivery (the message, padded with zeros to that size; the message alone by default or
//! with 0; 57,600 is what an embedded delivery of 1 KiB writes to SQLite's WAL) and the number of rings (1 by default): with two,
//! one ring's thread gathers and writes the next batch while the other's waits for its sync,
//! as two databases would; a single SQLite database has one WAL, and one sync at a time.

use async_trait::async_trait;
use bytes::Bytes;
use palisade_lmtp::{
    DeliveryBackend, IncomingMessage, Limits, MemoryBudget, RecipientStatus, Resolution,
    ServerConfig, serve,
};
use palisade_model::Address;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The ring's size: about the embedded WAL's under sustained load.
const RING_BYTES: u64 = 64 << 20;

/// A queued append: the message and the caller waiting for its sync.
type Append = (Bytes, oneshot::Sender<io::Result<()>>);

/// Accepts everyone; delivers into the ring when there is one.
struct Sink {
    ring: Option<mpsc::UnboundedSender<Append>>,
}

#[async_trait]
impl DeliveryBackend for Sink {
    type Recipient = ();

    async fn resolve(&self, _address: &Address) -> Resolution<()> {
        Resolution::Accept(())
    }

    async fn deliver(&self, message: IncomingMessage, recipients: Vec<()>) -> Vec<RecipientStatus> {
        let status = match self.append(message.raw).await {
            Ok(()) => RecipientStatus::Delivered,
            Err(e) => RecipientStatus::TemporaryFailure(e.to_string()),
        };
        vec![status; recipients.len()]
    }
}

impl Sink {
    async fn append(&self, raw: Bytes) -> io::Result<()> {
        let Some(ring) = &self.ring else {
            return Ok(());
        };
        let (reply, synced) = oneshot::channel();
        ring.send((raw, reply))
            .map_err(|_| io::Error::other("the ring's thread stopped"))?;
        synced
            .await
            .map_err(|_| io::Error::other("the ring's thread dropped the append"))?
    }
}

/// Takes every queued append, writes them in one call at the ring's cursor, syncs once, then
/// answers them; each message is padded with zeros to `pad_to` bytes. With several rings, one
/// ring's thread gathers the next batch while another's syncs.
fn commit_loop(file: File, queue: Arc<Mutex<mpsc::UnboundedReceiver<Append>>>, pad_to: usize) {
    let mut cursor = 0u64;
    let mut buffer = Vec::new();
    loop {
        let batch = {
            let Ok(mut queue) = queue.lock() else { return };
            let Some(first) = queue.blocking_recv() else {
                return;
            };
            let mut batch = vec![first];
            while let Ok(more) = queue.try_recv() {
                batch.push(more);
            }
            batch
        };
        buffer.clear();
        for (raw, _) in &batch {
            buffer.extend_from_slice(raw);
            buffer.resize(buffer.len() + pad_to.saturating_sub(raw.len()), 0);
        }
        let len = buffer.len();
        if cursor + len as u64 > RING_BYTES {
            cursor = 0;
        }
        let outcome = file
            .write_all_at(&buffer, cursor)
            .and_then(|()| file.sync_data());
        cursor += len as u64;
        for (_, reply) in batch {
            let _ = reply.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
}

/// Creates the ring at full size and syncs it, so later syncs find its blocks allocated.
fn preallocated(path: &Path) -> io::Result<File> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < RING_BYTES {
        file.write_all_at(&chunk, at)?;
        at += chunk.len() as u64;
    }
    file.sync_all()?;
    Ok(file)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, path, mode, rest @ ..] = args.as_slice() else {
        anyhow::bail!(
            "usage: durable_sink ADDRESS RING_PATH fdatasync|none [BYTES_PER_MESSAGE [RINGS]]"
        );
    };
    let pad_to: usize = rest.first().map(|n| n.parse()).transpose()?.unwrap_or(0);
    let rings: usize = rest.get(1).map(|n| n.parse()).transpose()?.unwrap_or(1);
    let ring = match mode.as_str() {
        "none" => None,
        "fdatasync" => {
            let (queue, rx) = mpsc::unbounded_channel();
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..rings.max(1) {
                let file = preallocated(Path::new(&format!("{path}.{i}")))?;
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("ring-writer-{i}"))
                    .spawn(move || commit_loop(file, rx, pad_to))?;
            }
            Some(queue)
        }
        other => anyhow::bail!("unknown mode {other:?}: fdatasync or none"),
    };
    let config = ServerConfig {
        hostname: "durable-sink".into(),
        limits: Limits {
            max_message_bytes: 50 << 20,
            max_recipients: 100,
            max_header_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(300),
        },
        max_connections: 256,
        budget: MemoryBudget::new(256 << 20),
        proxy: Default::default(),
        shutdown_grace: Duration::from_secs(1),
    };
    let listener = tokio::net::TcpListener::bind(listen.as_str()).await?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    let sink = Arc::new(Sink { ring });
    serve(listener, config, sink, shutdown).await?;
    Ok(())
}
