"""The Ansible deployment (ansible/): lint, then the embedded mode converged onto this machine.

`ansible-playbook -i inventories/ci-embedded site.yml -c local` installs Palisade, its web
client, HAProxy, Postfix and rspamd below a throwaway prefix (`deploy_root`), every listener on
127.0.0.11, with LSB init scripts (PID 1 is not systemd here). Then a second run must change
nothing, smoke.yml must pass, and real mail must flow:

  swaks (from 127.0.0.12) -> HAProxy :smtp -> Postfix (PROXY v2) -> rspamd milter
       -> HAProxy :lmtp -> Palisade LMTP (PROXY v2) ... read back through HAProxy HTTPS -> API

In the suite's distributed pass, inventories/ci-distributed deploys every component, Cassandra
and Elasticsearch included (from the artifacts devtools/services fetched), each host on its own
127.0.0.3x/127.0.0.40 address: upgraded from the previous release, then two nodes killed under
a stream of mail.

Ansible, ansible-lint and yamllint come from ansible/requirements.txt in a venv
($PALISADE_ANSIBLE_VENV, default ~/.cache/palisade-ansible-venv; devtools/install-deps makes it).
The fixed ports of the ci inventories mean two runs of this module must not overlap: devtools/test
runs the two passes at once, so each pass holds a lock file while it is in this module.
"""

from __future__ import annotations

import email
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from palisade_e2e import ADMIN_BIN, DAEMON_BIN, REPO

# The embedded deployment runs once, in the suite's embedded pass; the distributed one needs the
# services of devtools/services (Cassandra, Elasticsearch), so it runs in the distributed pass.
embedded = pytest.mark.embedded_only

ANSIBLE_DIR = REPO / "ansible"
VENV = Path(os.environ.get("PALISADE_ANSIBLE_VENV") or Path.home() / ".cache" / "palisade-ansible-venv")
NODE = "127.0.0.11"        # every service of the ci-embedded host
CLIENT = "127.0.0.12"      # an "Internet" client
HTTPS_PORT, SMTP_PORT, SUBMISSION_PORT = 18443, 12525, 10587
AUTHSERV_ID = "mx.example.test"
PASSWORD = "a long passphrase for ansible"


@pytest.fixture(scope="module", autouse=True)
def one_deployment_at_a_time():
    # Both passes deploy onto this machine's fixed ports and run CPU-heavy converges.
    with open(Path(tempfile.gettempdir()) / "palisade-e2e-ansible.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def tool(name: str) -> str:
    path = VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run devtools/install-deps (a venv from ansible/requirements.txt)",
                    pytrace=False)
    return str(path)


def run(args: list[str], env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
                "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", **(env or {})}
    return subprocess.run(args, cwd=ANSIBLE_DIR, env=full_env, capture_output=True, text=True, timeout=timeout)


def recap(output: str) -> dict[str, int]:
    m = re.search(r"^mail1\s+:\s+(.*)$", output, re.M)
    assert m, f"no PLAY RECAP for mail1:\n{output[-3000:]}"
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@embedded
def test_lint():
    r = run([tool("yamllint"), "--strict", "."])
    assert r.returncode == 0, f"yamllint:\n{r.stdout}{r.stderr}"
    r = run([tool("ansible-lint"), "--profile", "production", "--offline"])
    assert r.returncode == 0, f"ansible-lint --profile production:\n{r.stdout[-6000:]}{r.stderr[-3000:]}"
    for inventory in ("embedded", "distributed", "ci-embedded", "ci-distributed"):
        for playbook in ("site.yml", "upgrade.yml", "smoke.yml"):
            r = run([tool("ansible-playbook"), "-i", f"inventories/{inventory}", playbook, "--syntax-check"])
            assert r.returncode == 0, f"{inventory} {playbook} --syntax-check:\n{r.stdout}{r.stderr}"


