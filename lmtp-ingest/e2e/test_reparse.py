"""`palisade-admin reparse`: stored mail parsed again from its raw bytes.

On freshly delivered mail it changes nothing and reports the right totals. When stored parsed
views are stale (as an older parser would have left them: no subject, no HTML body, no
attachments, a parse error, and a search index built from that), it restores the message, the
lists, the discussion and search through the API, without touching a raw byte; a second run
changes nothing. Runs on both backends: the stale views are written straight into SQLite while
the daemon is stopped, or into Cassandra over CQL.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from datetime import datetime, timezone

from api_helpers import PASSWORD, deliver, ids, message, wait_until
from palisade_e2e import BACKEND, CORPUS_DIR, _cql, sha256

CORPUS_SAMPLE = 40
COUNTED = ("parse_errors", "with_html_body", "attachments", "with_date", "with_subject")


def corpus_sample() -> list[bytes]:
    """Every hundredth corpus message, ordinary and tricky alike."""
    with open(CORPUS_DIR / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    step = max(1, len(rows) // CORPUS_SAMPLE)
    return [(CORPUS_DIR / r["file"]).read_bytes() for r in rows[::step][:CORPUS_SAMPLE]]


def totals(contents: list[dict]) -> dict:
    return {
        "parse_errors": sum(c["parse_error"] is not None for c in contents),
        "with_html_body": sum(c["html_body"] is not None for c in contents),
        "attachments": sum(len(c["attachments"]) for c in contents),
        "with_date": sum(c["date"] is not None for c in contents),
        "with_subject": sum(c["subject"] is not None for c in contents),
    }


def stale(content: dict) -> dict:
    """What an older, weaker parser might have stored for this message."""
    return {**content, "subject": None, "html_body": None, "attachments": [],
            "text_body": "(unreadable)", "parse_error": "older parser gave up"}


def millis(rfc3339: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 UTC time, truncated as Cassandra keys it."""
    from datetime import datetime, timezone
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(?:Z|\+00:00)", rfc3339)
    assert m, rfc3339
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(base.timestamp()) * 1000 + int((m.group(2) or "0")[:3].ljust(3, "0"))


def make_stale(daemon, user_id: str, shown: list[dict]) -> None:
    """Writes stale parsed views of `shown` messages straight into the store (daemon stopped)."""
    if BACKEND == "embedded":
        db = sqlite3.connect(daemon.data_dir / "palisade.sqlite3")
        with db:
            for m in shown:
                db.execute("UPDATE messages SET content_json = ?, subject = NULL, parse_error = 1 "
                           "WHERE user_id = ? AND id = ?", (json.dumps(stale(m["content"])), user_id, m["id"]))
                db.execute("UPDATE discussions SET subject = NULL, snippet = '(unreadable)' "
                           "WHERE user_id = ? AND id = ?", (user_id, m["discussion_id"]))
        db.close()
        return
    ks = daemon.keyspace

    def text(v: str) -> str:
        return "'" + v.replace("'", "''") + "'"

    for m in shown:
        at = millis(m["envelope"]["received_at"])
        _cql(f"UPDATE {ks}.messages SET content_json = {text(json.dumps(stale(m['content'])))}, "
             f"subject = null, parse_error = true WHERE user_id = {user_id} AND id = {m['id']}")
        # The arrival list is partitioned by month of arrival: months since year 0, in UTC.
        day = datetime.fromtimestamp(at / 1000, tz=timezone.utc)
        month = day.year * 12 + day.month - 1
        _cql(f"UPDATE {ks}.messages_by_arrival_month SET subject = null, parse_error = true "
             f"WHERE user_id = {user_id} AND month = {month} AND received_at = {at} AND id = {m['id']}")
        _cql(f"UPDATE {ks}.messages_by_discussion SET subject = null, parse_error = true, "
             f"snippet = '(unreadable)' WHERE user_id = {user_id} AND discussion_id = {m['discussion_id']} "
             f"AND received_at = {at} AND id = {m['id']}")
        _cql(f"UPDATE {ks}.discussions SET subject = null WHERE user_id = {user_id} AND id = {m['discussion_id']}")


def raw_hashes(daemon, listed: list[dict]) -> dict[str, str]:
    return {m["id"]: sha256(daemon.raw("alice", m["id"])) for m in listed}


