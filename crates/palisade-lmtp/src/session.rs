//! One LMTP session: the command loop, the transaction state, and per-recipient replies.

use crate::budget::{MemoryBudget, Reservation};
use crate::data::Unstuffer;
use crate::io::{Conn, Line, ReadStop};
use crate::spool::Spool;
use crate::{DeliveryBackend, IncomingMessage, Limits, RecipientStatus, Resolution};
use bytes::Bytes;
use palisade_model::Address;
use smtp_proto::{Error as ProtoError, Request};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The state of one mail transaction (MAIL .. DATA/BDAT LAST).
struct Transaction<R> {
    /// `<session>.<n>`: names the transaction in every log line and in its 250 replies,
    /// which Postfix logs, so its log and ours can be joined.
    id: String,
    mail_from: Option<String>,
    recipients: Vec<(Address, R)>,
    /// BDAT chunks received so far; `None` until the first BDAT.
    chunks: Option<Chunks>,
    /// The SIZE the client declared, 0 when it declared none.
    declared: usize,
    /// The share of the listener's memory budget this transaction's data holds.
    reservation: Reservation,
}

/// Accumulated BDAT chunks, kept only up to the size limit.
#[derive(Default)]
struct Chunks {
    data: Vec<u8>,
    /// Where chunks past the spill threshold went, when spilling is on.
    spool: Option<Spool>,
    oversize: bool,
    /// The memory budget had no room: the data is dropped and recipients get a 4xx.
    over_budget: bool,
}

/// A finished transaction's data: what was spilled to disk, followed by what stayed in memory.
struct Received {
    spool: Option<Spool>,
    tail: Vec<u8>,
}

/// Bytes a session may allocate ahead for a message in memory: all of it without spilling,
/// a little over the threshold with it.
fn buffer_cap(threshold: Option<usize>) -> usize {
    threshold.map_or(usize::MAX, |t| t.saturating_add(64 * 1024))
}

/// Why a transaction's data was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dropped {
    /// Kept whole.
    No,
    /// Over the message size limit: refused for good.
    Oversize,
    /// Over the shared memory budget: refused for now.
    OverBudget,
}

/// The reply to every recipient of a transaction whose data did not fit the memory budget.
const OVER_BUDGET: &str = "452 4.3.1 Insufficient system resources, try again later";

/// How a session ended, for the connection log.
#[derive(Debug)]
pub(crate) enum End {
    /// QUIT.
    Quit,
    /// The client went away.
    Disconnected,
    /// Idle timeout.
    Idle,
    /// Server shutdown between transactions.
    Shutdown,
    /// Socket error.
    Io(std::io::Error),
}

/// Drives one connection until it ends.
pub(crate) struct Session<'a, B: DeliveryBackend, S> {
    pub(crate) conn: Conn<S>,
    pub(crate) backend: &'a B,
    pub(crate) limits: &'a Limits,
    pub(crate) budget: &'a MemoryBudget,
    pub(crate) hostname: &'a str,
    pub(crate) client: SocketAddr,
    pub(crate) shutdown: &'a CancellationToken,
    /// This connection's id, the prefix of its transactions' ids; random rather than
    /// counted, so ids stay unique across restarts and nodes.
    pub(crate) id: String,
    greeted: bool,
    txn: Option<Transaction<B::Recipient>>,
    /// Transactions begun on this connection.
    transactions: u32,
}

impl<'a, B: DeliveryBackend, S: AsyncRead + AsyncWrite + Unpin> Session<'a, B, S> {
    pub(crate) fn new(
        conn: Conn<S>,
        backend: &'a B,
        limits: &'a Limits,
        budget: &'a MemoryBudget,
        hostname: &'a str,
        client: SocketAddr,
        shutdown: &'a CancellationToken,
    ) -> Self {
        let mut id = uuid::Uuid::new_v4().simple().to_string();
        id.truncate(16);
        Session {
            conn,
            backend,
            limits,
            budget,
            hostname,
            client,
            shutdown,
            id,
            greeted: false,
            txn: None,
            transactions: 0,
        }
    }

    pub(crate) async fn run(mut self) -> End {
        self.conn
            .reply(&format!("220 {} Palisade LMTP ready", self.hostname));
        let end = self.command_loop().await;
        match &end {
            End::Idle => self
                .conn
                .reply("421 4.4.2 Idle timeout, closing connection"),
            End::Shutdown => self
                .conn
                .reply("421 4.3.2 Server shutting down, try again later"),
            _ => {}
        }
        // Best effort: the peer may already be gone.
        let _ = self.conn.flush().await;
        end
    }

