//! Palisade's configuration: a TOML file with `PALISADE_SECTION__KEY` environment overrides.
//!
//! Every field has a default, so an empty file (or none at all) gives a working embedded
//! system; sysadmins only write what they change.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
pub use palisade_model::{Relay, TrustBoundary};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// The whole configuration of a Palisade node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// What this node does: any of `lmtp`, `api` and `worker` (default all three).
    pub roles: Vec<Role>,
    /// Where embedded backends keep their files.
    pub data_dir: PathBuf,
    /// The LMTP listener.
    pub lmtp: LmtpConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Outgoing mail: where sent messages are handed over.
    pub submission: SubmissionConfig,
    /// Which storage backend to use.
    pub storage: StorageConfig,
    /// Which search backend to use.
    pub index: IndexConfig,
    /// Which job-queue backend to use.
    pub queue: QueueConfig,
    /// Which cache (sessions, rate limits, pub/sub) to use.
    pub cache: CacheConfig,
    /// Background job processing.
    pub jobs: JobsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The admin listener: health checks and metrics.
    pub admin: AdminConfig,
    /// Whose headers the privacy index believes: our MTA's authserv-id and our relays.
    pub privacy: TrustBoundary,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            roles: Role::ALL.to_vec(),
            data_dir: PathBuf::from("data"),
            lmtp: LmtpConfig::default(),
            api: ApiConfig::default(),
            submission: SubmissionConfig::default(),
            storage: StorageConfig::default(),
            index: IndexConfig::default(),
            queue: QueueConfig::default(),
            cache: CacheConfig::default(),
            jobs: JobsConfig::default(),
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            privacy: TrustBoundary::default(),
        }
    }
}

impl Config {
    /// Whether this node runs `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Loads defaults, then the TOML file if given, then `PALISADE_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("PALISADE_").split("__"));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.roles.is_empty() {
            return Err(ConfigError(
                "roles is empty: a node must run at least one of \"lmtp\", \"api\", \"worker\""
                    .into(),
            ));
        }
        let l = &self.lmtp;
        if l.max_message_bytes == 0 || l.max_recipients == 0 || l.max_connections == 0 {
            return Err(ConfigError(
                "lmtp limits (max_message_bytes, max_recipients, max_connections) must be > 0"
                    .into(),
            ));
        }
        if l.max_in_flight_bytes < l.max_message_bytes {
            return Err(ConfigError(
                "lmtp.max_in_flight_bytes must be at least lmtp.max_message_bytes, or the \
                 largest message could never be accepted"
                    .into(),
            ));
        }
        match (self.storage.backend, self.queue.backend) {
            (StorageBackend::Sqlite, QueueBackend::Embedded)
            | (StorageBackend::Cassandra, QueueBackend::Rabbitmq) => {}
            (storage, queue) => {
                return Err(ConfigError(format!(
                    "storage.backend = {} cannot run with queue.backend = {}: \
                     use sqlite with embedded (the outbox is in the database), or cassandra \
                     with rabbitmq",
                    format!("{storage:?}").to_lowercase(),
                    format!("{queue:?}").to_lowercase(),
                )));
            }
        }
        let a = &self.api;
        if a.proxy_protocol.enabled && a.proxy_protocol.trusted.is_empty() {
            return Err(ConfigError(
                "api.proxy_protocol.enabled needs at least one trusted network".into(),
            ));
        }
        if a.max_body_bytes == 0 || a.session_ttl_minutes == 0 || a.max_draft_attachment_bytes == 0
        {
            return Err(ConfigError(
                "api.max_body_bytes, api.max_draft_attachment_bytes and api.session_ttl_minutes \
                 must be > 0"
                    .into(),
            ));
        }
        if a.messages_sent_per_hour == 0 || a.max_event_streams_per_user == 0 {
            return Err(ConfigError(
                "api.messages_sent_per_hour and api.max_event_streams_per_user must be > 0".into(),
            ));
        }
        let r = &a.remote;
        if r.max_image_bytes == 0 || r.timeout_secs == 0 || r.link_ttl_secs == 0 {
            return Err(ConfigError(
                "api.remote.max_image_bytes, timeout_secs and link_ttl_secs must be > 0".into(),
            ));
        }
        if r.secret.as_ref().is_some_and(|s| s.expose().len() < 16) {
            return Err(ConfigError(
                "api.remote.secret must be at least 16 characters".into(),
            ));
        }
        if l.proxy_protocol.enabled && l.proxy_protocol.trusted.is_empty() {
            return Err(ConfigError(
                "lmtp.proxy_protocol.enabled needs at least one trusted network".into(),
            ));
        }
        Ok(())
    }

    /// Path of the embedded SQLite database.
    pub fn sqlite_path(&self) -> PathBuf {
        self.storage
            .sqlite_path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("palisade.sqlite3"))
    }

    /// Directory of the embedded tantivy index.
    pub fn index_dir(&self) -> PathBuf {
        self.index
            .tantivy_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("index"))
    }
}

