"""The API keeps to its OpenAPI document on the points schemathesis once caught it out on, each
pinned here as a plain request: JSON types are not coerced, the document's rules are the server's
rules, undeclared methods say what is allowed, and every refusal is documented and has the error
shape. Runs on both backends."""

from __future__ import annotations

import re

import pytest

from api_helpers import PASSWORD

ERROR_KEYS = {"error", "message"}


@pytest.fixture
def client(make_daemon):
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    return d.login("alice@example.test", PASSWORD)


def refused(r, status: int) -> str:
    assert r.status == status, (r.status, r.body)
    body = r.json()
    assert set(body) == ERROR_KEYS and body["message"], body
    return body["message"]


def test_wrong_json_types_are_refused_not_coerced(client):
    for body, field in [
        ({"name": False}, "name"),
        ({"name": 7}, "name"),
        ({"name": None}, "name"),
        ({}, "name"),
    ]:
        reason = refused(client.post("/tags", body), 400)
        assert f"body.{field}" in reason, reason
    assert client.get("/tags").json() == [], "no tag named 'false' or '7' was made"

    reason = refused(client.post("/drafts", {"to": ["bob@example.test"], "subject": None}), 400)
    assert "body.subject: must not be null" in reason, reason
    reason = refused(client.post("/drafts", {"to": [True]}), 400)
    assert "body.to[0]: expected a string, found a boolean" in reason, reason
    reason = refused(client.patch("/messages/00000000-0000-0000-0000-000000000000/flags",
                                  {"seen": "true"}), 400)
    assert "body.seen: expected a boolean" in reason, reason
    refused(client.post("/auth/login", {"address": "alice@example.test", "password": 1234}), 400)
    # The same requests with the right types go through.
    assert client.post("/tags", {"name": "false"}).status == 201
    assert client.post("/drafts", {"to": ["bob@example.test"]}).status == 201


def test_the_documents_rules_are_the_servers_rules(client):
    spec = client.get("/api/v1/openapi.json").json()
    schemas = spec["components"]["schemas"]
    address = schemas["ContactRequest"]["properties"]["addresses"]["items"]
    assert address["format"] == "email" and address["maxLength"] == 254
    pattern = re.compile(address["pattern"])
    for value, ok in [("bob@example.test", True), ("a..b@example.test", False),
                      ("bob@localhost", False), ("<bob@example.test>", False)]:
        assert bool(pattern.search(value)) == ok, value
        r = client.post("/contacts", {"addresses": [value]})
        assert (r.status == 201) == ok, (value, r.status, r.body)
    tag = schemas["TagRequest"]["properties"]["name"]
    assert (tag["minLength"], tag["maxLength"]) == (1, 64)
    tag_pattern = re.compile(tag["pattern"])
    for value, ok in [("work", True), ("a\nb", False), ("   ", False), ("\u00a0", False)]:
        assert bool(tag_pattern.search(value)) == ok, repr(value)
        r = client.post("/tags", {"name": value})
        assert (r.status == 201) == ok, (value, r.status, r.body)
    subject = schemas["DraftRequest"]["properties"]["subject"]
    assert subject["maxLength"] == 998 and "pattern" in subject
    refused(client.post("/drafts", {"subject": "a\rBcc: eve@example.test"}), 400)
    # Query parameters too: a date that does not exist, a cursor no page ever returned.
    refused(client.get("/search?after=2023-02-29"), 400)
    assert client.get("/search?after=2024-02-29").status == 200
    refused(client.get("/search?cursor=5001"), 400)
    refused(client.get("/messages?cursor=garbage"), 400)


def test_undeclared_methods_get_405_with_allow(client):
    for method, path, allow in [
        ("TRACE", "/me", "GET, DELETE"),
        ("PUT", "/tags", "GET, POST"),
        ("POST", "/tags/00000000-0000-0000-0000-000000000000", "DELETE, PATCH"),
        ("DELETE", "/messages/00000000-0000-0000-0000-000000000000/raw", "GET"),
    ]:
        r = client.request(method, path)
        refused(r, 405)
        assert r.headers.get("allow") == allow, (method, path, r.headers)


def test_refusals_are_documented_where_they_happen(client):
    spec = client.get("/api/v1/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"400", "401", "413", "429", "503"} <= codes, (method, path, codes)
            assert ("415" in codes) == ("requestBody" in op), (method, path, codes)
    r = client.request("POST", "/tags", b'{"name": "x"}', headers={"Content-Type": "text/plain"})
    refused(r, 415)
    # A draft that cannot be sent yet is a conflict with its state, not a malformed request.
    draft = client.post("/drafts", {}).json()
    refused(client.post(f"/drafts/{draft['id']}/send"), 409)
