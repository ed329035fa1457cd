//! The broker-side topology, all durable and declared idempotently on every (re)connection so
//! a broker that lost its definitions heals itself:
//!
//! * direct exchange `{prefix}.jobs`;
//! * main queue `{prefix}.jobs`, bound with routing key `ready`; messages a consumer rejects
//!   as undecodable are dead-lettered to the dead queue;
//! * retry queue `{prefix}.jobs.retry`, bound with key `retry`, never consumed: each message
//!   carries its backoff as a per-message `expiration`, and RabbitMQ dead-letters it back to
//!   the main queue when it expires;
//! * dead queue `{prefix}.jobs.dead`, bound with key `dead`, emptied only by
//!   [`JobQueue::replay_dead`](crate::JobQueue::replay_dead).

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use super::{short, timed};
use crate::QueueError;

/// Routing key of the main queue.
pub(super) const KEY_READY: &str = "ready";
/// Routing key of the retry queue.
pub(super) const KEY_RETRY: &str = "retry";
/// Routing key of the dead-letter queue.
pub(super) const KEY_DEAD: &str = "dead";

/// Exchange and queue names derived from the configured prefix.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) exchange: String,
    pub(super) main: String,
    pub(super) retry: String,
    pub(super) dead: String,
}

impl Names {
    /// The names of one deployment, so several can share a broker.
    pub(super) fn new(prefix: &str) -> Self {
        let base = format!("{prefix}.jobs");
        Names {
            exchange: base.clone(),
            retry: format!("{base}.retry"),
            dead: format!("{base}.dead"),
            main: base,
        }
    }
}

/// Declares the exchange and the three queues with their bindings and dead-letter routes.
pub(super) async fn declare_topology(channel: &Channel, names: &Names) -> Result<(), QueueError> {
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
}
