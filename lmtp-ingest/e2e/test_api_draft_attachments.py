"""Files uploaded to drafts, end to end: upload as multipart/form-data, list, download byte for
byte, delete, the limits (the API's body limit and a draft's total, both 413; 20 files, 409),
file names cut to their base name, and tenant scoping. Sending them is in test_api_send.py.
Runs on both backends."""

from __future__ import annotations

import socket
import uuid

import pytest

from api_helpers import PASSWORD
from palisade_e2e import HOST

BODY_LIMIT = 300_000
DRAFT_LIMIT = 200_000


@pytest.fixture
def api(make_daemon):
    d = make_daemon(api={"max_body_bytes": BODY_LIMIT, "max_draft_attachment_bytes": DRAFT_LIMIT})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    d.add_user("mallory", "mallory@example.test", password=PASSWORD)
    return d


def multipart(name: str | None, data: bytes, content_type: str | None = "application/octet-stream",
              field: str = "file") -> tuple[bytes, str]:
    """One file part, as a browser's FormData sends it."""
    boundary = "palisade-" + uuid.uuid4().hex
    disposition = f'form-data; name="{field}"' + (f'; filename="{name}"' if name is not None else "")
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    body = head.encode() + b"\r\n" + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(client, draft_id: str, name: str | None, data: bytes, **kw):
    body, content_type = multipart(name, data, **kw)
    return client.request("POST", f"/drafts/{draft_id}/attachments", body,
                          headers={"Content-Type": content_type})


def new_draft(client) -> dict:
    r = client.post("/drafts", {"to": ["bob@remote.test"], "subject": "files", "body": "attached"})
    assert r.status == 201, r
    assert r.json()["attachments"] == []
    return r.json()


def error(r, status: int) -> dict:
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error", "message"} and body["message"], body
    return body


def test_upload_list_download_and_delete(api):
    c = api.login("alice@example.test", PASSWORD)
    draft = new_draft(c)
    payload = bytes(range(256)) * 300  # every byte value, 76,800 bytes
    r = upload(c, draft["id"], "report.bin", payload)
    assert r.status == 201, r
    report = r.json()
    assert report["file_name"] == "report.bin" and report["size"] == len(payload)
    assert report["content_type"] == "application/octet-stream"
    notes = upload(c, draft["id"], "C:\\Users\\alice\\notes été.txt", "hello\n".encode(), content_type="text/plain")
    assert notes.status == 201, notes
    notes = notes.json()
    assert notes["file_name"] == "notes été.txt", "only the base name is kept"
    assert notes["content_type"] == "text/plain"
    untyped = upload(c, draft["id"], "../../etc/passwd", b"x", content_type=None)
    assert untyped.status == 201, untyped
    assert untyped.json()["file_name"] == "passwd"
    assert untyped.json()["content_type"] == "application/octet-stream"

    listed = c.get(f"/drafts/{draft['id']}/attachments")
    assert listed.status == 200, listed
    assert listed.json() == [report, notes, untyped.json()], "upload order"
    assert c.get(f"/drafts/{draft['id']}").json()["attachments"] == listed.json()
    in_list = [d for d in c.get("/drafts").json()["items"] if d["id"] == draft["id"]]
    assert in_list[0]["attachments"] == listed.json()

    got = c.get(f"/drafts/{draft['id']}/attachments/{report['id']}")
    assert got.status == 200 and got.body == payload
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert 'filename="report.bin"' in got.headers["content-disposition"]
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["x-palisade-content-type"] == "application/octet-stream"
    assert c.get(f"/drafts/{draft['id']}/attachments/{notes['id']}").body == b"hello\n"

    assert c.delete(f"/drafts/{draft['id']}/attachments/{report['id']}").status == 204
    error(c.delete(f"/drafts/{draft['id']}/attachments/{report['id']}"), 404)
    error(c.get(f"/drafts/{draft['id']}/attachments/{report['id']}"), 404)
    assert [a["id"] for a in c.get(f"/drafts/{draft['id']}/attachments").json()] == \
        [notes["id"], untyped.json()["id"]]

    # Editing the draft's text keeps its files.
    edited = c.put(f"/drafts/{draft['id']}", {"to": ["bob@remote.test"], "subject": "files", "body": "v2"})
    assert edited.status == 200 and len(edited.json()["attachments"]) == 2


def test_deleting_the_draft_deletes_its_files(api):
    c = api.login("alice@example.test", PASSWORD)
    draft = new_draft(c)
    kept = new_draft(c)
    doomed = upload(c, draft["id"], "doomed.txt", b"bye").json()
    survivor = upload(c, kept["id"], "kept.txt", b"stay").json()
    assert c.delete(f"/drafts/{draft['id']}").status == 204
    error(c.get(f"/drafts/{draft['id']}/attachments"), 404)
    error(c.get(f"/drafts/{draft['id']}/attachments/{doomed['id']}"), 404)
    assert c.get(f"/drafts/{kept['id']}/attachments").json() == [survivor]


