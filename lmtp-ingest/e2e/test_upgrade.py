"""Upgrading a keyspace: mail delivered by an older Palisade, whose Cassandra lists were not
partitioned by month (before schema version 6) and whose discussion rows shared a partition
per user (before version 7), shows through the API of the current one, with its read marks
and tags, once `palisade-admin migrate` has run.

Distributed only, and it needs the older binaries: `devtools/test` builds the commit named in
devtools/upgrade-from (the last before the month partitions) with `devtools/old-binaries` and
points PALISADE_OLD_BIN_DIR at them. By hand:

    PALISADE_OLD_BIN_DIR="$(devtools/old-binaries)" python3 -m pytest lmtp-ingest/e2e/test_upgrade.py

Without it the test fails rather than skips, on the distributed backend: an upgrade test
nobody runs looks exactly like one that passes.

On the embedded backend `palisade-admin migrate` only opens the database (SQLite applies its
migrations on every open); that is checked here too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import palisade_e2e
from api_helpers import PASSWORD, deliver, message, wait_indexed, wait_until
from palisade_e2e import BACKEND

OLD_BIN_DIR = os.environ.get("PALISADE_OLD_BIN_DIR")


def old_binaries() -> tuple[Path, Path]:
    if not OLD_BIN_DIR:
        pytest.fail("PALISADE_OLD_BIN_DIR is not set; see this file's docstring", pytrace=False)
    daemon, admin = Path(OLD_BIN_DIR) / "lmtp-ingest", Path(OLD_BIN_DIR) / "palisade-admin"
    for b in (daemon, admin):
        if not (b.is_file() and os.access(b, os.X_OK)):
            pytest.fail(f"old binary missing: {b}", pytrace=False)
    return daemon, admin


def thread(i: int, reply_to: int | None = None) -> str:
    subject = "Upgrade trip" if i == 0 or reply_to is not None else f"Standalone {i}"
    if reply_to is not None:
        subject = f"Re: {subject}"
    return message(subject, msg_id=f"upgrade{i}@remote.test",
                   refs=f"upgrade{reply_to}@remote.test" if reply_to is not None else None,
                   body=f"upgrade body {i}", date=f"Mon, 02 Mar 2026 10:0{i}:00 +0000")


def discussions(client) -> list[dict]:
    r = client.get("/discussions?limit=100")
    assert r.status == 200, r
    return r.json()["items"]


@pytest.mark.distributed_only
def test_old_keyspace_shows_its_mail_after_migrate(make_daemon, monkeypatch):
    old_daemon, old_admin = old_binaries()
    new_daemon, new_admin = palisade_e2e.DAEMON_BIN, palisade_e2e.ADMIN_BIN

    # The older Palisade creates the keyspace and takes mail: a thread of two and one alone.
    monkeypatch.setattr(palisade_e2e, "DAEMON_BIN", old_daemon)
    monkeypatch.setattr(palisade_e2e, "ADMIN_BIN", old_admin)
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    deliver(d, "alice@example.test", thread(0))
    deliver(d, "alice@example.test", thread(1, reply_to=0))
    deliver(d, "alice@example.test", thread(2))
    alice = d.login("alice@example.test", PASSWORD)
    listed = wait_until("the old daemon to list both discussions",
                        lambda: len(ds := discussions(alice)) == 2 and ds)
    # Something in the old discussion rows' id sets: the standalone read, the thread tagged.
    alone = next(x for x in listed if x["subject"] == "Standalone 2")
    trip = next(x for x in listed if x["subject"] == "Upgrade trip")
    assert alice.patch(f"/discussions/{alone['id']}/flags", {"seen": True}).status == 200
    tag = alice.post("/tags", {"name": "trip"})
    assert tag.status == 201, tag
    tag_id = tag.json()["id"]
    r = alice.post(f"/discussions/{trip['id']}/tags", {"add": [tag_id], "remove": []})
    assert r.status == 200, r
    before = discussions(alice)
    assert [x["unread_count"] for x in before if x["id"] == alone["id"]] == [0]
    assert [[t["id"] for t in x["tags"]] for x in before if x["id"] == trip["id"]] == [[tag_id]]
    wait_indexed(alice)
    d.terminate()

    # The current Palisade on the same keyspace: its lists are empty until the backfill.
    monkeypatch.setattr(palisade_e2e, "DAEMON_BIN", new_daemon)
    monkeypatch.setattr(palisade_e2e, "ADMIN_BIN", new_admin)
    d.start()
    alice = d.login("alice@example.test", PASSWORD)
    assert discussions(alice) == [], "the old lists are not read: the test needs the backfill"

    r = d.admin_run("migrate")
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    report = json.loads(r.stdout)
    assert report["backend"] == "cassandra"
    assert report["applied"] == 0, "the daemon applied the schema migration when it started"
    backfill = report["backfill"]
    assert {k: backfill[k] for k in ("users", "messages", "discussions", "discussion_rows",
                                     "recounted")} == \
        {"users": 1, "messages": 3, "discussions": 2, "discussion_rows": 2, "recounted": 1}
    assert backfill["thread_keys"] >= 3, "at least each message's own Message-ID"
    assert b"migrate: alice done" in r.stderr, "progress on stderr"

    after = discussions(alice)
    # JSON, not its bytes: an object's key order is not part of what the user was shown.
    key = lambda ds: sorted((x["id"], x["subject"], x["message_count"], x["unread_count"],
                             json.dumps(x["tags"], sort_keys=True),
                             json.dumps(x["participants"], sort_keys=True),
                             x["last_activity"])
                            for x in ds)
    assert key(after) == key(before), "the old discussions, as the old daemon showed them"
    trip = next(x for x in after if x["subject"] == "Upgrade trip")
    assert trip["message_count"] == 2 and trip["unread_count"] == 2
    msgs = alice.get(f"/discussions/{trip['id']}/messages").json()["items"]
    assert len(msgs) == 2
    assert len(alice.get("/messages?limit=100").json()["items"]) == 3
    # The watermark counts the old mail, which the old daemon indexed.
    status = wait_indexed(alice)
    assert status["indexed"] == 3

    # New mail threads into the old discussion and is counted once.
    deliver(d, "alice@example.test", thread(3, reply_to=1))
    wait_until("the reply to join the old discussion",
               lambda: next(x for x in discussions(alice) if x["id"] == trip["id"])["message_count"] == 3)
    assert wait_indexed(alice)["indexed"] == 4

    # Running it again changes nothing.
    listed = discussions(alice)
    again = d.admin("migrate")
    assert again["applied"] == 0
    assert again["backfill"]["recounted"] == 0
    assert again["backfill"]["discussion_rows"] == 0, "every discussion row already copied"
    assert key(discussions(alice)) == key(listed)
    assert len(listed) == 2
    assert wait_indexed(alice)["indexed"] == 4


@pytest.mark.embedded_only
def test_migrate_on_embedded_opens_the_database(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]})
    deliver(d, "alice@example.test", thread(0))
    d.terminate()
    report = d.admin("migrate")
    assert report == {"backend": "sqlite", "applied": 0, "backfill": None}
    assert len(d.messages("alice")) == 1
