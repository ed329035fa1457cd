//! The publishing side: one connection with a confirm-mode channel, so that `Ok` means the
//! broker has taken responsibility for every job published.
//!
//! Every publish is mandatory: a missing binding fails it rather than dropping the job.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use super::message::job_properties;
use super::topology::{KEY_READY, Names, declare_topology};
use super::{nack, open_connection, short, timed};
use crate::QueueError;

/// The publishing connection and its confirm-mode channel.
pub(super) struct Publisher {
    pub(super) connection: Connection,
    channel: Channel,
}

impl Publisher {
    /// Opens the publishing connection and channel, in confirm mode, and declares the topology.
    pub(super) async fn open(url: &str, names: &Names) -> Result<Self, QueueError> {
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

    /// Whether the connection and channel are still open.
    pub(super) fn usable(&self) -> bool {
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

    /// Publishes one message and waits for the broker to confirm it.
    pub(super) async fn publish(
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
    pub(super) async fn count(&self, queue: &str) -> Result<u64, QueueError> {
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

    /// Publishes new jobs, each as a ready message, and waits for every confirm at once.
    pub(super) async fn publish_all(
        &self,
        exchange: &str,
        bodies: &[Vec<u8>],
    ) -> Result<(), QueueError> {
        let mut confirms = Vec::with_capacity(bodies.len());
        for body in bodies {
            let properties = job_properties(0, FieldTable::default());
            confirms.push(self.send(exchange, KEY_READY, body, properties).await?);
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
    }

    /// Moves the jobs in the dead queue back to the main queue, with their attempts reset;
    /// returns how many.
    pub(super) async fn replay_dead(&self, names: &Names) -> Result<u64, QueueError> {
        // A snapshot bound: a job that dies again during the replay must not loop forever.
        let budget = self.count(&names.dead).await?;
        let mut replayed = 0;
        while replayed < budget {
            let got = timed(
                "basic.get",
                self.channel
                    .basic_get(short(&names.dead), BasicGetOptions { no_ack: false }),
            )
            .await?;
            let Some(message) = got else {
                break;
            };
            let delivery = message.delivery;
            let properties = job_properties(0, FieldTable::default());
            if let Err(e) = self
                .publish(&names.exchange, KEY_READY, &delivery.data, properties)
                .await
            {
                let _ = nack(&self.channel, delivery.delivery_tag, true).await;
                return Err(e);
            }
            timed(
                "basic.ack",
                self.channel
                    .basic_ack(delivery.delivery_tag, BasicAckOptions::default()),
            )
            .await?;
            replayed += 1;
        }
        Ok(replayed)
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
