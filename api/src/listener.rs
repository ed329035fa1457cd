//! The API's TCP listener: accepts connections, and when PROXY protocol v2 is on, reads the
//! header (only from trusted proxies) before HTTP starts, so every request carries the real
//! client address for rate limits and logs.

use palisade_proxy::ProxyPolicy;
use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a proxy may take to send its header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections whose header has been read but that poem has not taken yet.
const BACKLOG: usize = 256;

/// A poem acceptor that hands out connections with their real client address.
///
/// Headers are read on a task per connection, so one slow or silent peer cannot hold up the
/// others; connections that fail the policy are closed without a byte of HTTP.
pub struct ProxyAcceptor {
    local: LocalAddr,
    ready: mpsc::Receiver<(TcpStream, SocketAddr)>,
}

impl ProxyAcceptor {
    /// Starts accepting on `listener` under `policy` until `shutdown` fires.
    pub fn spawn(
        listener: TcpListener,
        policy: ProxyPolicy,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = LocalAddr(listener.local_addr()?.into());
        let (tx, ready) = mpsc::channel(BACKLOG);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = shutdown.cancelled() => break,
                };
                let (mut stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "api accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let policy = policy.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match policy
                        .client_address(&mut stream, peer, HEADER_TIMEOUT)
                        .await
                    {
                        Ok(client) => {
                            let _ = tx.send((stream, client)).await;
                        }
                        Err(e) => {
                            tracing::warn!(peer = %peer.ip(), error = %e, "api connection refused");
                        }
                    }
                });
            }
        });
        Ok(ProxyAcceptor { local, ready })
    }
}

impl Acceptor for ProxyAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![self.local.clone()]
    }

    async fn accept(&mut self) -> std::io::Result<(TcpStream, LocalAddr, RemoteAddr, Scheme)> {
        match self.ready.recv().await {
            Some((stream, client)) => Ok((
                stream,
                self.local.clone(),
                RemoteAddr(client.into()),
                Scheme::HTTP,
            )),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "listener stopped",
            )),
        }
    }
}