    async fn command_loop(&mut self) -> End {
        loop {
            // Between transactions a shutdown may end the session; inside one it may not,
            // so an in-flight delivery always gets its answers.
            let stop = self.txn.is_none().then_some(self.shutdown);
            let line = match self.conn.read_line(stop).await {
                Ok(Line::Complete(line)) => line,
                Ok(Line::TooLong) => {
                    self.conn.reply("500 5.5.2 Line too long");
                    continue;
                }
                Err(stop) => return end_of(stop),
            };
            let parsed = Request::parse(&mut line.iter()).map(Request::into_owned);
            let outcome = match parsed {
                Ok(Request::Data | Request::Rset | Request::Quit) if has_arguments(&line) => {
                    self.conn.reply("501 5.5.4 This command takes no arguments");
                    Ok(true)
                }
                Ok(Request::Mail { from }) => {
                    // smtp-proto does not report a SIZE too large for its integer type.
                    let size = match declared_size(&line) {
                        Some(Ok(n)) => n.max(from.size),
                        Some(Err(())) => usize::MAX,
                        None => from.size,
                    };
                    self.mail(from.address, size);
                    Ok(true)
                }
                Ok(request) => self.handle(request).await,
                Err(e) => {
                    self.conn.reply(&protocol_error(&e));
                    Ok(true)
                }
            };
            match outcome {
                Ok(true) => {}
                Ok(false) => return End::Quit,
                Err(stop) => return end_of(stop),
            }
        }
    }

    /// Handles one command; `Ok(false)` ends the session.
    async fn handle(&mut self, request: Request<String>) -> Result<bool, ReadStop> {
        match request {
            Request::Lhlo { .. } => {
                self.greeted = true;
                self.txn = None;
                let reply = format!(
                    "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 SIZE {}",
                    self.hostname, self.limits.max_message_bytes
                );
                self.conn.reply(&reply);
            }
            Request::Ehlo { .. } | Request::Helo { .. } => {
                self.conn
                    .reply("500 5.5.1 This is an LMTP server: use LHLO");
            }
            Request::Mail { from } => self.mail(from.address, from.size),
            Request::Rcpt { to } => self.rcpt(&to.address).await,
            Request::Data => return self.data().await.map(|()| true),
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(chunk_size, is_last).await.map(|()| true),
            Request::Rset => {
                self.txn = None;
                self.conn.reply("250 2.0.0 Reset");
            }
            Request::Noop { .. } => self.conn.reply("250 2.0.0 OK"),
            Request::Quit => {
                self.conn.reply("221 2.0.0 Bye");
                return Ok(false);
            }
            // Confirming addresses would let anyone enumerate our users.
            Request::Vrfy { .. } | Request::Expn { .. } => {
                self.conn.reply("502 5.5.1 Command not implemented");
            }
            _ => self.conn.reply("502 5.5.1 Command not implemented"),
        }
        Ok(true)
    }

    fn mail(&mut self, from: String, size: usize) {
        if !self.greeted {
            self.conn.reply("503 5.5.1 Send LHLO first");
        } else if self.txn.is_some() {
            self.conn.reply("503 5.5.1 Nested MAIL command");
        } else if size > self.limits.max_message_bytes {
            self.conn
                .reply("552 5.3.4 Message size exceeds fixed maximum message size");
        } else {
            // A declared size is reserved up front, so a client that announces a large
            // message learns at once that it must wait, before it sends a byte of it. With
            // spilling, only what is kept in memory is.
            let mut reservation = self.budget.reserve();
            if !reservation.cover(size.min(buffer_cap(self.budget.spill_threshold()))) {
                tracing::info!(client = %self.client, size, "memory budget spent; deferring");
                self.conn.reply(OVER_BUDGET);
                return;
            }
            self.transactions = self.transactions.saturating_add(1);
            self.txn = Some(Transaction {
                id: format!("{}.{}", self.id, self.transactions),
                mail_from: (!from.is_empty()).then_some(from),
                recipients: Vec::new(),
                chunks: None,
                declared: size,
                reservation,
            });
            self.conn.reply("250 2.1.0 Sender OK");
        }
    }

