//! Wiring shared by the `lmtp-ingest` daemon and the `palisade-admin` CLI: configuration,
//! logging and backend selection. Nothing here knows the protocol or the schema.

use anyhow::Context;
use async_trait::async_trait;
use palisade_cache::memory::MemoryCache;
use palisade_cache::namespaced::Namespaced;
use palisade_cache::redis::RedisCache;
use palisade_cache::{Cache, CacheError, RateDecision, Subscription};
use palisade_config::{CacheBackend, Config, IndexBackend, LogFormat, StorageBackend};
use palisade_index::elasticsearch::ElasticsearchIndex;
use palisade_index::tantivy_backend::TantivyIndex;
use palisade_index::{IndexError, SearchIndex};
use palisade_jobs::JobQueue;
use palisade_jobs::amqp::AmqpQueue;
use palisade_store::Store;
use palisade_store::cassandra::CassandraStore;
use palisade_store::sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

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
                store: store.clone(),
                queue: store.clone(),
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
            let queue: Arc<dyn JobQueue> = Arc::new(
                AmqpQueue::connect(&config.queue.rabbitmq)
                    .await
                    .context("connecting to RabbitMQ")?,
            );
            Ok(Backends {
                store: Arc::new(store),
                queue,
                embedded: None,
            })
        }
    }
}

/// Applies pending schema migrations; returns how many ran (SQLite migrates on open).
pub async fn migrate(config: &Config) -> anyhow::Result<u32> {
    match config.storage.backend {
        StorageBackend::Cassandra => {
            let store = CassandraStore::connect(&config.storage.cassandra)
                .await
                .context("connecting to Cassandra")?;
            Ok(store.migrate().await?)
        }
        StorageBackend::Sqlite => {
            open_backends(config, true).await?;
            Ok(0)
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
                index: Arc::new(index),
                elasticsearch: None,
            })
        }
        IndexBackend::Elasticsearch => {
            let es = Arc::new(
                ElasticsearchIndex::connect(&config.index.elasticsearch)
                    .context("configuring Elasticsearch")?,
            );
            Ok(Index {
                index: es.clone(),
                elasticsearch: Some(es),
            })
        }
    }
}

/// Opens the cache the configuration selects. Redis is connected in the background, so a
/// Redis outage never stops the daemon from starting; until it connects, calls fail cleanly.
pub fn open_cache(config: &Config) -> anyhow::Result<Arc<dyn Cache>> {
    let cache: Arc<dyn Cache> = match config.cache.backend {
        CacheBackend::Memory => Arc::new(MemoryCache::new()),
        CacheBackend::Redis => Arc::new(LazyRedis::new(config.cache.redis_url.clone())),
    };
    Ok(if config.cache.prefix.is_empty() {
        cache
    } else {
        Arc::new(Namespaced::new(cache, config.cache.prefix.clone()))
    })
}

/// A Redis cache that connects on first use and retries on later calls until it succeeds.
struct LazyRedis {
    url: String,
    cache: OnceCell<RedisCache>,
}

/// How long one connection attempt may take on a caller's path.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl LazyRedis {
    fn new(url: String) -> Self {
        LazyRedis {
            url,
            cache: OnceCell::new(),
        }
    }

    async fn connected(&self) -> Result<&RedisCache, CacheError> {
        self.cache
            .get_or_try_init(|| async {
                tokio::time::timeout(REDIS_CONNECT_TIMEOUT, RedisCache::connect(&self.url))
                    .await
                    .map_err(|_| CacheError::Unavailable("redis connect timed out".into()))?
            })
            .await
    }
}

#[async_trait]
impl Cache for LazyRedis {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.connected().await?.put(key, value, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.connected().await?.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.connected().await?.delete(key).await
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
        self.connected().await?.keys_with_prefix(prefix).await
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        self.connected().await?.set_add(key, member, ttl).await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        self.connected().await?.set_members(key).await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError> {
        self.connected().await?.set_remove(key, member).await
    }

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CacheError> {
        self.connected().await?.hit(key, limit, window).await
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError> {
        self.connected().await?.publish(channel, payload).await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        self.connected().await?.subscribe(channel).await
    }
}
