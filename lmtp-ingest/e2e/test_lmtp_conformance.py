"""RFC 2033 (LMTP) conformance, with Python's smtplib.LMTP and with a raw socket where bytes matter."""

from __future__ import annotations

import re
import smtplib
import socket
import struct
import time

import pytest

from palisade_e2e import HOST, Lmtp, dot_stuff, make_message, sha256

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
NOBODY = "nobody@example.test"
SENDER = "sender@example.test"


def assert_reply(r, code: int, enhanced: str | None = None):
    assert r.code == code, f"expected {code}{' ' + enhanced if enhanced else ''}, got {r!r}"
    if enhanced is not None:
        assert r.enhanced == enhanced, f"expected enhanced status {enhanced}, got {r!r}"


def assert_5xx(r, what: str):
    assert 500 <= r.code < 600, f"{what}: expected a 5xx reply, got {r!r}"


def assert_success_stored(r):
    """250 with a 2.0.0 / 2.1.5 / 2.6.0 class enhanced status code."""
    assert r.code == 250, f"expected 250 for a stored delivery, got {r!r}"
    assert r.enhanced in ("2.0.0", "2.1.5", "2.6.0"), f"unexpected enhanced code on success: {r!r}"


def lmtp_client(d) -> smtplib.LMTP:
    c = smtplib.LMTP(HOST, d.port, timeout=30)
    return c


def only_message(d, user):
    msgs = d.messages(user)
    assert len(msgs) == 1, f"{user}: expected exactly one message, got {len(msgs)}: {msgs}"
    return msgs[0]


# ---------------------------------------------------------------------------------------------------


def test_greeting_and_lhlo_capabilities(make_daemon):
    d = make_daemon(lmtp={"hostname": "mx.e2e.example", "max_message_bytes": 1234567})
    c = lmtp_client(d)
    try:
        # smtplib read the greeting during connect(); check it on a raw socket too.
        with Lmtp(d.port) as raw:
            g = raw.greeting
            assert g.code == 220
            assert re.match(r"^mx\.e2e\.example(\s|$)", g.lines[0]), f"greeting must start with hostname: {g!r}"
            assert "LMTP" in g.text, f"greeting must say LMTP: {g!r}"
            r = raw.cmd("LHLO client.example.test")
            assert r.code == 250 and len(r.lines) > 1, f"LHLO must be a multiline 250: {r!r}"
        code, _ = c.ehlo()  # smtplib.LMTP sends LHLO
        assert code == 250
        feats = c.esmtp_features
        for kw in ("pipelining", "enhancedstatuscodes", "8bitmime", "chunking", "size"):
            assert kw in feats, f"LHLO does not advertise {kw.upper()}: {feats}"
        assert feats["size"].strip() == "1234567", f"SIZE must advertise max_message_bytes: {feats['size']!r}"
    finally:
        c.close()


def test_helo_and_ehlo_are_refused(daemon):
    c = lmtp_client(daemon)
    try:
        code, msg = c.helo("client.example.test")
        assert 500 <= code < 600, f"HELO must be refused with 5xx in LMTP, got {code} {msg!r}"
        code, msg = c.docmd("EHLO", "client.example.test")
        assert 500 <= code < 600, f"EHLO must be refused with 5xx in LMTP, got {code} {msg!r}"
        # The session goes on: LHLO works afterwards.
        code, msg = c.docmd("LHLO", "client.example.test")
        assert code == 250, f"LHLO after refused HELO/EHLO: {code} {msg!r}"
        code, msg = c.docmd("QUIT")
        assert code == 221
    finally:
        c.close()


