"""Configured limits: recipients, connections, idle timeout, header size, MIME depth."""

from __future__ import annotations

import socket
import time

import pytest

from palisade_e2e import HOST, Lmtp, make_message, refused


def test_max_recipients(make_daemon):
    users = {f"u{i}": [f"u{i}@example.test"] for i in range(5)}
    d = make_daemon(users=users, lmtp={"max_recipients": 3})
    msg = make_message("max rcpt")
    with d.session() as c:
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        codes = [c.cmd(f"RCPT TO:<u{i}@example.test>") for i in range(5)]
        assert [r.code for r in codes[:3]] == [250, 250, 250], codes
        for r in codes[3:]:
            assert r.code == 452 and r.enhanced == "4.5.3", f"recipient over max_recipients: {r!r}"
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        finals = c.replies(3)
        assert [r.code for r in finals] == [250] * 3, finals
        assert c.cmd("NOOP").code == 250
    for i in range(5):
        assert len(d.messages(f"u{i}")) == (1 if i < 3 else 0)


def test_max_connections(make_daemon):
    n = 3
    d = make_daemon(lmtp={"max_connections": n})
    conns = []
    try:
        for _ in range(n):
            for attempt in range(50):  # the readiness probe's slot may take a moment to be released
                s = socket.create_connection((HOST, d.port), timeout=10)
                s.settimeout(10)
                first = s.recv(4096)
                if first.startswith(b"220"):
                    conns.append(s)
                    break
                s.close()
                time.sleep(0.1)
            else:
                pytest.fail(f"could not open {n} connections under max_connections={n}")
        extra = socket.create_connection((HOST, d.port), timeout=10)
        with extra:
            ok, data = refused(extra, timeout=10)
            assert ok and data.startswith(b"421"), f"connection {n + 1} must get 421 and be closed, got {data!r}"
            rest = b""
            try:
                extra.settimeout(10)
                while chunk := extra.recv(4096):
                    rest += chunk
            except ConnectionResetError:
                pass
            assert b"220" not in rest
        # The other sessions are unaffected, and a slot frees up when one closes.
        conns[0].sendall(b"NOOP\r\n")
        assert conns[0].recv(4096).startswith(b"250")
        conns.pop().close()
        for _ in range(50):
            try:
                c = Lmtp(d.port, timeout=10)
                c.quit()
                break
            except (AssertionError, EOFError, OSError):
                time.sleep(0.1)
        else:
            pytest.fail("no connection accepted after one of the sessions closed")
    finally:
        for s in conns:
            s.close()
    assert d.alive()


@pytest.mark.parametrize("phase", ["after-greeting", "mid-transaction", "mid-data"])
def test_idle_timeout(make_daemon, phase):
    d = make_daemon(users={"alice": ["alice@example.test"]}, lmtp={"idle_timeout_secs": 1})
    c = Lmtp(d.port, timeout=30)
    if phase != "after-greeting":
        c.lhlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    if phase == "mid-data":
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: never finished\r\n\r\nhalf")
    c.settimeout(30)  # generous; the daemon's timeout is 1 s
    r = c.reply()
    assert r.code == 421 and r.enhanced == "4.4.2", f"idle session must get 421 4.4.2, got {r!r}"
    assert c.read_until_eof(15) == b"", "connection must be closed after the idle 421"
    c.close()
    assert d.messages("alice") == []
    assert d.alive()


