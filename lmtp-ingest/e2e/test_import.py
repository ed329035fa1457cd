"""`palisade-admin import` and the API's `POST /me/import`: an mbox or a Maildir brought into a
mailbox through the delivery path, on both backends.

A sample of the corpus (ordinary and tricky, including the messages with no header section)
is written as an mboxrd file with a message over the size limit and a body full of `From `
lines. The import stores each message byte for byte (sha256 through the API's raw download),
lists and indexes it, reports the oversized message and the unparsable ones (stored raw all
the same), and a second import stores nothing twice. A Maildir keeps its flags. Through the
API: an export downloaded from one account and uploaded to a fresh one gives the same mailbox,
bad uploads get 4xx with a reason (401, 400, 413, 415) and leave no file behind, and a second
import while one runs gets 429.
"""

from __future__ import annotations

import csv
import json
import hashlib
import os
import re
import socket
import uuid

import pytest

from api_helpers import PASSWORD, wait_indexed, wait_until, walk
from palisade_e2e import CORPUS_DIR, HOST

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


# Through the API --------------------------------------------------------------------------------
# `POST /me/import` takes the mbox (alone, or as a multipart form with the export's metadata),
# spools it to disk, and imports it in the background; `GET /me/imports/{id}` tells how far.

IMPORT_LIMIT = 256 * 1024  # api.max_import_bytes for the limits test


