//! Wiring shared by the `lmtp-ingest` daemon and the `palisade-admin` CLI: configuration,
//! logging and backend selection. Nothing here knows the protocol or the schema.

use anyhow::Context;
use palisade_cache::Cache;
use palisade_cache::memory::MemoryCache;
use palisade_cache::namespaced::Namespaced;
use palisade_cache::redis_lazy::LazyRedis;
use palisade_config::{CacheBackend, Config, IndexBackend, LogFormat, StorageBackend};
use palisade_index::elasticsearch::ElasticsearchIndex;
use palisade_index::tantivy_backend::TantivyIndex;
use palisade_index::{IndexError, SearchIndex};
use palisade_jobs::JobQueue;
use palisade_jobs::amqp::AmqpQueue;
use palisade_mime::ParseLimits;
use palisade_store::Store;
use palisade_store::cassandra::CassandraStore;
use palisade_store::sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

pub mod admin;
pub mod index_lag;
pub mod parse_view;

/// Command-line option shared by both binaries.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// TOML configuration file; every setting also reads `PALISADE_SECTION__KEY` variables.
    #[arg(long, short, env = "PALISADE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// Loads the configuration this option names.
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.config.as_deref())?)
    }
}

/// Sets up structured logging on stderr. Log lines carry ids and counts, never bodies.
pub fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The allocator setting for a daemon that handles large messages: mimalloc gives freed
/// memory back to the system at once instead of 10 ms later. Under ten concurrent 25 MB
/// messages the delay let peak RSS reach 255-294 MiB instead of 203-241.
pub const ALLOCATOR_ENV: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "0");

/// Runs this binary again, once, with [`ALLOCATOR_ENV`] set, since mimalloc reads it when the
/// process starts. Returns without doing anything when the variable is already set (by this
/// function before, or by the operator, whose setting wins); otherwise it returns only if the
/// re-execution failed, with the error, and the daemon runs on without the setting.
pub fn reexec_with_allocator_settings() -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt;
    let (name, value) = ALLOCATOR_ENV;
    if std::env::var_os(name).is_some() {
        return None;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Some(e),
    };
    Some(
        std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(name, value)
            .exec(),
    )
}

/// The LMTP memory budget actually used: the configured one, but never more than an eighth of
/// the memory this process may use (peak memory is about twice the bytes in flight, so this
/// keeps ingest under a quarter of the machine whatever the configuration says), and never
/// less than one largest message. Returns the budget and whether it was lowered.
pub fn lmtp_budget(configured: usize, max_message: usize, memory: Option<u64>) -> (usize, bool) {
    let Some(memory) = memory else {
        return (configured, false);
    };
    let cap = usize::try_from(memory / 8)
        .unwrap_or(usize::MAX)
        .max(max_message);
    if configured > cap {
        (cap, true)
    } else {
        (configured, false)
    }
}

/// The memory this process may use: the machine's (`/proc/meminfo`), or its cgroup's limit
/// when lower; `None` where neither can be read.
pub fn available_memory() -> Option<u64> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match (machine, cgroup) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    }
}

/// How mail is parsed, on delivery and when stored mail is parsed again.
pub fn parse_limits(config: &Config) -> ParseLimits {
    ParseLimits {
        max_mime_depth: config.lmtp.max_mime_depth,
        trust: config.privacy.clone(),
        ..ParseLimits::default()
    }
}

/// The storage and job-queue backends the configuration selects.
pub struct Backends {
    /// Users and mail.
    pub store: Arc<dyn Store>,
    /// Follow-up jobs: published by the delivery pipeline unless the store writes them
    /// itself (see [`palisade_store::Mailbox::queues_jobs`]), drained by workers.
    pub queue: Arc<dyn JobQueue>,
    /// The embedded store, for the daemon's start-up recovery.
    embedded: Option<Arc<SqliteStore>>,
}

impl Backends {
    /// Recovers what a crashed predecessor left behind: leased jobs of the embedded queue.
    /// (RabbitMQ returns a dead consumer's deliveries by itself.)
    pub async fn recover(&self) -> anyhow::Result<()> {
        if let Some(store) = &self.embedded {
            let released = store.release_leases().await?;
            if released > 0 {
                tracing::info!(
                    released,
                    "jobs leased by a previous process returned to the queue"
                );
            }
        }
        Ok(())
    }
}

/// Opens the storage and queue backends; `migrate` applies pending schema migrations first.
pub async fn open_backends(config: &Config, migrate: bool) -> anyhow::Result<Backends> {
    match config.storage.backend {
        StorageBackend::Sqlite => {
            let path = config.sqlite_path();
            let store = Arc::new(
                SqliteStore::open(&path)
                    .with_context(|| format!("opening SQLite store {}", path.display()))?,
            );
            // The outbox lives in the same database, written in the delivery transaction.
            Ok(Backends {
                store: metered_store(store.clone(), "sqlite"),
                queue: metered_queue(store.clone(), "sqlite-jobs"),
                embedded: Some(store),
            })
        }
        // Config::load has checked that the queue backend fits the store.
        StorageBackend::Cassandra => {
            let store = CassandraStore::connect(&config.storage.cassandra)
                .await
                .context("connecting to Cassandra")?;
            if migrate {
                let applied = store.migrate().await.context("migrating Cassandra")?;
                tracing::info!(applied, "cassandra schema up to date");
            }
            let queue = Arc::new(
                AmqpQueue::connect(&config.queue.rabbitmq)
                    .await
                    .context("connecting to RabbitMQ")?,
            );
            Ok(Backends {
                store: metered_store(Arc::new(store), "cassandra"),
                queue: metered_queue(queue, "rabbitmq"),
                embedded: None,
            })
        }
    }
}

