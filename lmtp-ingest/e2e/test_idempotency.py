"""Redelivery of identical bytes is harmless: one message per user, still 250."""

from __future__ import annotations

from palisade_e2e import make_message


def test_same_bytes_same_user_twice_is_one_message(daemon):
    msg = make_message("twice", "Delivered twice.\r\n")
    with daemon.session() as c:
        t1 = c.data_transaction("s@example.test", ["alice@example.test"], msg)
        t2 = c.bdat_transaction("s@example.test", ["alice@example.test"], msg)
        assert t1.final[0].code == 250 and t2.final[0].code == 250, (t1, t2)
    with daemon.session() as c:  # and over a new connection
        t3 = c.data_transaction("other@example.test", ["alice@example.test"], msg)
        assert t3.final[0].code == 250, t3
    msgs = daemon.messages("alice")
    assert len(msgs) == 1, f"identical redelivery must leave one message, got {len(msgs)}"
    assert daemon.raw("alice", msgs[0]["id"]) == msg


def test_same_bytes_two_users_one_each(daemon):
    msg = make_message("shared", "Same bytes, two mailboxes.\r\n")
    with daemon.session() as c:
        t = c.data_transaction("s@example.test", ["alice@example.test", "bob@example.test"], msg)
        assert [r.code for r in t.final] == [250, 250], t
        t = c.data_transaction("s@example.test", ["bob@example.test"], msg)
        assert [r.code for r in t.final] == [250], t
    a, b = daemon.messages("alice"), daemon.messages("bob")
    assert len(a) == 1 and len(b) == 1, (a, b)
    assert a[0]["id"] != b[0]["id"], "message ids must be per user"
    assert daemon.raw("alice", a[0]["id"]) == msg and daemon.raw("bob", b[0]["id"]) == msg
    # Deleting/flagging is out of scope; one user's copy must not be visible to the other.
    r = daemon.admin_run("message", "show", "--user", "bob", a[0]["id"])
    assert r.returncode != 0, "bob can read alice's message id"


def test_two_addresses_of_one_user_in_one_transaction(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test", "alias@example.test"]})
    msg = make_message("alias", "To both of alice's addresses.\r\n")
    with d.session() as c:
        t = c.data_transaction("s@example.test", ["alice@example.test", "alias@example.test"], msg)
        assert [r.code for r in t.rcpts] == [250, 250], t
        assert [r.code for r in t.final] == [250, 250], f"one reply per accepted recipient: {t!r}"
    assert len(d.messages("alice")) == 1
    assert len(d.messages("alias@example.test")) == 1
