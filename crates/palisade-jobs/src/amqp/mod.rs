//! The RabbitMQ backend of [`JobQueue`], for distributed deployments.
//!
//! Messages are persistent JSON [`JobSpec`]s with an `x-attempts` header (plus `x-error` in
//! the dead queue). Every publish is mandatory and publisher-confirmed, so `Ok` means the
//! broker has taken responsibility for the job.
//!
//! One concern per file: `topology` (the exchange, the main, retry and dead-letter queues),
//! `message` (a job on the wire), `publisher` (publishing with confirms), `consumer` (claims,
//! leases, acks and requeues); this one holds [`AmqpQueue`], which implements [`JobQueue`] on
//! them and reconnects either side when its connection dies.

mod consumer;
mod message;
mod publisher;
mod topology;

use crate::{Job, JobQueue, JobSpec, JobStats, QueueError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lapin::options::BasicNackOptions;
use lapin::types::{LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use palisade_config::RabbitMqConfig;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

use consumer::{ConsumerLink, stale};
use message::encode;
use publisher::Publisher;
use topology::Names;

/// Bound on any single broker round trip: a half-open TCP connection must turn into a prompt
/// `Unavailable` (LMTP answers 451) rather than a hang until heartbeats notice.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

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
/// returns [`QueueError::Stale`], since RabbitMQ has already requeued it.
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

/// The error for a failed broker operation; `what` names it.
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

/// An AMQP short string (names, routing keys, header keys).
fn short(s: &str) -> ShortString {
    ShortString::from(s)
}

/// Hands a delivery back unsettled: to its queue again (`requeue`), or to the queue's
/// dead-letter route.
async fn nack(channel: &Channel, tag: u64, requeue: bool) -> Result<(), QueueError> {
    timed(
        "basic.nack",
        channel.basic_nack(
            tag,
            BasicNackOptions {
                multiple: false,
                requeue,
            },
        ),
    )
    .await
}

/// Opens a connection for `role` (publisher or consumer).
async fn open_connection(url: &str, names: &Names, role: &str) -> Result<Connection, QueueError> {
    // Named after the prefix, so operators can tell deployments' connections apart.
    let properties = ConnectionProperties::default()
        .with_connection_name(LongString::from(format!("{} {role}", names.exchange)));
    // The URL may hold a password: never echo it into errors.
    timed("connect", Connection::connect(url, properties)).await
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
        self.with_publisher(|p| async move { p.publish_all(&exchange, &bodies).await })
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
        let (key, properties) = message::failed(attempts, error, retry_at);
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
                if link.requeue(tag).await.is_err() {
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
            match guard.as_mut().map(ConsumerLink::held) {
                Some(Ok(held)) => held,
                Some(Err(_)) => {
                    *guard = None;
                    0
                }
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
        self.with_publisher(|p| async move { p.replay_dead(&names).await })
            .await
    }
}