def form(parts: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body with one file part per name, as a browser's FormData."""
    boundary = "palisade-" + uuid.uuid4().hex
    body = b""
    for name, data in parts.items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                 f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        body += data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(client, mbox: bytes, metadata: bytes | None = None, query: str = ""):
    if metadata is None:
        return client.request("POST", "/me/import" + query, mbox,
                              headers={"Content-Type": "application/mbox"})
    body, content_type = form({"mailbox": mbox, "metadata": metadata})
    return client.request("POST", "/me/import" + query, body, headers={"Content-Type": content_type})


def finished(client, started) -> dict:
    """Polls the import's status (at its Location) until it is no longer running."""
    assert started.status == 202, started
    first = started.json()
    assert first["state"] == "running" and first["bytes_total"] > 0, first
    location = started.headers["location"]
    assert location == f"/api/v1/me/imports/{first['id']}", started.headers

    def ended():
        r = client.get(location)
        assert r.status == 200, r
        s = r.json()
        assert s["bytes_read"] <= s["bytes_total"] and s["stored"] <= s["messages"], s
        return s if s["state"] != "running" else None
    return wait_until("the import to end", ended)


def spool_files(d) -> list[str]:
    """The daemon's open files in its spool directory: an upload being received or imported
    (unnamed files, so only /proc shows them)."""
    spool = str(d.data_dir / "spool")
    out = []
    for fd in os.listdir(f"/proc/{d.proc.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{d.proc.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(spool + "/"):
            out.append(target)
    return out


def test_the_api_imports_an_api_export_into_a_fresh_account(daemon, tmp_path):
    """Export through the API's downloads, import through its upload: the same messages
    (sha256), flags and tags, and the unparsable ones reported and stored raw."""
    daemon.add_user("dora", "dora@example.test", password=PASSWORD)
    sample = corpus_sample()[:20] + corpus_sample()[-3:]
    path = tmp_path / "in.mbox"
    path.write_bytes(mboxrd(sample))
    daemon.admin("import", "--user", "alice", path)
    alice = daemon.login("alice@example.test", PASSWORD)
    items = listed(alice)
    work = alice.post("/tags", {"name": "work", "colour": "#112233"}).json()
    for i, m in enumerate(items[:5]):
        assert alice.patch(f"/messages/{m['id']}/flags", {"seen": i % 2 == 0, "flagged": i == 1}).status == 200
        assert alice.put(f"/messages/{m['id']}/tags", {"tags": [work["id"]]}).status == 200
    before = state(alice)
    mbox = alice.get("/me/export/mailbox.mbox")
    meta = alice.get("/me/export/metadata.json")
    assert mbox.status == 200 and meta.status == 200, (mbox, meta)

    dora = daemon.login("dora@example.test", PASSWORD)
    report = finished(dora, upload(dora, mbox.body, meta.body))
    assert report["state"] == "done" and report["error"] is None, report
    assert report["with_metadata"] and report["bytes_read"] == report["bytes_total"] == len(mbox.body), report
    assert report["messages"] == report["stored"] == report["restored"] == len(items), report
    assert report["unparsable"] >= 1, "the corpus's messages with no header section"
    assert all(p["problem"].startswith("stored raw") for p in report["problems"]), report
    assert len(report["problems"]) == report["unparsable"], report
    assert state(dora) == before, "same sha256 set, flags and tags"
    wait_indexed(dora)
    assert dora.get("/search?tag=work").json()["items"], "tags searchable"
    # The report stays readable, by its owner only.
    assert dora.get(f"/me/imports/{report['id']}").json()["state"] == "done"
    assert alice.get(f"/me/imports/{report['id']}").status == 404
    assert dora.get(f"/me/imports/{uuid.uuid4()}").status == 404
    wait_until("the spooled upload to be removed", lambda: not spool_files(daemon))


def test_the_api_imports_a_plain_mbox_and_reports_what_it_could_not_parse(daemon):
    token = uuid.uuid4().hex
    broken = f"Subject: broken {token}\nContent-Type: multipart/mixed\n\nno boundary at all\n".encode()
    headless = b"\x00\x01 not a header\n\njust bytes\n"
    oversized = b"Subject: too big\n\n" + b"x" * (LIMIT + 10) + b"\n"
    quoting = f"Subject: quoting {token}\n\n>From quoted once\nFrom bare\n".encode()
    mbox = mboxrd([quoting, headless, oversized, broken])
    c = daemon.login("alice@example.test", PASSWORD)
    report = finished(c, upload(c, mbox))
    assert report["state"] == "done" and not report["with_metadata"], report
    assert (report["messages"], report["stored"], report["too_large"]) == (4, 3, 1), report
    assert report["unparsable"] >= 1, report
    assert any("size limit" in p["problem"] for p in report["problems"]), report
    raw = {hashlib.sha256(c.get(f"/messages/{m['id']}/raw").body).hexdigest() for m in listed(c)}
    assert hashlib.sha256(headless).hexdigest() in raw, "stored raw all the same"
    assert hashlib.sha256(quoting).hexdigest() in raw, "the mboxrd escaping undone"
    # mboxo reads `>From ` as an escaped `From `: a different message.
    again = finished(c, upload(c, mboxrd([quoting]), query="?format=mboxo"))
    assert again["format"] == "mboxo" and again["stored"] == 1, again
    assert len(listed(c)) == 4


@pytest.fixture
def small(make_daemon):
    d = make_daemon(api={"max_import_bytes": IMPORT_LIMIT})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    return d


def test_the_api_import_refuses_bad_uploads_with_a_reason(small, tmp_path):
    c = small.login("alice@example.test", PASSWORD)
    mbox = mboxrd([b"Subject: one\n\nbody\n"])
    assert small.client().request("POST", "/me/import", mbox,
                                  headers={"Content-Type": "application/mbox"}).status == 401
    assert small.client().get(f"/me/imports/{uuid.uuid4()}").status == 401

    over = upload(c, mboxrd([b"Subject: big\n\n" + b"y" * IMPORT_LIMIT]))
    assert over.status == 413 and "api.max_import_bytes" in over.json()["message"], over
    for bad, reason in [(b"", "empty"), (b"Subject: an eml\n\nbody\n", "From"),
                        (b"PK\x03\x04zip", "From")]:
        r = upload(c, bad)
        assert r.status == 400 and reason in r.json()["message"], (bad, r)
    r = upload(c, mbox, query="?format=mbox7")
    assert r.status == 400, r
    r = upload(c, mbox, metadata=b"{not json")
    assert r.status == 400 and r.json()["message"].startswith("metadata:"), r
    body, content_type = form({"mailbox": mbox, "photo": b"x"})
    r = c.request("POST", "/me/import", body, headers={"Content-Type": content_type})
    assert r.status == 400 and "photo" in r.json()["message"], r
    r = c.request("POST", "/me/import", b"{}", headers={"Content-Type": "application/json"})
    assert r.status == 415, r
    assert not spool_files(small), "refused uploads leave no file behind"
    assert listed(c) == []


def start_upload(d, token: str, mbox: bytes) -> socket.socket:
    """Sends the headers and the first half of an mbox upload to `d`, and waits until the
    daemon is spooling it: its import has begun, and it waits for the rest."""
    s = socket.create_connection((HOST, d.api_port), timeout=60)
    s.sendall((f"POST /api/v1/me/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: application/mbox\r\nContent-Length: {len(mbox)}\r\n"
               "Connection: close\r\n\r\n").encode() + mbox[:len(mbox) // 2])
    wait_until("the upload to be spooling", lambda: spool_files(d))
    return s


def end_upload(s: socket.socket, mbox: bytes) -> dict:
    """Sends the rest of the upload; the 202's body."""
    with s:
        s.sendall(mbox[len(mbox) // 2:])
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 202"), answer[:500]
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def ended(client, import_id: str) -> dict:
    def done():
        r = client.get(f"/me/imports/{import_id}")
        assert r.status == 200, r
        return r.json() if r.json()["state"] != "running" else None
    return wait_until("the import to end", done)


def test_a_second_import_while_one_runs_gets_429(small):
    """The first upload is held half sent: its import has begun (its file is open in the spool),
    so a second one for the same user is refused at once; then the first completes."""
    c = small.login("alice@example.test", PASSWORD)
    mbox = mboxrd([f"Subject: first {i}\n\nbody\n".encode() for i in range(50)])
    first = start_upload(small, c.token, mbox)
    second = upload(c, mboxrd([b"Subject: second\n\nbody\n"]))
    assert second.status == 429 and second.json()["error"] == "busy", second
    assert int(second.headers["retry-after"]) > 0, second.headers
    report = ended(c, end_upload(first, mbox)["id"])
    assert report["stored"] == 50, report
    # Once it ended, the user may import again.
    assert finished(c, upload(c, mboxrd([b"Subject: second\n\nbody\n"])))["stored"] == 1


@pytest.mark.distributed_only
def test_every_api_node_knows_a_users_import(make_daemon):
    """Two nodes sharing the backends: while an upload to one is half sent, the other refuses a
    second import for the same user, and it answers the import's status."""
    a = make_daemon(name="a")
    b = make_daemon(name="b", tag=a.tag)
    a.add_user("alice", "alice@example.test", password=PASSWORD)
    on_a, on_b = a.login("alice@example.test", PASSWORD), b.login("alice@example.test", PASSWORD)
    mbox = mboxrd([f"Subject: two nodes {i}\n\nbody\n".encode() for i in range(20)])
    first = start_upload(a, on_a.token, mbox)
    second = upload(on_b, mboxrd([b"Subject: elsewhere\n\nbody\n"]))
    assert second.status == 429 and second.json()["error"] == "busy", second
    report = ended(on_b, end_upload(first, mbox)["id"])
    assert report["state"] == "done" and report["stored"] == 20, report
    assert finished(on_b, upload(on_b, mboxrd([b"Subject: elsewhere\n\nbody\n"])))["stored"] == 1
