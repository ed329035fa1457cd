"""SIGTERM: stop accepting, finish in-flight transactions, exit 0."""

from __future__ import annotations

import signal
import socket
import time

from palisade_e2e import HOST, dot_stuff, make_message, refused


def connection_refused(port: int) -> tuple[bool, str]:
    try:
        s = socket.create_connection((HOST, port), timeout=5)
    except OSError as e:
        return True, repr(e)
    with s:
        ok, data = refused(s, timeout=3)
        # No greeting within 3 s also means the daemon is not serving new connections.
        return (ok or data == b""), repr(data)


def test_sigterm_finishes_inflight_transaction(daemon):
    d = daemon
    msg = make_message("in flight", "first half\r\n" + "x" * 2000 + "\r\nsecond half\r\n")
    wire = dot_stuff(msg) + b".\r\n"
    c = d.session()
    assert c.cmd("MAIL FROM:<s@example.test>").code == 250
    assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(wire[:100])

    d.signal(signal.SIGTERM)
    # New connections are refused after SIGTERM (bounded wait for the signal to be handled).
    deadline = time.monotonic() + 15
    ok, detail = False, ""
    while time.monotonic() < deadline and not ok:
        ok, detail = connection_refused(d.port)
        if not ok:
            time.sleep(0.2)
    assert ok, f"a new connection was still served after SIGTERM: {detail}"
    assert d.alive(), "daemon exited before the in-flight transaction finished"

    c.settimeout(30)
    c.send(wire[100:])
    r = c.reply()
    assert r.code == 250, f"in-flight transaction must complete after SIGTERM, got {r!r}"
    try:
        q = c.cmd("QUIT")
        assert q.code in (221, 421), q
    except (EOFError, OSError):
        pass
    c.close()

    rc = d.wait(60)
    assert rc == 0, f"lmtp-ingest must exit 0 on SIGTERM, exited {rc}\n{d.tail()}"
    # The admin CLI reads the store without the daemon.
    msgs = d.messages("alice")
    assert [m["subject"] for m in msgs] == ["in flight"]
    assert d.raw("alice", msgs[0]["id"]) == msg


def test_sigterm_idle_daemon_exits_zero(make_daemon):
    d = make_daemon()
    idle = d.session()  # an idle session must not keep the daemon alive past its grace period
    rc = d.terminate(60)
    assert rc == 0, f"exit code {rc}\n{d.tail()}"
    idle.close()
