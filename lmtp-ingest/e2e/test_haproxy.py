"""Debian's HAProxy running the production config (haproxy/palisade.cfg) in front of the API and
of a private Postfix smtpd, both fed the client's address with PROXY protocol v2.

The config file is the one shipped: only its "${HA_*}" variables are set, to loopback ports, a
throwaway certificate and a private runtime directory. Clients connect from 127.0.0.2 while
HAProxy itself connects from 127.0.0.1, so seeing 127.0.0.2 at the far end proves the address
came from the PROXY header.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from palisade_e2e import HOST, REPO, free_port, make_message, proxy_v2_header, stop_process
from test_postfix import Postfix, wait_messages

HAPROXY_CFG = REPO / "haproxy" / "palisade.cfg"
CLIENT = "127.0.0.2"       # where "internet" clients connect from
UNTRUSTED = "127.0.0.3"    # a peer that is not the proxy
PASSWORD = "correct horse battery staple"


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if not path:
        pytest.fail(f"{tool} is not installed: run devtools/install-deps (apt-get install {tool})", pytrace=False)
    return path


class HAProxy:
    """`haproxy -db -f haproxy/palisade.cfg` with its variables pointed at this test's ports."""

    def __init__(self, root: Path, api_server: str, smtpd_server: str, configs: tuple[Path, ...] = (HAPROXY_CFG,),
                 env: dict | None = None):
        self.root = root
        self.configs = [str(c) for c in configs]
        self.https_port = free_port()
        self.http_port = free_port()
        self.smtp_port = free_port()
        self.cert = root / "palisade.pem"
        self.stats = root / "admin.sock"
        self.log = root / "haproxy.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HA_LOG_TARGET": "stderr",
            "HA_STATS_SOCKET": str(self.stats),
            "HA_CHROOT": str(root / "chroot"),
            "HA_HTTPS_BIND": f"{HOST}:{self.https_port}",
            "HA_HTTP_BIND": f"{HOST}:{self.http_port}",
            "HA_TLS_CRT": str(self.cert),
            "HA_API_SERVER": api_server,
            "HA_SMTP_BIND": f"{HOST}:{self.smtp_port}",
            "HA_SMTPD_SERVER": smtpd_server,
            **(env or {}),
        }
        (root / "chroot").mkdir()
        self.proc: subprocess.Popen | None = None
        self._log = None

    def make_cert(self):
        openssl = need("openssl")
        key, crt = self.root / "key.pem", self.root / "crt.pem"
        r = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost",
                            "-addext", f"subjectAltName=IP:{HOST},DNS:localhost"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"openssl req failed: {r.stderr}"
        self.cert.write_bytes(crt.read_bytes() + key.read_bytes())
        self.ca = crt

    def check_config(self):
        files = [a for c in self.configs for a in ("-f", c)]
        r = subprocess.run([need("haproxy"), "-c", *files], env=self.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"haproxy -c rejected {self.configs}:\n{r.stdout}{r.stderr}"

    def start(self):
        self._log = open(self.log, "ab")
        files = [a for c in self.configs for a in ("-f", c)]
        self.proc = subprocess.Popen([need("haproxy"), "-db", *files], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self):
        stop_process(self.proc)
        if self._log is not None:
            self._log.close()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else "(no haproxy log)"

    def show_stat(self) -> dict[tuple[str, str], dict]:
        """The runtime API's `show stat`, keyed by (proxy, server)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.stats))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        text = data.decode().lstrip("# ")
        return {(row["pxname"], row["svname"]): row for row in csv.DictReader(io.StringIO(text))}

    def wait_servers_up(self, *servers: tuple[str, str], timeout: float = 60):
        """Until every server's health check (which carries a PROXY v2 LOCAL header) passes."""
        deadline = time.monotonic() + timeout
        stat = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                stat = self.show_stat()
            except OSError:
                time.sleep(0.1)
                continue
            if all(stat.get(s, {}).get("status") == "UP" and stat[s].get("check_status") == "L7OK"
                   for s in servers):
                return stat
            time.sleep(0.2)
        rows = {s: {k: stat.get(s, {}).get(k) for k in ("status", "check_status", "check_desc", "last_chk")}
                for s in servers} if stat else stat
        raise AssertionError(f"haproxy health checks not passing after {timeout}s: {rows}\n{self.tail()}")


# A stand-in for the built web client (frontend/dist): a page naming one hashed asset.
WEB_INDEX = ('<!doctype html><html><head><script type="module" src="/assets/index-5e1f2a3b.js">'
             "</script></head><body><div id=app></div></body></html>")
WEB_ASSET = "document.title = 'Palisade';\n"


@pytest.fixture
def edge(make_daemon, tmp_path):
    """Palisade (API behind PROXY v2, trusting only 127.0.0.1, serving a web client), Postfix
    smtpd behind PROXY v2 delivering to Palisade over LMTP, and HAProxy in front of both."""
    need("haproxy")
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(WEB_INDEX)
    (dist / "assets" / "index-5e1f2a3b.js").write_text(WEB_ASSET)
    d = make_daemon(api={"proxy_protocol": {"enabled": True, "trusted": [f"{HOST}/32"]},
                         "static_dir": str(dist)})
    d.add_user("alice", "alice@example.test", password=PASSWORD)

    # Short paths: the stats socket's must fit a sockaddr_un; Postfix drops to its own user.
    root = Path(tempfile.mkdtemp(prefix="palisade-haproxy-"))
    root.chmod(0o755)
    pf = Postfix(root / "postfix", d.port)
    with open(pf.etc / "main.cf", "a") as f:
        f.write("smtpd_upstream_proxy_protocol = haproxy\n")
    ha = HAProxy(root, api_server=f"{HOST}:{d.api_port}", smtpd_server=f"{HOST}:{pf.smtp_port}")
    try:
        ha.make_cert()
        ha.check_config()
        pf.start()
        ha.start()
        ha.wait_servers_up(("api", "api1"), ("postfix_smtpd", "smtpd1"))
        yield d, ha, pf
    finally:
        ha.stop()
        pf.stop()
        shutil.rmtree(root, ignore_errors=True)


def https(ha: HAProxy, method: str, path: str, body: bytes | None = None, token: str | None = None,
          source: str = CLIENT) -> tuple[int, dict, bytes]:
    """One request to HAProxy's TLS frontend, verifying its certificate, from `source`."""
    ctx = ssl.create_default_context(cafile=str(ha.ca))
    conn = http.client.HTTPSConnection(HOST, ha.https_port, context=ctx, timeout=30, source_address=(source, 0))
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_api_through_haproxy_sees_the_client_address(edge):
    _, ha, _ = edge
    status, _, body = https(ha, "POST", "/api/v1/auth/login",
                            json.dumps({"address": "alice@example.test", "password": PASSWORD}).encode())
    assert status == 200, f"login through haproxy: {status} {body!r}\n{ha.tail()}"
    token = json.loads(body)["token"]
    status, headers, body = https(ha, "GET", "/api/v1/auth/sessions", token=token)
    assert status == 200, f"{status} {body!r}"
    assert headers.get("strict-transport-security"), headers
    [current] = [s for s in json.loads(body) if s["current"]]
    # HAProxy connected from 127.0.0.1: only the PROXY header can have said 127.0.0.2.
    assert current["client_address"] == CLIENT, current

    # Plain HTTP only redirects to HTTPS; it never reaches the API.
    conn = http.client.HTTPConnection(HOST, ha.http_port, timeout=30, source_address=(CLIENT, 0))
    try:
        conn.request("GET", "/api/v1/me")
        r = conn.getresponse()
        r.read()
        assert r.status == 301, r.status
        assert r.getheader("Location", "").startswith("https://"), r.getheaders()
    finally:
        conn.close()


def http_answer(first_bytes: bytes, source: str, port: int, timeout: float = 15) -> bytes:
    """What the API sends back to a direct connection that starts with `first_bytes` (b"" when
    it closes without a byte). Fails if the connection stays open."""
    with socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0)) as s:
        try:
            s.sendall(first_bytes)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise AssertionError(f"connection from {source} still open after {timeout}s; got {data!r}") from None
        return data