def test_max_header_bytes(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"], "bob": ["bob@example.test"]},
                    lmtp={"max_header_bytes": 2048})
    filler = "".join(f"X-Filler-{i:03d}: {'h' * 60}\r\n" for i in range(100))
    big = make_message("huge header", "body\r\n", extra_headers=filler)
    with d.session() as c:
        t = c.data_transaction("s@example.test", ["alice@example.test", "bob@example.test"], big)
        assert len(t.final) == 2, t
        codes = [(r.code, r.enhanced) for r in t.final]
        for code, enh in codes:
            assert (code, enh) == (552, "5.3.4") or code == 250, f"unexpected reply: {t!r}"
        # The daemon survives and still takes ordinary mail on the same session.
        t2 = c.data_transaction("s@example.test", ["alice@example.test"], make_message("normal"))
        assert t2.final[0].code == 250, t2
    for user, (code, _) in zip(("alice", "bob"), codes):
        listed = {m["subject"]: m for m in d.messages(user)}
        if code == 250:
            hits = [m for m in d.messages(user) if m["raw_size"] == len(big)]
            assert hits, f"{user}: got 250 for the huge-header message but it is not listed"
            assert hits[0]["parse_error"] is True, f"{user}: stored over-limit header without parse_error"
            assert d.raw(user, hits[0]["id"]) == big
        else:
            assert "huge header" not in listed
    assert d.alive()