/// One part of the daemon's work; a node runs any non-empty subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Accepts mail on the LMTP listener.
    Lmtp,
    /// Serves the HTTP API (and the web client) on the API listener.
    Api,
    /// Consumes follow-up jobs (indexing) from the queue.
    Worker,
}

impl Role {
    /// Every role, the default of a node.
    pub const ALL: [Role; 3] = [Role::Lmtp, Role::Api, Role::Worker];

    /// The role's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Role::Lmtp => "lmtp",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }
}

/// The admin listener, apart from the mail and API listeners so that it can stay private.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// Address serving `/healthz`, `/readyz` and `/metrics`; no listener when unset.
    pub listen: Option<SocketAddr>,
    /// Seconds `/readyz` fails after SIGTERM before the listeners close, so a load balancer
    /// stops sending new work first.
    pub drain_secs: u64,
    /// Seconds each backend gets to answer a readiness check.
    pub check_timeout_secs: u64,
    /// Seconds between samples of the index lag (stored minus indexed, over every user) on
    /// nodes that search or index; 0 turns sampling off, e.g. on all nodes but one.
    pub index_lag_interval_secs: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: None,
            drain_secs: 5,
            check_timeout_secs: 2,
            index_lag_interval_secs: 30,
        }
    }
}

/// The LMTP listener and its limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LmtpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Name announced in the greeting and LHLO reply.
    pub hostname: String,
    /// Largest message accepted, in bytes (announced as SIZE).
    pub max_message_bytes: usize,
    /// Most recipients in one transaction.
    pub max_recipients: usize,
    /// Largest header section accepted, in bytes.
    pub max_header_bytes: usize,
    /// Deepest MIME nesting that is parsed.
    pub max_mime_depth: usize,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Message bytes all connections together may hold in memory; a transaction past it gets
    /// a temporary 452, so the client retries later instead of the daemon running out of
    /// memory. Peak memory is a small multiple of this (parsing, storage requests).
    pub max_in_flight_bytes: usize,
    /// Bytes of one message kept in memory while it arrives; the rest goes to an unnamed
    /// temporary file under `<data_dir>/spool`, and large messages are then parsed and stored
    /// a few at a time within half of `max_in_flight_bytes`. 0 keeps every message in memory.
    pub spill_threshold_bytes: usize,
    /// Seconds a client may stay silent before it is disconnected.
    pub idle_timeout_secs: u64,
    /// Seconds in-flight sessions get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// PROXY protocol v2 on this listener.
    pub proxy_protocol: ProxyProtocolConfig,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2424)),
            hostname: "palisade.localhost".into(),
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 100,
            max_header_bytes: 256 * 1024,
            max_mime_depth: 20,
            max_connections: 256,
            max_in_flight_bytes: 256 * 1024 * 1024,
            spill_threshold_bytes: 1024 * 1024,
            idle_timeout_secs: 300,
            shutdown_grace_secs: 30,
            proxy_protocol: ProxyProtocolConfig::default(),
        }
    }
}