def test_multiple_recipients_with_unknown_one(daemon):
    msg = make_message("multi-rcpt", "Three of four recipients exist.\r\n")
    c = lmtp_client(daemon)
    try:
        c.ehlo()
        code, resp = c.mail(SENDER)
        assert code == 250, resp
        replies = [c.rcpt(a) for a in (ALICE, NOBODY, BOB, CAROL)]
        assert replies[0][0] == 250, replies
        assert replies[1][0] == 550 and replies[1][1].startswith(b"5.1.1"), \
            f"unknown recipient must be 550 5.1.1 at RCPT time, got {replies[1]}"
        assert replies[2][0] == 250 and replies[3][0] == 250, replies
        first = c.data(msg)  # smtplib reads exactly one reply here ...
        rest = [c.getreply() for _ in range(2)]  # ... the other accepted recipients' replies follow
        per_rcpt = [first] + rest
        for code, text in per_rcpt:
            assert code == 250, f"per-recipient replies: {per_rcpt}"
            assert re.match(rb"2\.(0\.0|1\.5|6\.0)\b", text), f"enhanced code on success: {per_rcpt}"
        assert c.noop()[0] == 250, "no extra reply may follow the per-recipient replies"
        c.quit()
    finally:
        c.close()
    for user, rcpt in (("alice", ALICE), ("bob", BOB), ("carol", CAROL)):
        m = only_message(daemon, user)
        assert m["subject"] == "multi-rcpt"
        assert daemon.raw(user, m["id"]) == msg
        full = daemon.show(user, m["id"])
        assert full["raw_sha256"] == sha256(msg)
        assert full["envelope"]["rcpt_to"].lower() == rcpt
        assert full["envelope"]["mail_from"] == SENDER


def test_pipelining_mail_rcpt_data_in_one_write(daemon):
    msg = make_message("pipelined", "Pipelined body.\r\n")
    with daemon.session() as c:
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\nRCPT TO:<{NOBODY}>\r\n"
               f"RCPT TO:<{BOB}>\r\nDATA\r\n".encode())
        mail, r1, r2, r3, data = c.replies(5)
        assert mail.code == 250, mail
        assert r1.code == 250, r1
        assert_reply(r2, 550, "5.1.1")
        assert r3.code == 250, r3
        assert data.code == 354, data
        # Message, terminator and two more commands in one write too.
        c.send(dot_stuff(msg) + b".\r\nNOOP\r\nQUIT\r\n")
        a, b, noop, quit_ = c.replies(4)
        assert_success_stored(a)
        assert_success_stored(b)
        assert noop.code == 250, noop
        assert quit_.code == 221, quit_
    assert daemon.raw("alice", only_message(daemon, "alice")["id"]) == msg
    assert daemon.raw("bob", only_message(daemon, "bob")["id"]) == msg


def test_pipelining_with_bdat(daemon):
    msg = make_message("pipelined bdat", "Chunked and pipelined.\r\n")
    with daemon.session() as c:
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\nRCPT TO:<{BOB}>\r\n".encode()
               + f"BDAT {len(msg)} LAST\r\n".encode() + msg + b"NOOP\r\n")
        mail, r1, r2, a, b, noop = c.replies(6)
        assert (mail.code, r1.code, r2.code) == (250, 250, 250), (mail, r1, r2)
        assert_success_stored(a)
        assert_success_stored(b)
        assert noop.code == 250, noop
    assert daemon.raw("alice", only_message(daemon, "alice")["id"]) == msg


def test_bdat_several_chunks_then_last(daemon):
    msg = make_message("chunks", "line one\r\nline two\r\n.\r\n..dots stay\r\nlast line\r\n")
    parts = [msg[:17], msg[17:18], msg[18:60], msg[60:]]
    with daemon.session() as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        assert c.cmd(f"RCPT TO:<{CAROL}>").code == 250
        for p in parts[:-1]:
            c.send(f"BDAT {len(p)}\r\n".encode() + p)
            r = c.reply()
            assert r.code == 250, f"non-LAST BDAT chunk must get one 250: {r!r}"
        c.send(f"BDAT {len(parts[-1])}\r\n".encode() + parts[-1])
        assert c.reply().code == 250
        c.send(b"BDAT 0 LAST\r\n")
        finals = c.replies(2)
        for r in finals:
            assert_success_stored(r)
        assert c.cmd("NOOP").code == 250
    for user in ("alice", "carol"):
        m = only_message(daemon, user)
        assert daemon.raw(user, m["id"]) == msg, "BDAT chunks must be concatenated exactly (no unstuffing)"