    async fn rcpt(&mut self, to: &str) {
        let Some(txn) = self.txn.as_mut() else {
            self.conn.reply("503 5.5.1 Need MAIL before RCPT");
            return;
        };
        if txn.recipients.len() >= self.limits.max_recipients {
            self.conn.reply("452 4.5.3 Too many recipients");
            return;
        }
        let Ok(address) = Address::parse(to) else {
            self.conn.reply("501 5.1.3 Bad recipient address syntax");
            return;
        };
        match self.backend.resolve(&address).await {
            Resolution::Accept(recipient) => {
                txn.recipients.push((address, recipient));
                self.conn.reply("250 2.1.5 Recipient OK");
            }
            Resolution::Unknown => self.conn.reply("550 5.1.1 No such user here"),
            Resolution::TemporaryFailure(reason) => {
                tracing::warn!(reason = %palisade_model::without_addresses(&reason), "recipient lookup failed");
                self.conn
                    .reply("451 4.3.0 Temporary lookup failure, try again later");
            }
        }
    }

    async fn data(&mut self) -> Result<(), ReadStop> {
        let ready = match &self.txn {
            None => Err("503 5.5.1 Need MAIL before DATA"),
            Some(t) if t.recipients.is_empty() => Err("503 5.5.1 No valid recipients"),
            Some(t) if t.chunks.is_some() => Err("503 5.5.1 DATA is not allowed after BDAT"),
            Some(_) => Ok(()),
        };
        if let Err(reply) = ready {
            self.conn.reply(reply);
            return Ok(());
        }
        self.conn
            .reply("354 Start mail input; end with <CRLF>.<CRLF>");
        let Some(txn) = self.txn.as_mut() else {
            return Ok(());
        };
        let threshold = self.budget.spill_threshold();
        let mut unstuffer = Unstuffer::new(
            self.limits.max_message_bytes,
            txn.declared.min(buffer_cap(threshold)),
        );
        let mut spool = self.budget.spool();
        let mut over_budget = !txn.reservation.cover(unstuffer.footprint());
        if over_budget {
            unstuffer.discard();
        }
        loop {
            let (used, end) = unstuffer.feed(self.conn.buffered());
            self.conn.consume(used);
            if let (Some(t), Some(spool)) = (threshold, spool.as_mut())
                && !over_budget
                && !unstuffer.oversize()
                && unstuffer.kept() >= t
                && let Err(e) = spool.spill(unstuffer.kept_mut()).await
            {
                // A full or broken spool disk is a temporary fault: the client retries.
                tracing::warn!(error = %e, "could not spill a message to disk; deferring");
                unstuffer.discard();
                txn.reservation.release();
                over_budget = true;
            }
            if !over_budget && !txn.reservation.cover(unstuffer.footprint()) {
                unstuffer.discard();
                txn.reservation.release();
                over_budget = true;
            }
            if end {
                break;
            }
            self.conn.fill(None).await?;
        }
        let dropped = if unstuffer.oversize() {
            Dropped::Oversize
        } else if over_budget {
            Dropped::OverBudget
        } else {
            Dropped::No
        };
        let received = Received {
            spool,
            tail: unstuffer.into_bytes(),
        };
        self.finish(received, dropped).await;
        Ok(())
    }