def test_api_refuses_direct_connections(edge):
    d, _, _ = edge
    get = f"GET /api/v1/openapi.json HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    hdr = proxy_v2_header(src=("192.0.2.10", 40000), dst=(HOST, d.api_port))
    # Control: the proxy's own address with a header gets an answer.
    assert http_answer(hdr + get, HOST, d.api_port).startswith(b"HTTP/1.1 200"), "trusted peer with header"
    # (b) Not the proxy: closed without a byte, header or not.
    for first in (get, hdr + get):
        data = http_answer(first, UNTRUSTED, d.api_port)
        assert data == b"", f"untrusted {UNTRUSTED} got an answer: {data[:200]!r}"
    # (c) The proxy's address without a header: closed without a byte too.
    data = http_answer(get, HOST, d.api_port)
    assert data == b"", f"trusted peer without PROXY header got an answer: {data[:200]!r}"
    assert d.alive()


def test_smtp_through_haproxy_reaches_postfix_with_the_client_address(edge):
    d, ha, pf = edge
    subject = f"via haproxy {uuid.uuid4()}"
    msg = make_message(subject, "Relayed by haproxy and Postfix.\r\n")
    with smtplib.SMTP(HOST, ha.smtp_port, local_hostname="client.example.test", timeout=60,
                      source_address=(CLIENT, 0)) as smtp:
        refused = smtp.sendmail("sender@example.test", ["alice@example.test"], msg)
        assert refused == {}, refused
    log = pf.wait_log("status=sent (250")
    assert re.search(r"smtpd\[\d+\]: connect from \S*\[127\.0\.0\.2\]", log), (
        f"Postfix did not see the client address 127.0.0.2:\n{pf.tail()}\nhaproxy:\n{ha.tail()}")
    # HAProxy's own health checks (an SMTP greeting and QUIT behind a PROXY header) must not
    # kill smtpd processes: Postfix dies on the "LOCAL" header HAProxy sends with checks.
    assert "fatal:" not in pf.log.read_text(errors="replace"), pf.tail()
    [stored] = wait_messages(d, "alice", subject)
    raw = d.raw("alice", stored["id"])
    received = raw.split(b"\r\n\r\n", 1)[0]
    assert b"[127.0.0.2]" in received, received.decode(errors="replace")


