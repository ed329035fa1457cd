"""`palisade-admin import`: an mbox or a Maildir brought into a mailbox through the delivery
path, on both backends.

A sample of the corpus (ordinary and tricky, including the messages with no header section)
is written as an mboxrd file with a message over the size limit and a body full of `From `
lines. The import stores each message byte for byte (sha256 through the API's raw download),
lists and indexes it, reports the oversized message and the unparsable ones (stored raw all
the same), and a second import stores nothing twice. A Maildir keeps its flags.
"""

from __future__ import annotations

import csv
import json
import hashlib
import re
import uuid

import pytest

from api_helpers import PASSWORD, wait_indexed, walk
from palisade_e2e import CORPUS_DIR

SAMPLE = 60
LIMIT = 2 * 1024 * 1024  # lmtp.max_message_bytes for these daemons
ESCAPE = re.compile(rb"^(>*From )", re.M)


def corpus_sample() -> list[bytes]:
    """Every nth corpus message, plus every one with no header section."""
    with open(CORPUS_DIR / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    step = max(1, len(rows) // SAMPLE)
    picked = rows[::step][:SAMPLE]
    raws = [(CORPUS_DIR / r["file"]).read_bytes() for r in picked]
    headless = [(CORPUS_DIR / r["file"]).read_bytes() for r in rows
                if r not in picked and b":" not in (CORPUS_DIR / r["file"]).read_bytes().split(b"\n", 1)[0]]
    return [r if r.endswith(b"\n") else r + b"\n" for r in raws + headless[:3]]


def mboxrd(messages: list[bytes]) -> bytes:
    out = bytearray()
    for i, raw in enumerate(messages):
        out += f"From sender{i}@old.test Thu Nov 12 10:{i % 60:02d}:00 2026\n".encode()
        out += ESCAPE.sub(rb">\1", raw) + b"\n"
    return bytes(out)


@pytest.fixture
def daemon(make_daemon):
    d = make_daemon(lmtp={"max_message_bytes": LIMIT, "max_in_flight_bytes": 4 * LIMIT})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    return d


def listed(client) -> list[dict]:
    return walk(client, "/messages", limit=100)


def test_an_mbox_is_imported_byte_for_byte_once_and_searchable(daemon, tmp_path):
    token = uuid.uuid4().hex
    quoting = (f"From: a@old.test\nSubject: quoting {token}\n\n"
               "From the start of a line\n>From quoted once\n>>From quoted twice\n").encode()
    sample = corpus_sample() + [quoting]
    oversized = b"Subject: too big\n\n" + b"x" * (LIMIT + 10) + b"\n"
    path = tmp_path / "old.mbox"
    path.write_bytes(mboxrd(sample[:10] + [oversized] + sample[10:]))

    report = daemon.admin("import", "--user", "alice", path)
    distinct = {hashlib.sha256(m).hexdigest() for m in sample}
    assert report["messages"] == len(sample) + 1, report
    assert report["stored"] == len(sample) and report["too_large"] == 1, report
    assert report["unparsable"] >= 1, "the corpus's messages with no header section are reported"
    assert any("size limit" in p["problem"] for p in report["problems"]), report["problems"]
    assert any("stored raw" in p["problem"] for p in report["problems"]), report["problems"]

    c = daemon.login("alice@example.test", PASSWORD)
    items = listed(c)
    assert len(items) == len(distinct)
    stored = set()
    for m in items:
        r = c.get(f"/messages/{m['id']}/raw")
        assert r.status == 200, r
        stored.add(hashlib.sha256(r.body).hexdigest())
    assert stored == distinct, "every message byte for byte, the mbox escaping undone"
    wait_indexed(c)
    hits = c.get(f"/search?q={token}").json()["items"]
    assert len(hits) == 1 and hits[0]["subject"] == f"quoting {token}", hits

    again = daemon.admin("import", "--user", "alice", path)
    assert again["stored"] == len(sample), again
    assert len(listed(c)) == len(distinct), "a second import stores nothing twice"


def test_a_maildir_keeps_its_flags(daemon, tmp_path):
    root = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp", ".Archive/cur"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1700000000.M1P1.host").write_bytes(b"Subject: unread\nFrom: a@old.test\n\nx\n")
    (root / "cur" / "1700000100.M2P1.host:2,FS").write_bytes(b"Subject: starred\nFrom: a@old.test\n\nx\n")
    (root / ".Archive" / "cur" / "1600000000.M3P1.host:2,RS").write_bytes(
        b"Subject: answered\nFrom: a@old.test\n\nx\n")
    (root / "tmp" / "1700000200.M4P1.host").write_bytes(b"Subject: half delivered\n\nx\n")

    report = daemon.admin("import", "--user", "alice", root)
    assert (report["messages"], report["stored"]) == (3, 3), report
    c = daemon.login("alice@example.test", PASSWORD)
    flags = {m["subject"]: m["flags"] for m in listed(c)}
    assert set(flags) == {"unread", "starred", "answered"}, flags
    assert not flags["unread"]["seen"]
    assert flags["starred"]["seen"] and flags["starred"]["flagged"]
    assert flags["answered"]["seen"] and flags["answered"]["answered"]


def test_a_missing_or_unreadable_source_is_a_clear_error(daemon, tmp_path):
    r = daemon.admin_run("import", "--user", "alice", tmp_path / "nope.mbox")
    assert r.returncode != 0 and b"nope.mbox" in r.stderr, r.stderr
    r = daemon.admin_run("import", "--user", "nobody", tmp_path)
    assert r.returncode != 0 and b"nobody" in r.stderr, r.stderr


def state(client) -> dict[str, tuple]:
    """Each message by the sha256 of its raw bytes: its flags and tag names."""
    out = {}
    for m in listed(client):
        view = client.get(f"/messages/{m['id']}").json()
        raw = client.get(f"/messages/{m['id']}/raw").body
        flags = {k: v for k, v in view["flags"].items()}
        out[hashlib.sha256(raw).hexdigest()] = (flags, sorted(t["name"] for t in view.get("tags", [])))
    return out


def test_export_then_import_into_a_fresh_account_gives_the_same_mailbox(daemon, tmp_path):
    """The round trip of data ownership: messages (sha256), flags and tags come back."""
    daemon.add_user("bob", "bob@example.test", password=PASSWORD)
    sample = corpus_sample()[:25] + [b"Subject: no final newline\n\nends here"]
    path = tmp_path / "in.mbox"
    path.write_bytes(mboxrd(sample))
    daemon.admin("import", "--user", "alice", path)
    alice = daemon.login("alice@example.test", PASSWORD)
    items = listed(alice)
    work = alice.post("/tags", {"name": "work", "colour": "#112233"}).json()
    later = alice.post("/tags", {"name": "later"}).json()
    for i, m in enumerate(items[:8]):
        assert alice.patch(f"/messages/{m['id']}/flags",
                           {"seen": i % 2 == 0, "flagged": i % 3 == 0, "answered": i == 4}).status == 200
        tags = [work["id"]] + ([later["id"]] if i % 2 else [])
        assert alice.put(f"/messages/{m['id']}/tags", {"tags": tags}).status == 200
    before = state(alice)

    out = tmp_path / "export"
    summary = daemon.admin("export", "--user", "alice", "--dir", out)
    assert summary["messages"] == len(items), summary
    assert (out / "mailbox.mbox").stat().st_size > 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["format"] == "palisade-export/1" and len(meta["messages"]) == len(items)
    assert {t["name"]: t["colour"] for t in meta["tags"]} == {"work": "#112233", "later": None}

    report = daemon.admin("import", "--user", "bob", out)
    assert report["restored"] == len(items) == report["stored"], report
    bob = daemon.login("bob@example.test", PASSWORD)
    assert state(bob) == before
    colours = {t["name"]: t.get("colour") for t in bob.get("/tags").json()}
    assert colours == {"work": "#112233", "later": None}
    wait_indexed(bob)
    assert bob.get("/search?tag=work").status == 200


def test_the_mailbox_downloads_from_the_api_and_imports_elsewhere(daemon, tmp_path):
    daemon.add_user("carol", "carol@example.test", password=PASSWORD)
    path = tmp_path / "in.mbox"
    path.write_bytes(mboxrd(corpus_sample()[:15]))
    daemon.admin("import", "--user", "alice", path)
    alice = daemon.login("alice@example.test", PASSWORD)
    first = listed(alice)[0]
    assert alice.patch(f"/messages/{first['id']}/flags", {"flagged": True}).status == 200

    assert daemon.client().get("/me/export/mailbox.mbox").status == 401
    mbox = alice.get("/me/export/mailbox.mbox")
    meta = alice.get("/me/export/metadata.json")
    assert mbox.status == 200 and meta.status == 200, (mbox, meta)
    assert mbox.headers.get("content-type", "").startswith("application/mbox"), mbox.headers
    assert "attachment" in mbox.headers.get("content-disposition", ""), mbox.headers
    out = tmp_path / "download"
    out.mkdir()
    (out / "mailbox.mbox").write_bytes(mbox.body)
    (out / "metadata.json").write_bytes(meta.body)
    assert len(json.loads(meta.body)["messages"]) == len(listed(alice))

    report = daemon.admin("import", "--user", "carol", out)
    assert report["restored"] == report["stored"] == len(listed(alice)), report
    assert state(daemon.login("carol@example.test", PASSWORD)) == state(alice)