def release_binaries(release: Path, bin_dir: Path) -> None:
    """`lmtp-ingest` and `palisade-admin` from `bin_dir`, with the SHA256SUMS the role checks."""
    release.mkdir()
    sums = []
    for name in (DAEMON_BIN.name, ADMIN_BIN.name):
        shutil.copy2(bin_dir / name, release / name)
        sums.append(f"{hashlib.sha256((release / name).read_bytes()).hexdigest()}  {name}")
    (release / "SHA256SUMS").write_text("\n".join(sums) + "\n")


def make_release(release: Path, dist: Path) -> None:
    """The binaries under test with their SHA256SUMS, and the web client (or a stand-in)."""
    release_binaries(release, DAEMON_BIN.parent)
    built = REPO / "frontend" / "dist"
    if (built / "index.html").is_file():
        shutil.copytree(built, dist)
    else:  # a stand-in for the built web client
        (dist / "assets").mkdir(parents=True)
        (dist / "index.html").write_text('<!doctype html><script type="module" src="/assets/app.js"></script>')
        (dist / "assets" / "app.js").write_text("document.title = 'Palisade';\n")


@pytest.fixture(scope="module")
def deployed():
    """site.yml converged once onto this machine below a throwaway prefix; stopped afterwards."""
    for binary in (DAEMON_BIN, ADMIN_BIN):
        assert binary.is_file(), f"{binary} missing: set PALISADE_BIN_DIR"
    if shutil.which("rspamd") is None:
        pytest.fail("rspamd is not installed: run devtools/install-deps (apt-get install rspamd)", pytrace=False)
    # Postfix's and rspamd's own users must reach their directories: no pytest 0700 tmp dirs.
    top = Path(tempfile.mkdtemp(prefix="palisade-ansible-"))
    top.chmod(0o755)
    root, release, dist = top / "root", top / "release", top / "dist"
    root.mkdir(mode=0o755)
    make_release(release, dist)
    env = {"PALISADE_RELEASE_DIR": str(release), "PALISADE_WEBCLIENT_DIST": str(dist)}
    playbook = [tool("ansible-playbook"), "-i", "inventories/ci-embedded", "-c", "local", "-e", f"deploy_root={root}"]
    state = {"root": root, "env": env, "playbook": playbook}
    try:
        first = run([*playbook, "site.yml"], env=env)
        state["first"] = first
        assert first.returncode == 0, f"first converge failed:\n{first.stdout[-8000:]}{first.stderr[-3000:]}"
        yield state
    finally:
        for script in sorted((root / "etc" / "init.d").glob("*")):
            subprocess.run([str(script), "stop"], capture_output=True, timeout=120)
        if (root / "etc" / "postfix" / "main.cf").exists():
            subprocess.run(["postfix", "-c", str(root / "etc" / "postfix"), "stop"], capture_output=True, timeout=120)
        shutil.rmtree(top, ignore_errors=True)