def test_web_client_is_served_over_tls_with_its_policy(edge):
    _, ha, _ = edge
    status, page_headers, body = https(ha, "GET", "/")
    assert status == 200 and b"id=app" in body, f"{status} {body[:200]!r}\n{ha.tail()}"
    status, asset_headers, body = https(ha, "GET", "/assets/index-5e1f2a3b.js")
    assert status == 200 and body.decode() == WEB_ASSET, (status, body[:200])
    for headers in (page_headers, asset_headers):
        csp = headers.get("content-security-policy", "")
        for directive in ("script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
            assert directive in csp, (directive, csp)
        assert headers.get("strict-transport-security"), headers
    assert page_headers.get("cache-control") == "no-cache", page_headers
    assert "immutable" in asset_headers.get("cache-control", ""), asset_headers


def test_event_stream_is_not_buffered_by_haproxy(edge):
    """A new-mail event reaches the client while its stream is still open: HAProxy passes the
    chunks on as they come instead of holding the response (the stream never ends by itself,
    so a buffered event would only show when the socket times out)."""
    d, ha, _ = edge
    status, _, body = https(ha, "POST", "/api/v1/auth/login",
                            json.dumps({"address": "alice@example.test", "password": PASSWORD}).encode())
    assert status == 200, body
    token = json.loads(body)["token"]
    ctx = ssl.create_default_context(cafile=str(ha.ca))
    raw = socket.create_connection((HOST, ha.https_port), timeout=60, source_address=(CLIENT, 0))
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall((f"GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            assert chunk, f"stream closed before its head: {received!r}"
            received += chunk
        head = received.split(b"\r\n\r\n", 1)[0].decode()
        assert head.startswith("HTTP/1.1 200") and "text/event-stream" in head, head
        subject = f"streamed {uuid.uuid4()}"
        with d.session() as lmtp:
            t = lmtp.data_transaction("sender@example.test", ["alice@example.test"],
                                      make_message(subject, "Live.\r\n"))
            assert [r.code for r in t.final] == [250], t
        while b"new_mail" not in received:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                raise AssertionError(f"no event through haproxy while the stream was open: {received!r}") from None
            assert chunk, f"stream closed without the event: {received!r}"
            received += chunk
