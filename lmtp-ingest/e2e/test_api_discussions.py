"""Discussion-wide actions and the discussion list's folders and tags, end to end: a real
daemon, mail delivered over LMTP, and the HTTP calls the web client makes. Runs on both
backends."""

from __future__ import annotations

import uuid

import pytest

from api_helpers import PASSWORD, deliver, message, wait_until


@pytest.fixture
def api(make_daemon):
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    d.add_user("mallory", "mallory@example.test", password=PASSWORD)
    return d


def deliver_thread(api, name: str, n: int) -> None:
    """Delivers a thread of `n` messages to alice."""
    for i in range(n):
        deliver(api, "alice@example.test", message(
            name if i == 0 else f"Re: {name}", msg_id=f"{name}{i}@remote.test",
            refs=f"{name}{i - 1}@remote.test" if i else None,
            date=f"Mon, 02 Mar 2026 10:0{i}:00 +0000"))


def discussion(client, subject: str) -> dict:
    def find():
        items = client.get("/discussions?limit=100").json()["items"]
        return next((d for d in items if d["subject"] == subject), None)
    return wait_until(f"discussion {subject!r}", find)


def test_discussion_flags_and_tags_in_one_call(api):
    alice = api.login("alice@example.test", PASSWORD)
    mallory = api.login("mallory@example.test", PASSWORD)
    deliver_thread(api, "trip", 3)
    deliver_thread(api, "other", 1)
    trip = wait_until("the whole thread", lambda: (d := discussion(alice, "trip"))["message_count"] == 3 and d)
    assert trip["unread_count"] == 3

    # Read in one call: every message, and the counts follow.
    r = alice.patch(f"/discussions/{trip['id']}/flags", {"seen": True})
    assert r.status == 200, r
    view = r.json()
    assert view["id"] == trip["id"] and view["unread_count"] == 0 and view["message_count"] == 3
    messages = alice.get(f"/discussions/{trip['id']}/messages").json()["items"]
    assert len(messages) == 3 and all(m["flags"]["seen"] for m in messages)
    assert discussion(alice, "other")["unread_count"] == 1, "other discussions are untouched"
    assert alice.patch(f"/discussions/{trip['id']}/flags", {"seen": False}).json()["unread_count"] == 3

    # Tags: add to every message, remove again; unknown tags and other users' ids are 404.
    work = alice.post("/tags", {"name": "work"}).json()
    r = alice.post(f"/discussions/{trip['id']}/tags", {"add": [work["id"]]})
    assert r.status == 200, r
    for m in messages:
        assert [t["name"] for t in alice.get(f"/messages/{m['id']}").json()["tags"]] == ["work"]
    r = alice.post(f"/discussions/{trip['id']}/tags", {"remove": [work["id"]]})
    assert r.status == 200, r
    for m in messages:
        assert alice.get(f"/messages/{m['id']}").json()["tags"] == []
    assert alice.post(f"/discussions/{trip['id']}/tags", {"add": [str(uuid.uuid4())]}).status == 404
    assert alice.post(f"/discussions/{trip['id']}/tags", {"add": ["x"]}).status == 400
    assert alice.post(f"/discussions/{trip['id']}/tags",
                      {"add": [str(uuid.uuid4()) for _ in range(101)]}).status == 400
    assert alice.patch(f"/discussions/{uuid.uuid4()}/flags", {"seen": True}).status == 404

    # Mallory can reach none of it.
    assert mallory.patch(f"/discussions/{trip['id']}/flags", {"seen": True}).status == 404
    mallory_tag = mallory.post("/tags", {"name": "mine"}).json()
    assert mallory.post(f"/discussions/{trip['id']}/tags", {"add": [mallory_tag["id"]]}).status == 404
    assert alice.post(f"/discussions/{trip['id']}/tags", {"add": [mallory_tag["id"]]}).status == 404
    assert discussion(alice, "trip")["unread_count"] == 3


