//! Wiring shared by the `lmtp-ingest` daemon and the `palisade-admin` CLI: configuration,
//! logging and backend selection. Nothing here knows the protocol or the schema.

use anyhow::{Context, bail};
use palisade_config::Config;
use palisade_index::SearchIndex;
use palisade_index::tantivy_backend::TantivyIndex;
use palisade_jobs::JobQueue;
use palisade_store::Store;
use palisade_store::sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

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
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The storage and job-queue backends the configuration selects.
pub struct Backends {
    /// Users and mail.
    pub store: Arc<dyn Store>,
    /// Follow-up jobs.
    pub queue: Arc<dyn JobQueue>,
}

/// Opens the storage and queue backends the configuration selects.
pub fn open_backends(config: &Config) -> anyhow::Result<Backends> {
    match config.storage.backend.as_str() {
        "sqlite" => {
            let path = config.sqlite_path();
            let store = Arc::new(
                SqliteStore::open(&path)
                    .with_context(|| format!("opening SQLite store {}", path.display()))?,
            );
            // Embedded: the outbox lives in the same database, written in the same transaction.
            Ok(Backends {
                store: store.clone(),
                queue: store,
            })
        }
        other => bail!("unknown storage backend {other:?} (expected \"sqlite\")"),
    }
}

/// Opens the search backend the configuration selects; `writer` is false for readers such as
/// the admin CLI, which must not take the daemon's write lock.
pub fn open_index(config: &Config, writer: bool) -> anyhow::Result<Arc<dyn SearchIndex>> {
    match config.index.backend.as_str() {
        "tantivy" => {
            let dir = config.index_dir();
            let index = if writer {
                TantivyIndex::open(&dir)
            } else {
                TantivyIndex::open_read_only(&dir)
            }
            .with_context(|| format!("opening tantivy index {}", dir.display()))?;
            Ok(Arc::new(index))
        }
        other => bail!("unknown index backend {other:?} (expected \"tantivy\")"),
    }
}
