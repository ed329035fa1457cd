"""Recipient autocompletion over the address book, end to end, on both backends."""

from __future__ import annotations

from api_helpers import PASSWORD


def test_autocomplete_matches_name_words_and_addresses_of_ones_own_contacts(make_daemon):
    api = make_daemon()
    api.add_user("alice", "alice@example.test", password=PASSWORD)
    api.add_user("mallory", "mallory@example.test", password=PASSWORD)
    alice = api.login("alice@example.test", PASSWORD)
    mallory = api.login("mallory@example.test", PASSWORD)

    def add(client, name, *addresses):
        body = {"addresses": list(addresses)} | ({"name": name} if name else {})
        r = client.post("/contacts", body)
        assert r.status == 201, r
        return r.json()["id"]

    ann = add(alice, "Ann Lee", "ann.lee@example.test")
    bob = add(alice, "Bob Annison", "bob@example.test")
    annette = add(alice, None, "annette@else.test")
    add(alice, "Zed", "zed@example.test")
    add(mallory, "Ann Other", "ann@other.test")

    def suggest(client, q, **params):
        query = "&".join([f"q={q}"] + [f"{k}={v}" for k, v in params.items()])
        r = client.get(f"/contacts/autocomplete?{query}")
        assert r.status == 200, r
        return [(s.get("name"), s["address"], s["contact_id"]) for s in r.json()]

    expected = [("Ann Lee", "ann.lee@example.test", ann), (None, "annette@else.test", annette),
                ("Bob Annison", "bob@example.test", bob)]
    assert suggest(alice, "ann") == expected
    assert suggest(alice, "AnN") == expected, "case-insensitive"
    assert suggest(alice, "ann", limit=1) == expected[:1]
    assert suggest(alice, "lee") == expected[:1], "any word of the name"
    assert suggest(alice, "bob%40ex") == [expected[2]], "the start of an address"
    assert suggest(alice, "other") == [], "never another user's contacts"
    assert [s[1] for s in suggest(mallory, "ann")] == ["ann@other.test"]

    # The rules of the document: q is 1 to 100 characters, limit 1 to 20.
    for bad in ["", "q=", "q=" + "a" * 101, "q=a&limit=0", "q=a&limit=21"]:
        assert alice.get(f"/contacts/autocomplete?{bad}").status == 400, bad
    assert api.client().get("/contacts/autocomplete?q=a").status == 401
