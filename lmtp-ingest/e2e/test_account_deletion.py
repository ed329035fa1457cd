"""Account deletion, through the API (`DELETE /api/v1/me`) and `palisade-admin delete-user`,
on both backends.

A user gets mail carrying a unique token, a tag, a contact and a draft with a file; a second
user gets the same kind of mail with a token of their own. After the deletion the old session
answers 401, signing in fails, LMTP refuses the address with 550 5.1.1, and the token is
nowhere: not in any file under the embedded data directory (SQLite database and WAL, tantivy
directory), not in Elasticsearch, and Cassandra has no row for the user in any table. Each of
those checks first sees the token (or rows) before the deletion, so it can fail. The second
user keeps everything.

tantivy compresses its term dictionary and stored fields, so its files never show a token as
plain bytes; the crate test `a_deleted_users_words_leave_the_index_files` proves the terms
leave them, with a fresh reader of the directory.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid

import pytest

from api_helpers import PASSWORD, deliver, message, wait_indexed, wait_until
from palisade_e2e import BACKEND, ELASTICSEARCH, REDIS, cql_row_count
from test_api_draft_attachments import upload
from test_import import mboxrd, spool_files
from test_import import upload as upload_mbox

# Every Cassandra table with a user_id column (users is keyed by id).
USER_TABLES = [
    "addresses", "users_by_name", "raw_messages", "message_claims", "messages",
    "messages_by_arrival", "thread_keys", "discussions", "discussions_by_subject",
    "messages_by_discussion", "discussions_by_activity", "tags", "tags_by_name", "contacts",
    "contact_addresses", "drafts", "user_locks", "draft_attachments", "draft_attachment_chunks",
    "messages_by_arrival_month", "discussions_by_activity_month", "mailbox_months",
    "thread_keys_by_key", "message_counts", "discussions_by_id",
]


@pytest.fixture
def daemon(make_daemon):
    d = make_daemon()
    d.add_user("leaving", "leaving@example.test", password=PASSWORD)
    d.add_user("staying", "staying@example.test", password=PASSWORD)
    return d


def furnish(daemon, name: str, token: str):
    """Mail, a tag, a contact and a draft with a file, each carrying `token`; signed in."""
    address = f"{name}@example.test"
    deliver(daemon, address, message(f"plans {token}", to=address, msg_id=f"{token}.1@remote.test",
                                     body=f"the secret word is {token}"))
    deliver(daemon, address, message(f"Re: plans {token}", to=address, msg_id=f"{token}.2@remote.test",
                                     refs=f"{token}.1@remote.test", body=f"still {token}"))
    c = daemon.login(address, PASSWORD)
    wait_indexed(c)
    first = c.get("/messages?limit=10").json()["items"][0]["id"]
    tag = c.post("/tags", {"name": f"tag {token}"})
    assert tag.status in (200, 201), tag
    assert c.put(f"/messages/{first}/tags", {"tags": [tag.json()["id"]]}).status == 200
    contact = c.post("/contacts", {"name": f"Contact {token}", "addresses": [f"{token}@remote.test"]})
    assert contact.status in (200, 201), contact
    draft = c.post("/drafts", {"to": ["bob@remote.test"], "subject": f"draft {token}",
                               "body": f"draft body {token}"})
    assert draft.status == 201, draft
    assert upload(c, draft.json()["id"], f"{token}.txt", f"file {token}".encode()).status == 201
    return c


def user_id(daemon, name: str) -> str:
    return daemon.users[name]["id"]


def residue(daemon, token: str, uid: str) -> list[str]:
    """Where the token, or a row of the user's, can still be found."""
    found = []
    if BACKEND == "embedded":
        needle = token.encode()
        for path in sorted(daemon.data_dir.rglob("*")):
            if path.is_file() and needle in path.read_bytes():
                found.append(str(path.relative_to(daemon.data_dir)))
        return found
    req = urllib.request.Request(
        f"{ELASTICSEARCH}/palisade-e2e-{daemon.tag}/_search",
        data=json.dumps({"query": {"query_string": {"query": token}}}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        hits = json.load(r)["hits"]["total"]["value"]
    if hits:
        found.append(f"elasticsearch: {hits} hits")
    ks = daemon.keyspace
    for table in USER_TABLES:
        n = cql_row_count(f"SELECT * FROM {ks}.{table} WHERE user_id = {uid} ALLOW FILTERING")
        if n:
            found.append(f"cassandra {table}: {n} rows")
    if cql_row_count(f"SELECT * FROM {ks}.users WHERE id = {uid}"):
        found.append("cassandra users")
    return found


def assert_gone(daemon, old_session, token: str, uid: str):
    assert old_session.get("/me").status == 401
    assert old_session.get("/messages").status == 401
    r = daemon.client().post("/auth/login", {"address": "leaving@example.test", "password": PASSWORD})
    assert r.status == 401, r
    with daemon.session() as s:
        assert s.cmd("MAIL FROM:<sender@remote.test>").code == 250
        rcpt = s.cmd("RCPT TO:<leaving@example.test>")
        assert rcpt.code == 550 and rcpt.enhanced == "5.1.1", rcpt
    left = residue(daemon, token, uid)
    assert not left, "; ".join(left)


def test_deleting_through_the_api_leaves_no_trace(daemon):
    token, kept = "zq" + uuid.uuid4().hex, "zq" + uuid.uuid4().hex
    c = furnish(daemon, "leaving", token)
    other = furnish(daemon, "staying", kept)
    uid = user_id(daemon, "leaving")
    assert residue(daemon, token, uid), "the checks see the user's data before the deletion"

    wrong = c.request("DELETE", "/me", {"password": "not it"})
    assert wrong.status == 403, wrong
    assert "password" in wrong.json()["message"], wrong.json()
    assert c.request("DELETE", "/me", {}).status == 400
    gone = c.request("DELETE", "/me", {"password": PASSWORD})
    assert gone.status == 204, gone

    assert_gone(daemon, c, token, uid)
    assert len(other.get("/messages").json()["items"]) == 2
    assert other.get(f"/search?q={kept}").json()["items"], "the other user's mail is still searchable"
    assert residue(daemon, kept, user_id(daemon, "staying")), "the other user keeps their data"


def test_deleting_with_the_admin_command_leaves_no_trace(daemon):
    token, kept = "zq" + uuid.uuid4().hex, "zq" + uuid.uuid4().hex
    c = furnish(daemon, "leaving", token)
    other = furnish(daemon, "staying", kept)
    uid = user_id(daemon, "leaving")
    assert residue(daemon, token, uid)

    # The embedded daemon holds the tantivy writer: the command needs it stopped.
    if BACKEND == "embedded":
        daemon.terminate()
    report = daemon.admin("delete-user", "leaving")
    assert report["user_id"] == uid and report["store_deleted"] is True, report
    assert report["addresses"] == ["leaving@example.test"], report
    # Run again by id, as after a deletion cut short: it finishes, finding nothing left.
    again = daemon.admin("delete-user", uid)
    assert again["store_deleted"] is False, again
    if BACKEND == "embedded":
        daemon.start()
        other = daemon.login("staying@example.test", PASSWORD)
    else:
        assert report["sessions_ended"] == 1, report  # the session furnish opened

    assert_gone(daemon, c, token, uid)
    assert len(other.get("/messages").json()["items"]) == 2
    assert residue(daemon, kept, user_id(daemon, "staying"))


def test_wrong_passwords_count_as_failed_sign_ins_and_delete_nothing(make_daemon):
    d = make_daemon(api={"login_attempts_per_account": 3})
    d.add_user("leaving", "leaving@example.test", password=PASSWORD)
    c = d.login("leaving@example.test", PASSWORD)
    for _ in range(3):
        r = c.request("DELETE", "/me", {"password": "guess"})
        assert r.status == 403, r
    # The account's failure budget is used up: even the right password is not checked now.
    r = c.request("DELETE", "/me", {"password": PASSWORD})
    assert r.status == 429, r
    assert int(r.headers["retry-after"]) > 0
    assert c.get("/me").status == 200, "nothing was deleted"
    with d.session() as s:
        assert s.cmd("MAIL FROM:<sender@remote.test>").code == 250
        assert s.cmd("RCPT TO:<leaving@example.test>").code == 250


def test_deleting_during_an_import_stops_it_and_leaves_no_trace(daemon):
    """An import is storing the user's mbox when they delete their account: the import stops
    (the daemon says so), and nothing it stored, before or after the deletion's own passes,
    remains; nor do its status records, which name senders. Without the stop, the import
    would go on storing into the deleted account."""
    token = "zq" + uuid.uuid4().hex
    c = daemon.login("leaving@example.test", PASSWORD)
    uid = user_id(daemon, "leaving")
    mbox = mboxrd([f"Subject: old {i}\n\n{token} number {i}\n".encode() for i in range(30_000)])
    started = upload_mbox(c, mbox)
    assert started.status == 202, started
    location = started.headers["location"]

    def storing():
        s = c.get(location).json()
        assert s["state"] == "running", f"the import must still run when the account goes: {s}"
        return s["stored"] > 0
    wait_until("the import to store its first messages", storing, interval=0.05)
    assert residue(daemon, token, uid), "the checks see the imported mail"
    assert c.request("DELETE", "/me", {"password": PASSWORD}).status == 204

    wait_until("the import to stop", lambda: "import stopped: account deleted" in daemon.stderr_path.read_text(errors="replace"))
    wait_until("the import to let go of its upload", lambda: not spool_files(daemon))
    assert_gone(daemon, c, token, uid)
    if BACKEND == "distributed":
        keys = subprocess.run(
            ["redis-cli", "-u", REDIS, "--scan", "--pattern", f"e2e-{daemon.tag}:u:{uid}:import*"],
            check=True, capture_output=True, text=True).stdout.split()
        assert keys == [], keys
