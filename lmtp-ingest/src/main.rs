//! `lmtp-ingest`: Palisade's daemon. Its `roles` choose what it runs: the LMTP listener that
//! takes mail from Postfix (`lmtp`), the HTTP API (`api`) and the index worker (`worker`);
//! the default runs all three. With `[admin] listen` it also serves health and metrics.

use anyhow::Context;
use clap::Parser;
use lmtp_ingest::admin::{self, Readiness};
use lmtp_ingest::{
    ConfigArg, Index, init_tracing, open_backends, open_cache, open_index, parse_limits,
};
use palisade_api::listener::ProxyAcceptor;
use palisade_api::mailer::Mailer;
use palisade_api::{AppState, ImportSettings};
use palisade_config::Role;
use palisade_ingest::{IngestBackend, Pipeline};
use palisade_lmtp::{Limits, MemoryBudget, ServerConfig, serve};
use palisade_proxy::ProxyPolicy;
use palisade_worker::{IndexWorker, RetryPolicy};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Every allocation of the daemon. With glibc malloc, the API's threads queued on the arena
/// locks (two arenas, which large mail needed to give memory back) and halved its throughput;
/// mimalloc keeps memory per thread and, purging at once, still gives large mail's back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Palisade's LMTP delivery daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArg,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let reexec_failed = lmtp_ingest::reexec_with_allocator_settings();
    let config = cli.config.load()?;
    init_tracing(&config);
    if let Some(e) = reexec_failed {
        tracing::warn!(error = %e, "could not restart with the allocator setting for large mail; running without");
    }

    let roles: Vec<&str> = config.roles.iter().map(|r| r.name()).collect();
    tracing::info!(roles = ?roles, "starting");
    // Installed before any listener, so the first transaction is already counted.
    let metrics = config.admin.listen.and_then(|_| admin::install_recorder());

    let backends = open_backends(&config, true).await?;
    let is_worker = config.has_role(Role::Worker);
    if is_worker {
        // Leases are released only by a node that will take the jobs back.
        backends.recover().await?;
    }
    // An LMTP-only node never searches nor indexes.
    let index = if is_worker || config.has_role(Role::Api) {
        Some(open_index(&config, true)?)
    } else {
        None
    };
    let cache = open_cache(&config)?;
    let wake = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let draining = Arc::new(AtomicBool::new(false));

    let admin_stop = CancellationToken::new();
    let admin_task = match config.admin.listen {
        Some(listen) => {
            let readiness = Readiness::for_roles(
                &config,
                backends.store.clone(),
                backends.queue.clone(),
                index.as_ref().map(|i| i.index.clone()),
                cache.clone(),
            );
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding admin listener on {listen}"))?;
            tracing::info!(listen = %listen, "admin ready");
            Some(tokio::spawn(admin::serve(
                listener,
                readiness,
                draining.clone(),
                metrics,
                admin_stop.clone(),
            )))
        }
        None => None,
    };

    let worker_stop = CancellationToken::new();
    let search = index.as_ref().map(|i| i.index.clone());
    let lag_interval = config.admin.index_lag_interval_secs;
    let lag_task = match &search {
        Some(search) if admin_task.is_some() && lag_interval > 0 => {
            Some(tokio::spawn(lmtp_ingest::index_lag::sample_periodically(
                backends.store.clone(),
                search.clone(),
                Duration::from_secs(lag_interval),
                Duration::from_secs(config.admin.check_timeout_secs.max(1)),
                worker_stop.clone(),
            )))
        }
        _ => None,
    };
    let worker_task = match index {
        Some(index) if is_worker => {
            let jobs = &config.jobs;
            let worker = IndexWorker::new(
                backends.queue.clone(),
                backends.store.clone(),
                index.index.clone(),
                RetryPolicy {
                    max_attempts: jobs.max_attempts,
                    initial_backoff: Duration::from_millis(jobs.initial_backoff_ms),
                    max_backoff: Duration::from_millis(jobs.max_backoff_ms),
                    batch_size: jobs.batch_size,
                },
                wake.clone(),
            );
            Some(tokio::spawn(run_worker(index, worker, worker_stop.clone())))
        }
        Some(index) => {
            let stop = worker_stop.clone();
            Some(tokio::spawn(async move {
                prepare_index(&index, &stop).await;
            }))
        }
        None => None,
    };

    let pipeline = Arc::new(
        Pipeline::new(
            backends.store.clone(),
            backends.queue.clone(),
            parse_limits(&config),
            wake.clone(),
        )
        .with_events(cache.clone()),
    );

    let api_task = match search {
        Some(search) if config.has_role(Role::Api) && config.api.enabled => {
            let mailer = Mailer::new(&config.submission).context("submission relay settings")?;
            let state = AppState::new(
                backends.store.clone(),
                search,
                cache.clone(),
                pipeline.clone(),
                mailer,
                config.api.clone(),
            )
            .context("API settings")?
            .with_import_settings(ImportSettings {
                spool_dir: spool_dir(&config)?,
                max_message_bytes: config.lmtp.max_message_bytes,
            });
            let a = &config.api;
            let listener = tokio::net::TcpListener::bind(a.listen)
                .await
                .with_context(|| format!("binding API listener on {}", a.listen))?;
            let policy = ProxyPolicy {
                enabled: a.proxy_protocol.enabled,
                trusted: a.proxy_protocol.trusted.clone(),
            };
            let acceptor = ProxyAcceptor::spawn(listener, policy, shutdown.clone())?;
            tracing::info!(listen = %a.listen, "api ready");
            Some(tokio::spawn(palisade_api::serve(
                acceptor,
                Arc::new(state),
                shutdown.clone(),
            )))
        }
        _ => None,
    };

    let lmtp_task = if config.has_role(Role::Lmtp) {
        let backend = Arc::new(IngestBackend::new(backends.store.clone(), pipeline));
        let l = &config.lmtp;
        let (budget, lowered) = lmtp_ingest::lmtp_budget(
            l.max_in_flight_bytes,
            l.max_message_bytes,
            lmtp_ingest::available_memory(),
        );
        if lowered {
            tracing::warn!(
                configured = l.max_in_flight_bytes,
                used = budget,
                "lmtp.max_in_flight_bytes is more than this machine can hold; lowered"
            );
        }
        let server = ServerConfig {
            hostname: l.hostname.clone(),
            limits: Limits {
                max_message_bytes: l.max_message_bytes,
                max_recipients: l.max_recipients,
                max_header_bytes: l.max_header_bytes,
                idle_timeout: Duration::from_secs(l.idle_timeout_secs),
            },
            max_connections: l.max_connections,
            budget: if l.spill_threshold_bytes == 0 {
                MemoryBudget::new(budget)
            } else {
                MemoryBudget::with_spill(budget, l.spill_threshold_bytes, spool_dir(&config)?)
            },
            proxy: ProxyPolicy {
                enabled: l.proxy_protocol.enabled,
                trusted: l.proxy_protocol.trusted.clone(),
            },
            shutdown_grace: Duration::from_secs(l.shutdown_grace_secs),
        };
        let listener = tokio::net::TcpListener::bind(l.listen)
            .await
            .with_context(|| format!("binding LMTP listener on {}", l.listen))?;
        tracing::info!(listen = %l.listen, data_dir = %config.data_dir.display(), "lmtp-ingest ready");
        Some(tokio::spawn(serve(
            listener,
            server,
            backend,
            shutdown.clone(),
        )))
    } else {
        None
    };

    // Readiness fails first and stays failed for the drain period, so a load balancer that
    // polls /readyz stops sending new work before the listeners close.
    let drain = if admin_task.is_some() {
        Duration::from_secs(config.admin.drain_secs)
    } else {
        Duration::ZERO
    };
    tokio::spawn(signal_shutdown(shutdown.clone(), draining, drain));
    if let Some(lmtp) = lmtp_task {
        lmtp.await.context("lmtp server panicked")??;
    } else {
        shutdown.cancelled().await;
    }
    if let Some(api) = api_task {
        api.await
            .context("api server panicked")?
            .context("api server failed")?;
    }

    worker_stop.cancel();
    if let Some(worker) = worker_task {
        worker.await.context("index worker panicked")?;
    }
    if let Some(lag) = lag_task {
        lag.await.context("index lag sampler panicked")?;
    }
    admin_stop.cancel();
    if let Some(admin) = admin_task {
        admin
            .await
            .context("admin server panicked")?
            .context("admin server failed")?;
    }
    tracing::info!("lmtp-ingest stopped");
    Ok(())
}

