#!/usr/bin/env python3
"""Exits 0 once Cassandra answers CQL at HOST PORT (stdlib only, protocol v4, no credentials):
OPTIONS -> SUPPORTED, STARTUP -> READY, then "SELECT release_version FROM system.local" -> ROWS.
Prints the release version. The same probe as devtools/services' cql_probe."""
import socket
import struct
import sys


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def request(sock, opcode, body=b""):
    sock.sendall(struct.pack(">BBhBi", 0x04, 0, 1, opcode, len(body)) + body)
    _version, _flags, _stream, op, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
    if length > 1 << 20:
        raise RuntimeError("frame too large")
    payload = recv_exact(sock, length)
    if op == 0x00:
        code, mlen = struct.unpack(">iH", payload[:6])
        raise RuntimeError("CQL error 0x%04x: %s" % (code, payload[6:6 + mlen].decode(errors="replace")))
    return op, payload


def string(value):
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    with socket.create_connection((host, port), timeout=5) as sock:
        op, _ = request(sock, 0x05)
        assert op == 0x06, "expected SUPPORTED, got opcode %d" % op
        op, _ = request(sock, 0x01, struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0"))
        assert op == 0x02, "expected READY, got opcode %d (authentication required?)" % op
        query = b"SELECT release_version FROM system.local"
        op, payload = request(sock, 0x07, struct.pack(">i", len(query)) + query + struct.pack(">HB", 0x0001, 0))
        assert op == 0x08, "expected RESULT, got opcode %d" % op
        kind = struct.unpack(">i", payload[:4])[0]
        assert kind == 2, "expected ROWS, got kind %d" % kind
    print("Cassandra answers CQL on %s:%d" % (host, port))


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # not ready yet: the caller retries
        print(exc, file=sys.stderr)
        sys.exit(1)