    async fn bdat(&mut self, size: usize, last: bool) -> Result<(), ReadStop> {
        let limit = self.limits.max_message_bytes;
        // The chunk is read even when the command is refused: its bytes are not commands.
        let usable = self.txn.as_ref().is_some_and(|t| !t.recipients.is_empty());
        let declared = self.txn.as_ref().map_or(0, |t| t.declared);
        let (mut chunks, mut reservation) = match self.txn.as_mut() {
            Some(t) => (
                t.chunks.take().unwrap_or_default(),
                Some(&mut t.reservation),
            ),
            None => (Chunks::default(), None),
        };
        let threshold = self.budget.spill_threshold();
        if usable && chunks.data.capacity() == 0 && !chunks.oversize && !chunks.over_budget {
            // The first chunk: size the buffer for the whole declared message at once (or
            // for what is kept before spilling).
            chunks
                .data
                .reserve(declared.min(limit).min(buffer_cap(threshold)));
            chunks.spool = self.budget.spool();
        }
        // Read in slices no larger than the spill threshold, so one huge chunk is spilled as
        // it arrives rather than held whole.
        let mut remaining = size;
        while remaining > 0 {
            let part = threshold.map_or(remaining, |t| remaining.min(t));
            remaining -= part;
            self.conn
                .read_exact_into(part, |bytes| {
                    if !usable || chunks.oversize || chunks.over_budget {
                        return;
                    }
                    let on_disk = chunks.spool.as_ref().map_or(0, Spool::len);
                    if on_disk + chunks.data.len() + bytes.len() > limit {
                        chunks.oversize = true;
                        chunks.data = Vec::new();
                        chunks.spool = None;
                        return;
                    }
                    chunks.data.extend_from_slice(bytes);
                    if let Some(reservation) = reservation.as_deref_mut()
                        && !reservation.cover(chunks.data.capacity())
                    {
                        chunks.over_budget = true;
                        chunks.data = Vec::new();
                        chunks.spool = None;
                        reservation.release();
                    }
                })
                .await?;
            if let (Some(t), Some(spool)) = (threshold, chunks.spool.as_mut())
                && chunks.data.len() >= t
                && let Err(e) = spool.spill(&mut chunks.data).await
            {
                tracing::warn!(error = %e, "could not spill a message to disk; deferring");
                chunks.over_budget = true;
                chunks.data = Vec::new();
                chunks.spool = None;
                if let Some(reservation) = reservation.as_deref_mut() {
                    reservation.release();
                }
            }
        }
        if !usable {
            let reply = if self.txn.is_none() {
                "503 5.5.1 Need MAIL before BDAT"
            } else {
                "503 5.5.1 No valid recipients"
            };
            self.conn.reply(reply);
            return Ok(());
        }
        if last {
            let dropped = if chunks.oversize {
                Dropped::Oversize
            } else if chunks.over_budget {
                Dropped::OverBudget
            } else {
                Dropped::No
            };
            let received = Received {
                spool: chunks.spool,
                tail: chunks.data,
            };
            self.finish(received, dropped).await;
        } else {
            if let Some(txn) = self.txn.as_mut() {
                txn.chunks = Some(chunks);
            }
            self.conn
                .reply(&format!("250 2.0.0 {size} octets received"));
        }
        Ok(())
    }

    /// Delivers the message and sends one reply per accepted recipient (RFC 2033 §4.2).
    async fn finish(&mut self, received: Received, dropped: Dropped) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        let span = tracing::info_span!("txn", id = %txn.id);
        self.deliver(txn, received, dropped).instrument(span).await;
    }

    /// Refuses or delivers a finished transaction's message, answering each recipient.
    async fn deliver(
        &mut self,
        txn: Transaction<B::Recipient>,
        received: Received,
        dropped: Dropped,
    ) {
        // Held until the recipients are answered: parsing and storing still use the bytes.
        let mut reservation = txn.reservation;
        let count = txn.recipients.len();
        let refusal = match dropped {
            Dropped::Oversize => Some("552 5.3.4 Message size exceeds fixed maximum message size"),
            Dropped::OverBudget => Some(OVER_BUDGET),
            Dropped::No => None,
        };
        if let Some(reply) = refusal {
            tracing::info!(client = %self.client, recipients = count, reply, "message refused");
            for _ in 0..count {
                self.conn.reply(reply);
            }
            return;
        }
        let raw = match received.spool {
            Some(spool) if spool.len() > 0 => {
                // Spilled: wait for a turn to hold it in memory, then read it back.
                let size = spool.len().saturating_add(received.tail.len());
                reservation.release();
                reservation = self.budget.processing_turn(size).await;
                match spool.read_all(received.tail).await {
                    Ok(raw) => raw,
                    Err(e) => {
                        tracing::warn!(error = %e, size, "could not read a spilled message back");
                        for _ in 0..count {
                            self.conn
                                .reply("451 4.3.0 Temporary storage failure, try again later");
                        }
                        return;
                    }
                }
            }
            _ => received.tail,
        };
        if header_len(&raw) > self.limits.max_header_bytes {
            let reply = "552 5.3.4 Message header section exceeds fixed maximum size";
            tracing::info!(client = %self.client, recipients = count, reply, "message refused");
            for _ in 0..count {
                self.conn.reply(reply);
            }
            return;
        }
        let size = raw.len();
        let (addresses, recipients): (Vec<_>, Vec<_>) = txn.recipients.into_iter().unzip();
        let txn_id = txn.id;
        let message = IncomingMessage {
            // The buffer becomes the message as it is: no second copy of a large message.
            raw: Bytes::from(raw),
            mail_from: txn.mail_from,
            rcpt_to: addresses,
            client: self.client,
        };
        let started = std::time::Instant::now();
        let statuses = self.backend.deliver(message, recipients).await;
        {
            use palisade_metrics::metrics::{counter, histogram};
            counter!(palisade_metrics::LMTP_TRANSACTIONS).increment(1);
            counter!(palisade_metrics::LMTP_RECEIVED_BYTES).increment(size as u64);
            histogram!(palisade_metrics::LMTP_DELIVERY_SECONDS)
                .record(started.elapsed().as_secs_f64());
        }
        let mut delivered = 0usize;
        for i in 0..count {
            let reply = match statuses.get(i) {
                Some(RecipientStatus::Delivered) => {
                    delivered += 1;
                    format!("250 2.0.0 Message accepted for delivery as {txn_id}")
                }
                Some(RecipientStatus::PermanentFailure(reason)) => {
                    format!("550 5.3.0 {}", one_line(reason))
                }
                // A backend that answered for fewer recipients than asked must not turn
                // the rest into successes: they are retried.
                Some(RecipientStatus::TemporaryFailure(_)) | None => {
                    "451 4.3.0 Temporary storage failure, try again later".to_string()
                }
            };
            self.conn.reply(&reply);
        }
        drop(reservation);
        tracing::info!(
            client = %self.client,
            size,
            recipients = count,
            delivered,
            "transaction complete"
        );
    }
}

