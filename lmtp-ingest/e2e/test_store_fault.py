"""Storage failures: a failed store is a per-recipient 451 4.3.0 with nothing half-written."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from palisade_e2e import make_message

pytestmark = pytest.mark.embedded_only

TABLES = ("raw_messages", "messages", "jobs")


def db(d) -> sqlite3.Connection:
    path = d.data_dir / "palisade.sqlite3"
    assert path.is_file(), f"store not found at {path}"
    return sqlite3.connect(path, timeout=60, isolation_level=None)


def id_forms(user_id: str) -> list:
    u = uuid.UUID(user_id)
    return [str(u), str(u).upper(), u.hex, u.hex.upper(), u.bytes]


def rows_for(d, user_id: str) -> dict[str, int]:
    forms = id_forms(user_id)
    marks = ",".join("?" * len(forms))
    con = db(d)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t} WHERE user_id IN ({marks})", forms).fetchone()[0]
                for t in TABLES}
    finally:
        con.close()


def test_store_fault_is_451_and_leaves_nothing(daemon):
    d = daemon
    alice = d.users["alice"]["id"]
    # A first delivery, so the store is in use and the daemon is warm.
    with d.session() as c:
        t = c.data_transaction("s@example.test", ["bob@example.test"], make_message("warm-up"))
        assert t.final[0].code == 250, t
    msg = make_message("fault", "This delivery hits an injected store fault.\r\n")

    con = db(d)
    con.execute("CREATE TRIGGER palisade_test_fault BEFORE INSERT ON messages "
                "BEGIN SELECT RAISE(ABORT, 'injected store fault'); END;")
    try:
        with d.session() as c:
            t = c.data_transaction("s@example.test", ["alice@example.test"], msg)
            assert len(t.final) == 1, t
            r = t.final[0]
            assert r.code == 451 and r.enhanced == "4.3.0", f"store failure must be 451 4.3.0, got {r!r}"
            assert c.cmd("NOOP").code == 250, "the session must survive a store failure"
        assert d.alive(), "daemon died on a store fault"
        assert rows_for(d, alice) == {t: 0 for t in TABLES}, f"half-written rows: {rows_for(d, alice)}"
        assert d.messages("alice") == []
    finally:
        con.execute("DROP TRIGGER IF EXISTS palisade_test_fault")
        con.close()

    with d.session() as c:
        t = c.data_transaction("s@example.test", ["alice@example.test"], msg)
        assert t.final[0].code == 250, f"after DROP TRIGGER the same delivery must succeed: {t!r}"
    listed = d.messages("alice")
    assert [m["subject"] for m in listed] == ["fault"]
    assert d.raw("alice", listed[0]["id"]) == msg
    counts = rows_for(d, alice)
    assert counts["raw_messages"] >= 1 and counts["messages"] == 1, \
        f"rows after the successful retry (also validates the user_id lookup used above): {counts}"


def test_store_fault_for_one_recipient_only(daemon):
    """A fault that hits one user's insert: that recipient gets 451, the other 250 in the same transaction."""
    d = daemon
    alice, bob = d.users["alice"]["id"], d.users["bob"]["id"]
    with d.session() as c:  # puts rows for bob in place so the user_id representation can be checked
        t = c.data_transaction("s@example.test", ["bob@example.test"], make_message("warm-up"))
        assert t.final[0].code == 250, t
    assert rows_for(d, bob)["messages"] == 1, "cannot match the user_id column; test cannot target one user"

    forms = id_forms(alice)
    con = db(d)
    literal = " OR ".join(["NEW.user_id = " + (f"X'{f.hex()}'" if isinstance(f, bytes) else f"'{f}'")
                           for f in forms])
    con.execute(f"CREATE TRIGGER palisade_test_fault BEFORE INSERT ON messages WHEN {literal} "
                "BEGIN SELECT RAISE(ABORT, 'injected store fault'); END;")
    msg = make_message("half fault")
    try:
        with d.session() as c:
            t = c.data_transaction("s@example.test", ["alice@example.test", "bob@example.test"], msg)
            assert [r.code for r in t.final] == [451, 250], f"per-recipient replies in RCPT order: {t!r}"
            assert t.final[0].enhanced == "4.3.0", t
    finally:
        con.execute("DROP TRIGGER IF EXISTS palisade_test_fault")
        con.close()
    assert rows_for(d, alice) == {t: 0 for t in TABLES}
    assert "half fault" in [m["subject"] for m in d.messages("bob")]
    assert d.messages("alice") == []
