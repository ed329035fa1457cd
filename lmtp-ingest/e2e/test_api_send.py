"""Sending through a real Postfix: the API submits with lettre to Postfix's smtpd, Postfix
delivers example.test back to the same daemon over LMTP, so every hop is real."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from api_helpers import PASSWORD, deliver, message, wait_until
from test_api_draft_attachments import upload
from test_postfix import Postfix


@pytest.fixture
def make_mail_system(make_daemon):
    """Factory: a daemon whose relay is a private Postfix delivering back to it over LMTP,
    with users alice and bob; `api` overrides API settings."""
    started: list[tuple[Postfix, Path]] = []

    def factory(api: dict | None = None):
        root = Path(tempfile.mkdtemp(prefix="palisade-postfix-"))
        root.chmod(0o755)
        d = make_daemon(start=False, api=api)
        pf = Postfix(root, d.port)
        started.append((pf, root))
        d.submission = {"host": "127.0.0.1", "port": pf.smtp_port, "message_id_domain": "palisade.test"}
        d.write_config()
        pf.start()
        d.start()
        d.add_user("alice", "alice@example.test", password=PASSWORD)
        d.add_user("bob", "bob@example.test", "robert@example.test", password=PASSWORD)
        return d, pf

    yield factory
    for pf, root in started:
        pf.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mail_system(make_mail_system):
    return make_mail_system()


def inbox(client, subject: str) -> list[dict]:
    return [m for m in client.get("/messages?limit=100").json()["items"] if m["subject"] == subject]


def test_send_reply_and_forward_round_trip(mail_system):
    d, pf = mail_system
    alice = d.login("alice@example.test", PASSWORD)
    bob = d.login("bob@example.test", PASSWORD)

    draft = alice.post("/drafts", {"to": ["bob@example.test"], "bcc": ["robert@example.test"],
                                   "subject": "Dinner?", "body": "Friday at 8?"})
    assert draft.status == 201, draft
    draft = draft.json()
    assert draft["from"] == "alice@example.test"
    edited = alice.put(f"/drafts/{draft['id']}", {"to": ["bob@example.test"], "subject": "Dinner?",
                                                  "body": "Friday at 8, at Luigi's?"})
    assert edited.status == 200 and edited.json()["body"].endswith("Luigi's?")

    sent = alice.post(f"/drafts/{draft['id']}/send")
    assert sent.status == 200, (sent, pf.tail())
    sent = sent.json()
    assert alice.get(f"/drafts/{draft['id']}").status == 404, "a sent draft is discarded"
    copy = alice.get(f"/messages/{sent['message_id']}").json()
    assert copy["flags"]["sent"] and copy["flags"]["seen"]
    assert copy["message_id_header"] == sent["message_id_header"]

    got = wait_until("Bob to receive it", lambda: inbox(bob, "Dinner?"), timeout=90)
    original = bob.get(f"/messages/{got[0]['id']}").json()
    assert original["text"].strip() == "Friday at 8, at Luigi's?"
    assert original["message_id_header"] == sent["message_id_header"]

    reply = bob.post(f"/messages/{original['id']}/reply", {"all": False})
    assert reply.status == 201, reply
    reply = reply.json()
    assert reply["to"] == ["alice@example.test"] and reply["subject"] == "Re: Dinner?"
    assert reply["in_reply_to"] == original["id"]
    assert "> Friday at 8" in reply["body"]
    assert bob.put(f"/drafts/{reply['id']}", {**{k: reply[k] for k in ("to", "subject", "in_reply_to")},
                                             "body": "Yes!\n" + reply["body"]}).status == 200
    assert bob.post(f"/drafts/{reply['id']}/send").status == 200
    assert bob.get(f"/messages/{original['id']}").json()["flags"]["answered"]

    answer = wait_until("Alice to get the reply", lambda: inbox(alice, "Re: Dinner?"), timeout=90)[0]
    raw = alice.get(f"/messages/{answer['id']}/raw").body.decode()
    assert f"In-Reply-To: <{sent['message_id_header']}>" in raw
    assert f"<{sent['message_id_header']}>" in raw.split("References:", 1)[1].split("\n", 1)[0]
    assert answer["discussion_id"] == copy["discussion_id"], "the reply joins the sent message's discussion"

    fwd = alice.post(f"/messages/{answer['id']}/forward")
    assert fwd.status == 201 and fwd.json()["subject"] == "Fwd: Re: Dinner?"
    fwd = fwd.json()
    assert alice.put(f"/drafts/{fwd['id']}", {"to": ["robert@example.test"], "subject": fwd["subject"],
                                             "body": "see below", "forward_of": answer["id"]}).status == 200
    assert alice.post(f"/drafts/{fwd['id']}/send").status == 200
    try:
        forwarded = wait_until("Bob to get the forward", lambda: inbox(bob, "Fwd: Re: Dinner?"), timeout=90)[0]
    except AssertionError as e:
        raise AssertionError(f"{e}\n{pf.tail()}") from None
    view = bob.get(f"/messages/{forwarded['id']}").json()
    assert any(a["content_type"] == "message/rfc822" for a in view["attachments"]), view["attachments"]


def test_draft_files_are_relayed_as_attachments_and_listed_on_the_sent_copy(mail_system):
    d, pf = mail_system
    alice = d.login("alice@example.test", PASSWORD)
    bob = d.login("bob@example.test", PASSWORD)
    draft = alice.post("/drafts", {"to": ["bob@example.test"], "subject": "With files",
                                   "body": "two files"}).json()
    payload = bytes(range(256)) * 100
    files = [("data.bin", payload, "application/octet-stream"),
             ("notes.txt", b"hello notes\n", "text/plain")]
    uploaded = []
    for name, data, kind in files:
        r = upload(alice, draft["id"], name, data, content_type=kind)
        assert r.status == 201, r
        uploaded.append(r.json())

    sent = alice.post(f"/drafts/{draft['id']}/send")
    assert sent.status == 200, (sent, pf.tail())
    sent = sent.json()
    assert alice.get(f"/drafts/{draft['id']}").status == 404
    assert alice.get(f"/drafts/{draft['id']}/attachments/{uploaded[0]['id']}").status == 404, \
        "a sent draft's files go with it"

    def carries_the_files(client, message_id: str):
        view = client.get(f"/messages/{message_id}").json()
        assert [(a["file_name"], a["content_type"], a["size"]) for a in view["attachments"]] == \
            [(name, kind, len(data)) for name, data, kind in files], view["attachments"]
        for a, (_, data, _) in zip(view["attachments"], files):
            assert client.get(f"/messages/{message_id}/attachments/{a['index']}").body == data
        assert view["text"].strip() == "two files"

    carries_the_files(alice, sent["message_id"])
    try:
        got = wait_until("Bob to receive the files", lambda: inbox(bob, "With files"), timeout=90)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{pf.tail()}") from None
    carries_the_files(bob, got[0]["id"])


def test_bcc_is_hidden_from_recipients_but_kept_in_the_sent_copy(mail_system):
    d, _ = mail_system
    alice = d.login("alice@example.test", PASSWORD)
    bob = d.login("bob@example.test", PASSWORD)
    draft = alice.post("/drafts", {"to": ["bob@example.test"], "bcc": ["robert@example.test"],
                                   "subject": "Secret cc", "body": "x"}).json()
    sent = alice.post(f"/drafts/{draft['id']}/send").json()
    copy_raw = alice.get(f"/messages/{sent['message_id']}/raw").body
    assert b"robert@example.test" in copy_raw
    got = wait_until("Bob's copy", lambda: inbox(bob, "Secret cc"), timeout=90)
    raw = bob.get(f"/messages/{got[0]['id']}/raw").body
    assert b"robert@example.test" not in raw.split(b"\r\n\r\n", 1)[0], "Bcc must not reach recipients"


def test_cannot_send_as_someone_else(mail_system):
    d, _ = mail_system
    alice = d.login("alice@example.test", PASSWORD)
    r = alice.post("/drafts", {"from": "bob@example.test", "to": ["bob@example.test"], "subject": "spoof"})
    assert r.status == 403, r
    assert r.json()["error"] == "forbidden"


def test_relay_outage_keeps_the_draft(make_daemon):
    # Nothing listens on the configured relay port: the send fails with 503 and nothing is lost.
    from palisade_e2e import free_port
    d = make_daemon(submission={"host": "127.0.0.1", "port": free_port()})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    alice = d.login("alice@example.test", PASSWORD)
    draft = alice.post("/drafts", {"to": ["x@remote.test"], "subject": "later", "body": "b"}).json()
    file = upload(alice, draft["id"], "keep.bin", b"kept bytes").json()
    r = alice.post(f"/drafts/{draft['id']}/send")
    assert r.status == 503, r
    assert alice.get(f"/drafts/{draft['id']}").json()["attachments"] == [file]
    assert alice.get(f"/drafts/{draft['id']}/attachments/{file['id']}").body == b"kept bytes"
    assert alice.get("/messages").json()["items"] == []
    deliver(d, "alice@example.test", message("still works"))


def test_sending_is_rate_limited_per_user(make_mail_system):
    d, pf = make_mail_system(api={"messages_sent_per_hour": 2})
    alice = d.login("alice@example.test", PASSWORD)
    bob = d.login("bob@example.test", PASSWORD)

    def send(client, subject: str):
        draft = client.post("/drafts", {"to": ["bob@example.test"], "subject": subject, "body": "b"})
        assert draft.status == 201, draft
        return draft.json()["id"], client.post(f"/drafts/{draft.json()['id']}/send")

    for i in range(2):
        _, sent = send(alice, f"within limit {i}")
        assert sent.status == 200, (sent, pf.tail())
    draft_id, refused = send(alice, "over the limit")
    assert refused.status == 429, refused
    assert refused.json()["error"] == "rate_limited" and refused.json()["message"]
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert alice.get(f"/drafts/{draft_id}").status == 200, "a refused draft is kept"
    _, other = send(bob, "bob has his own budget")
    assert other.status == 200, other
    wait_until("Bob to receive the two allowed messages",
               lambda: len([m for m in bob.get("/messages?limit=100").json()["items"]
                            if (m.get("subject") or "").startswith("within limit")]) == 2, timeout=90)
    assert not inbox(bob, "over the limit")