/// The HTTP API listener and its policies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    /// Serve the API from this node; it also needs the `api` role (see [`Config::roles`]),
    /// which is how distributed deployments choose their API nodes.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most bytes of files one draft may carry, all its attachments together.
    pub max_draft_attachment_bytes: u64,
    /// Largest mailbox upload (`POST /me/import`: the whole request, mbox and metadata), in
    /// bytes. It is spooled to a temporary file under `<data_dir>/spool`, never to memory, so
    /// this bounds the disk an import takes while it runs.
    pub max_import_bytes: u64,
    /// How long a session lives without use.
    pub session_ttl_minutes: u64,
    /// Login attempts allowed per client address per 15 minutes.
    pub login_attempts_per_address: u32,
    /// Failed logins allowed per account per 15 minutes from addresses that never signed in
    /// to it (then they wait); each address that did has a budget of its own.
    pub login_attempts_per_account: u32,
    /// Messages a user may send per hour (then 429 with `Retry-After`); a relay is not a
    /// spam cannon for a stolen session.
    pub messages_sent_per_hour: u32,
    /// Live event streams (`GET /events`) one user may hold open on one node at once.
    pub max_event_streams_per_user: u32,
    /// Directory of the built web client, served at `/` when it exists.
    pub static_dir: Option<PathBuf>,
    /// PROXY protocol v2 in front of the API (HAProxy `send-proxy-v2`).
    pub proxy_protocol: ProxyProtocolConfig,
    /// Remote content in mail: the image proxy and the tracker list (`[api.remote]`).
    pub remote: RemoteConfig,
}

/// Remote content in mail: how the image proxy fetches and signs, and where the list of
/// tracking hosts is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteConfig {
    /// Secret the image links are signed with; every API node of a deployment needs the same
    /// one (prefer `PALISADE_API__REMOTE__SECRET`). Unset: a random key per process, which
    /// only suits a single API node, and links stop working when it restarts.
    pub secret: Option<Secret>,
    /// Largest remote image passed on, in bytes.
    pub max_image_bytes: u64,
    /// Seconds one image fetch may take, redirects included.
    pub timeout_secs: u64,
    /// Seconds an image link stays valid at least (rounded up to the hour).
    pub link_ttl_secs: u64,
    /// FOR TESTS ONLY: private networks the proxy may reach (a local test server). Empty in
    /// every real deployment, where it would let mail probe the internal network.
    pub allow_private: Vec<IpNet>,
    /// The tracking-host list generated by `devtools/tracker-hosts`; unset, only pixels and
    /// hidden images are marked as trackers.
    pub tracker_hosts: Option<PathBuf>,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            secret: None,
            max_image_bytes: 5 * 1024 * 1024,
            timeout_secs: 10,
            link_ttl_secs: 24 * 3600,
            allow_private: Vec::new(),
            tracker_hosts: None,
        }
    }
}

/// A secret from the configuration: never printed, whatever logs the configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 25 * 1024 * 1024,
            max_draft_attachment_bytes: 20 * 1024 * 1024,
            max_import_bytes: 1024 * 1024 * 1024,
            session_ttl_minutes: 12 * 60,
            login_attempts_per_address: 30,
            login_attempts_per_account: 10,
            messages_sent_per_hour: 100,
            max_event_streams_per_user: 5,
            static_dir: None,
            proxy_protocol: ProxyProtocolConfig::default(),
            remote: RemoteConfig::default(),
        }
    }
}

