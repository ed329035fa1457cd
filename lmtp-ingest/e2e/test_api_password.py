"""Changing one's password through the API, end to end, on both backends: the old password
stops working, other sessions end, the current one stays, and a wrong current password
counts as a failed sign-in."""

from __future__ import annotations

from api_helpers import PASSWORD

NEW = "a brand new passphrase"


def test_change_password_ends_other_sessions_and_keeps_this_one(make_daemon):
    api = make_daemon()
    api.add_user("alice", "alice@example.test", password=PASSWORD)
    api.add_user("bob", "bob@example.test", password=PASSWORD)
    here = api.login("alice@example.test", PASSWORD)
    elsewhere = api.login("alice", PASSWORD)
    bob = api.login("bob@example.test", PASSWORD)

    # Rules from the document: lengths, and the new one must differ.
    assert here.post("/me/password", {"current_password": PASSWORD, "new_password": "short"}).status == 400
    assert here.post("/me/password", {"current_password": PASSWORD, "new_password": "x" * 1025}).status == 400
    assert here.post("/me/password", {"current_password": PASSWORD, "new_password": PASSWORD}).status == 400
    assert here.post("/me/password", {"current_password": PASSWORD}).status == 400
    assert api.client().post("/me/password", {"current_password": PASSWORD, "new_password": NEW}).status == 401
    r = here.post("/me/password", {"current_password": "wrong password", "new_password": NEW})
    assert r.status == 403, r
    assert elsewhere.get("/me").status == 200, "a refused change ends nothing"

    r = here.post("/me/password", {"current_password": PASSWORD, "new_password": NEW})
    assert r.status == 204, r
    assert here.get("/me").status == 200, "the current session stays"
    assert elsewhere.get("/me").status == 401, "every other session ended"
    assert bob.get("/me").status == 200, "other users' sessions are untouched"
    assert [s["current"] for s in here.get("/auth/sessions").json()] == [True]

    anon = api.client()
    assert anon.post("/auth/login", {"address": "alice@example.test", "password": PASSWORD}).status == 401
    assert anon.post("/auth/login", {"address": "alice@example.test", "password": NEW}).status == 200
    assert anon.post("/auth/login", {"address": "bob@example.test", "password": PASSWORD}).status == 200


def test_wrong_current_passwords_count_as_failed_sign_ins(make_daemon):
    api = make_daemon(api={"login_attempts_per_account": 3})
    api.add_user("alice", "alice@example.test", password=PASSWORD)
    c = api.login("alice@example.test", PASSWORD)
    for _ in range(3):
        r = c.post("/me/password", {"current_password": "guess", "new_password": NEW})
        assert r.status == 403, r
    # The account's failure budget is used up: even the right password is not checked now.
    r = c.post("/me/password", {"current_password": PASSWORD, "new_password": NEW})
    assert r.status == 429, r
    assert int(r.headers["retry-after"]) > 0
    assert c.get("/me").status == 200