def test_limits_answer_413_and_409_with_a_reason(api):
    c = api.login("alice@example.test", PASSWORD)
    draft = new_draft(c)
    body = error(upload(c, draft["id"], "huge.bin", b"\0" * (BODY_LIMIT + 1)), 413)
    assert body["error"] == "payload_too_large" and str(BODY_LIMIT) in body["message"]
    assert upload(c, draft["id"], "big.bin", b"\1" * 150_000).status == 201
    body = error(upload(c, draft["id"], "more.bin", b"\2" * 60_000), 413)
    assert body["error"] == "payload_too_large" and str(DRAFT_LIMIT) in body["message"], body
    assert len(c.get(f"/drafts/{draft['id']}/attachments").json()) == 1, "a refused file is not kept"
    assert upload(c, draft["id"], "fits.bin", b"\3" * 50_000).status == 201, "exactly the total allowed"

    many = new_draft(c)
    for i in range(20):
        r = upload(c, many["id"], f"f{i}.txt", b"x")
        assert r.status == 201, (i, r)
    body = error(upload(c, many["id"], "f20.txt", b"x"), 409)
    assert "20" in body["message"], body
    assert len(c.get(f"/drafts/{many['id']}/attachments").json()) == 20


def test_an_upload_without_a_declared_length_gets_413_past_the_limit(api):
    c = api.login("alice@example.test", PASSWORD)
    draft = new_draft(c)

    def chunked(data: bytes) -> str:
        body, content_type = multipart("streamed.bin", data)
        with socket.create_connection((HOST, api.api_port), timeout=60) as s:
            s.sendall((f"POST /api/v1/drafts/{draft['id']}/attachments HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {c.token}\r\nContent-Type: {content_type}\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
            try:
                for i in range(0, len(body), 65536):
                    piece = body[i:i + 65536]
                    s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the server may answer and close before the whole body is sent
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        return answer.decode(errors="replace")

    over = chunked(b"\0" * (BODY_LIMIT + 1000))
    assert over.startswith("HTTP/1.1 413"), over[:500]
    assert '"error":"payload_too_large"' in over, over[:500]
    assert c.get(f"/drafts/{draft['id']}/attachments").json() == []
    within = chunked(b"\1" * 1000)
    assert within.startswith("HTTP/1.1 201"), within[:500]


def test_bad_uploads_are_refused_with_a_reason(api):
    c = api.login("alice@example.test", PASSWORD)
    draft = new_draft(c)
    # A tab and a C1 control get through the part's header parser; the name rule refuses them.
    for name in ("a\tb.txt", "a\u0085b.txt"):
        body = error(upload(c, draft["id"], name, b"x"), 400)
        assert "control" in body["message"], body
    error(upload(c, draft["id"], "a\x01b.txt", b"x"), 400)
    body = error(upload(c, draft["id"], "x" * 256, b"x"), 400)
    assert "255" in body["message"], body
    error(upload(c, draft["id"], "ok.txt", b"x", field="other"), 400)  # no `file` part
    # Parts other than `file` are refused, and the document says so (schemathesis once sent an
    # extra part whose name the part parser cannot read, expecting it to be accepted).
    boundary = "extra-" + uuid.uuid4().hex
    extra = (f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'
             f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nx\r\n'
             f"--{boundary}--\r\n").encode()
    error(c.request("POST", f"/drafts/{draft['id']}/attachments", extra,
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}), 400)
    doc = c.get("/openapi.json").json()
    form = doc["paths"]["/api/v1/drafts/{id}/attachments"]["post"]["requestBody"]["content"]
    assert form["multipart/form-data"]["schema"]["additionalProperties"] is False
    assert form["multipart/form-data"]["schema"]["required"] == ["file"]
    r = c.request("POST", f"/drafts/{draft['id']}/attachments", b'{"file": "x"}',
                  headers={"Content-Type": "application/json"})
    assert r.status == 415, r
    assert c.get(f"/drafts/{draft['id']}/attachments").json() == []
    error(upload(c, str(uuid.uuid4()), "ok.txt", b"x"), 404)


def test_another_users_draft_and_files_are_404(api):
    alice = api.login("alice@example.test", PASSWORD)
    mallory = api.login("mallory@example.test", PASSWORD)
    draft = new_draft(alice)
    secret = upload(alice, draft["id"], "secret.txt", b"for alice only").json()
    error(upload(mallory, draft["id"], "planted.txt", b"x"), 404)
    error(mallory.get(f"/drafts/{draft['id']}/attachments"), 404)
    error(mallory.get(f"/drafts/{draft['id']}/attachments/{secret['id']}"), 404)
    error(mallory.delete(f"/drafts/{draft['id']}/attachments/{secret['id']}"), 404)
    own = new_draft(mallory)
    error(mallory.get(f"/drafts/{own['id']}/attachments/{secret['id']}"), 404)
    assert alice.get(f"/drafts/{draft['id']}/attachments").json() == [secret]
    assert alice.get(f"/drafts/{draft['id']}/attachments/{secret['id']}").body == b"for alice only"
