//! The embedded job outbox: jobs are rows of the same database, written in the delivery's
//! transaction, claimed with leases, and deleted when done (a counter keeps their number).

use super::{SqliteStore, deliver, millis, rows, unavailable};
use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_jobs::{Job, JobKind, JobQueue, JobSpec, JobStats, QueueError};
use rusqlite::params;
use std::time::Duration;

/// The queue and the store share one database, so their faults are the same faults.
fn queue_error(e: StoreError) -> QueueError {
    match e {
        StoreError::Corrupt(m) => QueueError::Corrupt(m),
        other => QueueError::Unavailable(other.to_string()),
    }
}

/// A job row's spec, or why it cannot be one.
fn decode_job(kind: &str, user: &str, message: &str) -> Result<JobSpec, StoreError> {
    Ok(JobSpec {
        kind: JobKind::parse(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("job kind {kind}")))?,
        user_id: rows::parse_id(user)?,
        message_id: rows::parse_id(message)?,
    })
}

/// Counts come back as SQLite integers; negative would be corruption, read as zero.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn publish(&self, jobs: &[JobSpec]) -> Result<(), QueueError> {
        let jobs = jobs.to_vec();
        self.writer
            .write(move |conn| {
                let now = millis(Utc::now());
                for job in &jobs {
                    deliver::rearm_job(conn, job, now)?;
                }
                Ok(())
            })
            .await
            .map_err(queue_error)
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        self.writer
            .write(move |conn| {
                let now = millis(Utc::now());
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE jobs SET state = 'running', lease_until = ?1
                         WHERE id IN (
                             SELECT id FROM jobs
                             WHERE (state = 'pending' AND next_attempt_at <= ?2)
                                OR (state = 'running' AND lease_until <= ?2)
                             ORDER BY next_attempt_at LIMIT ?3)
                         RETURNING id, kind, user_id, message_id, attempts",
                    )
                    .map_err(unavailable)?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = stmt
                    .query_map(params![now + lease_ms, now, limit], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, u32>(4)?,
                        ))
                    })
                    .map_err(unavailable)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                let mut jobs = Vec::with_capacity(rows.len());
                for (id, kind, user, message, attempts) in rows {
                    match decode_job(&kind, &user, &message) {
                        Ok(spec) => jobs.push(Job {
                            id: u64::try_from(id).unwrap_or_default(),
                            spec,
                            attempts,
                        }),
                        // Retrying cannot mend it, and failing the whole claim would stall
                        // every job behind it: dead-letter it where an admin can see it.
                        Err(e) => {
                            tracing::error!(job = id, error = %e, "undecodable job; dead-lettering");
                            conn.prepare_cached(
                                "UPDATE jobs SET state = 'dead', lease_until = NULL,
                                        last_error = ?2 WHERE id = ?1",
                            )
                            .and_then(|mut s| s.execute(params![id, e.to_string()]))
                            .map_err(unavailable)?;
                        }
                    }
                }
                Ok(jobs)
            })
            .await
            .map_err(queue_error)
    }

    async fn complete(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let ids: Vec<i64> = jobs
            .iter()
            .filter_map(|j| i64::try_from(j.id).ok())
            .collect();
        self.writer
            .write(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        // A job re-armed while it ran is pending again and must stay so.
                        "DELETE FROM jobs WHERE id = ?1 AND state = 'running'",
                    )
                    .map_err(unavailable)?;
                let mut finished = 0i64;
                for &id in &ids {
                    finished += stmt.execute([id]).map_err(unavailable)? as i64;
                }
                conn.prepare_cached(
                    "INSERT INTO job_counters (name, value) VALUES ('done', ?1)
                     ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                )
                .and_then(|mut s| s.execute([finished]))
                .map_err(unavailable)?;
                Ok(())
            })
            .await
            .map_err(queue_error)
    }

    async fn fail(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError> {
        let id = i64::try_from(job.id).unwrap_or(-1);
        let error = error.to_string();
        self.writer
            .write(move |conn| {
                let (state, next) = match retry_at {
                    Some(at) => ("pending", millis(at)),
                    None => ("dead", millis(Utc::now())),
                };
                conn.execute(
                    "UPDATE jobs SET state = ?1, next_attempt_at = ?2, attempts = attempts + 1,
                            lease_until = NULL, last_error = ?3
                     WHERE id = ?4 AND state = 'running'",
                    params![state, next, error, id],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
            .map_err(queue_error)
    }

    async fn stats(&self) -> Result<JobStats, QueueError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT
                   COALESCE(SUM(state IN ('pending','running') AND attempts = 0), 0),
                   COALESCE(SUM(state IN ('pending','running') AND attempts > 0), 0),
                   COALESCE(SUM(state = 'dead'), 0),
                   (SELECT COALESCE(SUM(value), 0) FROM job_counters WHERE name = 'done')
                 FROM jobs",
                [],
                |r| {
                    Ok(JobStats {
                        pending: count(r.get(0)?),
                        retrying: count(r.get(1)?),
                        dead: count(r.get(2)?),
                        done: count(r.get(3)?),
                    })
                },
            )
            .map_err(unavailable)
        })
        .await
        .map_err(queue_error)
    }

    async fn replay_dead(&self) -> Result<u64, QueueError> {
        self.writer
            .write(|conn| {
                let n = conn
                    .execute(
                        "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = ?1
                         WHERE state = 'dead'",
                        [millis(Utc::now())],
                    )
                    .map_err(unavailable)?;
                Ok(n as u64)
            })
            .await
            .map_err(queue_error)
    }
}
