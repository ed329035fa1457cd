//! PROXY protocol v2 for Palisade's listeners.
//!
//! HAProxy sits in front of every listener and prepends a binary v2 header naming the real
//! client. We only believe that header from configured proxy networks: anyone else could
//! claim any address and dodge rate limits or poison logs, so when the protocol is enabled a
//! connection from an untrusted peer is refused outright.

use ipnet::IpNet;
use ppp::v2::{Addresses, Command, Header, PROTOCOL_PREFIX};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Fixed part of a v2 header: signature, version/command, family/protocol, length.
const FIXED_LEN: usize = 16;
/// Upper bound on the variable part; real headers with TLVs stay far below this.
const MAX_PAYLOAD_LEN: usize = 4096;

/// Why a connection was refused at the PROXY stage.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The TCP peer is not one of the trusted proxies.
    #[error("peer {0} is not a trusted proxy")]
    UntrustedPeer(IpAddr),
    /// The bytes did not form a valid v2 header.
    #[error("invalid PROXY v2 header: {0}")]
    Invalid(String),
    /// The proxy did not send its header in time.
    #[error("timed out waiting for the PROXY v2 header")]
    Timeout,
    /// Reading from the socket failed.
    #[error("i/o error reading the PROXY v2 header: {0}")]
    Io(#[from] std::io::Error),
}

/// What a listener does about PROXY protocol v2.
#[derive(Debug, Clone, Default)]
pub struct ProxyPolicy {
    /// Whether headers are required; when false, peers are taken at face value.
    pub enabled: bool,
    /// Networks allowed to send headers.
    pub trusted: Vec<IpNet>,
}

impl ProxyPolicy {
    /// Whether `ip` belongs to a trusted proxy network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Returns the real client address of a freshly accepted connection, reading the v2
    /// header from `stream` when the policy requires one.
    pub async fn client_address<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Result<SocketAddr, ProxyError> {
        if !self.enabled {
            return Ok(peer);
        }
        if !self.is_trusted(peer.ip()) {
            return Err(ProxyError::UntrustedPeer(peer.ip()));
        }
        match tokio::time::timeout(timeout, read_header(stream)).await {
            Ok(Ok(Some(addr))) => Ok(addr),
            // LOCAL command (health checks) or an unspecified family: the proxy speaks for itself.
            Ok(Ok(None)) => Ok(peer),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ProxyError::Timeout),
        }
    }
}

/// Reads exactly one v2 header, so no byte of the application protocol is consumed.
async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyError> {
    let mut buf = vec![0u8; FIXED_LEN];
    stream.read_exact(&mut buf).await?;
    if buf[..PROTOCOL_PREFIX.len()] != PROTOCOL_PREFIX[..] {
        return Err(ProxyError::Invalid("missing v2 signature".into()));
    }
    let payload_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(ProxyError::Invalid(format!(
            "payload of {payload_len} bytes is too long"
        )));
    }
    buf.resize(FIXED_LEN + payload_len, 0);
    stream.read_exact(&mut buf[FIXED_LEN..]).await?;
    let header =
        Header::try_from(buf.as_slice()).map_err(|e| ProxyError::Invalid(e.to_string()))?;
    if header.command == Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unspecified | Addresses::Unix(_) => None,
    })
}

/// Treats IPv4-mapped IPv6 peers as the IPv4 address they are, so `127.0.0.1/32` matches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_v4(src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut h = PROTOCOL_PREFIX.to_vec();
        h.extend([0x21, 0x11, 0, 12]);
        h.extend(src);
        h.extend([127, 0, 0, 1]);
        h.extend(sport.to_be_bytes());
        h.extend(25u16.to_be_bytes());
        h
    }

    fn policy(net: &str) -> ProxyPolicy {
        ProxyPolicy {
            enabled: true,
            trusted: vec![net.parse().expect("net")],
        }
    }

    #[tokio::test]
    async fn trusted_peer_yields_the_header_source_and_leaves_the_rest() {
        let mut bytes = header_v4([203, 0, 113, 9], 40000);
        bytes.extend(b"LHLO x\r\n");
        let mut reader = bytes.as_slice();
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let addr = policy("127.0.0.0/8")
            .client_address(&mut reader, peer, Duration::from_secs(1))
            .await
            .expect("accepted");
        assert_eq!(addr, "203.0.113.9:40000".parse().expect("addr"));
        assert_eq!(reader, b"LHLO x\r\n");
    }

    #[tokio::test]
    async fn untrusted_peer_and_missing_header_are_refused() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let mut reader: &[u8] = b"LHLO x\r\nsome more bytes to fill";
        let err = policy("10.0.0.0/8")
            .client_address(&mut reader, peer, Duration::from_secs(1))
            .await;
        assert!(matches!(err, Err(ProxyError::UntrustedPeer(_))));
        let err = policy("127.0.0.0/8")
            .client_address(&mut reader, peer, Duration::from_secs(1))
            .await;
        assert!(matches!(err, Err(ProxyError::Invalid(_))));
    }

    #[test]
    fn mapped_ipv6_matches_ipv4_networks() {
        let ip: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(policy("127.0.0.0/8").is_trusted(ip));
    }
}
