//! Which addresses the image proxy may connect to: public unicast only. Everything a sender
//! could aim the server at to reach what only the server can reach (loopback, private and
//! carrier-grade NAT ranges, link-local and the cloud metadata address, multicast, reserved
//! ranges) is refused, whatever form the address is written in (IPv4-mapped, NAT64, 6to4).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, for the error message and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 0.0.0.0/8, `::`: "this host".
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, and IPv6 unique-local fc00::/7.
    Private,
    /// 100.64.0.0/10, the carrier-grade NAT range.
    SharedNat,
    /// 169.254.0.0/16 (the cloud metadata address 169.254.169.254 among them), fe80::/10.
    LinkLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// Documentation, benchmarking, protocol-assignment, reserved and broadcast ranges, and
    /// IPv6 outside global unicast or in a tunnelling range.
    Reserved,
}

impl Refusal {
    /// The refusal in words.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Unspecified => "an unspecified address",
            Refusal::Loopback => "a loopback address",
            Refusal::Private => "a private address",
            Refusal::SharedNat => "a carrier-grade NAT address",
            Refusal::LinkLocal => "a link-local or metadata address",
            Refusal::Multicast => "a multicast address",
            Refusal::Reserved => "a reserved address",
        }
    }
}

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether the proxy may connect to `ip`: a public address, or one inside `allow` (the
/// test-only allowlist, empty in production).
pub fn permitted(ip: IpAddr, allow: &[IpNet]) -> Result<(), Refusal> {
    match classify(ip) {
        None => Ok(()),
        Some(_) if allow.iter().any(|net| net.contains(&ip)) => Ok(()),
        Some(refusal) => Err(refusal),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => Refusal::Unspecified,
        (127, _, _) => Refusal::Loopback,
        (10, _, _) | (192, 168, _) => Refusal::Private,
        (172, b, _) if (16..32).contains(&b) => Refusal::Private,
        (100, b, _) if (64..128).contains(&b) => Refusal::SharedNat,
        (169, 254, _) => Refusal::LinkLocal,
        (224..=239, _, _) => Refusal::Multicast,
        (240..=255, _, _) => Refusal::Reserved,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Refusal::Reserved,
        (198, 18 | 19, _) => Refusal::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some(Refusal::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64) reach the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(s[6], s[7]));
    }
    // 2002:a.b.c.d::/48 (6to4) reaches the IPv4 address too.
    if s[0] == 0x2002 {
        return classify_v4(embedded_v4(s[1], s[2]));
    }
    if s[0] & 0xff00 == 0xff00 {
        return Some(Refusal::Multicast);
    }
    if s[0] & 0xfe00 == 0xfc00 {
        return Some(Refusal::Private);
    }
    if s[0] & 0xffc0 == 0xfe80 {
        return Some(Refusal::LinkLocal);
    }
    // Global unicast is 2000::/3; everything else (IPv4-compatible ::a.b.c.d, site-local,
    // discard, local NAT64) is not an address a web server has.
    if s[0] & 0xe000 != 0x2000 {
        return Some(Refusal::Reserved);
    }
    // Teredo (2001::/32) tunnels to an IPv4 address of its own choosing; documentation ranges.
    if (s[0] == 0x2001 && (s[1] == 0 || s[1] == 0x0db8)) || s[0] & 0xfff0 == 0x3ff0 {
        return Some(Refusal::Reserved);
    }
    None
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(ip: &str) -> Option<Refusal> {
        classify(ip.parse().expect("test address"))
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "::ffff:93.184.215.14",
        ] {
            assert_eq!(refusal(ip), None, "{ip}");
        }
    }

    #[test]
    fn internal_ipv4_ranges_are_refused_with_their_reason() {
        for (ip, why) in [
            ("0.0.0.0", Refusal::Unspecified),
            ("0.1.2.3", Refusal::Unspecified),
            ("127.0.0.1", Refusal::Loopback),
            ("127.255.255.254", Refusal::Loopback),
            ("10.0.0.1", Refusal::Private),
            ("10.255.255.255", Refusal::Private),
            ("172.16.0.1", Refusal::Private),
            ("172.31.255.255", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("100.64.0.1", Refusal::SharedNat),
            ("100.127.255.255", Refusal::SharedNat),
            ("169.254.169.254", Refusal::LinkLocal),
            ("169.254.0.1", Refusal::LinkLocal),
            ("224.0.0.1", Refusal::Multicast),
            ("239.255.255.250", Refusal::Multicast),
            ("240.0.0.1", Refusal::Reserved),
            ("255.255.255.255", Refusal::Reserved),
            ("192.0.0.8", Refusal::Reserved),
            ("192.0.2.1", Refusal::Reserved),
            ("198.18.0.1", Refusal::Reserved),
            ("198.51.100.7", Refusal::Reserved),
            ("203.0.113.9", Refusal::Reserved),
        ] {
            assert_eq!(refusal(ip), Some(why), "{ip}");
        }
    }

    #[test]
    fn internal_ipv6_ranges_and_ipv4_in_disguise_are_refused() {
        for (ip, why) in [
            ("::", Refusal::Unspecified),
            ("::1", Refusal::Loopback),
            ("fc00::1", Refusal::Private),
            ("fd12:3456::1", Refusal::Private),
            ("fe80::1", Refusal::LinkLocal),
            ("ff02::1", Refusal::Multicast),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("::ffff:10.1.2.3", Refusal::Private),
            ("::ffff:169.254.169.254", Refusal::LinkLocal),
            ("64:ff9b::7f00:1", Refusal::Loopback),
            ("64:ff9b::a9fe:a9fe", Refusal::LinkLocal),
            ("2002:0a00:0001::1", Refusal::Private),
            ("2002:7f00:0001::1", Refusal::Loopback),
            ("::127.0.0.1", Refusal::Reserved),
            ("fec0::1", Refusal::Reserved),
            ("100::1", Refusal::Reserved),
            ("2001::1", Refusal::Reserved),
            ("2001:db8::1", Refusal::Reserved),
        ] {
            assert_eq!(refusal(ip), Some(why), "{ip}");
        }
    }

    #[test]
    fn the_allowlist_admits_only_what_it_names() {
        let allow: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        let ip = |s: &str| -> IpAddr { s.parse().expect("test address") };
        assert_eq!(permitted(ip("127.0.0.1"), &allow), Ok(()));
        assert_eq!(permitted(ip("127.0.0.2"), &allow), Err(Refusal::Loopback));
        assert_eq!(
            permitted(ip("169.254.169.254"), &allow),
            Err(Refusal::LinkLocal)
        );
        assert_eq!(permitted(ip("1.1.1.1"), &[]), Ok(()));
    }
}
