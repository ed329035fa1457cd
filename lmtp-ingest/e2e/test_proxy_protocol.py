"""PROXY protocol v2 in front of LMTP (haproxy `send-proxy-v2`)."""

from __future__ import annotations

import socket
import struct

from palisade_e2e import HOST, Lmtp, make_message, proxy_v2_header, refused


def refused_conn(port: int, first_bytes: bytes) -> tuple[bool, bytes]:
    try:
        s = socket.create_connection((HOST, port), timeout=10)
    except ConnectionRefusedError:
        return True, b"(connect refused)"
    with s:
        try:
            s.sendall(first_bytes)
        except OSError:
            return True, b"(send failed: closed)"
        return refused(s, timeout=10)


def test_trusted_peer_with_header_works_and_without_is_refused(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]}, ready="proxy",
                    proxy={"enabled": True, "trusted": ["127.0.0.1/32"]})
    hdr = proxy_v2_header(src=("192.0.2.10", 40000), dst=(HOST, d.port))
    msg = make_message("via proxy", "Relayed by haproxy.\r\n")
    with Lmtp(d.port, proxy_header=hdr) as c:
        c.lhlo()
        t = c.data_transaction("s@example.test", ["alice@example.test"], msg)
        assert t.final and t.final[0].code == 250, t
        assert c.cmd("QUIT").code == 221
    # Header and LHLO in one write (haproxy may coalesce them).
    with Lmtp(d.port, proxy_header=hdr + b"LHLO x.example.test\r\n") as c:  # reads the 220
        assert c.reply().code == 250
    # A header carrying a TLV (PP2_TYPE_NOOP) is still valid.
    tlv = bytes([0x04]) + struct.pack("!H", 3) + b"\x00\x00\x00"
    with Lmtp(d.port, proxy_header=proxy_v2_header(dst=(HOST, d.port), tlvs=tlv)) as c:
        c.lhlo()
    # No header from a trusted peer: refused.
    ok, data = refused_conn(d.port, b"LHLO x.example.test\r\n")
    assert ok, f"connection without PROXY header from a trusted peer must be refused, got {data!r}"
    # A PROXY v1 (text) line is not a v2 header either.
    ok, data = refused_conn(d.port, f"PROXY TCP4 192.0.2.1 127.0.0.1 4000 {d.port}\r\n".encode())
    assert ok, f"a v1 header is not the required v2 header, got {data!r}"
    # A corrupted signature.
    ok, data = refused_conn(d.port, b"\r\n\r\n\x00\r\nQUIX\n" + hdr[12:])
    assert ok, f"bad PROXY v2 signature accepted: {data!r}"
    assert [m["subject"] for m in d.messages("alice")] == ["via proxy"]
    assert d.alive()


def test_local_command_from_trusted_peer(make_daemon):
    """PROXY v2 LOCAL (health checks): the spec says accept and use the real endpoints."""
    d = make_daemon(ready="proxy", proxy={"enabled": True, "trusted": ["127.0.0.1/32"]})
    with Lmtp(d.port, proxy_header=proxy_v2_header(command=0x0)) as c:
        c.lhlo()
        assert c.cmd("QUIT").code == 221


def test_untrusted_peer_is_refused(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]}, ready="tcp",
                    proxy={"enabled": True, "trusted": ["10.0.0.0/8"]})
    ok, data = refused_conn(d.port, proxy_v2_header(dst=(HOST, d.port)) + b"LHLO x.example.test\r\n")
    assert ok, f"loopback is not trusted; connection with header must be refused, got {data!r}"
    ok, data = refused_conn(d.port, b"LHLO x.example.test\r\n")
    assert ok, f"loopback is not trusted; connection without header must be refused, got {data!r}"
    assert d.alive()
    assert d.messages("alice") == []