def test_bdat_is_byte_exact(daemon):
    body = (b"Subject: bytes\r\nFrom: <x@example.test>\r\n\r\n"
            b"NUL:\x00 8bit:\xe9\xff\xfe bare-LF:\nbare-CR:\r"
            b"\r\n.\r\n"  # would end DATA, must not matter for BDAT
            b"..two dots\r\n.single\r\n"
            b"trailing without CRLF")
    with daemon.session() as c:
        t = c.bdat_transaction(SENDER, [ALICE], body, chunk_size=13)
        assert t.mail.code == 250 and [r.code for r in t.rcpts] == [250], t
        assert [r.code for r in t.chunks] == [250] * len(t.chunks), t
        assert_success_stored(t.final[0])
    m = only_message(daemon, "alice")
    assert m["raw_size"] == len(body)
    assert daemon.raw("alice", m["id"]) == body
    assert daemon.show("alice", m["id"])["raw_sha256"] == sha256(body)


def test_size_parameter_over_limit(make_daemon):
    d = make_daemon(users={"alice": [ALICE]}, lmtp={"max_message_bytes": 10000})
    c = lmtp_client(d)
    try:
        c.ehlo()
        code, text = c.mail(SENDER, ["SIZE=10001"])
        assert code == 552 and text.startswith(b"5.3.4"), f"MAIL SIZE=10001 over a 10000 limit: {code} {text!r}"
        code, text = c.mail(SENDER, ["SIZE=10000"])
        assert code == 250, f"MAIL SIZE=10000 (== limit) must be accepted: {code} {text!r}"
        assert c.rset()[0] == 250
        code, text = c.mail(SENDER, ["SIZE=99999999999999999999999"])
        assert 500 <= code < 600, f"absurd SIZE must be refused: {code} {text!r}"
    finally:
        c.close()
    assert d.messages("alice") == []


def test_oversize_by_actual_data(make_daemon):
    d = make_daemon(users={"alice": [ALICE], "bob": [BOB]}, lmtp={"max_message_bytes": 10000})
    big = make_message("too big", "x" * 76 + "\r\n") + (("y" * 76 + "\r\n") * 300).encode()
    assert len(big) > 20000
    with d.session() as c:
        t = c.data_transaction(SENDER, [ALICE, BOB], big)
        assert t.data.code == 354, t
        assert len(t.final) == 2, t
        for r in t.final:
            assert_reply(r, 552, "5.3.4")
        # Same over BDAT.
        t = c.bdat_transaction(SENDER, [ALICE, BOB], big)
        assert len(t.final) == 2, t
        for r in t.final:
            assert_reply(r, 552, "5.3.4")
        # The session continues and a small message still goes through.
        small = make_message("small", "fits\r\n")
        t = c.data_transaction(SENDER, [ALICE], small)
        assert_success_stored(t.final[0])
    assert [m["subject"] for m in d.messages("alice")] == ["small"]
    assert d.messages("bob") == []


def test_rset_clears_transaction(daemon):
    c = lmtp_client(daemon)
    try:
        c.ehlo()
        assert c.mail(SENDER)[0] == 250
        assert c.rcpt(ALICE)[0] == 250
        code, text = c.rset()
        assert code == 250, text
        code, text = c.docmd("DATA")
        assert code == 503 and text.startswith(b"5.5.1"), f"DATA after RSET: {code} {text!r}"
        code, text = c.rcpt(BOB)
        assert code == 503 and text.startswith(b"5.5.1"), f"RCPT after RSET: {code} {text!r}"
        # A fresh transaction after RSET works and only it is delivered.
        assert c.mail(SENDER)[0] == 250
        assert c.rcpt(BOB)[0] == 250
        code, text = c.data(make_message("after rset"))
        assert code == 250, text
        assert c.rset()[0] == 250, "RSET outside a transaction is 250 too"
        assert c.noop()[0] == 250
    finally:
        c.close()
    assert daemon.messages("alice") == []
    assert [m["subject"] for m in daemon.messages("bob")] == ["after rset"]


