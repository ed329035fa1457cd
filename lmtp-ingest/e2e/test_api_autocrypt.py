"""Autocrypt and the social rules, end to end: authenticated mail with an Autocrypt header puts
the key on the sender's contact, later mail from that contact scores the social rules, and what
a sender forges moves neither. Runs on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from api_helpers import PASSWORD, deliver, wait_until

TESTDATA = Path(__file__).resolve().parents[2] / "crates" / "palisade-model" / "testdata"
BOB_KEY = (TESTDATA / "bob-example-net.key.b64").read_text().strip()
BOB_FINGERPRINT = "A08C283EDF73A42648815C1A7E2EC29FB033B66F"
ALICE_KEY = (TESTDATA / "alice-example-test.key.b64").read_text().strip()
ALICE_FINGERPRINT = "D6F435BB11FB5BEA4A776D2F95E247A361CD81E1"

OUR_MTA = {"authserv_id": "mx.example.test", "internal_relays": ["mx.example.test", "10.0.0.0/8"]}

# Our MTA's entry hop and its verdicts: DKIM by the From domain, DMARC passed.
AUTHENTICATED = (
    "Received: from mx.example.net (mx.example.net [192.0.2.1]) by mx.example.test with ESMTPS id 1;"
    " Mon, 02 Mar 2026 10:00:00 +0000\n"
    "Authentication-Results: mx.example.test; dkim=pass header.d=example.net;"
    " spf=pass smtp.mailfrom=example.net; dmarc=pass header.from=example.net\n")
# The same verdicts, written by the sender: under another id, and under a look-alike of ours.
FORGED = (
    "Received: from mx.example.net (mx.example.net [192.0.2.1]) by mx.example.test with ESMTPS id 1;"
    " Mon, 02 Mar 2026 10:00:00 +0000\n"
    "Authentication-Results: mx.example.test; spf=none smtp.mailfrom=example.net\n"
    "Authentication-Results: example.net; dkim=pass header.d=example.net; dmarc=pass\n"
    "Authentication-Results: mx.example.test.example.net; dkim=pass header.d=example.net; dmarc=pass\n")


def autocrypt(addr: str, key: str, prefer: str = "mutual") -> str:
    """An Autocrypt header, its key folded at 72 columns as mail agents fold it."""
    lines = [key[i:i + 72] for i in range(0, len(key), 72)]
    return f"Autocrypt: addr={addr}; prefer-encrypt={prefer}; keydata=\n " + "\n ".join(lines) + "\n"


def mail(subject: str, top: str, date: str, sender: str = "bob@example.net") -> str:
    return (f"{top}From: Bob <{sender}>\nTo: alice@example.test\nSubject: {subject}\n"
            f"Date: {date}\nMessage-ID: <{subject.replace(' ', '.')}@example.net>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nhello\n")


def factors(view: dict) -> dict[str, int]:
    privacy = view["privacy"]
    found = {f["feature"]: f["points"] for f in privacy["factors"]}
    assert privacy["privacy_index"] == max(0, min(100, sum(found.values()))), privacy
    return found


@pytest.fixture
def api(make_daemon):
    d = make_daemon(privacy=OUR_MTA)
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    return d


def contact_of(c, address: str, messages: int) -> dict:
    """The contact holding `address`, once the worker has recorded `messages` of theirs."""
    def recorded():
        for contact in c.get("/contacts?limit=100").json()["items"]:
            if address in contact["addresses"] and contact["history"]["messages"] >= messages:
                return contact
        return None
    return wait_until(f"{address}'s contact to record {messages} messages", recorded)


def by_subject(c) -> dict[str, str]:
    return {m["subject"]: m["id"] for m in c.get("/messages?limit=100").json()["items"]}


def test_authenticated_autocrypt_mail_puts_the_key_on_the_contact_and_scores_the_social_rules(api):
    c = api.login("alice@example.test", PASSWORD)
    structural = {"transport_tls": 30, "dkim_pass": 10, "spf_pass": 5, "dmarc_pass": 5}

    deliver(api, "alice@example.test",
            mail("first", AUTHENTICATED + autocrypt("bob@example.net", BOB_KEY),
                 "Mon, 02 Mar 2026 10:00:00 +0000"))
    bob = contact_of(c, "bob@example.net", 1)
    peer = bob["autocrypt"]
    assert peer["fingerprint"] == BOB_FINGERPRINT, bob
    assert peer["keydata"] == BOB_KEY
    assert peer["prefer_encrypt"] == "mutual"
    assert peer["last_seen"].startswith("2026-03-02T10:00:00") and peer["autocrypt_timestamp"] == peer["last_seen"]
    assert bob["history"]["messages"] == 1 and bob["history"]["authenticated"] == 1, bob
    contact_factors = {f["feature"]: f["points"] for f in bob["privacy"]["factors"]}
    assert contact_factors == {"key": 40, "prefer_encrypt_mutual": 10, "authenticated_mail": 25}, bob
    assert bob["privacy"]["privacy_index"] == 75
    assert c.get(f"/contacts/{bob['id']}").json()["autocrypt"]["fingerprint"] == BOB_FINGERPRINT

    ids = by_subject(c)
    first = c.get(f"/messages/{ids['first']}").json()
    assert first["privacy"]["sender_authenticated"] is True
    assert first["privacy"]["autocrypt"] is True
    # Bob became a contact with this very message, so was not known before it; but his key
    # is in the address book now, so a reply can be encrypted.
    assert factors(first) == {**structural, "contact_key": 10}

    # Bob again, authenticated, with no header: a known contact with a key.
    deliver(api, "alice@example.test", mail("second", AUTHENTICATED, "Tue, 03 Mar 2026 10:00:00 +0000"))
    # The same mail with forged results: Bob's address, but nobody vouches for it.
    deliver(api, "alice@example.test", mail("forged", FORGED, "Tue, 03 Mar 2026 11:00:00 +0000"))
    bob = contact_of(c, "bob@example.net", 3)
    assert bob["history"]["authenticated"] == 2, bob
    assert bob["autocrypt"]["last_seen"].startswith("2026-03-03T10:00:00"), "the newest authenticated mail"
    assert bob["autocrypt"]["autocrypt_timestamp"].startswith("2026-03-02T10:00:00")

    ids = by_subject(c)
    second = c.get(f"/messages/{ids['second']}").json()
    assert factors(second) == {**structural, "known_contact": 5, "contact_key": 10}
    assert second["privacy"]["privacy_index"] == 65
    forged = c.get(f"/messages/{ids['forged']}").json()
    assert forged["privacy"]["sender_authenticated"] is False
    assert factors(forged) == {"transport_tls": 30}, "forged results open no social rule"
    # The discussion list and view explain the same points as the message they show.
    for d in c.get("/discussions").json()["items"]:
        if d["subject"] == "second":
            assert factors(d) == factors(second)
            assert factors(c.get(f"/discussions/{d['id']}").json()) == factors(second)


def test_keys_that_must_not_be_believed_are_not(api):
    c = api.login("alice@example.test", PASSWORD)
    deliver(api, "alice@example.test",
            mail("keyed", AUTHENTICATED + autocrypt("bob@example.net", BOB_KEY, "nopreference"),
                 "Tue, 03 Mar 2026 10:00:00 +0000"))
    contact_of(c, "bob@example.net", 1)
    # A forged sender offering another key, newer: ignored.
    deliver(api, "alice@example.test",
            mail("forged key", FORGED + autocrypt("bob@example.net", ALICE_KEY),
                 "Wed, 04 Mar 2026 10:00:00 +0000"))
    # Authenticated, but the header names another address: ignored.
    deliver(api, "alice@example.test",
            mail("other addr", AUTHENTICATED + autocrypt("eve@example.net", ALICE_KEY),
                 "Thu, 05 Mar 2026 10:00:00 +0000"))
    # Authenticated, but two headers: both ignored.
    deliver(api, "alice@example.test",
            mail("two headers", AUTHENTICATED + autocrypt("bob@example.net", ALICE_KEY) * 2,
                 "Fri, 06 Mar 2026 10:00:00 +0000"))
    # Authenticated and older than the key's message: changes no key state.
    deliver(api, "alice@example.test",
            mail("older", AUTHENTICATED + autocrypt("bob@example.net", ALICE_KEY),
                 "Sun, 01 Mar 2026 10:00:00 +0000"))
    bob = contact_of(c, "bob@example.net", 5)
    assert bob["autocrypt"]["fingerprint"] == BOB_FINGERPRINT, bob
    assert bob["autocrypt"]["prefer_encrypt"] == "nopreference"
    assert bob["autocrypt"]["autocrypt_timestamp"].startswith("2026-03-03T10:00:00")
    assert bob["history"] ["authenticated"] == 4, bob
    # A newer, valid header replaces the key.
    deliver(api, "alice@example.test",
            mail("new key", AUTHENTICATED + autocrypt("bob@example.net", ALICE_KEY),
                 "Sat, 07 Mar 2026 10:00:00 +0000"))
    bob = contact_of(c, "bob@example.net", 6)
    assert bob["autocrypt"]["fingerprint"] == ALICE_FINGERPRINT, bob
    assert bob["autocrypt"]["prefer_encrypt"] == "mutual"


def test_the_user_sets_checks_and_removes_their_own_key(api):
    c = api.login("alice@example.test", PASSWORD)
    assert c.get("/me/autocrypt").status == 204
    armored = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
               + "\n".join(ALICE_KEY[i:i + 64] for i in range(0, len(ALICE_KEY), 64))
               + "\n=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n")
    r = c.put("/me/autocrypt", {"key": armored, "prefer_encrypt": "mutual"})
    assert r.status == 200, r
    assert r.json() == {"fingerprint": ALICE_FINGERPRINT, "prefer_encrypt": "mutual"}
    assert c.get("/me/autocrypt").json() == r.json()
    r = c.put("/me/autocrypt", {"key": ALICE_KEY})
    assert r.json() == {"fingerprint": ALICE_FINGERPRINT, "prefer_encrypt": "nopreference"}
    for bad in ("not a key", ALICE_KEY[:200], "A" * 23000):
        r = c.put("/me/autocrypt", {"key": bad})
        assert r.status == 400, r
    assert c.get("/me/autocrypt").json()["fingerprint"] == ALICE_FINGERPRINT, "a refused key changes nothing"
    assert c.delete("/me/autocrypt").status == 204
    assert c.get("/me/autocrypt").status == 204


def test_sent_mail_carries_the_user_s_autocrypt_header_once_a_key_is_set(make_daemon):
    from palisade_e2e import HOST
    from test_schemathesis import SmtpSink

    sink = SmtpSink()
    try:
        d = make_daemon(privacy=OUR_MTA, submission={"host": HOST, "port": sink.port, "tls": "none"})
        d.add_user("alice", "alice@example.test", password=PASSWORD)
        c = d.login("alice@example.test", PASSWORD)

        def send(subject: str) -> str:
            draft = c.post("/drafts", {"to": ["bob@example.net"], "subject": subject, "body": "hi"})
            assert draft.status == 201, draft
            r = c.post(f"/drafts/{draft.json()['id']}/send")
            assert r.status == 200, r
            return sink.messages[-1].decode()

        plain = send("before the key")
        assert "Autocrypt:" not in plain
        assert c.put("/me/autocrypt", {"key": ALICE_KEY, "prefer_encrypt": "mutual"}).status == 200
        keyed = send("with the key")
        head = keyed.split("\r\n\r\n", 1)[0]
        assert head.count("Autocrypt: ") == 1, head
        assert all(len(line) <= 78 for line in head.split("\r\n")), head
        field = head.split("Autocrypt: ", 1)[1]
        # The field runs to the next line that does not start with white space.
        lines = [field.split("\r\n")[0]]
        for line in field.split("\r\n")[1:]:
            if not line.startswith(" "):
                break
            lines.append(line.strip())
        value = "".join(lines)
        assert value.startswith("addr=alice@example.test; prefer-encrypt=mutual; keydata="), value
        assert value.split("keydata=", 1)[1] == ALICE_KEY
    finally:
        sink.shutdown()
        sink.server_close()