def admin(state, *args: str, stdin: str | None = None) -> str:
    root = state["root"]
    r = subprocess.run(["runuser", "-u", "palisade", "--", str(root / "usr/local/bin/palisade-admin"),
                        "--config", str(root / "etc/palisade/palisade.toml"), *args],
                       input=stdin, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"palisade-admin {args}: {r.stderr}"
    return r.stdout


def https(state, method: str, path: str, body: dict | None = None, token: str | None = None):
    """One request through HAProxy's TLS frontend from CLIENT, checked against the internal CA."""
    ctx = ssl.create_default_context(cafile=str(state["root"] / "ca" / "ca.crt"))
    conn = http.client.HTTPSConnection(NODE, HTTPS_PORT, context=ctx, timeout=30, source_address=(CLIENT, 0))
    return send_json(conn, method, path, body, token)


def send_json(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None,
              token: str | None = None) -> tuple[int, bytes]:
    """One JSON request on `conn` (then closed): its status and body."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def login(state, address: str) -> str:
    status, body = https(state, "POST", "/api/v1/auth/login", {"address": address, "password": PASSWORD})
    assert status == 200, body
    return json.loads(body)["token"]


def wait_raw(state, token: str, subject: str, timeout: float = 120) -> bytes:
    """The raw bytes of the message with this subject, read through HAProxy -> API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = https(state, "GET", "/api/v1/messages?limit=100", token=token)
        assert status == 200, body
        for message in json.loads(body)["items"]:
            if message.get("subject") == subject:
                status, raw = https(state, "GET", f"/api/v1/messages/{message['id']}/raw", token=token)
                assert status == 200, raw
                return raw
        time.sleep(0.5)
    log = (state["root"] / "var/log/postfix/mail.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"{subject!r} never arrived through the API; postfix log:\n{log}")


def swaks(*args: str) -> None:
    r = subprocess.run(["swaks", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"swaks failed:\n{r.stdout}\n{r.stderr}"


@pytest.fixture(scope="module")
def users(deployed):
    for name in ("alice", "bob"):
        admin(deployed, "user", "add", name, "--address", f"{name}@example.test", "--password-stdin",
              stdin=PASSWORD + "\n")
    return deployed


@embedded
def test_second_run_changes_nothing(deployed):
    assert recap(deployed["first"].stdout)["changed"] > 0
    second = run([*deployed["playbook"], "site.yml"], env=deployed["env"])
    assert second.returncode == 0, second.stdout[-6000:]
    changed = [line for line in second.stdout.splitlines() if line.startswith("changed:")]
    assert recap(second.stdout)["changed"] == 0, "\n".join(changed)


@embedded
def test_smoke_playbook_passes(deployed):
    r = run([*deployed["playbook"], "smoke.yml"], env=deployed["env"])
    assert r.returncode == 0, r.stdout[-6000:]
    assert recap(r.stdout)["failed"] == 0


@embedded
def test_mail_through_postfix_and_haproxy_is_read_back_through_the_api(users):
    subject = f"ansible smoke {uuid.uuid4().hex[:8]}"
    swaks("--server", NODE, "--port", str(SMTP_PORT), "--local-interface", CLIENT,
          "--from", "someone@sender.test", "--to", "alice@example.test",
          "--header", f"Subject: {subject}", "--body", "Through every hop.\n")
    token = login(users, "alice@example.test")
    raw = wait_raw(users, token, subject)
    message = email.message_from_bytes(raw)
    # Postfix saw the client's own address: HAProxy's PROXY v2 header carried it.
    assert f"[{CLIENT}]" in message["Received"], message["Received"]
    # rspamd, as a milter, added its verdict under our authserv-id (and only one such header).
    results = message.get_all("Authentication-Results") or []
    assert [r for r in results if r.strip().startswith(AUTHSERV_ID + ";")], results
    assert "spf=" in results[0], results
    assert message["X-Spam-Status"], raw[:600]
    # The API, behind HAProxy's HTTPS frontend, recorded the client's address for the session.
    status, body = https(users, "GET", "/api/v1/auth/sessions", token=token)
    assert status == 200
    assert {s["client_address"] for s in json.loads(body)} == {CLIENT}, body


@embedded
def test_forged_authentication_results_are_removed(users):
    subject = f"ansible forged {uuid.uuid4().hex[:8]}"
    swaks("--server", NODE, "--port", str(SMTP_PORT), "--local-interface", CLIENT,
          "--from", "someone@sender.test", "--to", "alice@example.test",
          "--header", f"Subject: {subject}",
          "--add-header", f"Authentication-Results: {AUTHSERV_ID}; dkim=pass header.d=bank.test",
          "--add-header", "Authentication-Results: bank.test; dkim=pass spf=pass dmarc=pass",
          "--add-header", "X-Spam-Flag: NO",
          "--body", "Claims a pass.\n")
    token = login(users, "alice@example.test")
    raw = wait_raw(users, token, subject)
    message = email.message_from_bytes(raw)
    # rspamd replaces every Authentication-Results that arrived (remove = 0) with its own.
    results = message.get_all("Authentication-Results") or []
    assert len(results) == 1 and results[0].strip().startswith(AUTHSERV_ID + ";"), results
    assert "bank.test" not in results[0], results
    # The sender's spam verdict is gone; rspamd's own is there.
    assert message["X-Spam-Flag"] is None and message["X-Spam-Status"], raw[:1500]
    # Palisade, configured by the role with the same authserv-id and relays, reads rspamd's
    # results and Postfix's own hop.
    status, body = https(users, "GET", "/api/v1/messages?limit=100", token=token)
    [listed] = [m for m in json.loads(body)["items"] if m.get("subject") == subject]
    status, body = https(users, "GET", f"/api/v1/messages/{listed['id']}", token=token)
    privacy = json.loads(body)["privacy"]
    assert privacy["dkim"] not in (None, "pass") and privacy["spf"], privacy
    assert privacy["hops"] >= 1, "Postfix's own hop is believed: " + str(privacy)


@embedded
def test_mail_sent_through_the_api_leaves_dkim_signed(users):
    token = login(users, "alice@example.test")
    subject = f"ansible signed {uuid.uuid4().hex[:8]}"
    status, body = https(users, "POST", "/api/v1/drafts",
                         {"to": ["bob@example.test"], "subject": subject, "body": "Signed on the way out."},
                         token=token)
    assert status in (200, 201), body
    status, body = https(users, "POST", f"/api/v1/drafts/{json.loads(body)['id']}/send", token=token)
    assert status == 200, body
    # Palisade -> Postfix submission -> rspamd signs -> Postfix -> HAProxy -> Palisade (bob).
    raw = wait_raw(users, login(users, "bob@example.test"), subject)
    signature = email.message_from_bytes(raw)["DKIM-Signature"]
    assert signature, raw[:1200]
    fields = dict(part.strip().split("=", 1) for part in signature.replace("\n", "").split(";") if "=" in part)
    assert fields["d"] == "example.test" and fields["s"] == "palisade", signature


@embedded
def test_upgrade_from_the_previous_release_rolls_the_node_and_mail_still_flows(users):
    """The node is put back on the release upgrades start from (devtools/upgrade-from, built by
    devtools/old-binaries into PALISADE_OLD_BIN_DIR), mail is delivered, then upgrade.yml moves
    it to the binaries under test: drained, replaced, restarted, waited for on /readyz and put
    back. smoke.yml passes, new mail arrives and the mail from before the upgrade is still there."""
    old_dir = os.environ.get("PALISADE_OLD_BIN_DIR")
    if not old_dir:
        pytest.fail("PALISADE_OLD_BIN_DIR is not set: PALISADE_OLD_BIN_DIR=\"$(devtools/old-binaries)\"",
                    pytrace=False)
    root = users["root"]
    installed = root / "usr/local/bin/lmtp-ingest"
    old_release = root.parent / "release-previous"
    release_binaries(old_release, Path(old_dir))
    r = run([*users["playbook"], "site.yml"], env={**users["env"], "PALISADE_RELEASE_DIR": str(old_release)})
    assert r.returncode == 0, r.stdout[-8000:]
    assert installed.read_bytes() == (old_release / "lmtp-ingest").read_bytes(), "the previous release is not installed"
    before = f"ansible before upgrade {uuid.uuid4().hex[:8]}"
    swaks("--server", NODE, "--port", str(SMTP_PORT), "--local-interface", CLIENT,
          "--from", "someone@sender.test", "--to", "alice@example.test",
          "--header", f"Subject: {before}", "--body", "Delivered to the previous release.\n")
    assert wait_raw(users, login(users, "alice@example.test"), before)
    pid_before = (root / "run" / "palisade-ci.pid").read_text().strip()

    r = run([*users["playbook"], "upgrade.yml"], env=users["env"])
    assert r.returncode == 0, r.stdout[-8000:]
    assert "Drain this node in HAProxy" in r.stdout and "Put the node back into HAProxy" in r.stdout
    assert (root / "run" / "palisade-ci.pid").read_text().strip() != pid_before, "palisade was not restarted"
    assert installed.read_bytes() == DAEMON_BIN.read_bytes(), "the binaries under test are not installed"

    r = run([*users["playbook"], "smoke.yml"], env=users["env"])
    assert r.returncode == 0, r.stdout[-6000:]
    after = f"ansible upgraded {uuid.uuid4().hex[:8]}"
    swaks("--server", NODE, "--port", str(SMTP_PORT), "--local-interface", CLIENT,
          "--from", "someone@sender.test", "--to", "alice@example.test",
          "--header", f"Subject: {after}", "--body", "After the upgrade.\n")
    token = login(users, "alice@example.test")
    assert wait_raw(users, token, after)
    assert wait_raw(users, token, before), "mail from before the upgrade is gone"


@embedded
def test_a_tampered_release_is_refused(users):
    release = Path(users["env"]["PALISADE_RELEASE_DIR"])
    tampered = release.parent / "release-tampered"
    shutil.copytree(release, tampered)
    with open(tampered / "palisade-admin", "ab") as f:
        f.write(b"\0not what SHA256SUMS says\0")
    r = run([*users["playbook"], "site.yml"], env={**users["env"], "PALISADE_RELEASE_DIR": str(tampered)})
    assert r.returncode != 0
    assert "palisade-admin does not match SHA256SUMS" in r.stdout, r.stdout[-4000:]
    installed = users["root"] / "usr/local/bin/palisade-admin"
    assert not installed.read_bytes().endswith(b"\0not what SHA256SUMS says\0")


@embedded
def test_dashboard_uses_only_documented_metrics():
    dashboard = json.loads((ANSIBLE_DIR / "grafana" / "palisade-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"\bpalisade_[a-z_]+", e)}
    documented = set(re.findall(r"`(palisade_[a-z_]+)`", (REPO / "docs" / "metrics.md").read_text()))
    assert used and used <= documented, used - documented


DIST_HOSTS = ("cass1", "es1", "redis1", "mq1", "ingest1", "ingest2", "api1", "api2", "mx1", "edge1")
EDGE = "127.0.0.38"
API_NODES = {"api1": "127.0.0.35", "api2": "127.0.0.36"}
DIST_API_PORT = 18080
STREAM = 40  # messages delivered while an ingest and an API node are killed


def devtools_artifact(name: str, version_var: str, default_version: str) -> str:
    """The Cassandra or Elasticsearch that devtools/services fetched (same cache and versions)."""
    cache = Path(os.environ.get("PALISADE_CACHE") or Path.home() / ".cache" / "palisade")
    path = cache / f"{name}-{os.environ.get(version_var) or default_version}"
    if not (path / ".complete").is_file():
        pytest.fail(f"{path} is missing: run devtools/services up", pytrace=False)
    return str(path)


class Cluster:
    """inventories/ci-distributed deployed below `top`, with the HTTPS frontend on EDGE."""

    def __init__(self, top: Path, tag: str):
        self.top = top
        self.env = {
            "PALISADE_RELEASE_DIR": str(top / "release"), "PALISADE_WEBCLIENT_DIST": str(top / "dist"),
            "PALISADE_CASSANDRA_ARTIFACT_DIR": devtools_artifact("cassandra", "PALISADE_CASSANDRA_VERSION", "5.0.9"),
            "PALISADE_ELASTICSEARCH_ARTIFACT_DIR": devtools_artifact(
                "elasticsearch", "PALISADE_ELASTICSEARCH_VERSION", "8.19.21"),
        }
        self.playbook = [tool("ansible-playbook"), "-i", "inventories/ci-distributed", "-e", f"ci_root={top}",
                         "-e", f"palisade_cassandra_keyspace=palisade_e2e_{tag}",
                         "-e", f"palisade_elasticsearch_alias=palisade-e2e-{tag}"]

    def play(self, playbook: str, *args: str, release: Path | None = None) -> str:
        env = {**self.env, "PALISADE_RELEASE_DIR": str(release)} if release else self.env
        r = run([*self.playbook, *args, playbook], env=env)
        assert r.returncode == 0, f"{playbook} {args} failed:\n{r.stdout[-8000:]}{r.stderr[-2000:]}"
        return r.stdout

    def request(self, method, path, body=None, token=None, node: str | None = None):
        """Through HAProxy's HTTPS frontend, or straight to one API node (`node`) from HAProxy's
        address with the PROXY v2 header HAProxy would send: the only way a node accepts."""
        if node is None:
            ctx = ssl.create_default_context(cafile=str(self.top / "ca" / "ca.crt"))  # made by site.yml
            conn = http.client.HTTPSConnection(EDGE, HTTPS_PORT, context=ctx, timeout=30,
                                               source_address=(CLIENT, 0))
        else:
            conn = ProxiedConnection(API_NODES[node], DIST_API_PORT, timeout=30, source_address=(EDGE, 0))
        return send_json(conn, method, path, body, token)

    def subjects(self, token: str, node: str | None = None) -> list[str]:
        status, body = self.request("GET", "/api/v1/messages?limit=100", token=token, node=node)
        assert status == 200, body
        return [m.get("subject") for m in json.loads(body)["items"]]

    def wait_subjects(self, token: str, wanted: set[str], node: str | None = None, timeout: float = 180) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.subjects(token, node)
            if wanted <= set(found) or time.monotonic() > deadline:
                return found
            time.sleep(1)

    def haproxy_states(self) -> dict[str, str]:
        """{"api/api1": "UP", ...} from HAProxy's stats socket."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.top / "edge1" / "run" / "haproxy-palisade.sock"))
            sock.sendall(b"show stat\n")
            stat = b""
            while chunk := sock.recv(65536):
                stat += chunk
        rows = [line.split(",") for line in stat.decode().splitlines() if line and not line.startswith("#")]
        return {f"{r[0]}/{r[1]}": r[17] for r in rows if r[0] in ("api", "lmtp") and r[1] not in ("FRONTEND", "BACKEND")}

    def pid(self, host: str) -> int:
        return int((self.top / host / "run" / "palisade-ci.pid").read_text().strip())


class ProxiedConnection(http.client.HTTPConnection):
    """Plain HTTP to a Palisade API node, preceded by a PROXY v2 header (as HAProxy's
    send-proxy-v2): client CLIENT, destination the node."""

    def connect(self):
        super().connect()
        src, dst = socket.inet_aton(CLIENT), socket.inet_aton(self.host)
        addresses = src + dst + (40000).to_bytes(2, "big") + self.port.to_bytes(2, "big")
        self.sock.sendall(b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + len(addresses).to_bytes(2, "big") + addresses)


def login_to(cluster: Cluster, address: str) -> str:
    status, body = cluster.request("POST", "/api/v1/auth/login", {"address": address, "password": PASSWORD})
    assert status == 200, body
    return json.loads(body)["token"]


@pytest.mark.distributed_only
def test_distributed_converge_upgrade_and_node_failures():
    """inventories/ci-distributed, every component deployed: Cassandra, Elasticsearch, Redis,
    RabbitMQ, 2 ingest and 2 API nodes, Postfix with rspamd, HAProxy.

    Converged at the previous release, mail delivered; upgrade.yml to the binaries under test;
    the old mail is read through each API node; site.yml then changes nothing and smoke.yml
    passes. Then one ingest and one API node are killed (SIGKILL) while a stream of mail goes
    through Postfix: every message arrives exactly once and is read through the surviving API
    node behind HAProxy. The killed nodes come back UP in HAProxy once site.yml restarts them."""
    for binary in (DAEMON_BIN, ADMIN_BIN):
        assert binary.is_file(), f"{binary} missing: set PALISADE_BIN_DIR"
    old_dir = os.environ.get("PALISADE_OLD_BIN_DIR")
    if not old_dir:
        pytest.fail("PALISADE_OLD_BIN_DIR is not set: PALISADE_OLD_BIN_DIR=\"$(devtools/old-binaries)\"",
                    pytrace=False)
    tag = uuid.uuid4().hex[:10]
    top = Path(tempfile.mkdtemp(prefix="palisade-ansible-dist-"))
    top.chmod(0o755)
    installed = top / "ingest1" / "usr/local/bin/lmtp-ingest"
    try:
        cluster = Cluster(top, tag)
        make_release(top / "release", top / "dist")
        previous = top / "release-previous"
        release_binaries(previous, Path(old_dir))
        # 1. The previous release, converged from nothing.
        cluster.play("site.yml", release=previous)
        assert installed.read_bytes() == (previous / "lmtp-ingest").read_bytes(), "the previous release is not installed"
        r = subprocess.run(["runuser", "-u", "palisade", "--", str(top / "api1/usr/local/bin/palisade-admin"),
                            "--config", str(top / "api1/etc/palisade/palisade.toml"), "user", "add", "dora",
                            "--address", "dora@example.test", "--password-stdin"],
                           input=PASSWORD + "\n", capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        before = f"ansible distributed before upgrade {tag}"
        swaks("--server", EDGE, "--port", str(SMTP_PORT), "--local-interface", CLIENT,
              "--from", "someone@sender.test", "--to", "dora@example.test",
              "--header", f"Subject: {before}", "--body", "Delivered to the previous release.\n")
        token = login_to(cluster, "dora@example.test")
        assert before in cluster.wait_subjects(token, {before}), "mail never arrived at the previous release"

        # 2. Rolling upgrade; the old mail through each API node, idempotence, smoke.
        pids = {host: cluster.pid(host) for host in ("ingest1", "ingest2", "api1", "api2")}
        out = cluster.play("upgrade.yml")
        assert "Drain this node in HAProxy" in out and "Put the node back into HAProxy" in out
        assert installed.read_bytes() == DAEMON_BIN.read_bytes(), "the binaries under test are not installed"
        assert all(cluster.pid(host) != pid for host, pid in pids.items()), "a node was not restarted"
        for node in API_NODES:
            assert before in cluster.subjects(token, node), f"mail from before the upgrade is missing on {node}"
        out = cluster.play("site.yml")
        changed = re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", out, re.M)
        assert len(changed) == len(DIST_HOSTS) and all(n == "0" for _, n in changed), changed
        cluster.play("smoke.yml")

        # 3. One ingest and one API node die (SIGKILL) in the middle of a stream of mail.
        stream = [f"ansible stream {tag} {i:02d}" for i in range(STREAM)]
        for i, subject in enumerate(stream):
            if i == STREAM // 4:
                os.kill(cluster.pid("ingest1"), signal.SIGKILL)
                os.kill(cluster.pid("api1"), signal.SIGKILL)
            swaks("--server", EDGE, "--port", str(SMTP_PORT), "--local-interface", CLIENT,
                  "--from", "someone@sender.test", "--to", "dora@example.test",
                  "--header", f"Subject: {subject}", "--body", f"Message {i} of the stream.\n")
        found = cluster.wait_subjects(token, set(stream), timeout=300)
        missing = sorted(set(stream) - set(found))
        assert not missing, f"lost: {missing}"
        duplicated = sorted(s for s in set(stream) if found.count(s) > 1)
        assert not duplicated, f"delivered twice: {duplicated}"
        assert set(stream) <= set(cluster.subjects(token, "api2")), "the surviving API node does not see the stream"
        states = cluster.haproxy_states()
        assert states["api/api1"] != "UP" and states["lmtp/ingest1"] != "UP", states

        # 4. site.yml restarts the killed nodes, and HAProxy takes them back.
        cluster.play("site.yml", "--limit", "ingest1,api1")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and set(cluster.haproxy_states().values()) != {"UP"}:
            time.sleep(1)
        assert set(cluster.haproxy_states().values()) == {"UP"}, cluster.haproxy_states()
        assert set(stream) <= set(cluster.subjects(token, "api1")), "the restarted API node does not see the stream"
    finally:
        for host in DIST_HOSTS:
            for script in sorted((top / host / "etc" / "init.d").glob("*")):
                subprocess.run([str(script), "stop"], capture_output=True, timeout=180)
        if (top / "mx1" / "etc" / "postfix" / "main.cf").exists():
            subprocess.run(["postfix", "-c", str(top / "mx1" / "etc" / "postfix"), "stop"], capture_output=True, timeout=120)
        shutil.rmtree(top, ignore_errors=True)