def test_out_of_order_commands(daemon):
    with daemon.connect() as c:
        assert_reply(c.cmd(f"MAIL FROM:<{SENDER}>"), 503, "5.5.1")  # before LHLO
        assert_reply(c.cmd(f"RCPT TO:<{ALICE}>"), 503, "5.5.1")
        c.lhlo()
        assert_reply(c.cmd(f"RCPT TO:<{ALICE}>"), 503, "5.5.1")  # before MAIL
        assert_reply(c.cmd("DATA"), 503, "5.5.1")  # before MAIL
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert_reply(c.cmd(f"MAIL FROM:<{SENDER}>"), 503, "5.5.1")  # nested MAIL
        assert_reply(c.cmd("DATA"), 503, "5.5.1")  # no recipient at all
        assert_reply(c.cmd(f"RCPT TO:<{NOBODY}>"), 550, "5.1.1")
        assert_reply(c.cmd("DATA"), 503, "5.5.1")  # no *accepted* recipient
        # BDAT with no accepted recipient: 503, and the chunk's bytes are consumed, not run as commands.
        chunk = b"QUIT\r\nRSET\r\n"
        c.send(f"BDAT {len(chunk)} LAST\r\n".encode() + chunk)
        assert_reply(c.reply(), 503, "5.5.1")
        r = c.cmd("NOOP")
        assert r.code == 250, f"the BDAT chunk bytes were interpreted as commands? next reply {r!r}"
        # The session still works.
        assert c.cmd("RSET").code == 250
        t = c.data_transaction(SENDER, [ALICE], make_message("in order"))
        assert_success_stored(t.final[0])
    assert len(daemon.messages("alice")) == 1


@pytest.mark.parametrize("line", [
    b"FOO BAR",
    b"MAIL",
    b"MAIL FROM:",
    b"MAIL FROM:<unterminated@example.test",
    b"RCPT",
    b"BDAT",
    b"BDAT notanumber",
    b"BDAT -5 LAST",
    b"LHLO",
    b"\x00\xff\xfe binary junk",
    b"DATA extra-argument",
])
def test_malformed_commands_get_5xx_and_session_continues(daemon, line):
    with daemon.session() as c:
        if line.startswith(b"RCPT") or line.startswith(b"DATA"):
            assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
            assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        c.settimeout(10)
        r = c.cmd(line)
        assert_5xx(r, f"command {line!r}")
        r = c.cmd("NOOP")
        assert r.code == 250, f"session must continue after {line!r}, NOOP got {r!r}"
        assert c.cmd("QUIT").code == 221


def test_overlong_command_line(daemon):
    with daemon.session() as c:
        c.settimeout(15)
        c.send(b"NOOP " + b"x" * 5000 + b"\r\n")
        r = c.reply()
        assert_5xx(r, "a 5000-byte command line")
        try:
            nxt = c.cmd("NOOP")
        except (EOFError, ConnectionResetError, BrokenPipeError):
            nxt = None  # closing after a 5xx for an overlong line is acceptable
        if nxt is not None:
            assert nxt.code == 250, f"after the overlong-line 5xx the session must be usable or closed: {nxt!r}"
    # A 1 MB line must be refused as well (without the daemon falling over); how early the server
    # answers is not specified, so the line end is sent before reading.
    with daemon.session() as c:
        c.settimeout(30)
        try:
            c.send(b"MAIL FROM:<" + b"X" * 1_000_000 + b"@example.test>\r\n")
            r = c.reply()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            r = None  # closing the connection is an acceptable refusal
        if r is not None:
            assert_5xx(r, "a 1 MB command line")
    with daemon.session() as c:
        assert c.cmd("NOOP").code == 250


