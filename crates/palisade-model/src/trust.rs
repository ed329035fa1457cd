//! Where our own mail system ends and the sender's words begin.
//!
//! A sender can write any header, including `Authentication-Results`, `Received` and
//! `X-Spam-*`. The privacy index believes only what our own hosts wrote, and this is how the
//! configuration names them (`[privacy]` in `palisade.toml`, docs/privacy-index.md).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One of our own mail relays: a host name as its `Received` headers write it, or a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Relay {
    /// Addresses in this network (a single address is a /32 or /128).
    Network(IpNet),
    /// A host name, lowercased, without a trailing dot.
    Host(String),
}

/// A relay entry that is neither an address, a network nor a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a relay address, network or host name: {0:?}")]
pub struct RelayError(String);

impl FromStr for Relay {
    type Err = RelayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.contains('/') {
            return s
                .parse::<IpNet>()
                .map(Relay::Network)
                .map_err(|_| RelayError(s.to_string()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Relay::Network(IpNet::from(ip)));
        }
        let host = s.trim_end_matches('.').to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if valid {
            Ok(Relay::Host(host))
        } else {
            Err(RelayError(s.to_string()))
        }
    }
}

impl TryFrom<String> for Relay {
    type Error = RelayError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Relay> for String {
    fn from(relay: Relay) -> String {
        relay.to_string()
    }
}

impl fmt::Display for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Relay::Network(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Relay::Network(net) => write!(f, "{net}"),
            Relay::Host(host) => f.write_str(host),
        }
    }
}

impl Relay {
    /// Whether `ip` is this relay.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        match self {
            Relay::Network(net) => net.contains(&ip),
            Relay::Host(_) => false,
        }
    }

    /// Whether a host as a `Received` header writes it (`mx.example`, `[192.0.2.1]`,
    /// `[IPv6:2001:db8::1]`) is this relay.
    pub fn matches_host(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.');
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let literal = literal
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("ipv6:"))
            .map_or(literal, |_| &literal[5..]);
        match (self, literal.parse::<IpAddr>()) {
            (Relay::Network(net), Ok(ip)) => net.contains(&ip),
            (Relay::Host(name), Err(_)) => name.eq_ignore_ascii_case(host),
            _ => false,
        }
    }
}

/// Which headers the privacy index believes: those our own hosts wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrustBoundary {
    /// The `authserv-id` our own MTA writes in `Authentication-Results` (RFC 8601 §5). Only
    /// results under this id count; the border MTA must remove incoming ones that claim it.
    /// Unset: no `Authentication-Results` counts.
    pub authserv_id: Option<String>,
    /// Our own relays. Their `Received` headers count from the top of the message down to
    /// the hop where the mail entered (whose client is not one of them); spam headers count
    /// only on mail that came through them. Empty: neither counts.
    pub internal_relays: Vec<Relay>,
}

impl TrustBoundary {
    /// Our MTA's `authserv_id` and relays written as in the configuration.
    pub fn parse(authserv_id: &str, relays: &[&str]) -> Result<Self, RelayError> {
        Ok(TrustBoundary {
            authserv_id: Some(authserv_id.to_string()),
            internal_relays: relays.iter().map(|r| r.parse()).collect::<Result<_, _>>()?,
        })
    }

    /// Whether `host` (from a `Received` header) is one of our relays.
    pub fn is_relay_host(&self, host: &str) -> bool {
        self.internal_relays.iter().any(|r| r.matches_host(host))
    }

    /// Whether `ip` is one of our relays.
    pub fn is_relay_ip(&self, ip: IpAddr) -> bool {
        self.internal_relays.iter().any(|r| r.matches_ip(ip))
    }

    /// Whether an `Authentication-Results` value was written by our own MTA.
    pub fn is_own_authserv_id(&self, value: &str) -> bool {
        let Some(ours) = self.authserv_id.as_deref() else {
            return false;
        };
        // authserv-id [CFWS authres-version] ";" ... : the id is the first word.
        let id = value
            .split(|c: char| c == ';' || c == '(' || c.is_whitespace())
            .find(|w| !w.is_empty());
        id.is_some_and(|id| id.eq_ignore_ascii_case(ours.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_parse_as_addresses_networks_or_host_names() {
        let net: Relay = "10.0.0.0/8".parse().expect("network");
        assert!(net.matches_ip("10.1.2.3".parse().expect("address")));
        assert!(net.matches_host("[10.9.9.9]"));
        assert!(!net.matches_host("mx.example"));
        let one: Relay = "2001:db8::1".parse().expect("relay");
        assert!(one.matches_host("[IPv6:2001:db8::1]"));
        assert_eq!(one.to_string(), "2001:db8::1");
        let host: Relay = "MX.Example.TEST.".parse().expect("relay");
        assert_eq!(host, Relay::Host("mx.example.test".into()));
        assert!(host.matches_host("mx.example.test."));
        assert!(!host.matches_host("mx.example.test.evil"));
        for bad in ["", "10.0.0.0/33", "mx example", "<mx>"] {
            assert!(bad.parse::<Relay>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_our_authserv_id_is_ours() {
        let trust = TrustBoundary {
            authserv_id: Some("mx.example.test".into()),
            internal_relays: vec![],
        };
        assert!(trust.is_own_authserv_id("mx.example.test; dkim=pass"));
        assert!(trust.is_own_authserv_id("  MX.example.test 1; spf=pass"));
        assert!(trust.is_own_authserv_id("mx.example.test(comment); none"));
        assert!(!trust.is_own_authserv_id("mx.example.test.evil; dkim=pass"));
        assert!(!trust.is_own_authserv_id("evil.test; dkim=pass mx.example.test"));
        assert!(!TrustBoundary::default().is_own_authserv_id("mx.example.test; dkim=pass"));
    }
}