/// `store`, its operations timed and counted under the `backend` label.
fn metered_store(store: Arc<dyn Store>, backend: &'static str) -> Arc<dyn Store> {
    Arc::new(palisade_store::metered::Metered::new(store, backend))
}

/// `queue`, its operations timed and counted under the `backend` label.
fn metered_queue(queue: Arc<dyn JobQueue>, backend: &'static str) -> Arc<dyn JobQueue> {
    Arc::new(palisade_jobs::metered::Metered::new(queue, backend))
}

/// What `palisade-admin migrate` did.
#[derive(Debug, serde::Serialize)]
pub struct MigrateReport {
    /// `cassandra` or `sqlite`.
    pub backend: &'static str,
    /// Schema migrations applied by this run (SQLite applies its own on every open, so 0).
    pub applied: u32,
    /// Cassandra: what the data backfill into the current layout copied and recounted.
    pub backfill: Option<palisade_store::cassandra::BackfillReport>,
}

/// Applies pending schema migrations, then (Cassandra) backfills data kept in an older layout
/// into the current one; `progress` hears after each user. Idempotent: run it again after the
/// last old node of a rolling upgrade is gone, to pick up what that node wrote meanwhile.
pub async fn migrate(
    config: &Config,
    progress: &mut (dyn FnMut(&palisade_store::cassandra::BackfillReport, &str) + Send),
) -> anyhow::Result<MigrateReport> {
    match config.storage.backend {
        StorageBackend::Cassandra => {
            let store = CassandraStore::connect(&config.storage.cassandra)
                .await
                .context("connecting to Cassandra")?;
            let applied = store.migrate().await?;
            let backfill = store.backfill(progress).await?;
            Ok(MigrateReport {
                backend: "cassandra",
                applied,
                backfill: Some(backfill),
            })
        }
        StorageBackend::Sqlite => {
            // Opening the database applies its pending migrations, in one transaction.
            open_backends(config, true).await?;
            Ok(MigrateReport {
                backend: "sqlite",
                applied: 0,
                backfill: None,
            })
        }
    }
}

/// The search backend the configuration selects.
pub struct Index {
    /// The backend, for searching and indexing.
    pub index: Arc<dyn SearchIndex>,
    /// The Elasticsearch handle, when that is the backend (index setup and reindexing).
    pub elasticsearch: Option<Arc<ElasticsearchIndex>>,
}

impl Index {
    /// Creates what the backend needs before first use (the Elasticsearch index and alias).
    pub async fn prepare(&self) -> Result<(), IndexError> {
        match &self.elasticsearch {
            Some(es) => es.ensure_index().await,
            None => Ok(()),
        }
    }
}

/// Opens the search backend; `writer` is false for readers such as the admin CLI, which must
/// not take the daemon's tantivy write lock.
pub fn open_index(config: &Config, writer: bool) -> anyhow::Result<Index> {
    match config.index.backend {
        IndexBackend::Tantivy => {
            let dir = config.index_dir();
            let index = if writer {
                TantivyIndex::open(&dir)
            } else {
                TantivyIndex::open_read_only(&dir)
            }
            .with_context(|| format!("opening tantivy index {}", dir.display()))?;
            Ok(Index {
                index: Arc::new(palisade_index::metered::Metered::new(
                    Arc::new(index),
                    "tantivy",
                )),
                elasticsearch: None,
            })
        }
        IndexBackend::Elasticsearch => {
            let es = Arc::new(
                ElasticsearchIndex::connect(&config.index.elasticsearch)
                    .context("configuring Elasticsearch")?,
            );
            Ok(Index {
                index: Arc::new(palisade_index::metered::Metered::new(
                    es.clone(),
                    "elasticsearch",
                )),
                elasticsearch: Some(es),
            })
        }
    }
}

/// Opens the cache the configuration selects. Redis is connected in the background, so a
/// Redis outage never stops the daemon from starting; until it connects, calls fail cleanly.
pub fn open_cache(config: &Config) -> anyhow::Result<Arc<dyn Cache>> {
    let (cache, backend): (Arc<dyn Cache>, _) = match config.cache.backend {
        CacheBackend::Memory => (Arc::new(MemoryCache::new()), "memory"),
        CacheBackend::Redis => (
            Arc::new(LazyRedis::new(config.cache.redis_url.clone())),
            "redis",
        ),
    };
    let cache = if config.cache.prefix.is_empty() {
        cache
    } else {
        Arc::new(Namespaced::new(cache, config.cache.prefix.clone()))
    };
    Ok(Arc::new(palisade_cache::metered::Metered::new(
        cache, backend,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lmtp_budget_never_exceeds_an_eighth_of_memory_nor_falls_below_one_message() {
        const GIB: u64 = 1 << 30;
        assert_eq!(
            lmtp_budget(256 << 20, 50 << 20, Some(24 * GIB)),
            (256 << 20, false)
        );
        assert_eq!(
            lmtp_budget(64 << 30, 50 << 20, Some(24 * GIB)),
            (3 << 30, true)
        );
        assert_eq!(
            lmtp_budget(256 << 20, 50 << 20, Some(GIB)),
            (128 << 20, true)
        );
        assert_eq!(
            lmtp_budget(256 << 20, 200 << 20, Some(GIB)),
            (200 << 20, true)
        );
        assert_eq!(lmtp_budget(64 << 30, 50 << 20, None), (64 << 30, false));
        assert!(available_memory().is_some_and(|m| m > 0));
    }
}