def test_noop_and_quit(daemon):
    with daemon.session() as c:
        assert c.cmd("NOOP").code == 250
        assert c.cmd("NOOP ignored argument").code == 250
        q = c.cmd("QUIT")
        assert q.code == 221, q
        assert c.read_until_eof(10) == b"", "server must close after 221"


@pytest.mark.parametrize("mode", ["data-fin", "data-rst", "bdat-fin"])
def test_connection_dropped_mid_transfer(daemon, mode):
    partial = make_message("dropped", "the first half of a message\r\n")
    c = daemon.session()
    assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
    assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
    if mode.startswith("data"):
        assert c.cmd("DATA").code == 354
        c.send(partial)
    else:
        c.send(f"BDAT {len(partial) + 1000} LAST\r\n".encode() + partial)
    if mode == "data-rst":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    # The daemon keeps serving: a complete delivery on a new connection succeeds.
    ok = make_message("complete", "a whole message\r\n")
    with daemon.session() as c2:
        t = c2.data_transaction(SENDER, [ALICE], ok)
        assert_success_stored(t.final[0])
    time.sleep(0.5)  # let the daemon finish tearing down the dropped session
    subjects = [m["subject"] for m in daemon.messages("alice")]
    assert subjects == ["complete"], f"a dropped transfer must store nothing, messages: {subjects}"
    assert daemon.alive()


def test_dot_unstuffing(daemon):
    content = (b"Subject: dots\r\n\r\n"
               b".leading dot\r\n"
               b"..two leading dots\r\n"
               b".\r\n"  # a lone dot line inside the message
               b"...\r\n"
               b"middle . dot\r\n"
               b".\tdot-tab\r\n")
    wire = dot_stuff(content)
    assert b"\r\n...two leading dots\r\n" in wire and b"\r\n..\r\n" in wire
    with daemon.session() as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(wire + b".\r\n")
        assert_success_stored(c.reply())
    # smtplib does its own stuffing; "..x" on the wire must come back as ".x".
    c2 = lmtp_client(daemon)
    try:
        c2.ehlo()
        c2.mail(SENDER)
        c2.rcpt(BOB)
        code, text = c2.data(b"Subject: smtplib dots\r\n\r\n.hello\r\n..world\r\n")
        assert code == 250, text
    finally:
        c2.close()
    assert daemon.raw("alice", only_message(daemon, "alice")["id"]) == content
    assert daemon.raw("bob", only_message(daemon, "bob")["id"]) == \
        b"Subject: smtplib dots\r\n\r\n.hello\r\n..world\r\n"


def test_smuggling_bare_lf_dot_does_not_end_data(daemon):
    smuggled = (b"Subject: smuggling\r\nFrom: <sender@example.test>\r\n\r\n"
                b"innocent text\n.\nMAIL FROM:<evil@example.test>\r\n"
                b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: SMUGGLED-1\r\n\r\nevil\r\n"
                b"more\n.\r\nRCPT TO:<carol@example.test>\r\n"
                b"tail text\r\n")
    with daemon.session() as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(smuggled) + b".\r\nNOOP\r\n")
        r = c.reply()
        assert_success_stored(r)
        nxt = c.reply()
        assert nxt.code == 250, f"exactly one reply per recipient, then the NOOP's: {nxt!r}"
        assert c.cmd("NOOP").code == 250
    m = only_message(daemon, "alice")
    assert daemon.raw("alice", m["id"]) == smuggled, "the message must be stored whole, bare LFs included"
    assert daemon.messages("bob") == [] and daemon.messages("carol") == [], "smuggled commands were executed"


def test_smuggling_cr_lf_dot_lf_does_not_end_data(daemon):
    # "<CRLF>.<LF>" is the classic variant. How the odd dot line is unstuffed is ambiguous, so only
    # assert that DATA did not end there and nothing after it ran as a command.
    body = (b"Subject: smuggling 2\r\n\r\nbefore\r\n.\nMAIL FROM:<evil@example.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\nDATA\r\nSMUGGLED-MARKER\r\n")
    with daemon.session() as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(body + b".\r\n")
        assert_success_stored(c.reply())
        assert c.cmd("NOOP").code == 250
    m = only_message(daemon, "alice")
    raw = daemon.raw("alice", m["id"])
    assert b"SMUGGLED-MARKER\r\n" in raw and raw.endswith(b"SMUGGLED-MARKER\r\n"), raw
    assert daemon.messages("bob") == []


