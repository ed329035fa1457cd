//! The RabbitMQ backend of [`JobQueue`], for distributed deployments.
//!
//! Topology (all durable, declared idempotently on every (re)connection so a broker that lost
//! its definitions heals itself):
//!
//! * direct exchange `{prefix}.jobs`;
//! * main queue `{prefix}.jobs`, bound with routing key `ready`; messages a consumer rejects
//!   as undecodable are dead-lettered to the dead queue;
//! * retry queue `{prefix}.jobs.retry`, bound with key `retry`, never consumed: each message
//!   carries its backoff as a per-message `expiration`, and RabbitMQ dead-letters it back to
//!   the main queue when it expires;
//! * dead queue `{prefix}.jobs.dead`, bound with key `dead`, emptied only by
//!   [`JobQueue::replay_dead`].
//!
//! Messages are persistent JSON [`JobSpec`]s with an `x-attempts` header (plus `x-error` in
//! the dead queue). Every publish is mandatory and publisher-confirmed, so `Ok` means the
//! broker has taken responsibility for the job.

use crate::{Job, JobQueue, JobSpec, JobStats, QueueError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind,
};
use palisade_config::RabbitMqConfig;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Routing key of the main queue.
const KEY_READY: &str = "ready";
/// Routing key of the retry queue.
const KEY_RETRY: &str = "retry";
/// Routing key of the dead-letter queue.
const KEY_DEAD: &str = "dead";
/// Header counting failed attempts.
const ATTEMPTS_HEADER: &str = "x-attempts";
/// Header carrying the last error of a dead-lettered job.
const ERROR_HEADER: &str = "x-error";
/// Persistent delivery mode: the broker writes the message to disk before confirming.
const PERSISTENT: u8 = 2;

/// Bound on any single broker round trip: a half-open TCP connection must turn into a prompt
/// `Unavailable` (LMTP answers 451) rather than a hang until heartbeats notice.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `claim` waits for a first delivery when none is buffered.
const CLAIM_WAIT: Duration = Duration::from_millis(200);
/// Longest `x-error` kept, so a huge error string cannot bloat the frame.
const MAX_ERROR_LEN: usize = 2048;

/// Job ids carry the consumer connection's generation in their top bits, because delivery tags
/// restart at 1 on every channel: a job claimed before a reconnect must never ack an unrelated
/// delivery that happens to reuse its tag afterwards.
const GENERATION_SHIFT: u32 = 48;
/// Delivery-tag bits of a job id.
const TAG_MASK: u64 = (1 << GENERATION_SHIFT) - 1;

/// A [`JobQueue`] on RabbitMQ (AMQP 0-9-1, via lapin).
///
/// Leases: AMQP has no time-based lease. A claimed job is an unacknowledged delivery, and the
/// broker returns it to the queue when the consumer's channel or connection closes (worker
/// crash, network loss, or RabbitMQ's own `consumer_timeout`, 30 minutes by default). Within
/// a live process, the `lease` given to [`JobQueue::claim`] is honoured only on a best-effort
/// basis: deliveries still unsettled after their lease are requeued at the next `claim`, so a
/// worker that dropped a job on an error path does not strand it until the next restart.
///
/// [`Job::id`] is the delivery tag, tagged with the connection generation in its top 16 bits
/// (0 on the first connection); settling a job claimed on a connection that has since closed
/// returns [`QueueError::Unavailable`], since RabbitMQ has already requeued it.
///
/// Publishing and consuming use separate connections, as RabbitMQ recommends: flow control
/// throttles publishing connections, and must not hold back the acks that relieve it. The
/// consuming connection is opened by the first `claim`, so publish-only processes (the LMTP
/// daemon) never prefetch jobs. Either connection is reopened lazily by the next operation
/// after a failure, so a daemon recovers by itself when RabbitMQ comes back.
///
/// Retries use per-message TTLs in one retry queue; RabbitMQ expires messages only at the head
/// of a queue, so a short backoff queued behind a longer one waits for it. Backoffs grow
/// monotonically with attempts, so this only delays retries, never loses them.
pub struct AmqpQueue {
    url: String,
    prefetch: u16,
    names: Names,
    publisher: Mutex<Option<Arc<Publisher>>>,
    consumer: Mutex<Option<ConsumerLink>>,
    generations: AtomicU64,
}

