//! Embedded store on SQLite: WAL, `synchronous=FULL`, and group commit.
//!
//! Writes go through one writer thread ([`writer`]) so concurrent deliveries share fsyncs;
//! reads use a small pool of connections on tokio's blocking threads.

mod deliver;
mod mailbox;
mod rows;
mod schema;
mod writer;

use crate::{Delivery, DeliveryReceipt, Page, PageOf, Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_jobs::{Job, JobKind, JobQueue, JobSpec, JobStats, QueueError};
use palisade_model::{
    Address, Contact, ContactId, Discussion, DiscussionId, Draft, DraftId, Flags, FlagsPatch,
    Message, MessageId, MessageSummary, Tag, TagId, User, UserId,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use writer::Writer;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections kept open for reuse.
const READ_POOL: usize = 4;

/// The embedded [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut conn = open_connection(path)?;
        schema::migrate(&mut conn).map_err(unavailable)?;
        let writer = Writer::spawn(conn)
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Returns every leased job to the queue. Call it at daemon start: the daemon is the only
    /// consumer of the embedded queue, so a lease still held then belongs to a process that
    /// died (kill -9, power loss), and waiting for it to expire would stall indexing.
    pub async fn release_leases(&self) -> Result<u64, StoreError> {
        self.writer
            .write(|conn| {
                let n = conn
                    .execute(
                        "UPDATE jobs SET state = 'pending', lease_until = NULL
                         WHERE state = 'running'",
                        [],
                    )
                    .map_err(unavailable)?;
                Ok(n as u64)
            })
            .await
    }

    /// Runs a read on a pooled connection, off the async threads.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let path = self.path.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock()
                && pool.len() < READ_POOL
            {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    // FULL: a commit is on disk when it returns, which is what an LMTP 250 promises.
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(unavailable)?;
    Ok(conn)
}

/// Storage faults are reported as temporary: the LMTP client will retry.
pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The queue and the store share one database, so their faults are the same faults.
fn queue_error(e: StoreError) -> QueueError {
    match e {
        StoreError::Corrupt(m) => QueueError::Corrupt(m),
        other => QueueError::Unavailable(other.to_string()),
    }
}

/// Counts come back as SQLite integers; negative would be corruption, read as zero.
/// A job row's spec, or why it cannot be one.
fn decode_job(kind: &str, user: &str, message: &str) -> Result<JobSpec, StoreError> {
    Ok(JobSpec {
        kind: JobKind::parse(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("job kind {kind}")))?,
        user_id: rows::parse_id(user)?,
        message_id: rows::parse_id(message)?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(
        &self,
        name: &str,
        addresses: &[Address],
        password_hash: Option<String>,
    ) -> Result<User, StoreError> {
        let user = User {
            id: UserId::new_random(),
            name: name.to_string(),
            created_at: Utc::now(),
            addresses: addresses.to_vec(),
        };
        let record = user.clone();
        self.writer
            .write(move |conn| {
                let taken: Option<String> = conn
                    .query_row(
                        "SELECT name FROM users WHERE name = ?1",
                        [&record.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                if taken.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "user {} already exists",
                        record.name
                    )));
                }
                conn.execute(
                    "INSERT INTO users (id, name, created_at, password_hash) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        record.id.to_string(),
                        record.name,
                        millis(record.created_at),
                        password_hash
                    ],
                )
                .map_err(unavailable)?;
                for address in &record.addresses {
                    let inserted = conn
                        .execute(
                            "INSERT OR IGNORE INTO addresses (address, user_id) VALUES (?1, ?2)",
                            params![address.as_str(), record.id.to_string()],
                        )
                        .map_err(unavailable)?;
                    if inserted == 0 {
                        return Err(StoreError::Conflict(format!(
                            "address {address} belongs to another user"
                        )));
                    }
                }
                Ok(())
            })
            .await?;
        Ok(user)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT id, name, created_at FROM users ORDER BY name")
                .map_err(unavailable)?;
            let heads = stmt
                .query_map([], rows::user_head)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            heads
                .into_iter()
                .map(|head| rows::with_addresses(conn, head))
                .collect()
        })
        .await
    }

    async fn find_user(&self, name_or_address: &str) -> Result<Option<User>, StoreError> {
        let key = name_or_address.to_string();
        let address = Address::parse(name_or_address).ok();
        self.read(move |conn| {
            let by_name = conn
                .query_row(
                    "SELECT id, name, created_at FROM users WHERE name = ?1",
                    [&key],
                    rows::user_head,
                )
                .optional()
                .map_err(unavailable)?;
            let head = match (by_name, address) {
                (Some(head), _) => Some(head),
                (None, Some(address)) => conn
                    .query_row(
                        "SELECT u.id, u.name, u.created_at FROM users u
                         JOIN addresses a ON a.user_id = u.id WHERE a.address = ?1",
                        [address.as_str()],
                        rows::user_head,
                    )
                    .optional()
                    .map_err(unavailable)?,
                (None, None) => None,
            };
            head.map(|h| rows::with_addresses(conn, h)).transpose()
        })
        .await
    }

    async fn resolve_address(&self, address: &Address) -> Result<Option<UserId>, StoreError> {
        let address = address.as_str().to_string();
        self.read(move |conn| {
            let id: Option<String> = conn
                .query_row(
                    "SELECT user_id FROM addresses WHERE address = ?1",
                    [&address],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            id.map(|s| rows::parse_id(&s)).transpose()
        })
        .await
    }

    async fn deliver(&self, delivery: Delivery) -> Result<DeliveryReceipt, StoreError> {
        self.writer
            .write(move |conn| deliver::deliver(conn, &delivery))
            .await
    }

    async fn list_messages(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        self.read(move |conn| rows::list_messages(conn, user, None, &page))
            .await
    }

    async fn message_summaries(
        &self,
        user: UserId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageSummary>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| rows::message_summaries(conn, user, &ids))
            .await
    }

    async fn get_message(
        &self,
        user: UserId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.read(move |conn| rows::get_message(conn, user, id))
            .await
    }

    async fn get_raw(&self, user: UserId, id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT r.data FROM messages m JOIN raw_messages r
                   ON r.user_id = m.user_id AND r.sha256 = m.raw_sha256
                 WHERE m.user_id = ?1 AND m.id = ?2",
                params![user.to_string(), id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT id, name, created_at FROM users WHERE id = ?1",
                [id.to_string()],
                rows::user_head,
            )
            .optional()
            .map_err(unavailable)?
            .map(|h| rows::with_addresses(conn, h))
            .transpose()
        })
        .await
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT password_hash FROM users WHERE id = ?1",
                [id.to_string()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(unavailable)
        })
        .await
    }

    async fn count_messages(&self, user: UserId) -> Result<u64, StoreError> {
        self.read(move |conn| mailbox::count_messages(conn, user))
            .await
    }

    async fn list_discussions(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<Discussion>, StoreError> {
        self.read(move |conn| mailbox::list_discussions(conn, user, &page))
            .await
    }

    async fn get_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
    ) -> Result<Option<Discussion>, StoreError> {
        self.read(move |conn| mailbox::get_discussion(conn, user, id))
            .await
    }

    async fn discussion_messages(
        &self,
        user: UserId,
        id: DiscussionId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        self.read(move |conn| mailbox::discussion_messages(conn, user, id, &page))
            .await
    }

    async fn update_flags(
        &self,
        user: UserId,
        id: MessageId,
        patch: FlagsPatch,
    ) -> Result<Option<Flags>, StoreError> {
        self.writer
            .write(move |conn| mailbox::update_flags(conn, user, id, patch))
            .await
    }

    async fn set_message_tags(
        &self,
        user: UserId,
        id: MessageId,
        tags: &[TagId],
    ) -> Result<bool, StoreError> {
        let tags = tags.to_vec();
        self.writer
            .write(move |conn| mailbox::set_message_tags(conn, user, id, &tags))
            .await
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| mailbox::delete_message(conn, user, id))
            .await
    }

    async fn list_tags(&self, user: UserId) -> Result<Vec<Tag>, StoreError> {
        self.read(move |conn| mailbox::list_tags(conn, user)).await
    }

    async fn create_tag(
        &self,
        user: UserId,
        name: &str,
        max_tags: usize,
    ) -> Result<Tag, StoreError> {
        let name = name.to_string();
        // The single writer serializes the count and the insert.
        self.writer
            .write(move |conn| mailbox::create_tag(conn, user, &name, max_tags))
            .await
    }

    async fn rename_tag(&self, user: UserId, id: TagId, name: &str) -> Result<Tag, StoreError> {
        let name = name.to_string();
        self.writer
            .write(move |conn| mailbox::rename_tag(conn, user, id, &name))
            .await
    }

    async fn delete_tag(&self, user: UserId, id: TagId) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| mailbox::delete_tag(conn, user, id))
            .await
    }

    async fn list_contacts(&self, user: UserId, page: Page) -> Result<PageOf<Contact>, StoreError> {
        self.read(move |conn| mailbox::list_contacts(conn, user, &page))
            .await
    }

    async fn get_contact(
        &self,
        user: UserId,
        id: ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        self.read(move |conn| mailbox::get_contact(conn, user, id))
            .await
    }

    async fn find_contact(
        &self,
        user: UserId,
        address: &Address,
    ) -> Result<Option<Contact>, StoreError> {
        let address = address.clone();
        self.read(move |conn| mailbox::find_contact(conn, user, &address))
            .await
    }

    async fn save_contact(&self, contact: Contact) -> Result<Contact, StoreError> {
        let record = contact.clone();
        self.writer
            .write(move |conn| mailbox::save_contact(conn, &record))
            .await?;
        Ok(contact)
    }

    async fn delete_contact(&self, user: UserId, id: ContactId) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| mailbox::delete_contact(conn, user, id))
            .await
    }

    async fn save_draft(&self, draft: Draft) -> Result<Draft, StoreError> {
        let record = draft.clone();
        self.writer
            .write(move |conn| mailbox::save_draft(conn, &record))
            .await?;
        Ok(draft)
    }

    async fn get_draft(&self, user: UserId, id: DraftId) -> Result<Option<Draft>, StoreError> {
        self.read(move |conn| mailbox::get_draft(conn, user, id))
            .await
    }

    async fn list_drafts(&self, user: UserId, page: Page) -> Result<PageOf<Draft>, StoreError> {
        self.read(move |conn| mailbox::list_drafts(conn, user, &page))
            .await
    }

    async fn delete_draft(&self, user: UserId, id: DraftId) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| mailbox::delete_draft(conn, user, id))
            .await
    }
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
                for id in ids {
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
