//! The consuming side: one connection whose prefetched deliveries are claimed as jobs,
//! leased, and settled by ack (done) or nack (back to the queue, or dead-lettered when
//! undecodable).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use tokio::time::Instant;

use super::message::attempts_of;
use super::topology::{Names, declare_topology};
use super::{nack, open_connection, short, timed, unavailable};
use crate::{Job, JobSpec, QueueError};

/// How long `claim` waits for a first delivery when none is buffered.
const CLAIM_WAIT: Duration = Duration::from_millis(200);
/// Job ids carry the consumer connection's generation in their top bits, because delivery tags
/// restart at 1 on every channel: a job claimed before a reconnect must never ack an unrelated
/// delivery that happens to reuse its tag afterwards.
const GENERATION_SHIFT: u32 = 48;
/// Delivery-tag bits of a job id.
const TAG_MASK: u64 = (1 << GENERATION_SHIFT) - 1;

/// The consuming connection, its consumer, and what it has handed out.
pub(super) struct ConsumerLink {
    pub(super) connection: Connection,
    channel: Channel,
    consumer: Consumer,
    generation: u64,
    /// Deliveries received (prefetched) but not yet claimed.
    buffer: VecDeque<Delivery>,
    /// Claimed, unsettled delivery tags and when their lease runs out (`None`: never).
    leased: HashMap<u64, Option<Instant>>,
}

impl ConsumerLink {
    /// Opens the consuming connection, declares the topology and starts consuming the main
    /// queue, with at most `prefetch` unsettled deliveries.
    pub(super) async fn open(
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

    /// Whether the connection and channel are still open.
    pub(super) fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Buffers one delivery from the consumer stream; a closed stream is an outage.
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

    /// Hands back every claimed delivery whose lease has run out.
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
            nack(&self.channel, tag, true).await?;
        }
        Ok(())
    }

    /// Leases up to `limit` buffered or newly delivered jobs; waits briefly when none is
    /// buffered.
    pub(super) async fn claim(
        &mut self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Job>, QueueError> {
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
                    nack(&self.channel, tag, false).await?;
                }
            }
        }
        Ok(jobs)
    }

    /// The job id of a delivery on this connection.
    fn job_id(&self, tag: u64) -> u64 {
        ((self.generation & 0xFFFF) << GENERATION_SHIFT) | (tag & TAG_MASK)
    }

    /// The delivery tag of a job claimed on this connection and not yet settled.
    pub(super) fn leased_tag(&self, job_id: u64) -> Option<u64> {
        let tag = job_id & TAG_MASK;
        (self.job_id(tag) == job_id && self.leased.contains_key(&tag)).then_some(tag)
    }

    /// Settles a claimed delivery as done.
    pub(super) async fn ack(&mut self, tag: u64) -> Result<(), QueueError> {
        self.leased.remove(&tag);
        timed(
            "basic.ack",
            self.channel.basic_ack(tag, BasicAckOptions::default()),
        )
        .await
    }

    /// Hands a claimed delivery straight back to the queue, rather than leaving it unacked
    /// until a reconnect.
    pub(super) async fn requeue(&mut self, tag: u64) -> Result<(), QueueError> {
        self.leased.remove(&tag);
        nack(&self.channel, tag, true).await
    }

    /// Jobs this process holds: delivered and not yet claimed, or claimed and not yet settled.
    /// The broker counts neither as ready.
    pub(super) fn held(&mut self) -> Result<usize, QueueError> {
        self.drain_ready()?;
        Ok(self.buffer.len() + self.leased.len())
    }
}

/// The error for settling jobs this connection no longer holds.
pub(super) fn stale(count: usize) -> QueueError {
    QueueError::Stale(format!(
        "{count} job(s) were claimed on a rabbitmq connection that has since closed, \
         or were already settled; the broker requeues unsettled ones for redelivery"
    ))
}
