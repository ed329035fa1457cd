//! `lmtp-ingest`: takes mail from Postfix over LMTP and stores it durably; with `api.enabled`
//! (the embedded default) it also serves the HTTP API from the same process.

use anyhow::Context;
use clap::Parser;
use lmtp_ingest::{
    ConfigArg, Index, init_tracing, open_backends, open_cache, open_index, parse_limits,
};
use palisade_api::AppState;
use palisade_api::listener::ProxyAcceptor;
use palisade_api::mailer::Mailer;
use palisade_ingest::{IngestBackend, Pipeline};
use palisade_lmtp::{Limits, MemoryBudget, ServerConfig, serve};
use palisade_proxy::ProxyPolicy;
use palisade_worker::{IndexWorker, RetryPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
    let config = cli.config.load()?;
    init_tracing(&config);

    let backends = open_backends(&config, true).await?;
    backends.recover().await?;
    let index = open_index(&config, true)?;
    let cache = open_cache(&config)?;
    let wake = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();

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
    let search = index.index.clone();
    let worker_stop = CancellationToken::new();
    let worker_task = tokio::spawn(run_worker(index, worker, worker_stop.clone()));

    let pipeline = Arc::new(
        Pipeline::new(
            backends.store.clone(),
            backends.queue.clone(),
            parse_limits(&config),
            wake.clone(),
        )
        .with_events(cache.clone()),
    );

    let api_task = if config.api.enabled {
        let mailer = Mailer::new(&config.submission).context("submission relay settings")?;
        let state = AppState::new(
            backends.store.clone(),
            search,
            cache.clone(),
            pipeline.clone(),
            mailer,
            config.api.clone(),
        );
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
    } else {
        None
    };

    let backend = Arc::new(IngestBackend::new(backends.store, pipeline));
    let l = &config.lmtp;
    let server = ServerConfig {
        hostname: l.hostname.clone(),
        limits: Limits {
            max_message_bytes: l.max_message_bytes,
            max_recipients: l.max_recipients,
            max_header_bytes: l.max_header_bytes,
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
        },
        max_connections: l.max_connections,
        budget: MemoryBudget::new(l.max_in_flight_bytes),
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

    tokio::spawn(signal_shutdown(shutdown.clone()));
    serve(listener, server, backend, shutdown).await?;
    if let Some(api) = api_task {
        api.await
            .context("api server panicked")?
            .context("api server failed")?;
    }

    worker_stop.cancel();
    worker_task.await.context("index worker panicked")?;
    tracing::info!("lmtp-ingest stopped");
    Ok(())
}

/// Prepares the index, retrying while its backend is down, then runs the worker. Mail is
/// accepted meanwhile: its jobs wait in the queue.
async fn run_worker(index: Index, worker: IndexWorker, stop: CancellationToken) {
    let mut delay = Duration::from_millis(500);
    while let Err(e) = index.prepare().await {
        tracing::warn!(error = %e, "search index not ready; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    worker.run(stop).await;
}

/// Fires `shutdown` on SIGTERM or SIGINT.
async fn signal_shutdown(shutdown: CancellationToken) {
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
    tracing::info!("shutdown requested: no new connections, finishing in-flight transactions");
    shutdown.cancel();
}
