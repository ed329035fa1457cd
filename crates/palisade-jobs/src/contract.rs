//! The behaviour every [`JobQueue`] backend must have, as runnable checks on a fresh queue.
//!
//! Queues may route asynchronously (a broker), so "the job is back" is checked by polling
//! with a generous deadline rather than by timing.

use crate::{Job, JobKind, JobQueue, JobSpec};
use chrono::{Duration as Span, Utc};
use palisade_model::{MessageId, UserId};
use std::time::Duration;

/// How long a check waits for jobs that should become claimable.
const PATIENCE: Duration = Duration::from_secs(20);
/// Lease long enough that it never expires during a check.
const LONG_LEASE: Duration = Duration::from_secs(600);

/// Runs every backend-neutral check in order on a fresh, empty queue.
pub async fn run_all(queue: &dyn JobQueue) {
    publish_claim_complete(queue).await;
    retry_dead_letter_and_replay(queue).await;
}

fn spec(n: u128) -> JobSpec {
    JobSpec {
        kind: JobKind::Index,
        user_id: UserId::new_random(),
        message_id: MessageId(uuid_from(n)),
    }
}

fn uuid_from(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

/// Claims until `n` jobs were received or patience runs out.
pub async fn claim_at_least(queue: &dyn JobQueue, n: usize) -> Vec<Job> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        let batch = queue.claim(n - got.len(), LONG_LEASE).await.expect("claim");
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        got.extend(batch);
    }
    assert_eq!(got.len(), n, "expected {n} claimable jobs, got {got:?}");
    got
}

/// Published jobs are claimed once each, and completed ones never return.
pub async fn publish_claim_complete(queue: &dyn JobQueue) {
    let specs = [spec(1), spec(2), spec(3)];
    queue.publish(&specs).await.expect("publish");
    let jobs = claim_at_least(queue, 3).await;
    let mut claimed: Vec<JobSpec> = jobs.iter().map(|j| j.spec).collect();
    claimed.sort_by_key(|s| s.message_id);
    assert_eq!(claimed, specs.to_vec());
    assert!(jobs.iter().all(|j| j.attempts == 0));
    assert!(
        queue.claim(10, LONG_LEASE).await.expect("claim").is_empty(),
        "leased jobs are not handed out twice"
    );
    queue.complete(&jobs).await.expect("complete");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(queue.claim(10, LONG_LEASE).await.expect("claim").is_empty());
    let stats = queue.stats().await.expect("stats");
    assert_eq!(
        (stats.pending, stats.retrying, stats.dead),
        (0, 0, 0),
        "{stats:?}"
    );
}

/// Failed jobs come back with their attempt count; dead ones wait for a replay.
pub async fn retry_dead_letter_and_replay(queue: &dyn JobQueue) {
    let specs = [spec(10), spec(11)];
    queue.publish(&specs).await.expect("publish");
    let jobs = claim_at_least(queue, 2).await;
    let (retry, poison) = (&jobs[0], &jobs[1]);
    queue
        .fail(retry, "index down", Some(Utc::now() - Span::seconds(1)))
        .await
        .expect("fail with retry");
    queue
        .fail(poison, "poison", None)
        .await
        .expect("dead-letter");

    let retried = claim_at_least(queue, 1).await;
    assert_eq!(retried[0].spec, retry.spec);
    assert_eq!(retried[0].attempts, retry.attempts + 1);
    queue.complete(&retried).await.expect("complete");

    let stats = queue.stats().await.expect("stats");
    assert_eq!(stats.dead, 1, "{stats:?}");
    assert!(queue.claim(10, LONG_LEASE).await.expect("claim").is_empty());
    assert_eq!(queue.replay_dead().await.expect("replay"), 1);
    let replayed = claim_at_least(queue, 1).await;
    assert_eq!(replayed[0].spec, poison.spec);
    queue.complete(&replayed).await.expect("complete");
    let stats = queue.stats().await.expect("stats");
    assert_eq!(
        (stats.pending, stats.retrying, stats.dead),
        (0, 0, 0),
        "{stats:?}"
    );
}

/// A job whose lease runs out is claimable again (backends with time-based leases).
pub async fn expired_leases_return(queue: &dyn JobQueue) {
    queue.publish(&[spec(20)]).await.expect("publish");
    let first = queue
        .claim(1, Duration::from_millis(1))
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = claim_at_least(queue, 1).await;
    assert_eq!(again[0].spec, first[0].spec);
    queue.complete(&again).await.expect("complete");
}
