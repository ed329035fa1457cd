"""The messaging API end to end: a real daemon, mail delivered over LMTP, and HTTP requests as
the web client makes them. Runs on both backends."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from api_helpers import PASSWORD, deliver, ids, message, wait_indexed, wait_until, walk
from palisade_e2e import BACKEND, HOST, REDIS, ApiClient


@pytest.fixture
def api(make_daemon):
    d = make_daemon()
    d.add_user("alice", "alice@example.test", "alice@alias.example.test", password=PASSWORD)
    return d


def error_shape(r, status: int) -> dict:
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "message"} and body["message"], body
    return body


def test_login_sessions_and_logout(api):
    anon = api.client()
    error_shape(anon.post("/auth/login", {"address": "alice@example.test", "password": "wrong"}), 401)
    error_shape(anon.post("/auth/login", {"address": "nobody@example.test", "password": "x"}), 401)
    error_shape(anon.get("/me"), 401)
    error_shape(anon.get("/discussions", headers={"Authorization": "Bearer not-a-token"}), 401)

    phone = api.login("alice@example.test", PASSWORD)
    laptop = api.login("alice", PASSWORD)  # the user name works too
    me = laptop.get("/me").json()
    assert me["name"] == "alice" and "alice@example.test" in me["addresses"]
    identities = laptop.get("/me/identities").json()
    assert [i["address"] for i in identities] == ["alice@alias.example.test", "alice@example.test"] or \
        {i["address"] for i in identities} == {"alice@alias.example.test", "alice@example.test"}
    assert sum(i["default"] for i in identities) == 1

    sessions = laptop.get("/auth/sessions").json()
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    assert all(s["client_address"] == "127.0.0.1" for s in sessions)
    other = next(s for s in sessions if not s["current"])
    assert laptop.delete(f"/auth/sessions/{other['id']}").status == 204
    error_shape(phone.get("/me"), 401)  # the revoked device is signed out
    error_shape(laptop.delete(f"/auth/sessions/{other['id']}"), 404)

    assert laptop.post("/auth/logout").status == 204
    error_shape(laptop.get("/me"), 401)


def test_tokens_are_not_stored_in_plain_text(api):
    c = api.login("alice@example.test", PASSWORD)
    # Embedded sessions live in process memory and Redis in distributed mode; neither the
    # database nor the logs may contain the token.
    assert c.token not in (api.dir / "daemon-stderr.log").read_text(errors="replace")
    for f in api.data_dir.rglob("*"):
        if f.is_file():
            assert c.token.encode() not in f.read_bytes(), f


def test_login_is_rate_limited_per_account_and_per_address(make_daemon):
    d = make_daemon(api={"login_attempts_per_account": 3, "login_attempts_per_address": 8})
    d.add_user("carol", "carol@example.test", password=PASSWORD)
    anon = d.client()
    for _ in range(3):
        error_shape(anon.post("/auth/login", {"address": "carol@example.test", "password": "nope"}), 401)
    locked = anon.post("/auth/login", {"address": "carol@example.test", "password": PASSWORD})
    error_shape(locked, 429)
    assert int(locked.headers["retry-after"]) > 0
    # Other accounts from the same address are still served until the address limit.
    codes = [anon.post("/auth/login", {"address": f"x{i}@example.test", "password": "p"}).status
             for i in range(6)]
    assert codes[:4] == [401] * 4 and codes[-1] == 429, codes


def test_login_failures_count_per_account_whatever_name_is_typed(make_daemon):
    d = make_daemon(api={"login_attempts_per_account": 3})
    d.add_user("alice", "alice@example.test", "alice@alias.example.test", password=PASSWORD)
    stranger = ApiClient(d.api_url, source="127.0.0.2")
    for name in ("alice@example.test", "ALICE@alias.example.test", "alice"):
        error_shape(stranger.post("/auth/login", {"address": name, "password": "nope"}), 401)
    # Three names, one account: its budget is spent, even for the right password.
    for name in ("alice@example.test", "alice@alias.example.test", "alice"):
        locked = stranger.post("/auth/login", {"address": name, "password": PASSWORD})
        error_shape(locked, 429)
        assert int(locked.headers["retry-after"]) > 0


def test_failing_on_purpose_does_not_lock_the_owner_out(make_daemon):
    d = make_daemon(api={"login_attempts_per_account": 3})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    owner = ApiClient(d.api_url, source="127.0.0.1")
    attacker = ApiClient(d.api_url, source="127.0.0.2")
    newcomer = ApiClient(d.api_url, source="127.0.0.3")
    good = {"address": "alice@example.test", "password": PASSWORD}
    bad = {"address": "alice@example.test", "password": "guess"}
    assert owner.post("/auth/login", good).status == 200  # the owner's usual address

    for _ in range(3):
        error_shape(attacker.post("/auth/login", bad), 401)
    for client in (attacker, newcomer):  # addresses that never signed in wait, password or not
        refused = client.post("/auth/login", good)
        error_shape(refused, 429)
        assert 0 < int(refused.headers["retry-after"]) <= 15 * 60 + 1
    error_shape(attacker.post("/auth/login", bad), 429)

    signed_in = owner.post("/auth/login", good)
    assert signed_in.status == 200, signed_in
    # The owner's address has a budget of its own, so it cannot guess on forever either.
    for _ in range(3):
        error_shape(owner.post("/auth/login", bad), 401)
    error_shape(owner.post("/auth/login", good), 429)


def test_requests_are_validated_with_reasons(api):
    c = api.login("alice@example.test", PASSWORD)
    body = error_shape(c.post("/auth/login", {"address": "", "password": "x"}), 400)
    assert "address" in body["message"]
    error_shape(c.request("POST", "/tags", b"{not json", headers={"Content-Type": "application/json"}), 400)
    body = error_shape(c.post("/tags", {"name": "a\nb"}), 400)
    assert "control" in body["message"]
    error_shape(c.post("/contacts", {"addresses": ["not an address"]}), 400)
    error_shape(c.post("/contacts", {"addresses": ["x@example.test"], "public_keys": ["junk"]}), 400)
    error_shape(c.post("/drafts", {"to": ["bad@"]}), 400)
    error_shape(c.get("/messages/not-a-uuid"), 400)
    error_shape(c.get("/discussions?limit=0"), 400)
    error_shape(c.get("/discussions?limit=101"), 400)
    error_shape(c.get("/discussions?cursor=garbage"), 400)
    error_shape(c.get("/search?after=yesterday"), 400)
    error_shape(c.get("/no/such/route"), 404)
    # Announce a body over the limit: it is refused from the headers, before any byte is read.
    with socket.create_connection((HOST, api.api_port), timeout=30) as s:
        s.sendall((f"POST /api/v1/tags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {c.token}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {26 * 1024 * 1024}\r\n\r\n").encode())
        head = s.recv(65536).decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head
    assert '"error":"payload_too_large"' in head, head
    spec = c.get("/api/v1/openapi.json")
    assert spec.status == 200 and spec.json()["openapi"].startswith("3.")
    assert c.get("/api/v1/docs/").status == 200


def test_discussions_messages_and_safe_html(api):
    c = api.login("alice@example.test", PASSWORD)
    deliver(api, "alice@example.test", message("Trip", msg_id="trip@r", body="shall we go?"))
    deliver(api, "alice@example.test", message(
        "Newsletter", frm="News <news@shop.test>", msg_id="news@r",
        html='<p onclick="steal()">Sale!<script>alert(1)</script>'
             '<img src="https://tracker.shop.test/open.gif?u=alice" width="1">'
             '<a href="https://shop.test/sale?id=3&amp;utm_source=news&amp;utm_medium=email&amp;fbclid=abc">'
             'Shop</a></p>'))
    deliver(api, "alice@example.test", message("Re: Trip", frm="Cy <cy@remote.test>", msg_id="trip2@r",
                                                refs="trip@r", body="yes!"))
    page = c.get("/discussions").json()
    subjects = [d["subject"] for d in page["items"]]
    assert subjects == ["Trip", "Newsletter"], subjects  # newest activity first
    trip = page["items"][0]
    assert trip["message_count"] == 2 and trip["unread_count"] == 2
    assert trip["snippet"] == "yes!"
    people = {p["address"] for p in trip["participants"]}
    assert {"bob@remote.test", "cy@remote.test", "alice@example.test"} <= people
    assert set(trip["privacy"]) >= {"privacy_index", "transport_tls", "encrypted"}
    assert c.get(f"/discussions/{trip['id']}").json()["id"] == trip["id"]
    msgs = c.get(f"/discussions/{trip['id']}/messages").json()["items"]
    assert [m["subject"] for m in msgs] == ["Re: Trip", "Trip"]

    news_id = next(m["id"] for m in c.get("/messages").json()["items"] if m["subject"] == "Newsletter")
    view = c.get(f"/messages/{news_id}").json()
    assert "script" not in view["html"] and "onclick" not in view["html"]
    assert "tracker.shop.test" not in view["html"], "remote content is blocked by default"
    assert view["blocked"] == [{"kind": "img src", "url": "https://tracker.shop.test/open.gif?u=alice",
                                "tracker": True, "reason": "pixel"}], "a 1-pixel-wide image is a tracker"
    assert view["remote_content_allowed"] is False
    # The link still works, but no longer tells the shop who clicked it, nor from which mail.
    assert 'href="https://shop.test/sale?id=3"' in view["html"], view["html"]
    assert "utm_" not in view["html"] and "fbclid" not in view["html"]
    assert view["tracking_params_removed"] == 3
    opened = c.get(f"/messages/{news_id}?remote_content=true").json()
    assert opened["blocked"] == []
    # Loaded remote images come through our image proxy, never straight from the sender.
    assert 'src="/api/v1/remote/image?u=https%3A%2F%2Ftracker.shop.test%2Fopen.gif' in opened["html"], \
        opened["html"]
    assert '"https://tracker.shop.test' not in opened["html"]

    raw = c.get(f"/messages/{news_id}/raw")
    assert raw.status == 200 and raw.headers["content-type"].startswith("message/rfc822")
    assert b"tracker.shop.test" in raw.body and raw.body.startswith(b"From: News")


def test_attachments_download(api):
    c = api.login("alice@example.test", PASSWORD)
    payload = bytes(range(256)) * 40
    deliver(api, "alice@example.test", message("Report", attachment=("report.bin", payload)))
    mid = c.get("/messages").json()["items"][0]["id"]
    view = c.get(f"/messages/{mid}").json()
    [att] = view["attachments"]
    assert att["file_name"] == "report.bin" and att["size"] == len(payload)
    r = c.get(f"/messages/{mid}/attachments/{att['index']}")
    assert r.status == 200 and r.body == payload
    assert r.headers["content-type"] == "application/octet-stream"
    assert 'filename="report.bin"' in r.headers["content-disposition"]
    assert r.headers["x-content-type-options"] == "nosniff"
    error_shape(c.get(f"/messages/{mid}/attachments/999"), 404)


def test_flags_tags_trash_and_delete(api):
    c = api.login("alice@example.test", PASSWORD)
    deliver(api, "alice@example.test", message("Invoice 42", msg_id="inv@r", body="please pay"))
    mid = c.get("/messages").json()["items"][0]["id"]
    disc = c.get("/discussions").json()["items"][0]
    assert disc["unread_count"] == 1
    flags = c.patch(f"/messages/{mid}/flags", {"seen": True, "flagged": True}).json()
    assert flags["seen"] and flags["flagged"] and not flags["trashed"]
    assert c.get(f"/discussions/{disc['id']}").json()["unread_count"] == 0
    assert c.patch(f"/messages/{mid}/flags", {"trashed": True}).json()["trashed"]
    assert c.get(f"/messages/{mid}").json()["flags"]["trashed"]

    work = c.post("/tags", {"name": "work"})
    assert work.status == 201
    work = work.json()
    error_shape(c.post("/tags", {"name": "work"}), 409)
    assert c.put(f"/messages/{mid}/tags", {"tags": [work["id"]]}).json() == [work]
    wait_indexed(c)
    wait_until("tag search", lambda: ids(c.get("/search?tag=work").json()) == [mid])
    renamed = c.patch(f"/tags/{work['id']}", {"name": "job"}).json()
    assert renamed == {"id": work["id"], "name": "job"}
    assert ids(c.get("/search?tag=job").json()) == [mid], "renaming keeps the tag on its messages"
    assert c.get("/search?tag=work").json()["items"] == []
    assert c.get(f"/messages/{mid}").json()["tags"] == [renamed]

    assert c.delete(f"/tags/{work['id']}").status == 204
    assert c.get(f"/messages/{mid}").json()["tags"] == []
    error_shape(c.delete(f"/tags/{work['id']}"), 404)

    assert c.delete(f"/messages/{mid}").status == 204
    error_shape(c.get(f"/messages/{mid}"), 404)
    error_shape(c.get(f"/messages/{mid}/raw"), 404)
    assert c.get("/discussions").json()["items"] == []
    status = wait_indexed(c)
    assert status["stored"] == 0 and status["indexed"] == 0, "deleted mail leaves the index too"
    assert c.get("/search?q=invoice").json()["items"] == []


def test_search_filters_pagination_and_watermark(api):
    c = api.login("alice@example.test", PASSWORD)
    deliver(api, "alice@example.test", message("Budget 2026", frm="Dana <dana@corp.test>",
                                                date="Thu, 01 Jan 2026 09:00:00 +0000", body="numbers attached",
                                                attachment=("budget.xls", b"cells")))
    deliver(api, "alice@example.test", message("Lunch", frm="Eve <eve@friends.test>",
                                                date="Sun, 01 Mar 2026 12:00:00 +0000", body="pizza budget?"))
    deliver(api, "alice@example.test", message("Budget review", frm="Dana <dana@corp.test>",
                                                to="team@corp.test", date="Wed, 01 Apr 2026 09:00:00 +0000",
                                                body="see you"))
    status = wait_indexed(c)
    assert status == {"stored": 3, "indexed": 3, "up_to_date": True}

    def subjects(query: str) -> list[str]:
        r = c.get("/search?" + query)
        assert r.status == 200, r
        body = r.json()
        assert body["index"]["up_to_date"] is True
        return [m["subject"] for m in body["items"]]

    assert subjects("q=budget") == ["Budget review", "Lunch", "Budget 2026"]
    assert subjects("from=dana%40corp.test") == ["Budget review", "Budget 2026"]
    assert subjects("to=team%40corp.test") == ["Budget review"]
    assert subjects("subject=budget") == ["Budget review", "Budget 2026"]
    assert subjects("after=2026-02-01&before=2026-03-31") == ["Lunch"]
    assert subjects("has_attachment=true") == ["Budget 2026"]
    assert subjects("q=budget&from=eve") == ["Lunch"]
    assert subjects("q=nothing-matches-this") == []
    assert [m["subject"] for m in walk(c, "/search?q=budget", limit=1)] == \
        ["Budget review", "Lunch", "Budget 2026"]


def test_every_list_paginates(api):
    c = api.login("alice@example.test", PASSWORD)
    for i in range(5):
        deliver(api, "alice@example.test", message(f"Note {i}", frm=f"P{i} <p{i}@remote.test>"))
    assert [m["subject"] for m in walk(c, "/messages")] == [f"Note {i}" for i in reversed(range(5))]
    assert [d["subject"] for d in walk(c, "/discussions")] == [f"Note {i}" for i in reversed(range(5))]
    disc = c.get("/discussions").json()["items"][0]["id"]
    assert len(walk(c, f"/discussions/{disc}/messages", limit=1)) == 1
    wait_until("contacts to be learned", lambda: len(c.get("/contacts?limit=100").json()["items"]) >= 5)
    assert len(walk(c, "/contacts")) == 5
    for i in range(3):
        assert c.post("/drafts", {"to": [f"p{i}@remote.test"], "subject": f"d{i}"}).status == 201
    assert [d["subject"] for d in walk(c, "/drafts")] == ["d2", "d1", "d0"]


def test_contacts_are_learned_and_editable(api):
    c = api.login("alice@example.test", PASSWORD)
    deliver(api, "alice@example.test", message("Hi", frm="Fay Q <fay@remote.test>"))
    learned = wait_until("Fay to be learned", lambda: [x for x in c.get("/contacts").json()["items"]
                                                         if x["addresses"] == ["fay@remote.test"]])
    fay = learned[0]
    assert fay["name"] == "Fay Q" and fay["public_keys"] == []
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBF...\n-----END PGP PUBLIC KEY BLOCK-----"
    updated = c.put(f"/contacts/{fay['id']}", {"name": "Fay", "addresses": ["fay@remote.test", "fay@work.test"],
                                              "public_keys": [key]})
    assert updated.status == 200, updated
    assert c.get(f"/contacts/{fay['id']}").json()["public_keys"] == [key]
    error_shape(c.post("/contacts", {"name": "Dup", "addresses": ["fay@work.test"]}), 409)
    made = c.post("/contacts", {"name": "Gus", "addresses": ["gus@remote.test"]})
    assert made.status == 201
    assert c.delete(f"/contacts/{made.json()['id']}").status == 204
    error_shape(c.get(f"/contacts/{made.json()['id']}"), 404)


def test_new_mail_events_stream(api):
    c = api.login("alice@example.test", PASSWORD)
    sock = socket.create_connection((HOST, api.api_port), timeout=30)
    sock.sendall((f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                  f"Authorization: Bearer {c.token}\r\n\r\n").encode())
    received = bytearray()

    def read():
        try:
            while b"new_mail" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                received.extend(chunk)
        except OSError:
            return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Subscription happens when the request is handled; give it a moment before delivering.
    wait_until("the event stream to open", lambda: b"200 OK" in received or b"text/event-stream" in received,
               timeout=30)
    deliver(api, "alice@example.test", message("Ping", msg_id="ping@r"))
    reader.join(timeout=60)
    sock.close()
    text = received.decode(errors="replace")
    assert "new_mail" in text, text
    mid = c.get("/messages").json()["items"][0]["id"]
    assert mid in text


def test_events_need_a_session(api):
    r = api.client().get("/events")
    assert r.status == 401


def open_event_stream(daemon, token: str) -> tuple[socket.socket, int, bytes]:
    """Opens GET /events and reads the response head: (socket, status, head and any body)."""
    sock = socket.create_connection((HOST, daemon.api_port), timeout=30)
    sock.sendall((f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1])
    if status != 200:  # an error has a JSON body of known length: read it whole
        headers, _, body = head.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = sock.recv(4096)
            if not chunk:
                break
            body += chunk
        head = headers + b"\r\n\r\n" + body
    return sock, status, head


def redis_subscribers(channel: str) -> int:
    """PUBSUB NUMSUB for one channel, over a raw RESP connection."""
    import urllib.parse
    u = urllib.parse.urlsplit(REDIS)
    args = [b"PUBSUB", b"NUMSUB", channel.encode()]
    with socket.create_connection((u.hostname, u.port or 6379), timeout=10) as s:
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        reply = b""
        while not (reply.count(b"\r\n") >= 4 and reply.endswith(b"\r\n")):
            reply += s.recv(4096)
    return int(reply.split(b"\r\n")[-2][1:])  # *2 $n channel :count


def test_event_streams_are_capped_per_user_and_share_one_subscription(make_daemon):
    d = make_daemon(api={"max_event_streams_per_user": 3})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    d.add_user("bob", "bob@example.test", password=PASSWORD)
    alice = d.login("alice@example.test", PASSWORD)
    bob = d.login("bob@example.test", PASSWORD)
    streams = []
    try:
        for _ in range(3):
            sock, status, head = open_event_stream(d, alice.token)
            streams.append(sock)
            assert status == 200, head
        sock, status, head = open_event_stream(d, alice.token)
        sock.close()
        assert status == 429, head
        text = head.decode(errors="replace").lower()
        assert "retry-after:" in text and "too_many_streams" in text, text
        sock, status, head = open_event_stream(d, bob.token)
        sock.close()
        assert status == 200, "other users have their own streams"

        if BACKEND == "distributed":
            alice_id = alice.get("/me").json()["id"]
            channel = f"palisade:ps:e2e-{d.tag}:u:{alice_id}:events:mail"
            assert redis_subscribers(channel) == 1, "three streams, one Redis subscription"

        deliver(d, "alice@example.test", message("Fan out", msg_id="fanout@r"))
        for sock in streams:
            got = b""
            sock.settimeout(60)
            while b"new_mail" not in got:
                chunk = sock.recv(4096)
                assert chunk, got
                got += chunk

        # Closing a stream frees its slot once the server notices (at the latest at the next
        # keep-alive).
        streams.pop().close()

        def reopened():
            sock, status, _ = open_event_stream(d, alice.token)
            if status == 200:
                streams.append(sock)
                return True
            sock.close()
            return False
        wait_until("a slot to free up", reopened, timeout=60, interval=1)
    finally:
        for sock in streams:
            sock.close()