/// Exchange and queue names derived from the configured prefix.
#[derive(Debug, Clone)]
struct Names {
    exchange: String,
    main: String,
    retry: String,
    dead: String,
}

impl Names {
    fn new(prefix: &str) -> Self {
        let base = format!("{prefix}.jobs");
        Names {
            exchange: base.clone(),
            retry: format!("{base}.retry"),
            dead: format!("{base}.dead"),
            main: base,
        }
    }
}

/// The publishing connection and its confirm-mode channel.
struct Publisher {
    connection: Connection,
    channel: Channel,
}

/// The consuming connection, its consumer, and what it has handed out.
struct ConsumerLink {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
    generation: u64,
    /// Deliveries received (prefetched) but not yet claimed.
    buffer: VecDeque<Delivery>,
    /// Claimed, unsettled delivery tags and when their lease runs out (`None`: never).
    leased: HashMap<u64, Option<Instant>>,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("rabbitmq {what}: {error}"))
}

/// Runs one broker round trip under [`OP_TIMEOUT`].
async fn timed<T>(what: &str, op: impl Future<Output = lapin::Result<T>>) -> Result<T, QueueError> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(unavailable(what, e)),
        Err(_) => Err(unavailable(what, "timed out")),
    }
}

fn short(s: &str) -> ShortString {
    ShortString::from(s)
}

/// Message properties of a job with `attempts` failures behind it.
fn job_properties(attempts: u32, extra: FieldTable) -> BasicProperties {
    let mut headers = extra;
    headers.insert(
        short(ATTEMPTS_HEADER),
        AMQPValue::LongLongInt(i64::from(attempts)),
    );
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type(short("application/json"))
        .with_headers(headers)
}

/// Reads `x-attempts`, accepting any integer type another client may have used.
fn attempts_of(properties: &BasicProperties) -> u32 {
    let Some(value) = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPTS_HEADER))
    else {
        return 0;
    };
    let n: i128 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => (*v).into(),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn encode(spec: &JobSpec) -> Result<Vec<u8>, QueueError> {
    serde_json::to_vec(spec).map_err(|e| QueueError::Corrupt(format!("encoding job: {e}")))
}