def test_deep_mime_nesting_does_not_crash(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]}, lmtp={"max_mime_depth": 20})
    depth = 2000
    parts = []
    for i in range(depth):
        parts.append(f"Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
    inner = "Content-Type: text/plain\r\n\r\ndeep leaf\r\n"
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    body = "".join(parts) + inner + closing
    msg = (b"From: <s@example.test>\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + body.encode())
    with d.session() as c:
        t = c.bdat_transaction("s@example.test", ["alice@example.test"], msg)
        assert t.final[0].code == 250, f"a deeply nested message must still be stored: {t!r}"
    assert d.alive(), "daemon crashed on deep MIME nesting"
    msgs = d.messages("alice")
    assert len(msgs) == 1 and d.raw("alice", msgs[0]["id"]) == msg
    privacy = d.show("alice", msgs[0]["id"])["content"]["privacy"]
    if "mime_depth_exceeded" in privacy:  # the contract leaves privacy's fields open; check it if present
        assert privacy["mime_depth_exceeded"] is True, f"depth {depth} > max_mime_depth 20: {privacy}"


def test_memory_budget_defers_transactions_past_it_and_they_deliver_on_retry(make_daemon):
    mib = 1024 * 1024
    users = {"big": ["big@example.test"]}
    # Everything in memory: the budget alone decides (spilling is the next test).
    d = make_daemon(users=users, lmtp={"max_message_bytes": 4 * mib, "max_in_flight_bytes": 4 * mib,
                                       "spill_threshold_bytes": 0})
    first = make_message("first large", ("x" * 76 + "\r\n") * (3 * mib // 78))
    second = make_message("second large", ("y" * 76 + "\r\n") * (3 * mib // 78))
    with d.session() as a, d.session() as b:
        # A declares 3 MiB and holds that share of the 4 MiB budget ...
        assert a.cmd(f"MAIL FROM:<s@example.test> SIZE={len(first)}").code == 250
        # ... so B's 3 MiB must wait: a temporary refusal Postfix retries, never a bounce.
        deferred = b.cmd(f"MAIL FROM:<s@example.test> SIZE={len(second)}")
        assert deferred.code == 452 and deferred.enhanced == "4.3.1", deferred
        assert a.cmd("RCPT TO:<big@example.test>").code == 250
        assert a.cmd("DATA").code == 354
        a.send(first + b".\r\n")
        assert a.reply().code == 250
        # A's transaction is answered: its share is back, and B's retry gets through.
        t = b.data_transaction("s@example.test", ["big@example.test"], second,
                               mail_params=f"SIZE={len(second)}")
        assert t.mail.code == 250 and [r.code for r in t.final] == [250], t
    subjects = sorted(m["subject"] for m in d.messages("big"))
    assert subjects == ["first large", "second large"]


def test_spilled_messages_past_the_memory_budget_are_accepted_whole_and_leave_no_file(make_daemon):
    mib = 1024 * 1024
    users = {"big": ["big@example.test"]}
    d = make_daemon(users=users, lmtp={"max_message_bytes": 8 * mib, "max_in_flight_bytes": 8 * mib,
                                       "spill_threshold_bytes": 256 * 1024})
    bodies = [make_message(f"spilled {i}", (chr(ord("a") + i) * 76 + "\r\n") * (3 * mib // 78))
              for i in range(4)]
    sessions = [d.session() for _ in bodies]
    try:
        # Four 3 MiB messages at once, 12 MiB against an 8 MiB budget: without spilling, the
        # last ones would get 452 at MAIL. Spilled, they only wait for their turn.
        for s, body in zip(sessions, bodies):
            assert s.cmd(f"MAIL FROM:<s@example.test> SIZE={len(body)}").code == 250
            assert s.cmd("RCPT TO:<big@example.test>").code == 250
            assert s.cmd("DATA").code == 354
        for s, body in zip(sessions, bodies):
            s.send(body + b".\r\n")
        for s in sessions:
            r = s.reply()
            assert r.code == 250, r
    finally:
        for s in sessions:
            s.close()
    stored = {m["subject"]: m["id"] for m in d.messages("big")}
    assert sorted(stored) == [f"spilled {i}" for i in range(4)]
    for i, body in enumerate(bodies):
        assert d.raw("big", stored[f"spilled {i}"]) == body, f"message {i} came back from disk altered"
    # The spool's files are unnamed: nothing is left behind, even before a restart.
    assert list((d.data_dir / "spool").iterdir()) == []


def test_config_refuses_a_budget_smaller_than_one_message(make_daemon):
    d = make_daemon(lmtp={"max_message_bytes": 8 * 1024 * 1024, "max_in_flight_bytes": 1024 * 1024},
                    start=False)
    r = d.admin_run("jobs", "status")
    assert r.returncode != 0 and b"max_in_flight_bytes" in r.stderr, r.stderr


def test_long_headers_within_the_limit_are_accepted_and_thread(make_daemon):
    # Over Cassandra's 64 KiB key limit, under max_header_bytes (256 KiB): both backends
    # must answer 250, or Postfix would retry the message for days and then bounce it.
    d = make_daemon(users={"long": ["long@example.test"]})
    subject = "Re: " + "a long subject " * 12000
    folded = "\r\n ".join(subject[i:i + 900] for i in range(0, len(subject), 900))
    root = "r" * 70000 + "@example.test"
    first = make_message(folded, message_id=root)
    reply = make_message(folded, extra_headers=f"In-Reply-To: <{root}>\r\n")
    with d.session() as c:
        for msg in (first, reply):
            t = c.data_transaction("s@example.test", ["long@example.test"], msg)
            assert [r.code for r in t.final] == [250], t
    listed = d.messages("long")
    assert len(listed) == 2
    assert len({m["discussion_id"] for m in listed}) == 1, "the reply joins by the long id"


def test_a_body_larger_than_cassandra_takes_is_accepted_cut_and_kept_whole_raw(make_daemon):
    # 20 MB of text: past Cassandra's 16 MiB request limit once parsed. Both backends must
    # answer 250; the parsed body is cut (flagged), the raw message is stored whole.
    d = make_daemon()
    d.add_user("big", "big@example.test", password="a long passphrase")
    line = "All work and no play makes a very long message. " * 2 + "\r\n"
    msg = make_message("twenty megabytes", line * (20 * 1024 * 1024 // len(line)))
    with d.session() as c:
        t = c.data_transaction("s@example.test", ["big@example.test"], msg)
        assert [r.code for r in t.final] == [250], t
    [listed] = d.messages("big")
    shown = d.show("big", listed["id"])
    assert shown["content"]["body_truncated"] is True
    assert len(shown["content"]["text_body"].encode()) <= 1024 * 1024
    assert d.raw("big", listed["id"]) == msg
    view = d.login("big@example.test", "a long passphrase").get(f"/messages/{listed['id']}")
    assert view.status == 200 and view.json()["body_truncated"] is True, view
