"""palisade-admin: users, listing, show/raw, export, search, tenant isolation."""

from __future__ import annotations

import json

from palisade_e2e import BACKEND, make_message, sha256


def deliver(d, rcpt: str, msg: bytes):
    with d.session() as c:
        t = c.data_transaction("s@example.test", [rcpt], msg)
        assert t.final and t.final[0].code == 250, t


def test_user_add_and_list(make_daemon):
    d = make_daemon()
    u = d.add_user("dora", "dora@example.test", "Dora.Alias@Example.TEST")
    assert set(u) >= {"id", "name", "created_at", "addresses"}, u
    assert u["name"] == "dora"
    assert sorted(a.lower() for a in u["addresses"]) == ["dora.alias@example.test", "dora@example.test"]
    listed = d.admin("user", "list")
    assert isinstance(listed, list) and [x["name"] for x in listed] == ["dora"], listed
    assert listed[0]["id"] == u["id"]
    # Duplicates are errors: non-zero exit, message on stderr, nothing on stdout.
    r = d.admin_run("user", "add", "dora", "--address", "other@example.test")
    assert r.returncode != 0 and r.stderr.strip(), r
    r = d.admin_run("user", "add", "eve", "--address", "dora@example.test")
    assert r.returncode != 0, "an address must belong to one user only"
    r = d.admin_run("user", "add", "mallory", "--address", "not-an-address")
    assert r.returncode != 0, "malformed address accepted"
    assert [x["name"] for x in d.admin("user", "list")] == ["dora"]


def test_list_show_raw_and_order(daemon):
    d = daemon
    dates = {"old": "Wed, 01 Jan 2020 10:00:00 +0000", "new": "Fri, 01 Jan 2027 10:00:00 +0000",
             "mid": "Sat, 01 Jan 2022 10:00:00 +0000"}
    msgs = {k: make_message(f"order {k}", f"{k} body\r\n", date=v) for k, v in dates.items()}
    for k in ("mid", "old", "new"):
        deliver(d, "alice@example.test", msgs[k])
    listed = d.messages("alice")
    # Newest ARRIVAL first: the Date header is the sender's claim and must not reorder the list.
    assert [m["subject"] for m in listed] == ["order new", "order old", "order mid"], \
        f"messages list must be newest arrival first: {[(m['subject'], m['received_at']) for m in listed]}"
    assert [m["received_at"] for m in listed] == sorted((m["received_at"] for m in listed), reverse=True)
    assert {m["subject"]: m["date"] for m in listed}["order new"] == "2027-01-01T10:00:00Z"
    assert d.messages("alice@example.test") == listed, "--user accepts an address too"
    m = listed[0]
    assert set(m) >= {"id", "discussion_id", "date", "from", "subject", "flags", "parse_error", "raw_size"}, m
    assert m["from"]["address"] == "sender@example.test" and m["from"]["role"] == "from", m["from"]
    assert m["from"]["name"] == "Sender"
    assert m["parse_error"] is False and m["raw_size"] == len(msgs["new"])
    assert m["date"].startswith("2027-01-01T10:00:00"), m["date"]
    full = d.show("alice", m["id"])
    assert full["raw_sha256"] == sha256(msgs["new"])
    content = full["content"]
    for key in ("message_id_header", "in_reply_to", "references", "subject", "participants", "text_body",
                "html_body", "attachments", "privacy", "parse_error"):
        assert key in content, f"message show lacks content.{key}"
    assert content["text_body"].strip() == "new body"
    assert content["parse_error"] in (None, False)
    for key in ("envelope", "discussion_id", "flags", "tags"):
        assert key in full, f"message show lacks {key}"
    assert d.raw("alice", m["id"]) == msgs["new"]
    # Unknown ids and users are errors.
    assert d.admin_run("message", "show", "--user", "alice", "00000000-0000-0000-0000-000000000000").returncode != 0
    assert d.admin_run("messages", "list", "--user", "nobody").returncode != 0


def test_tenant_isolation(daemon):
    d = daemon
    deliver(d, "alice@example.test", make_message("alice secret", "for alice only\r\n"))
    a = d.messages("alice")[0]
    assert d.messages("bob") == []
    for cmd in (("message", "show"), ("message", "raw")):
        r = d.admin_run(*cmd, "--user", "bob", a["id"])
        assert r.returncode != 0 and b"alice only" not in r.stdout, f"{cmd} leaks across users"


def test_export(daemon, tmp_path):
    d = daemon
    sent = [make_message(f"export {i}", f"body {i}\r\n") for i in range(3)]
    for m in sent:
        deliver(d, "bob@example.test", m)
    deliver(d, "alice@example.test", make_message("not bob's"))
    emls, meta = d.export("bob", tmp_path / "exp")
    assert sorted(sha256(b) for b in emls.values()) == sorted(sha256(m) for m in sent)
    assert {m["id"] for m in meta} == set(emls)
    for m in meta:
        assert m["raw_sha256"] == sha256(emls[m["id"]])
        assert m["content"]["subject"].startswith("export ")
    json.dumps(meta)


def test_search(daemon):
    d = daemon
    deliver(d, "alice@example.test", make_message("Budget review", "The zebra numbers look fine.\r\n",
                                                  sender="carol.accountant@example.test"))
    deliver(d, "alice@example.test", make_message("Holiday plans", "Beach or mountains?\r\n",
                                                  sender="dave@example.test"))
    deliver(d, "bob@example.test", make_message("Budget for bob", "zebra too\r\n"))
    d.wait_jobs_idle()
    subjects = lambda res: sorted(m["subject"] for m in res)  # noqa: E731
    assert subjects(d.admin("search", "--user", "alice", "zebra")) == ["Budget review"]
    assert subjects(d.admin("search", "--user", "alice", "--subject", "budget")) == ["Budget review"]
    assert subjects(d.admin("search", "--user", "alice", "--from", "dave@example.test")) == ["Holiday plans"]
    assert subjects(d.admin("search", "--user", "alice", "--subject", "holiday", "beach")) == ["Holiday plans"]
    assert d.admin("search", "--user", "alice", "--subject", "holiday", "zebra") == []
    assert subjects(d.admin("search", "--user", "bob", "zebra")) == ["Budget for bob"], "search crosses users"
    st = d.jobs()
    assert set(st) >= {"pending", "retrying", "dead", "done"}, st
    assert st["dead"] == 0, st
    if BACKEND == "embedded":  # RabbitMQ does not keep finished jobs to count
        assert st["done"] >= 3, st
