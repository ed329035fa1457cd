"""Remote content, end to end: blocked items are marked as trackers from the message itself
(pixels, hidden images) and from the maintained tracker list; loaded remote images come from
our origin through the image proxy, signed per user, and the proxy reaches only public
addresses (after DNS, and on every redirect), passes only raster images under the size cap, and
sends no cookie or referrer. Runs on both backends.

The test servers listen on 127.0.0.2, which daemons here may reach only through the
test-only allowlist; a second server on 127.0.0.1 stands for the internal network and must
never be reached."""

from __future__ import annotations

import hashlib
import hmac
import html as htmllib
import re
import struct
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import subprocess

from api_helpers import PASSWORD, deliver, message
from palisade_e2e import REPO, ApiClient, free_port

# A valid 1×1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
MAX_IMAGE = 4096
SECRET = "e2e-remote-secret-0123456789"


class Recorder(ThreadingHTTPServer):
    """An HTTP server recording each request's path and headers."""

    daemon_threads = True

    def __init__(self, host: str):
        self.seen: list[tuple[str, dict]] = []
        super().__init__((host, free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.seen]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status: int, ctype: str, body: bytes, *, length: bool = True, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            # Chunked, so the size is only known by reading it.
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1000):
                part = body[i:i + 1000]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        path = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(path.query))
        if path.path == "/pixel.png":
            self.send(200, "image/png", PNG, extra={"Set-Cookie": "track=1"})
        elif path.path == "/page.html":
            self.send(200, "text/html", b"<script>alert(1)</script>")
        elif path.path == "/logo.svg":
            self.send(200, "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
        elif path.path == "/big.png":
            self.send(200, "image/png", PNG + bytes(MAX_IMAGE * 2))
        elif path.path == "/big-chunked.png":
            self.send(200, "image/png", PNG + bytes(MAX_IMAGE * 2), length=False)
        elif path.path == "/redirect":
            self.send(302, "text/plain", b"", extra={"Location": query["to"]})
        else:
            self.send(404, "text/plain", b"no")


@pytest.fixture
def servers():
    outside = Recorder("127.0.0.2")  # the "public" image host, reachable through the allowlist
    inside = Recorder("127.0.0.1")  # the internal network: never to be reached
    yield outside, inside
    for s in (outside, inside):
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def tracker_list(tmp_path_factory):
    """The tracker list as a release ships it, generated from the registry package."""
    out = tmp_path_factory.mktemp("trackers") / "tracker-hosts.txt"
    r = subprocess.run([str(REPO / "devtools" / "tracker-hosts"), str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def start(make_daemon, allow: list[str], **remote):
    d = make_daemon(api={"remote": {"secret": SECRET, "max_image_bytes": MAX_IMAGE,
                                    "timeout_secs": 10, "allow_private": allow, **remote}})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    return d


def proxy_links(client: ApiClient, images: list[str]) -> list[str]:
    """Delivers a message showing `images`, loads its remote content and returns the proxy
    links of its images, in order."""
    subject = f"Images {uuid.uuid4().hex[:8]}"
    body = "".join(f'<img src="{htmllib.escape(u)}" alt="{i}">' for i, u in enumerate(images))
    deliver(client.daemon, "alice@example.test", message(subject, html=f"<p>{body}</p>"))
    mid = next(m["id"] for m in client.get("/messages?limit=100").json()["items"]
               if m["subject"] == subject)
    view = client.get(f"/messages/{mid}?remote_content=true").json()
    links = [htmllib.unescape(m) for m in re.findall(r'src="([^"]*)"', view["html"])]
    assert len(links) == len(images), view["html"]
    for link in links:
        assert link.startswith("/api/v1/remote/image?"), link
    return links


def login(d) -> ApiClient:
    c = d.login("alice@example.test", PASSWORD)
    c.daemon = d
    return c


def anonymous(d) -> ApiClient:
    """Images load with no Authorization header: the link's signature is the authorisation."""
    return ApiClient(d.api_url)


def error_code(r, status: int) -> str:
    assert r.status == status, r
    return r.json()["error"]


def test_internal_addresses_are_refused_without_the_allowlist(make_daemon, servers):
    outside, inside = servers
    d = start(make_daemon, allow=[])
    c = login(d)
    port = inside.server_address[1]
    targets = [f"http://127.0.0.1:{port}/pixel.png", "http://10.0.0.1/pixel.png",
               "http://10.255.1.2:8080/x.png", "http://169.254.169.254/latest/meta-data/",
               f"http://[::1]:{port}/pixel.png", f"http://localhost:{port}/pixel.png",
               outside.url("/pixel.png")]
    for target, link in zip(targets, proxy_links(c, targets)):
        r = anonymous(d).get(link)
        assert error_code(r, 403) == "destination_refused", (target, r)
    assert inside.seen == [] and outside.seen == [], "nothing internal was contacted"


def test_a_local_image_passes_without_cookies_or_referrer(make_daemon, servers):
    outside, inside = servers
    d = start(make_daemon, allow=["127.0.0.2/32"])
    c = login(d)
    [link] = proxy_links(c, [outside.url("/pixel.png")])
    r = anonymous(d).get(link, headers={"Cookie": "session=browser-cookie",
                                        "Referer": f"{d.api_url}/mail/secret-subject"})
    assert r.status == 200, r
    assert r.body == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"].startswith("private")
    assert "set-cookie" not in r.headers, "the sender's cookie stays with the proxy"
    assert outside.paths() == ["/pixel.png"]
    _, headers = outside.seen[0]
    assert "cookie" not in headers and "referer" not in headers, headers
    assert "authorization" not in headers
    assert headers["user-agent"] == "Mozilla/5.0", headers
    assert inside.seen == []


def test_redirects_to_internal_addresses_are_refused(make_daemon, servers):
    outside, inside = servers
    d = start(make_daemon, allow=["127.0.0.2/32"])
    c = login(d)
    port = inside.server_address[1]
    internal = [f"http://127.0.0.1:{port}/pixel.png", "http://10.0.0.1/pixel.png",
                "http://169.254.169.254/latest/meta-data/", f"http://[::1]:{port}/pixel.png",
                f"http://localhost:{port}/pixel.png", "file:///etc/passwd"]
    targets = [outside.url("/redirect?" + urllib.parse.urlencode({"to": t})) for t in internal]
    for target, link in zip(targets, proxy_links(c, targets)):
        r = anonymous(d).get(link)
        assert error_code(r, 403) == "destination_refused", (target, r)
    assert inside.seen == [], "no redirect reached the internal network"
    # A redirect to a permitted address is followed, at most three times.
    hop = outside.url("/pixel.png")
    for _ in range(3):
        hop = outside.url("/redirect?" + urllib.parse.urlencode({"to": hop}))
    too_far = outside.url("/redirect?" + urllib.parse.urlencode({"to": hop}))
    ok, loop = proxy_links(c, [hop, too_far])
    assert anonymous(d).get(ok).body == PNG
    assert error_code(anonymous(d).get(loop), 502) == "too_many_redirects"


def test_only_images_under_the_size_cap_pass(make_daemon, servers):
    outside, _ = servers
    d = start(make_daemon, allow=["127.0.0.2/32"])
    c = login(d)
    cases = {"/page.html": "not_an_image", "/logo.svg": "not_an_image", "/big.png": "too_large",
             "/big-chunked.png": "too_large", "/missing.png": "remote_error"}
    links = proxy_links(c, [outside.url(p) for p in cases])
    for (path, code), link in zip(cases.items(), links):
        r = anonymous(d).get(link)
        assert error_code(r, 502) == code, (path, r)
        assert b"<script>" not in r.body and b"<svg" not in r.body


def sign(user: str, expires: int, url: str) -> str:
    """The signature the server gives a link, computed from the shared secret."""
    key = hmac.new(SECRET.encode(), b"palisade: key for remote image links", hashlib.sha256).digest()
    msg = b"palisade remote image link v1" + uuid.UUID(user).bytes + struct.pack(">Q", expires) + url.encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def test_links_with_a_bad_or_expired_signature_are_refused(make_daemon, servers):
    outside, _ = servers
    d = start(make_daemon, allow=["127.0.0.2/32"])
    c = login(d)
    [link] = proxy_links(c, [outside.url("/pixel.png")])
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    assert set(q) == {"u", "e", "a", "s"}
    assert q["s"] == sign(q["a"], int(q["e"]), q["u"]), "links are signed with the configured secret"
    assert int(q["e"]) > time.time()

    def link_with(**changes) -> str:
        return "/api/v1/remote/image?" + urllib.parse.urlencode({**q, **changes})

    other_user = str(uuid.uuid4())
    for bad in [link_with(s="0" * 64), link_with(s="nothex"), link_with(u=outside.url("/big.png")),
                link_with(a=other_user), link_with(e=str(int(q["e"]) + 3600))]:
        assert error_code(anonymous(d).get(bad), 403) == "forbidden", bad
    past = int(time.time()) - 60
    expired = link_with(e=str(past), s=sign(q["a"], past, q["u"]))
    r = anonymous(d).get(expired)
    assert error_code(r, 403) == "forbidden" and "expired" in r.json()["message"], r
    assert anonymous(d).get(link_with(s=q["s"])).status == 200, "the untouched link still works"
    assert outside.paths() == ["/pixel.png"], "refused links fetch nothing"


def test_pixels_hidden_images_and_listed_hosts_are_marked_as_trackers(make_daemon, tracker_list):
    hosts = dict(line.split() for line in tracker_list.read_text().splitlines()
                 if line and not line.startswith("#"))
    assert len(hosts) > 1000, "the maintained list, not a handful of names"
    assert hosts.get("list-manage.com") == "customer_interaction", "Mailchimp's open tracking"
    d = start(make_daemon, allow=[], tracker_hosts=str(tracker_list))
    c = login(d)
    html = ('<p>Spring sale</p>'
            '<img src="https://shop.test/banner.png" width="600" alt="Sale">'
            '<img src="https://shop.test/o.gif?id=7" width="1" height="1" alt="">'
            '<img src="https://shop.test/h.gif" style="display:none" alt="">'
            '<img src="https://us5.list-manage.com/track/open.php?u=abc" alt="">'
            '<a href="https://shop.test/sale?utm_source=mail&amp;id=3">Shop</a>')
    deliver(d, "alice@example.test", message("Trackers", html=html))
    mid = c.get("/messages").json()["items"][0]["id"]
    view = c.get(f"/messages/{mid}").json()
    assert view["blocked"] == [
        {"kind": "img src", "url": "https://shop.test/banner.png", "tracker": False},
        {"kind": "img src", "url": "https://shop.test/o.gif?id=7", "tracker": True, "reason": "pixel"},
        {"kind": "img src", "url": "https://shop.test/h.gif", "tracker": True, "reason": "pixel"},
        {"kind": "img src", "url": "https://us5.list-manage.com/track/open.php?u=abc", "tracker": True,
         "reason": "tracking_host", "category": "customer_interaction"},
    ], view["blocked"]
    assert 'href="https://shop.test/sale?id=3"' in view["html"] and view["tracking_params_removed"] == 1

    # Without a list only the message itself tells: the listed host is no longer marked.
    plain = start(make_daemon, allow=[])
    deliver(plain, "alice@example.test", message("Trackers", html=html))
    pc = login(plain)
    marks = [b["tracker"] for b in pc.get(f"/messages/{pc.get('/messages').json()['items'][0]['id']}").json()["blocked"]]
    assert marks == [False, True, True, False]


# Our MTA, as the deployment configures it, and what it writes on mail it authenticated.
OUR_MTA = {"authserv_id": "mx.example.test", "internal_relays": ["mx.example.test"]}
ENTRY = ("Received: from mx.shop.test (mx.shop.test [192.0.2.1]) by mx.example.test with ESMTPS id 1;"
         " Mon, 02 Mar 2026 10:00:00 +0000\n")
PASSED = ENTRY + ("Authentication-Results: mx.example.test; dkim=pass header.d=shop.test;"
                  " spf=pass smtp.mailfrom=shop.test; dmarc=pass header.from=shop.test\n")
FAILED = ENTRY + ("Authentication-Results: mx.example.test; dkim=fail header.d=shop.test;"
                  " spf=fail smtp.mailfrom=shop.test; dmarc=fail header.from=shop.test\n")
# What a forger writes: a pass under another authserv-id, below our MTA's hop.
FORGED = ENTRY + "Authentication-Results: shop.test; dkim=pass; spf=pass; dmarc=pass\n"
NEWS_HTML = '<p>News</p><img src="https://cdn.shop.test/banner.png" alt="banner">'


def news(subject: str, headers: str, frm: str = "News <news@shop.test>") -> str:
    return headers + message(subject, frm=frm, html=NEWS_HTML)


def test_always_load_applies_per_sender_and_domain_and_never_to_unauthenticated_mail(make_daemon):
    d = make_daemon(privacy=OUR_MTA)
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    d.add_user("bob", "bob@example.test", password=PASSWORD)
    c = login(d)
    for subject, headers, frm in [("passed", PASSED, "News <news@shop.test>"),
                                  ("other sender", PASSED, "Deals <deals@shop.test>"),
                                  ("failed", FAILED, "News <news@shop.test>"),
                                  ("forged", FORGED, "News <news@shop.test>"),
                                  ("unauthenticated", "", "News <news@shop.test>")]:
        deliver(d, "alice@example.test", news(subject, headers, frm))
    ids = {m["subject"]: m["id"] for m in c.get("/messages").json()["items"]}

    def shown(subject: str) -> dict:
        view = c.get(f"/messages/{ids[subject]}").json()
        loaded = view["remote_content_allowed"]
        assert loaded == (view["blocked"] == []), view
        assert loaded == ("/api/v1/remote/image?" in view["html"]), view["html"]
        return view

    assert shown("passed")["authenticated_sender"] == "news@shop.test"
    for subject in ("failed", "forged", "unauthenticated"):
        assert "authenticated_sender" not in shown(subject), subject
    assert not any(shown(s)["remote_content_allowed"] for s in ids), "nothing loads by default"

    added = c.post("/remote/trusted/senders", {"address": "News@Shop.TEST"})
    assert added.status == 200, added
    assert added.json() == {"kind": "sender", "value": "news@shop.test"}
    assert c.post("/remote/trusted/senders", {"address": "news@shop.test"}).status == 200
    assert c.get("/remote/trusted").json() == [{"kind": "sender", "value": "news@shop.test"}]
    view = shown("passed")
    assert view["remote_content_allowed"] and view["remote_content_trusted"] == "sender"
    assert not shown("other sender")["remote_content_allowed"], "one sender, not the domain"
    for subject in ("failed", "forged", "unauthenticated"):
        assert not shown(subject)["remote_content_allowed"], f"{subject} mail never loads by itself"

    assert c.post("/remote/trusted/domains", {"domain": "Shop.Test"}).json() == {"kind": "domain",
                                                                                "value": "shop.test"}
    assert shown("other sender")["remote_content_trusted"] == "domain"
    assert shown("passed")["remote_content_trusted"] == "sender"
    for subject in ("failed", "forged", "unauthenticated"):
        assert not shown(subject)["remote_content_allowed"], subject

    bob = d.login("bob@example.test", PASSWORD)
    assert bob.get("/remote/trusted").json() == [], "settings are per user"
    assert bob.delete("/remote/trusted/domains/shop.test").status == 404

    for path, bad in [("domains", {"domain": "not a domain"}), ("domains", {"domain": "shop"}),
                      ("domains", {"domain": "news@shop.test"}), ("senders", {"address": "nobody"}),
                      ("senders", {"address": "shop.test"}), ("domains", {"domain": ""})]:
        assert c.post(f"/remote/trusted/{path}", bad).status == 400, bad
    assert c.delete("/remote/trusted/senders/news@shop.test").status == 204
    assert c.delete("/remote/trusted/senders/news@shop.test").status == 404
    assert c.get("/remote/trusted").json() == [{"kind": "domain", "value": "shop.test"}]
    assert shown("passed")["remote_content_trusted"] == "domain"
    assert c.delete("/remote/trusted/domains/shop.test").status == 204
    assert not shown("passed")["remote_content_allowed"]
    assert ApiClient(d.api_url).get("/remote/trusted").status == 401
