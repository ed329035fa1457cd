"""Schemathesis fuzzes every API operation from the daemon's own OpenAPI document under every
check it has (`--checks all`): no 5xx; every status and body as documented; requests valid by the
document accepted and invalid ones refused; undeclared methods answered 405 with `Allow`; a
missing or bad token refused; deleted resources gone. Any failure fails the test.

Runs the schemathesis CLI (4.x; `devtools/install-deps` installs it) against a daemon holding a
user with a few delivered messages, with that user's bearer token. Bounded and reproducible:
a fixed number of examples per operation and a fixed seed. Operations that would end the run's
own session (logout, revoking sessions) or never end (the event stream) are left out.
"""

from __future__ import annotations

import shutil
import socketserver
import subprocess
import sys
import threading
import uuid

import pytest

from palisade_e2e import HOST, clean_env, make_message

PASSWORD = "schemathesis password 1"
SEED = "20260301"
MAX_EXAMPLES = "25"
# Kill the token mid-run, or stream forever.
EXCLUDED = r"^/api/v1/(auth/logout|auth/sessions/\{id\}|events)$"
# What JSON Schema cannot say, so a schema-valid request may still get 400 with a reason:
# - an uploaded mailbox must be an mbox (its first line a `From ` separator) and its metadata
#   a palisade-export/1 document;
# - a user's Autocrypt key must be an OpenPGP public key.
# Everywhere else a 400 for schema-valid data is a failure.
#
# Hypothesis's `too_slow` health check is a timer on the generator, not a check of the API: on a
# loaded CI machine it failed `POST /contacts`, whose exact address pattern is slow to generate
# from, after every request had passed. The other health checks (filtering, data size) stay.
CONFIG = """
suppress-health-check = ["too_slow"]

[[operations]]
include-path = "/api/v1/me/import"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

[[operations]]
include-name = "PUT /api/v1/me/autocrypt"
checks.positive_data_acceptance.expected-statuses = ["200", "400", "401"]
"""


class SmtpSink(socketserver.ThreadingTCPServer):
    """A minimal SMTP server accepting everything: the submission relay for sending drafts, so
    that "send" reaches its success path (without a relay the API rightly answers 503)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__((HOST, 0), SmtpSinkHandler)
        self.messages: list[bytes] = []
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class SmtpSinkHandler(socketserver.StreamRequestHandler):
    timeout = 60

    def handle(self):
        def reply(line: str):
            self.wfile.write(line.encode() + b"\r\n")
            self.wfile.flush()

        reply("220 sink.localhost ESMTP")
        while line := self.rfile.readline(65536):
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                reply("250 sink.localhost")
            elif verb == b"DATA":
                reply("354 go ahead")
                data = b""
                while (chunk := self.rfile.readline(1 << 20)) and chunk != b".\r\n":
                    data += chunk
                self.server.messages.append(data)
                reply("250 2.0.0 queued")
            elif verb == b"QUIT":
                reply("221 2.0.0 bye")
                return
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                reply("250 2.0.0 ok")
            else:
                reply("502 5.5.2 not implemented")


@pytest.fixture
def relay():
    sink = SmtpSink()
    yield sink
    sink.shutdown()
    sink.server_close()


def schemathesis_cli() -> list[str]:
    """The 4.x CLI (its flags differ from 3.x's)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("schemathesis")
    except PackageNotFoundError:
        pytest.fail("schemathesis is not installed: run devtools/install-deps", pytrace=False)
    if not v.startswith("4."):
        pytest.fail(f"schemathesis {v} installed, this test drives the 4.x CLI: run devtools/install-deps",
                    pytrace=False)
    exe = shutil.which("schemathesis")
    return [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]


def test_api_conforms_to_its_openapi_document(make_daemon, relay, tmp_path):
    cli = schemathesis_cli()
    d = make_daemon(submission={"host": HOST, "port": relay.port, "tls": "none"})
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    with d.session() as c:
        for i, extra in enumerate(("", "Cc: <alice@example.test>\r\n", "")):
            msg = make_message(f"schemathesis {i} {uuid.uuid4()}", f"Message {i} for the fuzzer.\r\n",
                               extra_headers=extra)
            t = c.data_transaction("sender@example.test", ["alice@example.test"], msg)
            assert t.final and t.final[0].code == 250, t
    d.wait_jobs_idle()
    token = d.login("alice@example.test", PASSWORD).token

    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = [*cli, "--config-file", str(config), "run", f"{d.api_url}/api/v1/openapi.json",
           "--checks", "all",
           "--header", f"Authorization: Bearer {token}",
           "--exclude-path-regex", EXCLUDED,
           "--max-examples", MAX_EXAMPLES,
           "--seed", SEED,
           "--workers", "1",
           "--request-timeout", "30",
           "--generation-database", "none",
           "--no-color",
           "--report", "junit", "--report-dir", str(tmp_path / "report")]
    # Its own directory: no stray schemathesis.toml, no .hypothesis left in the checkout; only
    # this file's configuration.
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1500,
                       env=clean_env({"NO_COLOR": "1", "COLUMNS": "200"}))
    out = r.stdout + r.stderr
    assert r.returncode == 0, (f"schemathesis found problems (exit {r.returncode}); reproduce with:\n"
                               f"{' '.join(cmd)}\n\n{out[-25000:]}")
    assert d.alive()