def test_reparse_is_idempotent_and_restores_stale_views(make_daemon):
    d = make_daemon()
    alice = d.add_user("alice", "alice@example.test", password=PASSWORD)
    for raw in corpus_sample():
        deliver(d, "alice@example.test", raw)
    pdf = b"%PDF-1.4 quokkafigures " * 40
    deliver(d, "alice@example.test", message(
        "Zebrafinch quarterly report", msg_id="zebra@remote.test", body="see the wombatcount inside",
        attachment=("report.pdf", pdf)))
    deliver(d, "alice@example.test", (
        "From: Cy <cy@remote.test>\nTo: alice@example.test\nSubject: Platypus newsletter\n"
        "Date: Tue, 03 Mar 2026 10:00:00 +0000\nMessage-ID: <platypus@remote.test>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="alt"\n\n--alt\nContent-Type: text/plain\n\n'
        "plain narwhalfacts\n--alt\nContent-Type: text/html\n\n<p>html <b>narwhalfacts</b></p>\n--alt--\n"))
    d.wait_jobs_idle()
    listed = d.messages("alice")
    shown = {m["id"]: d.show("alice", m["id"]) for m in listed}
    fresh_totals = totals([m["content"] for m in shown.values()])
    hashes = raw_hashes(d, listed)

    # Freshly parsed mail: nothing to change, and the totals are those of the stored views.
    first = d.admin("reparse")
    assert (first["users"], first["messages"], first["changed"], first["unchanged"],
            first["missing_raw"]) == (1, len(listed), 0, len(listed), 0), first
    assert {k: first["before"][k] for k in COUNTED} == fresh_totals
    assert first["after"] == first["before"]
    assert set(first["fields_changed"].values()) == {0}
    assert fresh_totals["with_html_body"] >= 1 and fresh_totals["attachments"] >= 1

    # Stale views and a search index built from them, as an older parser would have left.
    targets = [m for m in shown.values()
               if m["content"]["subject"] in ("Zebrafinch quarterly report", "Platypus newsletter")]
    assert len(targets) == 2
    d.terminate()
    make_stale(d, alice["id"], targets)
    d.admin("index", "reindex")
    d.start()
    api = d.login("alice@example.test", PASSWORD)
    for m in targets:
        view = api.get(f"/messages/{m['id']}").json()
        assert view.get("subject") is None and view.get("parse_error"), view
    assert ids(api.get("/search?q=narwhalfacts").json()) == []

    second = d.admin("reparse", "--user", "alice@example.test")
    assert (second["messages"], second["changed"], second["unchanged"]) == (
        len(listed), 2, len(listed) - 2), second
    assert second["after"] == first["after"], "reparsed views are the fresh ones again"
    before = second["before"]
    assert before["with_subject"] == fresh_totals["with_subject"] - 2
    assert before["parse_errors"] == fresh_totals["parse_errors"] + 2
    assert before["with_html_body"] == fresh_totals["with_html_body"] - 1
    assert before["attachments"] == fresh_totals["attachments"] - 1
    assert second["fields_changed"] == {"subject": 2, "participants": 0, "date": 0, "text_body": 2,
                                        "html_body": 1, "attachments": 1, "privacy": 0, "other": 2}

    # The index follows through the daemon's workers; the views are restored at once.
    zebra, platypus = sorted(targets, key=lambda m: m["content"]["subject"], reverse=True)
    # Each message is its own index job; the two may land in either order.
    wait_until("the reparsed bodies in search", lambda: (
        ids(api.get("/search?q=narwhalfacts").json()) == [platypus["id"]]
        and ids(api.get("/search?q=wombatcount").json()) == [zebra["id"]]))
    view = api.get(f"/messages/{platypus['id']}").json()
    assert view["subject"] == "Platypus newsletter" and "narwhalfacts" in view["html"], view
    assert view.get("parse_error") is None
    view = api.get(f"/messages/{zebra['id']}").json()
    assert [a.get("file_name") for a in view["attachments"]] == ["report.pdf"], view["attachments"]
    got = api.get(f"/messages/{zebra['id']}/attachments/{view['attachments'][0]['index']}")
    assert got.status == 200 and got.body == pdf
    summaries = {m["id"]: m for m in api.get("/messages?limit=100").json()["items"]}
    assert summaries[zebra["id"]]["subject"] == "Zebrafinch quarterly report"
    discussions = {x["id"]: x for x in api.get("/discussions?limit=100").json()["items"]}
    assert discussions[platypus["discussion_id"]]["subject"] == "Platypus newsletter"
    assert "narwhalfacts" in discussions[platypus["discussion_id"]]["snippet"]
    assert {m["id"]: m["discussion_id"] for m in d.messages("alice")} == {
        m["id"]: m["discussion_id"] for m in listed}, "no message moved between discussions"

    # Raw bytes are never touched, and a second run finds nothing left to do.
    assert raw_hashes(d, listed) == hashes
    assert api.get(f"/messages/{zebra['id']}/raw").body == d.raw("alice", zebra["id"])
    third = d.admin("reparse")
    assert (third["changed"], third["unchanged"]) == (0, len(listed)), third
    assert third["before"] == third["after"] == first["after"]
