//! `palisade-admin`: user management, mailbox inspection, export and job control.
//!
//! Every command prints JSON on stdout so scripts and tests can read it; errors go to
//! stderr with a non-zero exit.

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use lmtp_ingest::{ConfigArg, open_backends, open_cache, open_index};
use palisade_index::IndexDocument;
use palisade_index::SearchQuery;
use palisade_ingest::{Pipeline, ReparseReport};
use palisade_model::{Address, MessageId, MessageSummary, User, UserId};
use palisade_store::{Page, Store};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

/// Page size used when walking a whole mailbox.
const WALK_PAGE: usize = 500;

/// Administer a Palisade node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// List a user's messages.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Inspect one message.
    #[command(subcommand)]
    Message(MessageCommand),
    /// Write a user's whole mailbox to a directory: `mailbox.mbox` (mboxrd, for any mail
    /// client) and `metadata.json` (flags, tags, discussions, envelopes, tags and contacts),
    /// which `import` reads back; also each message raw (`messages/<id>.eml`) and parsed
    /// (`messages.json`). Streams: memory holds one page of messages.
    Export {
        /// User name or address.
        #[arg(long)]
        user: String,
        /// Target directory; created if missing.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Delete an account for good: its sessions, search documents, addresses (which then
    /// refuse mail), mail, discussions, tags, contacts, drafts and queued jobs, and the user
    /// last. Prints a JSON summary. A deletion cut short is finished by running it again,
    /// with the user's id once the name no longer resolves. With the embedded backends the
    /// daemon holds the search index, so stop it first (or delete through the API).
    DeleteUser {
        /// User name, address, or id.
        user: String,
    },
    /// Search a user's mail.
    Search(SearchArgs),
    /// Inspect and replay background jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Apply pending storage schema migrations, then (Cassandra) copy data kept in an older
    /// layout into the current one and recount each user's messages. Idempotent; progress on
    /// stderr, a JSON summary on stdout. SQLite migrates whenever it opens, so there it only
    /// opens the database.
    Migrate,
    /// Maintain the search index.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Parse stored mail again from its raw bytes (after upgrading Palisade's parser) and
    /// replace the parsed views and search documents that differ; raw bytes and threading
    /// stay. Prints counts before and after as JSON, progress on stderr.
    Reparse {
        /// Only this user (name or address); all users when absent.
        #[arg(long)]
        user: Option<String>,
    },
    /// Import an mbox file or a Maildir into a user's mailbox, through the same delivery path
    /// as LMTP: idempotent (importing twice stores nothing twice), threaded, indexed and
    /// scored. Messages that cannot be parsed are stored raw and listed; messages over the
    /// LMTP size limit are skipped and listed. Progress on stderr, a JSON report on stdout.
    Import {
        /// User name or address.
        #[arg(long)]
        user: String,
        /// An mbox file, a Maildir (a directory holding cur/ and new/), or a directory
        /// written by `export` (its mailbox.mbox and metadata.json).
        path: PathBuf,
        /// The metadata.json of a Palisade export, to restore flags, tags and envelopes.
        #[arg(long)]
        metadata: Option<PathBuf>,
        /// How `From ` lines inside the mbox's messages were escaped.
        #[arg(long, value_enum, default_value_t = MboxFormat::Mboxrd)]
        mbox_format: MboxFormat,
    },
    /// Print the API's OpenAPI document as the daemon serves it (the web client's types are
    /// generated from it).
    Openapi,
    /// Print Palisade's parse of a mail file, or of every file under a directory (sorted), as
    /// one JSON line each; needs no configuration or backend.
    Parse {
        /// A message file, or a directory walked recursively.
        path: PathBuf,
    },
}

/// mbox escaping conventions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MboxFormat {
    /// Every `>*From ` line escaped (exact).
    Mboxrd,
    /// Only `From ` lines escaped.
    Mboxo,
}