/// Whether a command line carries anything after its verb.
fn has_arguments(line: &[u8]) -> bool {
    let text = line.trim_ascii();
    text.iter().any(|b| b.is_ascii_whitespace())
}

/// The `SIZE=` parameter of a MAIL line as written: `Some(Err)` when it is not a number that
/// fits, so an absurd value is refused instead of wrapping or reading as zero.
fn declared_size(line: &[u8]) -> Option<Result<usize, ()>> {
    let text = std::str::from_utf8(line).ok()?;
    let value = text.split_ascii_whitespace().skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.eq_ignore_ascii_case("SIZE").then_some(value)
    })?;
    Some(value.parse::<usize>().map_err(|_| ()))
}

fn end_of(stop: ReadStop) -> End {
    match stop {
        ReadStop::Eof => End::Disconnected,
        ReadStop::Idle => End::Idle,
        ReadStop::Shutdown => End::Shutdown,
        ReadStop::Io(e) => End::Io(e),
    }
}

/// Size of the header section: up to the first empty line, or the whole message.
fn header_len(raw: &[u8]) -> usize {
    let crlf = memchr::memmem::find(raw, b"\r\n\r\n");
    let lf = memchr::memmem::find(raw, b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => raw.len(),
    }
}

/// Keeps a backend's reason from breaking the reply framing.
fn one_line(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

fn protocol_error(e: &ProtoError) -> String {
    match e {
        ProtoError::UnknownCommand | ProtoError::NeedsMoreData { .. } => {
            "500 5.5.1 Command unrecognized".into()
        }
        ProtoError::SyntaxError { syntax } => format!("501 5.5.2 Syntax: {syntax}"),
        ProtoError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax".into(),
        ProtoError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address syntax".into(),
        ProtoError::InvalidParameter { param } => {
            format!("501 5.5.4 Invalid parameter {param}")
        }
        ProtoError::UnsupportedParameter { param } => {
            format!("555 5.5.4 Unsupported parameter {}", one_line(param))
        }
        ProtoError::ResponseTooLong => "500 5.5.2 Line too long".into(),
        ProtoError::InvalidResponse { .. } => "500 5.5.1 Command unrecognized".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_size_reads_the_parameter_as_written() {
        assert_eq!(declared_size(b"MAIL FROM:<a@b> SIZE=10\r\n"), Some(Ok(10)));
        assert_eq!(declared_size(b"MAIL FROM:<a@b> BODY=8BITMIME\r\n"), None);
        assert_eq!(
            declared_size(b"MAIL FROM:<a@b> size=99999999999999999999999\r\n"),
            Some(Err(()))
        );
    }

    #[test]
    fn arguments_are_detected() {
        assert!(!has_arguments(b"DATA\r\n"));
        assert!(has_arguments(b"DATA now\r\n"));
    }
}