/// How sent mail leaves: SMTP submission to a relay (Postfix), which does the delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SubmissionConfig {
    /// Relay host name or address.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// `none` (local relay), `starttls` or `tls`.
    pub tls: SubmissionTls,
    /// User name for SMTP AUTH, if the relay wants it.
    pub username: Option<String>,
    /// Password for SMTP AUTH; prefer `PALISADE_SUBMISSION__PASSWORD` over the file.
    pub password: Option<String>,
    /// Domain used in generated Message-IDs.
    pub message_id_domain: String,
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        SubmissionConfig {
            host: "127.0.0.1".into(),
            port: 25,
            tls: SubmissionTls::None,
            username: None,
            password: None,
            message_id_domain: "palisade.localhost".into(),
        }
    }
}

/// Transport security towards the submission relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionTls {
    /// Plain SMTP, for a relay on the same host or a trusted network.
    None,
    /// STARTTLS, required.
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

/// PROXY protocol v2 settings of a listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyProtocolConfig {
    /// When true, every connection must come from a trusted network and start with a v2 header.
    pub enabled: bool,
    /// Networks of the proxies allowed to send the header.
    pub trusted: Vec<IpNet>,
}

/// Where users and mail are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// SQLite in the data directory: one machine, no external service.
    #[default]
    Sqlite,
    /// A Cassandra cluster.
    Cassandra,
}

/// Where mail is indexed for search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexBackend {
    /// A tantivy index in the data directory.
    #[default]
    Tantivy,
    /// An Elasticsearch cluster.
    Elasticsearch,
}

/// Where follow-up jobs wait for workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueBackend {
    /// The embedded store's own outbox, written in the delivery transaction.
    #[default]
    Embedded,
    /// RabbitMQ.
    Rabbitmq,
}

/// Where sessions, rate limits and live events live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// In the process: one node only.
    #[default]
    Memory,
    /// Redis, shared by every node.
    Redis,
}

/// How much of a Cassandra cluster must answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Any one replica; development only.
    One,
    /// One replica in the local datacenter.
    LocalOne,
    /// A majority of all replicas.
    Quorum,
    /// A majority of the local datacenter's replicas.
    #[default]
    LocalQuorum,
    /// A majority in every datacenter.
    EachQuorum,
    /// Every replica.
    All,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line, for collectors.
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Storage backend selection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `sqlite` (embedded) or `cassandra`.
    pub backend: StorageBackend,
    /// Overrides `<data_dir>/palisade.sqlite3`.
    pub sqlite_path: Option<PathBuf>,
    /// Cassandra settings, used when `backend = "cassandra"`.
    pub cassandra: CassandraConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Sqlite,
            sqlite_path: None,
            cassandra: CassandraConfig::default(),
        }
    }
}

/// Cassandra connection and schema settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CassandraConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Keyspace holding every table.
    pub keyspace: String,
    /// Replication factor used when the keyspace is created (SimpleStrategy).
    pub replication_factor: u32,
    /// `local_quorum` (default), `quorum`, `each_quorum`, `one`, `local_one` or `all`.
    pub consistency: Consistency,
    /// Raw messages are split into rows of at most this many bytes.
    pub raw_chunk_bytes: usize,
    /// Per-request timeout in seconds; past it the request counts as failed.
    pub request_timeout_secs: u64,
}

impl Default for CassandraConfig {
    fn default() -> Self {
        CassandraConfig {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "palisade".into(),
            replication_factor: 1,
            consistency: Consistency::LocalQuorum,
            raw_chunk_bytes: 512 * 1024,
            request_timeout_secs: 10,
        }
    }
}

/// Search backend selection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexConfig {
    /// `tantivy` (embedded) or `elasticsearch`.
    pub backend: IndexBackend,
    /// Overrides `<data_dir>/index`.
    pub tantivy_dir: Option<PathBuf>,
    /// Elasticsearch settings, used when `backend = "elasticsearch"`.
    pub elasticsearch: ElasticsearchConfig,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            backend: IndexBackend::Tantivy,
            tantivy_dir: None,
            elasticsearch: ElasticsearchConfig::default(),
        }
    }
}