def test_data_keeps_nul_8bit_and_bare_lf(daemon):
    content = (b"Subject: =?utf-8?q?caf=C3=A9?=\r\nFrom: <x@example.test>\r\n\r\n"
               b"nul:\x00 latin1:\xe9 utf8:\xc3\xa9 high:\xff\r\n"
               b"bare lf\nbare cr\rend\r\n")
    with daemon.session() as c:
        t = c.data_transaction(SENDER, [ALICE], content, mail_params="BODY=8BITMIME")
        assert t.mail.code == 250, t
        assert_success_stored(t.final[0])
    m = only_message(daemon, "alice")
    assert daemon.raw("alice", m["id"]) == content
    assert m["raw_size"] == len(content)


def test_null_reverse_path_is_accepted(daemon):
    msg = make_message("bounce", "Delivery status notification.\r\n")
    with daemon.session() as c:
        t = c.data_transaction("", [ALICE], msg)
        assert t.mail.code == 250, f"MAIL FROM:<> (bounces) must be accepted: {t!r}"
        assert_success_stored(t.final[0])
    m = only_message(daemon, "alice")
    assert daemon.show("alice", m["id"])["envelope"]["mail_from"] in (None, ""), "null reverse-path"


def test_enhanced_status_codes_on_transaction_replies(daemon):
    with daemon.session() as c:
        replies = [c.cmd(f"MAIL FROM:<{SENDER}>"), c.cmd(f"RCPT TO:<{ALICE}>"), c.cmd(f"RCPT TO:<{NOBODY}>"),
                   c.cmd("RSET"), c.cmd("NOOP")]
        for r in replies:
            assert r.enhanced is not None, f"ENHANCEDSTATUSCODES advertised but reply lacks one: {r!r}"
            assert r.enhanced[0] == str(r.code)[0], f"enhanced class must match reply class: {r!r}"


def test_lhlo_again_resets_transaction(daemon):
    """RFC 5321 4.1.4 (LHLO is LMTP's EHLO): a repeated LHLO clears the transaction like RSET."""
    with daemon.session() as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        assert c.cmd("LHLO again.example.test").code == 250
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        t = c.data_transaction(SENDER, [BOB], make_message("after second lhlo"))
        assert_success_stored(t.final[0])
    assert daemon.messages("alice") == []
    assert len(daemon.messages("bob")) == 1


@pytest.mark.parametrize("mode", ["data", "bdat"])
def test_message_size_boundary(make_daemon, mode):
    """Exactly max_message_bytes stored bytes are accepted; one more byte is 552 5.3.4."""
    limit = 5000
    d = make_daemon(users={"alice": [ALICE]}, lmtp={"max_message_bytes": limit})
    head = b"Subject: boundary\r\n\r\n"

    def sized(n: int, tag: bytes) -> bytes:
        body = b"." * 10 + tag + b"\r\n"  # leading dots: the limit applies to unstuffed bytes
        filler = n - len(head) - len(body) - 2
        return head + body + b"y" * filler + b"\r\n"

    exact, over = sized(limit, b"exact"), sized(limit + 1, b"over")
    assert len(exact) == limit and len(over) == limit + 1
    with d.session() as c:
        for content, want in ((exact, 250), (over, 552)):
            if mode == "data":
                t = c.data_transaction(SENDER, [ALICE], content)
            else:
                t = c.bdat_transaction(SENDER, [ALICE], content)
            assert t.final and t.final[0].code == want, f"{len(content)} bytes with limit {limit}: {t!r}"
            if want == 552:
                assert t.final[0].enhanced == "5.3.4", t
    msgs = d.messages("alice")
    assert len(msgs) == 1 and d.raw("alice", msgs[0]["id"]) == exact