/// Prepares the index, retrying while its backend is down, then runs the worker. Mail is
/// accepted meanwhile: its jobs wait in the queue.
async fn run_worker(index: Index, worker: IndexWorker, stop: CancellationToken) {
    if prepare_index(&index, &stop).await {
        worker.run(stop).await;
    }
}

/// Creates what the index backend needs (the Elasticsearch index and alias), retrying while
/// it is down; `false` when stopped first. API-only nodes run it too: they search.
async fn prepare_index(index: &Index, stop: &CancellationToken) -> bool {
    let mut delay = Duration::from_millis(500);
    while let Err(e) = index.prepare().await {
        tracing::warn!(error = %e, "search index not ready; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return false,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    true
}

/// On SIGTERM or SIGINT, marks the node draining, waits `drain`, then fires `shutdown`.
async fn signal_shutdown(shutdown: CancellationToken, draining: Arc<AtomicBool>, drain: Duration) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    draining.store(true, Ordering::SeqCst);
    if !drain.is_zero() {
        tracing::info!(
            drain_secs = drain.as_secs(),
            "shutdown requested: readiness now fails; listeners close after the drain period"
        );
        tokio::time::sleep(drain).await;
    }
    tracing::info!("shutdown requested: no new connections, finishing in-flight transactions");
    shutdown.cancel();
}

/// `<data_dir>/spool`, created if missing: where LMTP spills large messages and the API keeps
/// uploaded mailboxes while they are imported, on disk rather than in a temporary directory
/// that may live in memory.
fn spool_dir(config: &palisade_config::Config) -> anyhow::Result<std::path::PathBuf> {
    let spool = config.data_dir.join("spool");
    std::fs::create_dir_all(&spool)
        .with_context(|| format!("creating the spool directory {}", spool.display()))?;
    Ok(spool)
}