/// Elasticsearch connection and index settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ElasticsearchConfig {
    /// Base URL of the cluster.
    pub url: String,
    /// Alias every read and write goes through; the versioned index sits behind it.
    pub alias: String,
    /// Primary shards of a newly created index.
    pub shards: u32,
    /// Replicas of a newly created index (0 on a single node).
    pub replicas: u32,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            url: "http://127.0.0.1:9200".into(),
            alias: "palisade-messages".into(),
            shards: 1,
            replicas: 0,
        }
    }
}

/// Job-queue backend selection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    /// `embedded` (the store's own outbox) or `rabbitmq`.
    pub backend: QueueBackend,
    /// RabbitMQ settings, used when `backend = "rabbitmq"`.
    pub rabbitmq: RabbitMqConfig,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            backend: QueueBackend::Embedded,
            rabbitmq: RabbitMqConfig::default(),
        }
    }
}

/// RabbitMQ connection and topology settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RabbitMqConfig {
    /// AMQP URL.
    pub url: String,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Unacknowledged deliveries a consumer may hold: enough for the worker's batches waiting
    /// on the index at once (four of `jobs.batch_size`).
    pub prefetch: u16,
}

impl Default for RabbitMqConfig {
    fn default() -> Self {
        RabbitMqConfig {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "palisade".into(),
            prefetch: 1024,
        }
    }
}

/// Cache backend selection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// `memory` (in-process) or `redis`.
    pub backend: CacheBackend,
    /// Redis URL, used when `backend = "redis"`.
    pub redis_url: String,
    /// Prepended to every key and channel, so installations can share one Redis.
    pub prefix: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            backend: CacheBackend::Memory,
            redis_url: "redis://127.0.0.1:6379/".into(),
            prefix: String::new(),
        }
    }
}

