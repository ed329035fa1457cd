"""Tag colours and the privacy index's explanation, end to end. Runs on both backends."""

from __future__ import annotations

import pytest

from api_helpers import PASSWORD, deliver

COLOUR_PATTERN = "^#[0-9a-fA-F]{6}$"
FEATURES = {"transport_tls", "dkim_pass", "dkim_signature", "spf_pass", "dmarc_pass", "encrypted",
            "signed", "spam", "known_contact", "long_known_contact", "contact_key"}


# Our MTA, as the deployment configures it: its authserv-id and its name in Received headers.
OUR_MTA = {"authserv_id": "mx.example.test", "internal_relays": ["mx.example.test", "10.0.0.0/8"]}


@pytest.fixture
def api(make_daemon):
    d = make_daemon(privacy=OUR_MTA)
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    d.add_user("mallory", "mallory@example.test", password=PASSWORD)
    return d


def error(r, status: int) -> dict:
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error", "message"} and body["message"], body
    return body


def test_tags_have_an_optional_colour_kept_across_renames(api):
    c = api.login("alice@example.test", PASSWORD)
    work = c.post("/tags", {"name": "work", "colour": "#FF8800"})
    assert work.status == 201, work
    work = work.json()
    assert work["colour"] == "#FF8800"
    plain = c.post("/tags", {"name": "plain"}).json()
    assert "colour" not in plain, "no colour is absent, not null"
    for bad in ("#ff88", "red", "#gg0000", "ff8800", "#ff8800 "):
        body = error(c.post("/tags", {"name": f"bad {bad}", "colour": bad}), 400)
        assert "colour" in body["message"], body
    error(c.post("/tags", {"name": "null colour", "colour": None}), 400)

    renamed = c.patch(f"/tags/{work['id']}", {"name": "job"})
    assert renamed.status == 200, renamed
    assert renamed.json() == {"id": work["id"], "name": "job", "colour": "#FF8800"}
    recoloured = c.patch(f"/tags/{work['id']}", {"colour": "#00aa00"}).json()
    assert recoloured == {"id": work["id"], "name": "job", "colour": "#00aa00"}
    both = c.patch(f"/tags/{plain['id']}", {"name": "blue", "colour": "#0000ff"}).json()
    assert both == {"id": plain["id"], "name": "blue", "colour": "#0000ff"}
    assert c.patch(f"/tags/{plain['id']}", {}).json() == both, "an empty change changes nothing"
    error(c.patch(f"/tags/{plain['id']}", {"colour": "blue"}), 400)
    error(c.patch(f"/tags/{plain['id']}", {"name": "job"}), 409)
    assert c.get("/tags").json() == [both, recoloured]

    mallory = api.login("mallory@example.test", PASSWORD)
    error(mallory.patch(f"/tags/{work['id']}", {"colour": "#000000"}), 404)
    assert mallory.get("/tags").json() == []
    assert c.get("/tags").json() == [both, recoloured]


def test_the_document_states_the_colour_rule_and_the_privacy_features(api):
    doc = api.client().get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("TagRequest", "TagPatchRequest"):
        assert schemas[name]["properties"]["colour"]["pattern"] == COLOUR_PATTERN, schemas[name]
    assert schemas["TagView"]["properties"]["colour"]["type"] == "string"
    assert set(schemas["PrivacyFeatureView"]["enum"]) == FEATURES
    factor = schemas["PrivacyFactorView"]
    assert set(factor["required"]) == {"feature", "points"}
    assert schemas["PrivacyView"]["properties"]["factors"]["type"] == "array"


def test_a_second_from_is_flagged_and_shown(api):
    c = api.login("alice@example.test", PASSWORD)
    # The second `From` has its name folded before the colon, which parsers used to drop.
    deliver(api, "alice@example.test", with_headers("spoofed", "From\n : Mallory <mallory@evil.test>\n"))
    deliver(api, "alice@example.test", with_headers("single", ""))
    by_subject = {m["subject"]: m["id"] for m in c.get("/messages").json()["items"]}
    spoofed = c.get(f"/messages/{by_subject['spoofed']}").json()
    assert spoofed["privacy"]["multiple_from"] is True, spoofed["privacy"]
    authors = [p["address"] for p in spoofed["participants"] if p["role"] == "from"]
    assert authors == ["mallory@evil.test", "bob@remote.test"], spoofed["participants"]
    single = c.get(f"/messages/{by_subject['single']}").json()
    assert single["privacy"]["multiple_from"] is False
    assert factors(spoofed) == factors(single), "the flag does not change the privacy index"


def with_headers(subject: str, headers: str) -> str:
    return (f"{headers}From: Bob <bob@remote.test>\nTo: alice@example.test\nSubject: {subject}\n"
            f"Date: Mon, 02 Mar 2026 10:00:00 +0000\nMessage-ID: <{subject.replace(' ', '.')}@remote.test>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nhello\n")