impl Publisher {
    async fn open(url: &str, names: &Names) -> Result<Self, QueueError> {
        let connection = open_connection(url, names, "publisher").await?;
        let channel = timed("open channel", connection.create_channel()).await?;
        timed(
            "confirm.select",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        declare_topology(&channel, names).await?;
        Ok(Publisher {
            connection,
            channel,
        })
    }

    fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Sends without waiting, so a batch is confirmed in one round trip.
    async fn send(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<lapin::PublisherConfirm, QueueError> {
        timed(
            "basic.publish",
            self.channel.basic_publish(
                short(exchange),
                short(key),
                // Mandatory: a missing binding must fail the publish, not silently drop the job.
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                body,
                properties,
            ),
        )
        .await
    }

    async fn publish(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), QueueError> {
        let confirm = self.send(exchange, key, body, properties).await?;
        settle_confirm(confirm).await
    }

    /// Ready messages in `queue`; fails (closing the channel) if the queue does not exist.
    async fn count(&self, queue: &str) -> Result<u64, QueueError> {
        let q = timed(
            "queue.declare (passive)",
            self.channel.queue_declare(
                short(queue),
                QueueDeclareOptions::default().passive(),
                FieldTable::default(),
            ),
        )
        .await?;
        Ok(u64::from(q.message_count()))
    }
}

/// Waits for the broker's confirm and turns anything but a clean ack into an error.
async fn settle_confirm(confirm: lapin::PublisherConfirm) -> Result<(), QueueError> {
    match timed("publisher confirm", confirm).await? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(QueueError::Unavailable(format!(
            "rabbitmq returned the message as unroutable: {}",
            returned.reply_text
        ))),
        Confirmation::Nack(_) => Err(QueueError::Unavailable(
            "rabbitmq refused the message (nack)".into(),
        )),
        Confirmation::NotRequested => Err(QueueError::Unavailable(
            "rabbitmq channel is not in confirm mode".into(),
        )),
    }
}

async fn open_connection(url: &str, names: &Names, role: &str) -> Result<Connection, QueueError> {
    // Named after the prefix, so operators can tell deployments' connections apart.
    let properties = ConnectionProperties::default()
        .with_connection_name(LongString::from(format!("{} {role}", names.exchange)));
    // The URL may hold a password: never echo it into errors.
    timed("connect", Connection::connect(url, properties)).await
}

async fn declare_topology(channel: &Channel, names: &Names) -> Result<(), QueueError> {
    let durable = QueueDeclareOptions::durable();
    timed(
        "exchange.declare",
        channel.exchange_declare(
            short(&names.exchange),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await?;

    let dead_letter_to = |key: &str| {
        let mut args = FieldTable::default();
        args.insert(
            short("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from(names.exchange.as_str())),
        );
        args.insert(
            short("x-dead-letter-routing-key"),
            AMQPValue::LongString(LongString::from(key)),
        );
        args
    };
    let queues = [
        (&names.main, KEY_READY, dead_letter_to(KEY_DEAD)),
        (&names.retry, KEY_RETRY, dead_letter_to(KEY_READY)),
        (&names.dead, KEY_DEAD, FieldTable::default()),
    ];
    for (queue, key, args) in queues {
        timed(
            "queue.declare",
            channel.queue_declare(short(queue), durable, args),
        )
        .await?;
        timed(
            "queue.bind",
            channel.queue_bind(
                short(queue),
                short(&names.exchange),
                short(key),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    }
    Ok(())
}

impl ConsumerLink {
    async fn open(
        url: &str,
        names: &Names,
        prefetch: u16,
        generation: u64,
    ) -> Result<Self, QueueError> {
        let connection = open_connection(url, names, "consumer").await?;
        let channel = timed("open channel", connection.create_channel()).await?;
        declare_topology(&channel, names).await?;
        timed(
            "basic.qos",
            channel.basic_qos(prefetch, BasicQosOptions::default()),
        )
        .await?;
        let consumer = timed(
            "basic.consume",
            channel.basic_consume(
                short(&names.main),
                short(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        Ok(ConsumerLink {
            connection,
            channel,
            consumer,
            generation,
            buffer: VecDeque::new(),
            leased: HashMap::new(),
        })
    }

    fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    fn accept(&mut self, next: Option<lapin::Result<Delivery>>) -> Result<(), QueueError> {
        match next {
            Some(Ok(delivery)) => {
                if delivery.delivery_tag > TAG_MASK {
                    // Would not fit in a job id; a fresh channel restarts the tags.
                    return Err(QueueError::Unavailable(
                        "rabbitmq delivery tags exhausted; reconnecting".into(),
                    ));
                }
                self.buffer.push_back(delivery);
                Ok(())
            }
            Some(Err(e)) => Err(unavailable("consumer", e)),
            None => Err(QueueError::Unavailable(
                "rabbitmq cancelled the consumer".into(),
            )),
        }
    }

    /// Moves every delivery the client already holds into the buffer, without waiting.
    fn drain_ready(&mut self) -> Result<(), QueueError> {
        while let Some(next) = self.consumer.next().now_or_never() {
            self.accept(next)?;
        }
        Ok(())
    }

    async fn requeue_expired(&mut self) -> Result<(), QueueError> {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .leased
            .iter()
            .filter(|(_, deadline)| deadline.is_some_and(|d| d <= now))
            .map(|(tag, _)| *tag)
            .collect();
        for tag in expired {
            self.leased.remove(&tag);
            tracing::warn!(delivery_tag = tag, "job lease expired; requeueing");
            timed(
                "basic.nack",
                self.channel.basic_nack(
                    tag,
                    BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    },
                ),
            )
            .await?;
        }
        Ok(())
    }

    async fn claim(&mut self, limit: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        self.requeue_expired().await?;
        self.drain_ready()?;
        if self.buffer.is_empty() && limit > 0 {
            if let Ok(next) = tokio::time::timeout(CLAIM_WAIT, self.consumer.next()).await {
                self.accept(next)?;
            }
            self.drain_ready()?;
        }
        let mut jobs = Vec::new();
        while jobs.len() < limit {
            let Some(delivery) = self.buffer.pop_front() else {
                break;
            };
            let tag = delivery.delivery_tag;
            match serde_json::from_slice::<JobSpec>(&delivery.data) {
                Ok(spec) => {
                    self.leased.insert(tag, Instant::now().checked_add(lease));
                    jobs.push(Job {
                        id: self.job_id(tag),
                        spec,
                        attempts: attempts_of(&delivery.properties),
                    });
                }
                Err(e) => {
                    // Redelivering it would fail forever; the main queue dead-letters rejects.
                    tracing::error!(delivery_tag = tag, error = %e, "undecodable job; dead-lettering");
                    timed(
                        "basic.nack",
                        self.channel.basic_nack(
                            tag,
                            BasicNackOptions {
                                multiple: false,
                                requeue: false,
                            },
                        ),
                    )
                    .await?;
                }
            }
        }
        Ok(jobs)
    }

    fn job_id(&self, tag: u64) -> u64 {
        ((self.generation & 0xFFFF) << GENERATION_SHIFT) | (tag & TAG_MASK)
    }

    /// The delivery tag of a job claimed on this connection and not yet settled.
    fn leased_tag(&self, job_id: u64) -> Option<u64> {
        let tag = job_id & TAG_MASK;
        (self.job_id(tag) == job_id && self.leased.contains_key(&tag)).then_some(tag)
    }

    async fn ack(&mut self, tag: u64) -> Result<(), QueueError> {
        self.leased.remove(&tag);
        timed(
            "basic.ack",
            self.channel.basic_ack(tag, BasicAckOptions::default()),
        )
        .await
    }
}

fn stale(count: usize) -> QueueError {
    QueueError::Unavailable(format!(
        "{count} job(s) were claimed on a rabbitmq connection that has since closed, \
         or were already settled; the broker requeues unsettled ones for redelivery"
    ))
}

impl AmqpQueue {
    /// Connects to RabbitMQ and declares the topology; fails if the broker is unreachable.
    pub async fn connect(config: &RabbitMqConfig) -> Result<Self, QueueError> {
        let queue = AmqpQueue {
            url: config.url.clone(),
            prefetch: config.prefetch,
            names: Names::new(&config.prefix),
            publisher: Mutex::new(None),
            consumer: Mutex::new(None),
            generations: AtomicU64::new(0),
        };
        queue.publisher().await?;
        Ok(queue)
    }

    /// Closes both connections; unsettled deliveries go back to the queue at once.
    pub async fn close(&self) {
        if let Some(link) = self.consumer.lock().await.take() {
            let _ = link.connection.close(200, short("closing")).await;
        }
        if let Some(publisher) = self.publisher.lock().await.take() {
            let _ = publisher.connection.close(200, short("closing")).await;
        }
    }

    /// The live publishing link, reconnecting if the last one died.
    async fn publisher(&self) -> Result<Arc<Publisher>, QueueError> {
        let mut guard = self.publisher.lock().await;
        if let Some(link) = guard.as_ref()
            && link.usable()
        {
            return Ok(link.clone());
        }
        if guard.take().is_some() {
            tracing::warn!("rabbitmq publishing connection lost; reconnecting");
        }
        let link = Arc::new(Publisher::open(&self.url, &self.names).await?);
        *guard = Some(link.clone());
        Ok(link)
    }

    /// Runs `op` on the publishing link, dropping the link if `op` left it broken.
    async fn with_publisher<T, F, Fut>(&self, op: F) -> Result<T, QueueError>
    where
        F: FnOnce(Arc<Publisher>) -> Fut,
        Fut: Future<Output = Result<T, QueueError>>,
    {
        let link = self.publisher().await?;
        let result = op(link.clone()).await;
        if result.is_err() && !link.usable() {
            let mut guard = self.publisher.lock().await;
            if guard.as_ref().is_some_and(|l| Arc::ptr_eq(l, &link)) {
                *guard = None;
            }
        }
        result
    }

    /// Makes sure `slot` holds a live consumer link.
    async fn consumer_link<'a>(
        &self,
        slot: &'a mut Option<ConsumerLink>,
    ) -> Result<&'a mut ConsumerLink, QueueError> {
        if slot.as_ref().is_some_and(|l| !l.usable()) {
            tracing::warn!("rabbitmq consuming connection lost; reconnecting");
            *slot = None;
        }
        if slot.is_none() {
            let generation = self.generations.fetch_add(1, Ordering::Relaxed);
            *slot =
                Some(ConsumerLink::open(&self.url, &self.names, self.prefetch, generation).await?);
        }
        slot.as_mut()
            .ok_or_else(|| QueueError::Unavailable("rabbitmq consumer missing".into()))
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, jobs: &[JobSpec]) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let bodies = jobs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        let exchange = self.names.exchange.clone();
        self.with_publisher(|p| async move {
            let mut confirms = Vec::with_capacity(bodies.len());
            for body in &bodies {
                let properties = job_properties(0, FieldTable::default());
                confirms.push(p.send(&exchange, KEY_READY, body, properties).await?);
            }
            // Await every confirm even after a failure, so none is left dangling on the channel.
            let mut outcome = Ok(());
            for confirm in confirms {
                if let Err(e) = settle_confirm(confirm).await
                    && outcome.is_ok()
                {
                    outcome = Err(e);
                }
            }
            outcome
        })
        .await
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        let mut guard = self.consumer.lock().await;
        let link = self.consumer_link(&mut guard).await?;
        let result = link.claim(limit, lease).await;
        if result.is_err() {
            // Its deliveries return to the queue when the connection closes.
            *guard = None;
        }
        result
    }

    async fn complete(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let mut guard = self.consumer.lock().await;
        if guard.as_ref().is_some_and(|l| !l.usable()) {
            // The broker requeued everything this connection held.
            *guard = None;
        }
        let Some(link) = guard.as_mut() else {
            return if jobs.is_empty() {
                Ok(())
            } else {
                Err(stale(jobs.len()))
            };
        };
        let mut stale_jobs = 0;
        for job in jobs {
            let Some(tag) = link.leased_tag(job.id) else {
                stale_jobs += 1;
                continue;
            };
            if let Err(e) = link.ack(tag).await {
                *guard = None;
                return Err(e);
            }
        }
        if stale_jobs > 0 {
            return Err(stale(stale_jobs));
        }
        Ok(())
    }

    async fn fail(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError> {
        // Held throughout, so the delivery cannot be requeued between republish and ack.
        let mut guard = self.consumer.lock().await;
        if guard.as_ref().is_some_and(|l| !l.usable()) {
            // Its deliveries were requeued: republishing would duplicate the job.
            *guard = None;
        }
        let Some(tag) = guard.as_ref().and_then(|l| l.leased_tag(job.id)) else {
            return Err(stale(1));
        };
        let attempts = job.attempts.saturating_add(1);
        let body = encode(&job.spec)?;
        let (key, properties) = match retry_at {
            Some(at) => {
                let delay_ms = (at - Utc::now()).num_milliseconds().max(0);
                let properties = job_properties(attempts, FieldTable::default())
                    .with_expiration(short(&delay_ms.to_string()));
                (KEY_RETRY, properties)
            }
            None => {
                let mut extra = FieldTable::default();
                extra.insert(
                    short(ERROR_HEADER),
                    AMQPValue::LongString(LongString::from(truncate(error, MAX_ERROR_LEN))),
                );
                (KEY_DEAD, job_properties(attempts, extra))
            }
        };
        let exchange = self.names.exchange.clone();
        let published = self
            .with_publisher(|p| async move { p.publish(&exchange, key, &body, properties).await })
            .await;
        let Some(link) = guard.as_mut() else {
            return Err(stale(1));
        };
        match published {
            Ok(()) => {
                if let Err(e) = link.ack(tag).await {
                    *guard = None;
                    return Err(e);
                }
                Ok(())
            }
            Err(e) => {
                // Hand the job straight back rather than leaving it unacked until a reconnect.
                link.leased.remove(&tag);
                let requeue = BasicNackOptions {
                    multiple: false,
                    requeue: true,
                };
                if timed("basic.nack", link.channel.basic_nack(tag, requeue))
                    .await
                    .is_err()
                {
                    *guard = None;
                }
                Err(e)
            }
        }
    }

    async fn stats(&self) -> Result<JobStats, QueueError> {
        let names = self.names.clone();
        let (ready, retrying, dead) = self
            .with_publisher(|p| async move {
                Ok((
                    p.count(&names.main).await?,
                    p.count(&names.retry).await?,
                    p.count(&names.dead).await?,
                ))
            })
            .await?;
        // AMQP reports only ready messages; the ones this process holds are counted locally.
        // Unacked deliveries held by other processes are invisible without the management API.
        let held = {
            let mut guard = self.consumer.lock().await;
            match guard.as_mut() {
                Some(link) => match link.drain_ready() {
                    Ok(()) => link.buffer.len() + link.leased.len(),
                    Err(_) => {
                        *guard = None;
                        0
                    }
                },
                None => 0,
            }
        };
        Ok(JobStats {
            pending: ready.saturating_add(u64::try_from(held).unwrap_or(u64::MAX)),
            retrying,
            dead,
            done: 0,
        })
    }

    async fn replay_dead(&self) -> Result<u64, QueueError> {
        let names = self.names.clone();
        self.with_publisher(|p| async move {
            // A snapshot bound: a job that dies again during the replay must not loop forever.
            let budget = p.count(&names.dead).await?;
            let mut replayed = 0;
            while replayed < budget {
                let got = timed(
                    "basic.get",
                    p.channel
                        .basic_get(short(&names.dead), BasicGetOptions { no_ack: false }),
                )
                .await?;
                let Some(message) = got else {
                    break;
                };
                let delivery = message.delivery;
                let properties = job_properties(0, FieldTable::default());
                if let Err(e) = p
                    .publish(&names.exchange, KEY_READY, &delivery.data, properties)
                    .await
                {
                    let requeue = BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    };
                    let _ = timed(
                        "basic.nack",
                        p.channel.basic_nack(delivery.delivery_tag, requeue),
                    )
                    .await;
                    return Err(e);
                }
                timed(
                    "basic.ack",
                    p.channel
                        .basic_ack(delivery.delivery_tag, BasicAckOptions::default()),
                )
                .await?;
                replayed += 1;
            }
            Ok(replayed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let names = Names::new("p");
        assert_eq!(names.exchange, "p.jobs");
        assert_eq!(names.main, "p.jobs");
        assert_eq!(names.retry, "p.jobs.retry");
        assert_eq!(names.dead, "p.jobs.dead");
    }

    #[test]
    fn attempts_round_trip_and_tolerate_foreign_types() {
        assert_eq!(attempts_of(&job_properties(7, FieldTable::default())), 7);
        assert_eq!(attempts_of(&BasicProperties::default()), 0);
        let mut headers = FieldTable::default();
        headers.insert(short(ATTEMPTS_HEADER), AMQPValue::ShortUInt(3));
        assert_eq!(
            attempts_of(&BasicProperties::default().with_headers(headers)),
            3
        );
        let mut headers = FieldTable::default();
        headers.insert(short(ATTEMPTS_HEADER), AMQPValue::LongLongInt(-4));
        assert_eq!(
            attempts_of(&BasicProperties::default().with_headers(headers)),
            0
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