/// Background job processing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsConfig {
    /// Attempts before a job goes to the dead-letter state.
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles on each attempt.
    pub initial_backoff_ms: u64,
    /// Upper bound of the retry delay in milliseconds.
    pub max_backoff_ms: u64,
    /// Jobs handled per batch.
    pub batch_size: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_attempts: 10,
            initial_backoff_ms: 500,
            max_backoff_ms: 5 * 60 * 1000,
            batch_size: 256,
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `json` or `text`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `palisade_lmtp=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

#[cfg(test)]
// figment::Jail's closure signature is figment's, not ours to slim down.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn file_then_environment_override_defaults() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(
            file,
            "data_dir = \"/tmp/x\"\n[lmtp]\nmax_recipients = 7\nlisten = \"127.0.0.1:1\""
        )
        .expect("write");
        figment::Jail::expect_with(|jail| {
            jail.set_env("PALISADE_LMTP__LISTEN", "127.0.0.1:2525");
            let c = Config::load(Some(file.path())).expect("load");
            assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
            assert_eq!(c.lmtp.max_recipients, 7);
            assert_eq!(c.lmtp.listen.port(), 2525);
            assert_eq!(c.lmtp.idle_timeout_secs, 300);
            Ok(())
        });
    }

    #[test]
    fn missing_file_and_bad_values_are_errors() {
        assert!(Config::load(Some(Path::new("/nonexistent/palisade.toml"))).is_err());
        figment::Jail::expect_with(|jail| {
            jail.set_env("PALISADE_LMTP__MAX_RECIPIENTS", "0");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_backend_fails_at_load_not_at_first_use() {
        for (file, wanted) in [
            ("[storage]\nbackend = \"casandra\"\n", "casandra"),
            ("[index]\nbackend = \"elastic\"\n", "elastic"),
            ("[cache]\nbackend = \"redis \"\n", "redis "),
            ("[storage.cassandra]\nconsistency = \"most\"\n", "most"),
            ("[log]\nformat = \"yaml\"\n", "yaml"),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.create_file("palisade.toml", file)?;
                let err = Config::load(Some(Path::new("palisade.toml")))
                    .expect_err("a typo must not load");
                assert!(err.to_string().contains(wanted), "{err}");
                Ok(())
            });
        }
    }

    #[test]
    fn the_privacy_trust_boundary_loads_and_a_bad_relay_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "palisade.toml",
                "[privacy]\nauthserv_id = \"mx.example.test\"\n\
                 internal_relays = [\"MX.example.test\", \"10.0.0.0/8\", \"192.0.2.7\"]\n",
            )?;
            let c = Config::load(Some(Path::new("palisade.toml"))).expect("load");
            assert_eq!(c.privacy.authserv_id.as_deref(), Some("mx.example.test"));
            let relays: Vec<String> = c
                .privacy
                .internal_relays
                .iter()
                .map(|r| r.to_string())
                .collect();
            assert_eq!(relays, ["mx.example.test", "10.0.0.0/8", "192.0.2.7"]);
            jail.create_file(
                "bad.toml",
                "[privacy]\ninternal_relays = [\"10.0.0.0/40\"]\n",
            )?;
            let err = Config::load(Some(Path::new("bad.toml"))).expect_err("a bad network");
            assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
            Ok(())
        });
        assert_eq!(Config::default().privacy, TrustBoundary::default());
    }

    #[test]
    fn a_store_and_queue_that_cannot_work_together_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "palisade.toml",
                "[storage]\nbackend = \"cassandra\"\n[queue]\nbackend = \"embedded\"\n",
            )?;
            let err = Config::load(Some(Path::new("palisade.toml"))).expect_err("mismatch");
            assert!(err.to_string().contains("cassandra with rabbitmq"), "{err}");
            jail.create_file(
                "palisade.toml",
                "[storage]\nbackend = \"cassandra\"\n[queue]\nbackend = \"rabbitmq\"\n",
            )?;
            let config = Config::load(Some(Path::new("palisade.toml"))).expect("a valid pair");
            assert_eq!(config.storage.backend, StorageBackend::Cassandra);
            Ok(())
        });
    }

    #[test]
    fn roles_default_to_all_and_parse_from_the_file() {
        figment::Jail::expect_with(|jail| {
            // Inside the jail: other tests set PALISADE_* variables in parallel.
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.roles, Role::ALL.to_vec());
            assert!(config.admin.listen.is_none());
            jail.create_file(
                "palisade.toml",
                "roles = [\"lmtp\", \"worker\"]\n[admin]\nlisten = \"127.0.0.1:9100\"\n",
            )?;
            let config =
                Config::load(Some(Path::new("palisade.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.roles, vec![Role::Lmtp, Role::Worker]);
            assert!(config.has_role(Role::Worker) && !config.has_role(Role::Api));
            assert_eq!(config.admin.listen.map(|a| a.port()), Some(9100));
            Ok(())
        });
    }

    #[test]
    fn empty_or_unknown_roles_are_refused_with_a_clear_message() {
        for (file, wanted) in [
            ("roles = []\n", "roles is empty"),
            ("roles = [\"lmtp\", \"indexer\"]\n", "indexer"),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.create_file("palisade.toml", file)?;
                let err = Config::load(Some(Path::new("palisade.toml")))
                    .expect_err("bad roles must not load");
                assert!(err.to_string().contains(wanted), "{err}");
                Ok(())
            });
        }
    }

    #[test]
    fn send_and_stream_limits_default_and_must_be_positive() {
        let api = ApiConfig::default();
        assert_eq!(
            (api.messages_sent_per_hour, api.max_event_streams_per_user),
            (100, 5)
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("PALISADE_API__MESSAGES_SENT_PER_HOUR", "7");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.api.messages_sent_per_hour, 7);
            jail.set_env("PALISADE_API__MAX_EVENT_STREAMS_PER_USER", "0");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }
}
