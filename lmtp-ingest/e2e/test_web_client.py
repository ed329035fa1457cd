"""The web client is served from the API's origin under a strict policy, with hashed assets
cached for good and the page always revalidated; API responses are never stored."""

from __future__ import annotations

import http.client

from palisade_e2e import HOST, ApiResponse


def fetch(port: int, path: str, method: str = "GET") -> ApiResponse:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return ApiResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def test_web_client_files_get_a_strict_policy_and_the_right_caching(make_daemon, tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(
        '<!doctype html><html><head><script type="module" src="/assets/index-3f2a1b9c.js">'
        "</script></head><body><div id=app></div></body></html>")
    (dist / "assets" / "index-3f2a1b9c.js").write_text("document.title = 'Palisade';\n")
    d = make_daemon(api={"static_dir": str(dist)})
    page = fetch(d.api_port, "/")
    assert page.status == 200 and b'id=app' in page.body, page
    asset = fetch(d.api_port, "/assets/index-3f2a1b9c.js")
    assert asset.status == 200, asset
    for r in (page, asset):
        csp = r.headers.get("content-security-policy", "")
        for directive in ("script-src 'self'", "object-src 'none'", "base-uri 'none'",
                          "frame-ancestors 'none'"):
            assert directive in csp, (directive, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert r.headers.get("x-content-type-options") == "nosniff"
    assert page.headers.get("cache-control") == "no-cache", page.headers
    assert "immutable" in asset.headers.get("cache-control", ""), asset.headers

    doc = fetch(d.api_port, "/api/v1/openapi.json")
    assert doc.status == 200
    assert doc.headers.get("cache-control") == "no-store"
    assert "content-security-policy" not in doc.headers


def test_head_answers_like_get_without_a_body(make_daemon, tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><div id=app></div>")
    d = make_daemon(api={"static_dir": str(dist)})
    get = fetch(d.api_port, "/")
    head = fetch(d.api_port, "/", method="HEAD")
    assert head.status == 200, head
    assert head.body == b""
    assert head.headers.get("content-length") == str(len(get.body)), head.headers
    assert head.headers.get("content-security-policy") == get.headers.get("content-security-policy")
    assert fetch(d.api_port, "/missing.js", method="HEAD").status == 404
