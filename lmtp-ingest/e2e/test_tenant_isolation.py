"""User B cannot read, list, search, tag, download, delete or send as user A, even knowing
(or guessing) every id of A's. Every probe is made with B's valid session."""

from __future__ import annotations

import uuid

import pytest

from api_helpers import PASSWORD, deliver, message, wait_indexed, wait_until


@pytest.fixture
def tenants(make_daemon):
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    d.add_user("mallory", "mallory@example.test", password=PASSWORD)
    a = d.login("alice@example.test", PASSWORD)
    b = d.login("mallory@example.test", PASSWORD)
    deliver(d, "alice@example.test", message("Alice private zebra", msg_id="a1@r", body="zebra secret",
                                             attachment=("secret.txt", b"top secret")))
    mid = a.get("/messages").json()["items"][0]["id"]
    view = a.get(f"/messages/{mid}").json()
    tag = a.post("/tags", {"name": "private"}).json()
    assert a.put(f"/messages/{mid}/tags", {"tags": [tag["id"]]}).status == 200
    contact = a.post("/contacts", {"name": "Z", "addresses": ["z@remote.test"]}).json()
    draft = a.post("/drafts", {"to": ["z@remote.test"], "subject": "draft zebra"}).json()
    session = next(s for s in a.get("/auth/sessions").json() if s["current"])
    wait_indexed(a)
    ids = {"message": mid, "discussion": view["discussion_id"], "tag": tag["id"], "contact": contact["id"],
           "draft": draft["id"], "session": session["id"], "attachment": view["attachments"][0]["index"]}
    return d, a, b, ids


def test_other_users_ids_are_not_found(tenants):
    _, a, b, i = tenants
    probes = [
        ("GET", f"/messages/{i['message']}", None),
        ("GET", f"/messages/{i['message']}/raw", None),
        ("GET", f"/messages/{i['message']}/attachments/{i['attachment']}", None),
        ("PATCH", f"/messages/{i['message']}/flags", {"seen": True}),
        ("PUT", f"/messages/{i['message']}/tags", {"tags": []}),
        ("DELETE", f"/messages/{i['message']}", None),
        ("POST", f"/messages/{i['message']}/reply", {"all": True}),
        ("POST", f"/messages/{i['message']}/forward", None),
        ("GET", f"/discussions/{i['discussion']}", None),
        ("GET", f"/discussions/{i['discussion']}/messages", None),
        ("GET", f"/discussions/{i['discussion']}/messages?folder=trash", None),
        ("PATCH", f"/discussions/{i['discussion']}/flags", {"seen": True, "trashed": True}),
        ("POST", f"/discussions/{i['discussion']}/tags", {"remove": []}),
        ("PATCH", f"/tags/{i['tag']}", {"name": "stolen"}),
        ("DELETE", f"/tags/{i['tag']}", None),
        ("GET", f"/contacts/{i['contact']}", None),
        ("PUT", f"/contacts/{i['contact']}", {"addresses": ["evil@remote.test"]}),
        ("DELETE", f"/contacts/{i['contact']}", None),
        ("GET", f"/drafts/{i['draft']}", None),
        ("PUT", f"/drafts/{i['draft']}", {"to": ["evil@remote.test"]}),
        ("POST", f"/drafts/{i['draft']}/send", None),
        ("DELETE", f"/drafts/{i['draft']}", None),
        ("DELETE", f"/auth/sessions/{i['session']}", None),
    ]
    for method, path, body in probes:
        if body is None and method == "POST":
            body = {}
        r = b.request(method, path, body)
        assert r.status == 404, (method, path, r)
        assert r.json()["error"] == "not_found"
    # Random ids are just as unknown.
    assert b.get(f"/messages/{uuid.uuid4()}").status == 404

    # Nothing changed for Alice.
    view = a.get(f"/messages/{i['message']}").json()
    assert view["flags"]["seen"] is False and [t["name"] for t in view["tags"]] == ["private"]
    assert a.get(f"/drafts/{i['draft']}").json()["to"] == ["z@remote.test"]
    assert a.get(f"/contacts/{i['contact']}").json()["addresses"] == ["z@remote.test"]
    assert a.get("/me").status == 200, "Alice's session survives"


def test_lists_and_search_show_only_own_data(tenants):
    _, _, b, i = tenants
    for path in ("/messages", "/discussions", "/discussions?folder=trash", "/contacts", "/drafts"):
        assert b.get(path).json()["items"] == [], path
    assert b.get("/contacts/autocomplete?q=z").json() == []
    assert b.get("/tags").json() == []
    assert b.get("/search?q=zebra").json()["items"] == []
    assert b.get("/search?subject=zebra").json()["items"] == []
    assert b.get("/search?tag=private").json()["items"] == []
    assert b.get("/search?from=bob%40remote.test").json()["items"] == []
    status = b.get("/index/status").json()
    assert status["stored"] == 0 and status["indexed"] == 0
    sessions = b.get("/auth/sessions").json()
    assert all(s["id"] != i["session"] for s in sessions) and len(sessions) == 1


def test_cannot_tag_with_or_reach_anothers_tags(tenants):
    d, a, b, i = tenants
    mine = b.post("/tags", {"name": "private"})
    assert mine.status == 201, "tag names are per user"
    deliver(d, "mallory@example.test", message("Mallory's own", msg_id="m1@r"))
    own = b.get("/messages").json()["items"][0]["id"]
    # Alice's tag id on Mallory's own message is an unknown tag (404, like any reference to
    # something that does not exist for this user), not a cross-tenant link.
    r = b.put(f"/messages/{own}/tags", {"tags": [i["tag"]]})
    assert r.status == 404 and "unknown tag" in r.json()["message"]
    # Mallory's tag on Alice's message: the message does not exist for Mallory.
    assert b.put(f"/messages/{i['message']}/tags", {"tags": [mine.json()["id"]]}).status == 404
    wait_indexed(b)
    assert [m["id"] for m in b.get("/search?tag=private").json()["items"]] == []
    assert len(a.get("/search?tag=private").json()["items"]) == 1


def test_cannot_send_as_another_user(tenants):
    _, _, b, _ = tenants
    r = b.post("/drafts", {"from": "alice@example.test", "to": ["z@remote.test"], "subject": "spoof"})
    assert r.status == 403 and r.json()["error"] == "forbidden"


def test_no_session_no_data(tenants):
    d, _, _, i = tenants
    anon = d.client()
    for path in ("/messages", f"/messages/{i['message']}", f"/messages/{i['message']}/raw", "/discussions",
                 "/contacts", "/drafts", "/tags", "/search?q=zebra", "/index/status", "/me", "/auth/sessions"):
        assert anon.get(path).status == 401, path
