"""The web client in real Chromium (Playwright), against the whole system as deployed.

This file brings up, for one run:
  - the daemon, with the API behind PROXY v2 and the built web client (`frontend/dist`);
  - HAProxy running the shipped `haproxy/palisade.cfg` (a throwaway certificate, loopback ports);
  - a private Postfix as the relay for sending, which delivers example.test back to the daemon
    over LMTP (as in test_api_send.py), so a reply sent from the browser really crosses it;
  - a recording web server on ANOTHER loopback address (127.0.0.2), HTTPS and plain HTTP, that
    logs every connection and request to a JSONL file: the hostile mails point every URL at it,
    so "nothing left the page" is a count read from that file.
Then it runs `npx playwright test` in `frontend/` (specs in `frontend/e2e/`) with everything the
specs need in `PALISADE_E2E_*` variables, and passes only if Playwright exits 0.

Chromium is Debian's (`/usr/bin/chromium`, or `$PALISADE_CHROMIUM`); Playwright never downloads a
browser. A missing Chromium, Node or npx fails this test: CI installs them (devtools/install-deps).
On the distributed backend only the specs tagged `@smoke` run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from palisade_e2e import BACKEND, HOST, REPO, free_port
from test_haproxy import HAProxy, need
from test_postfix import Postfix

FRONTEND = REPO / "frontend"
# The built client the daemon serves; PALISADE_E2E_DIST serves another build (then used as is).
DIST = Path(os.environ.get("PALISADE_E2E_DIST") or FRONTEND / "dist")
PASSWORD = "correct horse battery staple"
RECORDER_HOST = "127.0.0.2"
# One account per spec (or per test), so their mailboxes and sessions never meet.
USERS = ("alice", "mallory", "bob", "carol", "dana", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "kim", "leo", "olga")
# The smallest valid PNG (1x1, transparent): what the recorder answers to image requests.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def chromium() -> str:
    path = os.environ.get("PALISADE_CHROMIUM", "/usr/bin/chromium")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"Chromium not found at {path}: run devtools/install-deps (apt-get install chromium) "
                    "or set PALISADE_CHROMIUM", pytrace=False)
    return path


def npx() -> str:
    path = shutil.which("npx")
    if not path:
        pytest.fail("npx is not installed: the browser tests need Node.js 20.19+ with npm", pytrace=False)
    return path


def ensure_frontend_built() -> None:
    """`npm ci` when node_modules is missing or older than the lock file, and `npm run build`
    when dist/ is missing or older than its sources (as devtools/run decides)."""
    modules = FRONTEND / "node_modules" / ".package-lock.json"
    lock = FRONTEND / "package-lock.json"
    if not modules.exists() or lock.stat().st_mtime > modules.stat().st_mtime:
        run_npm("ci", "--no-audit", "--no-fund")
    if os.environ.get("PALISADE_E2E_DIST"):
        return
    index = DIST / "index.html"
    sources = [FRONTEND / "index.html", lock, FRONTEND / "vite.config.ts",
               *(p for d in ("src", "public") for p in (FRONTEND / d).rglob("*") if p.is_file())]
    if not index.exists() or any(p.stat().st_mtime > index.stat().st_mtime for p in sources):
        run_npm("run", "build")


def run_npm(*args: str) -> None:
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("npm is not installed: the browser tests need Node.js 20.19+ with npm", pytrace=False)
    r = subprocess.run([npm, *args], cwd=FRONTEND, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    assert r.returncode == 0, f"npm {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"


def make_cert(root: Path, name: str, san: str) -> tuple[Path, Path]:
    key, crt = root / f"{name}-key.pem", root / f"{name}-crt.pem"
    r = subprocess.run([need("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", f"/CN={name}",
                        "-addext", f"subjectAltName={san}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl req failed: {r.stderr}"
    return crt, key


class Recorder:
    """A web server that stands for the rest of the Internet: it logs every TCP connection and
    every HTTP request it gets (one JSON object per line), and answers each request with a 1x1
    PNG. Connections are logged on accept, so even one that never completes a TLS handshake or
    a request (a preconnect, a blocked fetch) counts."""

    def __init__(self, root: Path):
        self.log_path = root / "recorder.jsonl"
        self.log_path.write_text("")
        self._lock = threading.Lock()
        crt, key = make_cert(root, "recorder", f"IP:{RECORDER_HOST}")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(crt, key)
        self.servers = [self._server("https", tls), self._server("http", None)]
        self.https_url = f"https://{RECORDER_HOST}:{self.servers[0].server_address[1]}"
        self.http_url = f"http://{RECORDER_HOST}:{self.servers[1].server_address[1]}"
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self.servers]

    def record(self, entry: dict) -> None:
        with self._lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _server(self, scheme: str, tls: ssl.SSLContext | None) -> ThreadingHTTPServer:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 1 << 20))
                recorder.record({"kind": "request", "scheme": scheme, "method": self.command,
                                 "path": self.path, "referer": self.headers.get("Referer"),
                                 "cookie": self.headers.get("Cookie"),
                                 "userAgent": self.headers.get("User-Agent")})
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PIXEL)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(PIXEL)

            do_GET = do_POST = do_HEAD = do_PUT = do_OPTIONS = _answer

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                conn, addr = self.socket.accept()
                recorder.record({"kind": "connect", "scheme": scheme, "peer": addr[0]})
                return conn, addr

            def finish_request(self, request, client_address):
                if tls is not None:
                    try:
                        request = tls.wrap_socket(request, server_side=True)
                    except (ssl.SSLError, OSError) as e:
                        recorder.record({"kind": "tls-failed", "scheme": scheme, "error": str(e)[:200]})
                        return
                self.RequestHandlerClass(request, client_address, self)

        return Server((RECORDER_HOST, free_port_on(RECORDER_HOST)), Handler)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()


def free_port_on(host: str) -> int:
    for _ in range(100):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port on {host}")


@pytest.fixture
def system(make_daemon):
    """The daemon behind HAProxy with Postfix as its relay, users with PASSWORD, and the recorder."""
    need("haproxy")
    # Before the daemon starts: a rebuild replaces dist/, which the daemon only looks for at start.
    ensure_frontend_built()
    root = Path(tempfile.mkdtemp(prefix="palisade-browser-"))
    root.chmod(0o755)  # Postfix drops to its own user.
    # The image proxy may reach the recorder, which stands for the Internet: the test-only
    # allowlist, since the recorder listens on a loopback address.
    d = make_daemon(start=False, api={"proxy_protocol": {"enabled": True, "trusted": [f"{HOST}/32"]},
                                      "static_dir": str(DIST),
                                      "remote": {"allow_private": [f"{RECORDER_HOST}/32"]}},
                    # Our MTA's name, so remote.spec.ts can deliver mail it authenticated.
                    privacy={"authserv_id": "mx.example.test", "internal_relays": ["mx.example.test"]})
    pf = Postfix(root / "postfix", d.port)
    d.submission = {"host": HOST, "port": pf.smtp_port, "message_id_domain": "palisade.test"}
    d.write_config()
    # The config's SMTP frontend is not under test here: its backend is a closed port.
    ha = HAProxy(root, api_server=f"{HOST}:{d.api_port}", smtpd_server=f"{HOST}:{free_port()}")
    recorder = Recorder(root)
    try:
        ha.make_cert()
        ha.check_config()
        pf.start()
        d.start()
        for user in USERS:
            d.add_user(user, f"{user}@example.test", password=PASSWORD)
        ha.start()
        ha.wait_servers_up(("api", "api1"))
        recorder.start()
        yield d, ha, pf, recorder, root
    finally:
        recorder.stop()
        ha.stop()
        pf.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_web_client_in_chromium(system):
    browser = chromium()
    runner = npx()
    d, ha, pf, recorder, root = system
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PALISADE_")},
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "PALISADE_CHROMIUM": browser,
        "PALISADE_E2E_BACKEND": BACKEND,
        "PALISADE_E2E_BASE_URL": f"https://{HOST}:{ha.https_port}",
        "PALISADE_E2E_LMTP": f"{HOST}:{d.port}",
        "PALISADE_E2E_USERS": json.dumps({u: f"{u}@example.test" for u in USERS}),
        "PALISADE_E2E_PASSWORD": PASSWORD,
        "PALISADE_E2E_RECORDER_HTTPS": recorder.https_url,
        "PALISADE_E2E_RECORDER_HTTP": recorder.http_url,
        "PALISADE_E2E_RECORDER_LOG": str(recorder.log_path),
        "PALISADE_E2E_RELAY_LOG": str(pf.log),
    }
    if os.environ.get("PALISADE_SCREENSHOTS_DIR"):
        env["PALISADE_SCREENSHOTS_DIR"] = os.environ["PALISADE_SCREENSHOTS_DIR"]
    # One output directory per backend: devtools/test runs both passes at once, and Playwright
    # empties its output directory when it starts.
    output_dir = FRONTEND / "test-results" / BACKEND
    args = [runner, "playwright", "test", "--output", str(output_dir)]
    if BACKEND == "distributed":
        args += ["--grep", "@smoke"]
    # Extra arguments for a local run, e.g. PALISADE_E2E_PLAYWRIGHT_ARGS="--grep @smoke".
    args += os.environ.get("PALISADE_E2E_PLAYWRIGHT_ARGS", "").split()
    log = root / "playwright.log"
    with open(log, "wb") as out:
        r = subprocess.run(args, cwd=FRONTEND, env=env, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=3600)
    output = log.read_text(errors="replace")
    print(output)
    assert r.returncode == 0, (
        f"playwright test exited {r.returncode} (screenshots and traces: {output_dir})\n"
        f"{output[-20000:]}\n--- haproxy ---\n{ha.tail()}\n--- postfix ---\n{pf.tail()}")
