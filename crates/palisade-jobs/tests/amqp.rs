//! The RabbitMQ backend against a real broker (PALISADE_AMQP_URL, default localhost).
//!
//! These tests fail, never skip, when RabbitMQ is unreachable: a silently skipped backend is
//! an untested one. Start it with `devtools/services up rabbitmq`.

use futures::FutureExt;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use palisade_config::RabbitMqConfig;
use palisade_jobs::amqp::AmqpQueue;
use palisade_jobs::{JobKind, JobQueue, JobSpec, QueueError, contract};
use palisade_model::{MessageId, UserId};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

fn url() -> String {
    std::env::var("PALISADE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn config(prefix: &str) -> RabbitMqConfig {
    RabbitMqConfig {
        url: url(),
        prefix: prefix.into(),
        prefetch: 32,
    }
}

async fn connect(prefix: &str) -> AmqpQueue {
    match AmqpQueue::connect(&config(prefix)).await {
        Ok(queue) => queue,
        Err(e) => panic!(
            "RabbitMQ is unreachable at PALISADE_AMQP_URL (default amqp://127.0.0.1:5672); \
             start it with `devtools/services up rabbitmq`: {e}"
        ),
    }
}

/// Runs `body` on a fresh prefix, then deletes that prefix's queues and exchange even if
/// `body` panicked.
async fn with_prefix<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let prefix = format!("palisade-test-{}", uuid::Uuid::new_v4().simple());
    let outcome = AssertUnwindSafe(body(prefix.clone())).catch_unwind().await;
    delete_topology(&prefix).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn delete_topology(prefix: &str) {
    let Ok(connection) = Connection::connect(&url(), ConnectionProperties::default()).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    for queue in [
        format!("{prefix}.jobs"),
        format!("{prefix}.jobs.retry"),
        format!("{prefix}.jobs.dead"),
    ] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(
            format!("{prefix}.jobs").as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = connection.close(200, "done".into()).await;
}

fn spec(n: u128) -> JobSpec {
    JobSpec {
        kind: JobKind::Index,
        user_id: UserId::new_random(),
        message_id: MessageId(uuid::Uuid::from_u128(n)),
    }
}

#[tokio::test]
async fn contract_suite() {
    with_prefix(|prefix| async move {
        let queue = connect(&prefix).await;
        contract::run_all(&queue).await;
        queue.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_worker_that_dies_without_acking_loses_nothing() {
    with_prefix(|prefix| async move {
        let specs = [spec(1), spec(2), spec(3)];
        let first = connect(&prefix).await;
        first.publish(&specs).await.expect("publish");
        let claimed = contract::claim_at_least(&first, 3).await;
        assert_eq!(claimed.len(), 3);
        // No ack, no close: the connection just goes away, as when a worker crashes.
        drop(first);

        let second = connect(&prefix).await;
        let again = contract::claim_at_least(&second, 3).await;
        let mut got: Vec<JobSpec> = again.iter().map(|j| j.spec).collect();
        got.sort_by_key(|s| s.message_id);
        assert_eq!(got, specs.to_vec());
        second.complete(&again).await.expect("complete");
        let stats = second.stats().await.expect("stats");
        assert_eq!((stats.pending, stats.retrying, stats.dead), (0, 0, 0));
        second.close().await;
    })
    .await;
}

#[tokio::test]
async fn settling_a_job_twice_is_refused_without_breaking_the_channel() {
    with_prefix(|prefix| async move {
        let queue = connect(&prefix).await;
        queue.publish(&[spec(1), spec(2)]).await.expect("publish");
        let jobs = contract::claim_at_least(&queue, 2).await;
        queue.complete(&jobs[..1]).await.expect("complete");
        // A second ack of the same tag would make RabbitMQ close the channel (406).
        assert!(matches!(
            queue.complete(&jobs[..1]).await,
            Err(QueueError::Stale(_))
        ));
        queue
            .complete(&jobs[1..])
            .await
            .expect("the channel survived");
        queue.close().await;
    })
    .await;
}

#[tokio::test]
async fn in_process_leases_requeue_forgotten_jobs() {
    with_prefix(|prefix| async move {
        let queue = connect(&prefix).await;
        contract::expired_leases_return(&queue).await;
        queue.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_broker_is_unavailable_promptly() {
    let config = RabbitMqConfig {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        ..config("unreachable")
    };
    let started = std::time::Instant::now();
    let result = AmqpQueue::connect(&config).await;
    assert!(matches!(result, Err(QueueError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(15));
}
