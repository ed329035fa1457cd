"""A message's MIME structure through the API: every part is listed with its place in the tree,
every inline text part is in the body, and any leaf, shown or not, can be downloaded by index.
Runs on both backends."""

from __future__ import annotations

import base64

import pytest

from api_helpers import PASSWORD, deliver

PDF = b"%PDF-1.4 not really\n" * 10

STRUCTURED = "\n".join([
    "From: Bob <bob@remote.test>",
    "To: alice@example.test",
    "Subject: Structure",
    "Date: Mon, 02 Mar 2026 10:00:00 +0000",
    "Message-ID: <structure@remote.test>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="outer"',
    "",
    "--outer",
    'Content-Type: multipart/alternative; boundary="alt"',
    "",
    "--alt",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Plain greeting",
    "--alt",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<p>HTML greeting</p>",
    "--alt--",
    "--outer",
    "Content-Type: application/pdf",
    'Content-Disposition: attachment; filename="doc.pdf"',
    "Content-Transfer-Encoding: base64",
    "",
    base64.encodebytes(PDF).decode().rstrip("\n"),
    "--outer",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "List footer after the attachment",
    "--outer--",
    "",
])


@pytest.fixture
def api(make_daemon):
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    return d


def test_structure_lists_every_part_and_parts_download(api):
    c = api.login("alice@example.test", PASSWORD)
    deliver(api, "alice@example.test", STRUCTURED)
    mid = c.get("/messages").json()["items"][0]["id"]
    view = c.get(f"/messages/{mid}").json()

    shape = [(p["index"], p.get("parent"), p["depth"], p["content_type"], p["shown_inline"],
              p["attachment"]) for p in view["structure"]]
    assert shape == [
        (0, None, 0, "multipart/mixed", False, False),
        (1, 0, 1, "multipart/alternative", False, False),
        (2, 1, 2, "text/plain", True, False),
        (3, 1, 2, "text/html", True, False),
        (4, 0, 1, "application/pdf", False, True),
        (5, 0, 1, "text/plain", True, False),
    ], view["structure"]
    pdf = view["structure"][4]
    assert pdf["file_name"] == "doc.pdf" and pdf["disposition"] == "attachment"
    assert pdf["size"] == len(PDF)
    assert view["structure"][2]["charset"] == "utf-8"

    # The footer after the attachment is in both bodies, not lost.
    assert view["text"].startswith("Plain greeting") and "List footer after the attachment" in view["text"]
    assert "HTML greeting" in view["html"] and "List footer after the attachment" in view["html"]
    assert [a["index"] for a in view["attachments"]] == [4]

    # A shown part is reachable as bytes too, as a download.
    r = c.get(f"/messages/{mid}/parts/5")
    assert r.status == 200 and r.body.strip() == b"List footer after the attachment"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-palisade-content-type"] == "text/plain"
    assert 'filename="part-5"' in r.headers["content-disposition"]
    assert r.headers["x-content-type-options"] == "nosniff"
    r = c.get(f"/messages/{mid}/parts/4")
    assert r.status == 200 and r.body == PDF
    assert 'filename="doc.pdf"' in r.headers["content-disposition"]

    for missing in (0, 1, 6, 999):  # containers have no bytes of their own
        r = c.get(f"/messages/{mid}/parts/{missing}")
        assert r.status == 404, (missing, r)
        assert r.json()["message"] == "no such part"