#[derive(Debug, Subcommand)]
enum IndexCommand {
    /// Rebuild the index from the store (Elasticsearch: into a new version, then swap the alias).
    Reindex,
    /// How far the index has caught up with a user's stored mail.
    Status {
        /// User name or address.
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user owning one or more addresses.
    Add {
        /// Login name.
        name: String,
        /// Address delivering to this user (repeatable).
        #[arg(long = "address", required = true)]
        addresses: Vec<String>,
        /// Read a password from standard input and store its argon2id hash.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
enum MessagesCommand {
    /// All of a user's messages, newest first.
    List {
        /// User name or address.
        #[arg(long)]
        user: String,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum MessageCommand {
    /// The parsed message as JSON.
    Show {
        /// User name or address.
        #[arg(long)]
        user: String,
        /// Message id.
        id: MessageId,
    },
    /// The exact raw bytes.
    Raw {
        /// User name or address.
        #[arg(long)]
        user: String,
        /// Message id.
        id: MessageId,
    },
}

#[derive(Debug, clap::Args)]
struct SearchArgs {
    /// User name or address.
    #[arg(long)]
    user: String,
    /// Sender contains.
    #[arg(long)]
    from: Option<String>,
    /// Recipient contains.
    #[arg(long)]
    to: Option<String>,
    /// Subject contains.
    #[arg(long)]
    subject: Option<String>,
    /// Only messages dated after this RFC 3339 time.
    #[arg(long)]
    after: Option<DateTime<Utc>>,
    /// Only messages dated before this RFC 3339 time.
    #[arg(long)]
    before: Option<DateTime<Utc>>,
    /// Only messages with (true) or without (false) attachments.
    #[arg(long)]
    has_attachment: Option<bool>,
    /// Only messages with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Most hits.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Free text.
    text: Option<String>,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Job counts by state.
    Status,
    /// Move dead-lettered jobs back to the queue.
    Replay,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        return write_stdout(palisade_api::served_document().as_bytes());
    }
    if let Command::Parse { path } = &cli.command {
        return parse(path);
    }
    let config = cli.config.load()?;
    if let Command::Migrate = cli.command {
        let report = lmtp_ingest::migrate(&config, &mut |so_far, user| {
            eprintln!(
                "migrate: {user} done; so far {} users, {} messages, {} discussions listed",
                so_far.users, so_far.messages, so_far.discussions
            );
        })
        .await?;
        return print_json(&serde_json::to_value(report)?);
    }
    let backends = open_backends(&config, false).await?;
    let store = backends.store;
    let out = match cli.command {
        Command::User(UserCommand::Add {
            name,
            addresses,
            password_stdin,
        }) => {
            let addresses = addresses
                .iter()
                .map(|a| Address::parse(a).map_err(|e| anyhow!("{a}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let hash = if password_stdin {
                Some(hash_password(&read_password()?)?)
            } else {
                None
            };
            serde_json::to_value(store.create_user(&name, &addresses, hash).await?)?
        }
        Command::User(UserCommand::List) => serde_json::to_value(store.list_users().await?)?,
        Command::Messages(MessagesCommand::List { user, limit }) => {
            let user = find_user(store.as_ref(), &user).await?;
            let mut all = Vec::new();
            let mut pages = Pages::new(store.as_ref(), user.id);
            while let Some(items) = pages.next().await? {
                all.extend(items);
                if limit.is_some_and(|l| all.len() >= l) {
                    break;
                }
            }
            if let Some(limit) = limit {
                all.truncate(limit);
            }
            serde_json::to_value(all)?
        }
        Command::Message(MessageCommand::Show { user, id }) => {
            let user = find_user(store.as_ref(), &user).await?;
            let message = store
                .get_message(user.id, id)
                .await?
                .ok_or_else(|| anyhow!("no message {id} for user {}", user.name))?;
            serde_json::to_value(message)?
        }
        Command::Message(MessageCommand::Raw { user, id }) => {
            let user = find_user(store.as_ref(), &user).await?;
            let raw = store
                .get_raw(user.id, id)
                .await?
                .ok_or_else(|| anyhow!("no message {id} for user {}", user.name))?;
            return write_stdout(&raw);
        }
        Command::Export { user, dir } => export(store.as_ref(), &user, dir).await?,
        Command::DeleteUser { user } => delete_user(&config, store.as_ref(), &user).await?,
        Command::Search(args) => search(&config, store.as_ref(), args).await?,
        Command::Jobs(JobsCommand::Status) => serde_json::to_value(backends.queue.stats().await?)?,
        Command::Jobs(JobsCommand::Replay) => {
            serde_json::json!({ "replayed": backends.queue.replay_dead().await? })
        }
        Command::Import {
            user,
            path,
            metadata,
            mbox_format,
        } => {
            let user = find_user(store.as_ref(), &user).await?;
            let (path, metadata) = if path.join("metadata.json").is_file() {
                (path.join("mailbox.mbox"), Some(path.join("metadata.json")))
            } else {
                (path, metadata)
            };
            let source = ImportSource {
                path: &path,
                metadata: metadata.as_deref(),
                format: mbox_format,
            };
            import(&config, store.clone(), backends.queue, &user, source).await?
        }
        Command::Reparse { user } => {
            reparse(&config, store.clone(), backends.queue, user.as_deref()).await?
        }
        Command::Index(IndexCommand::Reindex) => reindex(&config, store.as_ref()).await?,
        Command::Index(IndexCommand::Status { user }) => {
            let user = find_user(store.as_ref(), &user).await?;
            let stored = store.count_messages(user.id).await?;
            let indexed = open_index(&config, false)?.index.count(user.id).await?;
            serde_json::json!({ "stored": stored, "indexed": indexed, "caught_up": indexed >= stored })
        }
        Command::Migrate => serde_json::json!({ "applied": 0 }),
        Command::Openapi => return write_stdout(palisade_api::served_document().as_bytes()),
        Command::Parse { path } => return parse(&path),
    };
    print_json(&out)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    write_stdout(&text)
}

/// Rebuilds the index from the store, reporting progress on stderr.
/// Runs the account deletion the API runs, with this node's index and cache.
async fn delete_user(
    config: &palisade_config::Config,
    store: &dyn Store,
    who: &str,
) -> anyhow::Result<serde_json::Value> {
    let user = match store.find_user(who).await? {
        Some(user) => user,
        // A deletion that stopped after the user row went: finish it by id.
        None => match who.parse::<UserId>() {
            Ok(id) => store.get_user(id).await?.unwrap_or(User {
                id,
                name: String::new(),
                created_at: Utc::now(),
                addresses: Vec::new(),
            }),
            Err(_) => bail!("no user {who}"),
        },
    };
    let index = open_index(config, true).context(
        "the search index must be writable to delete a user's documents; with the embedded \
         backends stop the daemon first, or delete the account through the API",
    )?;
    let cache = open_cache(config)?;
    let ttl = std::time::Duration::from_secs(config.api.session_ttl_minutes.saturating_mul(60));
    let sessions = palisade_api::sessions::Sessions::new(cache.clone(), ttl);
    let report = palisade_api::deletion::delete_account(
        store,
        index.index.as_ref(),
        cache.as_ref(),
        &sessions,
        &user,
    )
    .await?;
    Ok(serde_json::to_value(report)?)
}

async fn reindex(
    config: &palisade_config::Config,
    store: &dyn Store,
) -> anyhow::Result<serde_json::Value> {
    let index = open_index(config, true)?;
    index.prepare().await?;
    let target = match &index.elasticsearch {
        Some(es) => Some(es.begin_reindex().await?),
        None => None,
    };
    let mut total = 0usize;
    for user in store.list_users().await? {
        let mut pages = Pages::new(store, user.id);
        while let Some(items) = pages.next().await? {
            let mut docs = Vec::with_capacity(items.len());
            for summary in &items {
                if let Some(message) = store.get_message(user.id, summary.id).await? {
                    docs.push(IndexDocument::from_message(&message));
                }
            }
            total += docs.len();
            match (&index.elasticsearch, &target) {
                (Some(es), Some(name)) => es.index_into(name, docs).await?,
                _ => index.index.index(docs).await?,
            }
            eprintln!("reindex: {total} messages ({})", user.name);
        }
    }
    if let (Some(es), Some(name)) = (&index.elasticsearch, &target) {
        es.finish_reindex(name).await?;
    }
    Ok(serde_json::json!({ "reindexed": total, "index": target }))
}

/// Messages between two progress lines of a reparse.
const REPARSE_PROGRESS_EVERY: u64 = 500;

/// Reparses one user's mailbox or everyone's, through the delivery pipeline's parser; the
/// changed messages are queued for the daemon's index workers.
async fn reparse(
    config: &palisade_config::Config,
    store: Arc<dyn Store>,
    queue: Arc<dyn palisade_jobs::JobQueue>,
    user: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let users = match user {
        Some(key) => vec![find_user(store.as_ref(), key).await?],
        None => store.list_users().await?,
    };
    let pipeline = Pipeline::new(
        store,
        queue,
        lmtp_ingest::parse_limits(config),
        Arc::new(Notify::new()),
    );
    let mut report = ReparseReport::default();
    for user in users {
        let name = user.name.clone();
        pipeline
            .reparse_mailbox(user.id, &mut report, REPARSE_PROGRESS_EVERY, &mut |p| {
                let r = p.report;
                let state = if p.user_done { "done" } else { "working" };
                eprintln!(
                    "reparse: {name} {state}; so far {} messages, {} changed, {} missing raw",
                    r.messages, r.changed, r.missing_raw
                );
            })
            .await?;
    }
    Ok(serde_json::to_value(report)?)
}

/// Imports a mailbox file or directory; [`palisade_ingest::read_ahead`] bounds the memory it
/// takes whatever the size of the file.
async fn import(
    config: &palisade_config::Config,
    store: Arc<dyn Store>,
    queue: Arc<dyn palisade_jobs::JobQueue>,
    user: &User,
    source: ImportSource<'_>,
) -> anyhow::Result<serde_json::Value> {
    use palisade_mbox::{MaildirReader, MboxReader, MboxVariant};
    use std::sync::atomic::Ordering;

    let ImportSource {
        path,
        metadata,
        format,
    } = source;
    let export = match metadata {
        Some(file) => {
            let text =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let metadata: palisade_ingest::ExportMetadata = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not an export's metadata", file.display()))?;
            Some(palisade_ingest::ExportIndex::new(metadata).map_err(|e| anyhow!(e))?)
        }
        None => None,
    };

    let max_bytes = config.lmtp.max_message_bytes;
    let mut read = None;
    // How far along: messages of a Maildir, bytes of an mbox.
    let (total, entries): (
        Progress,
        Box<dyn Iterator<Item = std::io::Result<palisade_mbox::Entry>> + Send>,
    ) = if path.is_dir() {
        let reader = MaildirReader::open(path, max_bytes)
            .with_context(|| format!("opening {}", path.display()))?;
        (Progress::Messages(reader.len() as u64), Box::new(reader))
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let variant = match format {
            MboxFormat::Mboxrd => MboxVariant::Rd,
            MboxFormat::Mboxo => MboxVariant::O,
        };
        let (counted, count) = palisade_mbox::CountingReader::new(file);
        read = Some(count);
        let reader = MboxReader::new(
            std::io::BufReader::with_capacity(256 * 1024, counted),
            variant,
            max_bytes,
        );
        (Progress::Bytes(size), Box::new(reader))
    };
    let (rx, reader) = palisade_ingest::read_ahead(entries);
    let pipeline = Pipeline::new(
        store,
        queue,
        lmtp_ingest::parse_limits(config),
        Arc::new(Notify::new()),
    );
    let started = std::time::Instant::now();
    let mut last = started;
    eprintln!("import: {} into {}", path.display(), user.name);
    let mut progress = |r: &palisade_ingest::ImportReport| {
        if last.elapsed() >= std::time::Duration::from_secs(1) {
            last = std::time::Instant::now();
            let done = match total {
                Progress::Messages(n) => r.messages as f64 / n.max(1) as f64,
                Progress::Bytes(n) => {
                    let read = read.as_ref().map_or(0, |r| r.load(Ordering::Relaxed));
                    read as f64 / n.max(1) as f64
                }
            };
            eprintln!(
                "import: {} {:>3.0}%  {} messages, {} stored, {} unparsable, {} too large; {:.0} msg/s",
                bar(done),
                done.min(1.0) * 100.0,
                r.messages,
                r.stored,
                r.unparsable,
                r.too_large,
                r.messages as f64 / started.elapsed().as_secs_f64().max(0.001)
            );
        }
        std::ops::ControlFlow::Continue(())
    };
    let report = pipeline
        .import_mailbox(user, rx, export.as_ref(), &mut progress)
        .await;
    // The reader stops at its next send once the receiver is gone.
    let _ = reader.join();
    let report = report?;
    eprintln!(
        "import: done: {} messages, {} stored, {} unparsable, {} too large, in {:.1} s",
        report.messages,
        report.stored,
        report.unparsable,
        report.too_large,
        started.elapsed().as_secs_f64()
    );
    Ok(serde_json::to_value(report)?)
}

/// What an import measures its progress in.
#[derive(Clone, Copy)]
enum Progress {
    /// Messages of a Maildir.
    Messages(u64),
    /// Bytes of an mbox file.
    Bytes(u64),
}

/// A 30-character bar for a fraction done: `[#########.....................]`.
fn bar(done: f64) -> String {
    const WIDTH: usize = 30;
    let filled = ((done.clamp(0.0, 1.0) * WIDTH as f64).round() as usize).min(WIDTH);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

/// What to import: a mailbox, and the export metadata that goes with it.
struct ImportSource<'a> {
    path: &'a std::path::Path,
    metadata: Option<&'a std::path::Path>,
    format: MboxFormat,
}

/// `parse`: JSON lines on stdout, files over the default LMTP size limit reported, not read.
fn parse(path: &std::path::Path) -> anyhow::Result<()> {
    let max_bytes = palisade_config::LmtpConfig::default().max_message_bytes;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match lmtp_ingest::parse_view::write_parses(path, max_bytes, &mut out) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other
            .map(|_| ())
            .with_context(|| format!("parsing {}", path.display())),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is the reader's choice, not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn find_user(store: &dyn Store, key: &str) -> anyhow::Result<User> {
    store
        .find_user(key)
        .await?
        .ok_or_else(|| anyhow!("no user named or addressed {key:?}"))
}

fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading password from stdin")?;
    let password = input.trim_end_matches(['\r', '\n']).to_string();
    let (min, max) = (
        palisade_api::passwords::MIN_PASSWORD_CHARS,
        palisade_api::passwords::MAX_PASSWORD_CHARS,
    );
    let chars = password.chars().count();
    if chars < min {
        bail!("password must be at least {min} characters");
    }
    if chars > max {
        bail!("password must be at most {max} characters");
    }
    Ok(password)
}

fn hash_password(password: &str) -> anyhow::Result<String> {
    // The API's own hashing, so sign-in and password changes agree with it.
    Ok(palisade_api::passwords::hash(password)?)
}

/// Walks one user's mailbox a page at a time, newest first.
struct Pages<'a> {
    store: &'a dyn Store,
    user: UserId,
    after: Option<String>,
    done: bool,
}

impl<'a> Pages<'a> {
    fn new(store: &'a dyn Store, user: UserId) -> Self {
        Pages {
            store,
            user,
            after: None,
            done: false,
        }
    }

    /// The next page, or `None` after the last one.
    async fn next(&mut self) -> anyhow::Result<Option<Vec<MessageSummary>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .list_messages(
                self.user,
                Page {
                    after: self.after.take(),
                    limit: WALK_PAGE,
                },
            )
            .await?;
        self.after = page.next;
        self.done = self.after.is_none();
        Ok(Some(page.items))
    }
}

/// Data portability: every raw message as `.eml`, plus the parsed messages as JSON.
async fn export(store: &dyn Store, key: &str, dir: PathBuf) -> anyhow::Result<serde_json::Value> {
    use std::io::BufWriter;
    let user = find_user(store, key).await?;
    let raw_dir = dir.join("messages");
    std::fs::create_dir_all(&raw_dir).with_context(|| format!("creating {}", raw_dir.display()))?;
    let create = |name: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(BufWriter::new(file))
    };
    let mut mbox = create("mailbox.mbox")?;
    let mut metadata = create("metadata.json")?;
    // Each message raw and parsed too, as Palisade sees it, in the same pass.
    let mut parsed = create("messages.json")?;
    parsed.write_all(b"[")?;
    let name = user.name.clone();
    let mut each = |message: &palisade_model::Message,
                    raw: Option<&[u8]>,
                    r: &palisade_ingest::ExportReport|
     -> std::io::Result<()> {
        if let Some(raw) = raw {
            std::fs::write(raw_dir.join(format!("{}.eml", message.id)), raw)?;
        }
        parsed.write_all(if r.messages == 1 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut parsed, message)?;
        if r.messages.is_multiple_of(500) {
            eprintln!("export: {name}: {} messages, {} bytes", r.messages, r.bytes);
        }
        Ok(())
    };
    let report =
        palisade_ingest::export_mailbox(store, &user, Some(&mut mbox), &mut metadata, &mut each)
            .await?;
    parsed.write_all(b"\n]\n")?;
    parsed.flush()?;
    eprintln!(
        "export: {}: {} messages, {} bytes",
        user.name, report.messages, report.bytes
    );
    Ok(serde_json::json!({
        "user": user.name,
        "messages": report.messages,
        "bytes": report.bytes,
        "tags": report.tags,
        "contacts": report.contacts,
        "missing_raw": report.missing_raw,
        "dir": dir,
    }))
}

async fn search(
    config: &palisade_config::Config,
    store: &dyn Store,
    args: SearchArgs,
) -> anyhow::Result<serde_json::Value> {
    let user = find_user(store, &args.user).await?;
    let index = open_index(config, false)?.index;
    let query = SearchQuery {
        text: args.text,
        from: args.from,
        to: args.to,
        subject: args.subject,
        after: args.after,
        before: args.before,
        has_attachment: args.has_attachment,
        tag: args.tag,
    };
    let hits = index.search(user.id, &query, args.limit).await?;
    let mut summaries = Vec::with_capacity(hits.len());
    for hit in hits {
        // The index may be ahead of a deletion; the store is the truth.
        if let Some(message) = store.get_message(user.id, hit.message_id).await? {
            summaries.push(MessageSummary::from(&message));
        }
    }
    Ok(serde_json::to_value(summaries)?)
}