def walk_folder(client, folder: str) -> list[dict]:
    """Every discussion of a folder, two per page, checking no page repeats an earlier one."""
    items, cursor = [], None
    for _ in range(100):
        url = f"/discussions?folder={folder}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url)
        assert r.status == 200, r
        page = r.json()
        items += page["items"]
        cursor = page.get("next")
        if not cursor:
            break
    ids = [d["id"] for d in items]
    assert len(ids) == len(set(ids)), "a discussion was listed twice"
    return items


def test_folders_split_the_list_and_discussions_show_their_tags(api):
    alice = api.login("alice@example.test", PASSWORD)
    mallory = api.login("mallory@example.test", PASSWORD)
    for name in ["one", "two", "three", "four", "five"]:
        deliver_thread(api, name, 1)
    deliver_thread(api, "pair", 2)
    wait_until("six discussions", lambda: len(walk_folder(alice, "inbox")) == 6)
    by_subject = {d["subject"]: d for d in walk_folder(alice, "inbox")}
    assert all(d["tags"] == [] and d["trashed_count"] == 0 for d in by_subject.values())

    # Trash two whole discussions and one message of the pair.
    for name in ["two", "four"]:
        r = alice.patch(f"/discussions/{by_subject[name]['id']}/flags", {"trashed": True})
        assert r.status == 200, r
        assert r.json()["message_count"] == 0 and r.json()["trashed_count"] == 1
    pair = by_subject["pair"]
    newest = alice.get(f"/discussions/{pair['id']}/messages?limit=1").json()["items"][0]
    assert alice.patch(f"/messages/{newest['id']}/flags", {"trashed": True}).status == 200

    inbox = walk_folder(alice, "inbox")
    assert {d["subject"] for d in inbox} == {"one", "three", "five", "pair"}
    in_pair = next(d for d in inbox if d["subject"] == "pair")
    assert (in_pair["message_count"], in_pair["unread_count"], in_pair["trashed_count"]) == (1, 1, 1)
    trash = walk_folder(alice, "trash")
    assert {d["subject"] for d in trash} == {"two", "four", "pair"}
    in_trash = next(d for d in trash if d["subject"] == "pair")
    assert (in_trash["message_count"], in_trash["unread_count"]) == (1, 1)
    assert [d["subject"] for d in trash] == [d["subject"] for d in sorted(
        trash, key=lambda d: (d["last_activity"], d["id"]), reverse=True)]
    assert alice.get("/discussions").json()["items"] == alice.get("/discussions?folder=inbox").json()["items"]
    assert alice.get("/discussions?folder=spam").status == 400
    msgs = lambda q: [m["id"] for m in alice.get(f"/discussions/{pair['id']}/messages{q}").json()["items"]]
    assert msgs("?folder=trash") == [newest["id"]]
    assert newest["id"] not in msgs("?folder=inbox") and len(msgs("?folder=inbox")) == 1
    assert len(msgs("")) == 2, "every message without a folder"
    assert alice.get(f"/discussions/{pair['id']}/messages?folder=spam").status == 400
    assert walk_folder(mallory, "trash") == [] and walk_folder(mallory, "inbox") == []

    # Out of the trash again.
    r = alice.patch(f"/discussions/{by_subject['two']['id']}/flags", {"trashed": False})
    assert r.json()["message_count"] == 1 and r.json()["trashed_count"] == 0
    assert {d["subject"] for d in walk_folder(alice, "trash")} == {"four", "pair"}

    # Tags show in the list, the union over the discussion's messages, by name.
    work = alice.post("/tags", {"name": "work"}).json()
    home = alice.post("/tags", {"name": "home"}).json()
    assert alice.put(f"/messages/{newest['id']}/tags", {"tags": [work["id"]]}).status == 200
    r = alice.post(f"/discussions/{pair['id']}/tags", {"add": [home["id"]]})
    assert [t["name"] for t in r.json()["tags"]] == ["home", "work"]
    listed = next(d for d in walk_folder(alice, "inbox") if d["subject"] == "pair")
    assert [t["name"] for t in listed["tags"]] == ["home", "work"]
    r = alice.post(f"/discussions/{pair['id']}/tags", {"remove": [work["id"], home["id"]]})
    assert r.json()["tags"] == []
    assert alice.delete(f"/tags/{home['id']}").status == 204