def factors(view: dict) -> dict[str, int]:
    privacy = view["privacy"]
    found = {f["feature"]: f["points"] for f in privacy["factors"]}
    assert len(found) == len(privacy["factors"]), "each feature counts once"
    assert privacy["privacy_index"] == max(0, min(100, sum(found.values()))), privacy
    return found


def test_every_point_of_the_privacy_index_is_explained(api):
    c = api.login("alice@example.test", PASSWORD)
    authenticated = (
        "Received: from mx.remote.test (mx.remote.test [192.0.2.1]) by mx.example.test with ESMTPS id 1;"
        " Mon, 02 Mar 2026 10:00:00 +0000\n"
        "Authentication-Results: mx.example.test; dkim=pass header.d=remote.test;"
        " spf=pass smtp.mailfrom=remote.test; dmarc=pass header.from=remote.test\n")
    deliver(api, "alice@example.test", with_headers("trusted", authenticated))
    deliver(api, "alice@example.test", with_headers("spam", authenticated + "X-Spam-Flag: YES\n"))
    deliver(api, "alice@example.test", with_headers("bare", ""))
    by_subject = {m["subject"]: m["id"] for m in c.get("/messages").json()["items"]}

    trusted = c.get(f"/messages/{by_subject['trusted']}").json()
    assert factors(trusted) == {"transport_tls": 30, "dkim_pass": 10, "spf_pass": 5, "dmarc_pass": 5}
    assert trusted["privacy"]["privacy_index"] == 50
    spam = c.get(f"/messages/{by_subject['spam']}").json()
    assert factors(spam) == {"transport_tls": 30, "dkim_pass": 10, "spf_pass": 5, "dmarc_pass": 5,
                             "spam": -30}, "spam lowers the index, and says so"
    assert spam["privacy"]["privacy_index"] == 20
    bare = c.get(f"/messages/{by_subject['bare']}").json()
    assert factors(bare) == {} and bare["privacy"]["privacy_index"] == 0

    for d in c.get("/discussions").json()["items"]:
        factors(d)  # the list explains its badges the same way


# What a sender can write: results under another authserv-id or a look-alike of ours, a
# Received hop claiming TLS, and a spam verdict, all below the hop where our MTA took the mail
# (mail reaches Palisade only through our MTA, which always writes that hop).
FORGED = (
    "Authentication-Results: remote.test; dkim=pass header.d=bank.test; spf=pass; dmarc=pass\n"
    "Authentication-Results: mx.example.test.remote.test; dkim=pass; spf=pass; dmarc=pass\n"
    "Received: from a.remote.test by mx.example.test with ESMTPS id 0\n"
    " (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); Mon, 02 Mar 2026 09:59:00 +0000\n"
    "X-Spam-Flag: NO\n")
ENTRY_HOPS = {
    "plain": "Received: from mx.remote.test (mx.remote.test [192.0.2.1]) by mx.example.test"
             " with ESMTP id 1; Mon, 02 Mar 2026 10:00:00 +0000\n",
    "tls": "Received: from mx.remote.test (mx.remote.test [192.0.2.1]) by mx.example.test"
           " with ESMTPS id 1; Mon, 02 Mar 2026 10:00:00 +0000\n"
           "Authentication-Results: mx.example.test; dkim=fail header.d=remote.test; spf=softfail\n",
}


def test_headers_a_sender_forged_do_not_move_the_privacy_index(api):
    """Each honest message has a twin dressed with forged headers: same factors, same index."""
    c = api.login("alice@example.test", PASSWORD)
    for name, ours in ENTRY_HOPS.items():
        deliver(api, "alice@example.test", with_headers(f"honest {name}", ours))
        deliver(api, "alice@example.test", with_headers(f"forged {name}", ours + FORGED))
    by_subject = {m["subject"]: m["id"] for m in c.get("/messages").json()["items"]}
    for name in ENTRY_HOPS:
        honest = c.get(f"/messages/{by_subject[f'honest {name}']}").json()
        forged = c.get(f"/messages/{by_subject[f'forged {name}']}").json()
        assert factors(forged) == factors(honest), name
        assert forged["privacy"]["privacy_index"] == honest["privacy"]["privacy_index"], name
        assert forged["privacy"]["untrusted_headers"] > honest["privacy"]["untrusted_headers"], name
    assert factors(c.get(f"/messages/{by_subject['honest tls']}").json()) == {"transport_tls": 30}


def test_without_a_trust_boundary_no_header_counts(make_daemon):
    """A node configured with no authserv-id and no relays believes no header at all."""
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    c = d.login("alice@example.test", PASSWORD)
    deliver(d, "alice@example.test", with_headers("claims", ENTRY_HOPS["tls"] + FORGED))
    [m] = c.get("/messages").json()["items"]
    view = c.get(f"/messages/{m['id']}").json()
    assert factors(view) == {} and view["privacy"]["untrusted_headers"] == 6, view["privacy"]
