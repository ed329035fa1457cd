//! The accept loop: connection limit, PROXY protocol, and graceful shutdown.

use crate::io::Conn;
use crate::session::{End, Session};
use crate::{DeliveryBackend, Limits, MemoryBudget};
use palisade_proxy::ProxyPolicy;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How long a trusted proxy gets to send its PROXY header.
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Name in the greeting and LHLO reply.
    pub hostname: String,
    /// Protocol limits.
    pub limits: Limits,
    /// Most simultaneous sessions; further connections get 421.
    pub max_connections: usize,
    /// Message bytes all sessions together may hold; past it, transactions get 452.
    pub budget: MemoryBudget,
    /// PROXY protocol v2 policy.
    pub proxy: ProxyPolicy,
    /// How long in-flight sessions may run after shutdown starts.
    pub shutdown_grace: Duration,
}

/// Serves LMTP on `listener` until `shutdown` fires, then stops accepting and lets in-flight
/// transactions finish (up to the grace period).
pub async fn serve<B: DeliveryBackend>(
    listener: TcpListener,
    config: ServerConfig,
    backend: Arc<B>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let sessions = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            sessions.spawn(refuse(
                stream,
                "421 4.3.2 Too many connections, try again later",
            ));
            continue;
        };
        let config = config.clone();
        let backend = backend.clone();
        let shutdown = shutdown.clone();
        sessions.spawn(async move {
            let _permit = permit;
            handle(stream, peer, &config, backend.as_ref(), &shutdown).await;
        });
    }
    drop(listener);
    sessions.close();
    tracing::info!(
        in_flight = sessions.len(),
        "stopped accepting; waiting for sessions"
    );
    if tokio::time::timeout(config.shutdown_grace, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            abandoned = sessions.len(),
            "grace period over; unfinished transactions were not acknowledged and will be retried"
        );
    }
    Ok(())
}

async fn refuse(mut stream: TcpStream, reply: &'static str) {
    let _ = stream.write_all(format!("{reply}\r\n").as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn handle<B: DeliveryBackend>(
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    config: &ServerConfig,
    backend: &B,
    shutdown: &CancellationToken,
) {
    let client = match config
        .proxy
        .client_address(&mut stream, peer, PROXY_HEADER_TIMEOUT)
        .await
    {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "connection refused by PROXY policy");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    serve_stream(stream, client, config, backend, shutdown).await;
}

/// Runs one LMTP session over an accepted stream from `client`, until it ends: how every
/// connection is served, and how tests drive whole sessions over an in-memory pipe.
pub async fn serve_stream<B, S>(
    stream: S,
    client: SocketAddr,
    config: &ServerConfig,
    backend: &B,
    shutdown: &CancellationToken,
) where
    B: DeliveryBackend,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = Conn::new(stream, config.limits.idle_timeout);
    let session = Session::new(
        conn,
        backend,
        &config.limits,
        &config.budget,
        &config.hostname,
        client,
        shutdown,
    );
    let span = tracing::info_span!("lmtp", session = %session.id);
    let end = session.run().instrument(span.clone()).await;
    span.in_scope(|| match end {
        End::Io(e) => tracing::info!(%client, error = %e, "session ended by i/o error"),
        other => tracing::debug!(%client, end = ?other, "session ended"),
    });
}
