"""A cluster on the distributed backend: 2 ingest nodes (role lmtp), 2 API nodes (role api) and
2 workers (role worker) sharing one keyspace, index alias, queue prefix and Redis prefix, behind
the shipped HAProxy files (haproxy/palisade.cfg + haproxy/palisade-cluster.cfg), with a real
Postfix delivering through HAProxy's LMTP frontend, as in production:

    swaks/smtplib -> HAProxy :25 -> Postfix smtpd -> Postfix lmtp -> HAProxy LMTP -> ingest node
    client -> HAProxy HTTPS -> API node

HAProxy health-checks every node's admin /readyz. Every node demands a PROXY v2 header from
127.0.0.1 only; the tests reach one chosen node directly by sending that header themselves.

Under load Postfix may see 451s and retry: the tests wait for its queue to drain instead of
counting replies.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from api_helpers import wait_until
from conftest import DAEMONS
from palisade_e2e import HOST, REPO, ApiClient, Daemon, Lmtp, free_port, proxy_v2_header, to_crlf
from test_haproxy import CLIENT, HAPROXY_CFG, HAProxy, https, need
from test_health import get, parse_prometheus, total, wait_for_status
from test_postfix import POSTQUEUE, Postfix

pytestmark = pytest.mark.distributed_only

CLUSTER_CFG = REPO / "haproxy" / "palisade-cluster.cfg"
PASSWORD = "correct horse battery staple"
ALICE = "alice@example.test"
MALLORY = "mallory@example.test"
# Failures an account may have per 15 minutes on the API nodes: small, to reach the limit.
ACCOUNT_LIMIT = 4
# Long enough for HAProxy to take a draining node out (inter 1s x fall 2) and for the test to
# prove nothing more reaches it, before the node closes its listeners.
DRAIN_SECS = 60


class Cluster:
    """Six nodes, Postfix and HAProxy; `root` must be readable by Postfix's own user."""

    def __init__(self, root: Path):
        self.root = root
        self.tag = uuid.uuid4().hex[:12]
        trusted = {"enabled": True, "trusted": [f"{HOST}/32"]}
        admin = {"drain_secs": DRAIN_SECS}
        self.ingest = [Daemon(root / f"lmtp{i}", tag=self.tag, roles=["lmtp"], proxy=trusted,
                              ready="proxy", admin=admin) for i in (1, 2)]
        self.api = [Daemon(root / f"api{i}", tag=self.tag, roles=["api"], ready="api", admin=admin,
                           api={"proxy_protocol": trusted, "login_attempts_per_account": ACCOUNT_LIMIT})
                    for i in (1, 2)]
        self.workers = [Daemon(root / f"worker{i}", tag=self.tag, roles=["worker"], ready="admin", admin={})
                        for i in (1, 2)]
        self.lmtp_port = free_port()
        self.postfix = Postfix(root / "postfix", self.lmtp_port)
        with open(self.postfix.etc / "main.cf", "a") as f:
            # Behind HAProxy's SMTP frontend, like production.
            f.write("smtpd_upstream_proxy_protocol = haproxy\n")
        env = {"HA_API_BACKEND": "api_nodes", "HA_LMTP_BIND": f"{HOST}:{self.lmtp_port}"}
        for i, d in enumerate(self.ingest, 1):
            env[f"HA_LMTP{i}_SERVER"] = f"{HOST}:{d.port}"
            env[f"HA_LMTP{i}_ADMIN_PORT"] = str(d.admin_port)
        for i, d in enumerate(self.api, 1):
            env[f"HA_API{i}_SERVER"] = f"{HOST}:{d.api_port}"
            env[f"HA_API{i}_ADMIN_PORT"] = str(d.admin_port)
        self.haproxy = HAProxy(root / "haproxy", api_server=f"{HOST}:1",
                               smtpd_server=f"{HOST}:{self.postfix.smtp_port}",
                               configs=(HAPROXY_CFG, CLUSTER_CFG), env=env)

    @property
    def nodes(self) -> list[Daemon]:
        return [*self.ingest, *self.api, *self.workers]

    def start(self):
        # The first node creates the keyspace; the others then find it migrated.
        for d in self.nodes:
            d.start(timeout=180)
        self.ingest[0].add_user("alice", ALICE, password=PASSWORD)
        self.ingest[0].add_user("mallory", MALLORY, password=PASSWORD)
        self.haproxy.make_cert()
        self.haproxy.check_config()
        self.postfix.start()
        self.haproxy.start()
        self.wait_servers("UP", *self.servers)

    servers = (("lmtp_nodes", "lmtp1"), ("lmtp_nodes", "lmtp2"), ("api_nodes", "api1"), ("api_nodes", "api2"),
               ("postfix_smtpd", "smtpd1"))

    def wait_servers(self, status: str, *servers: tuple[str, str], timeout: float = 90):
        """Until HAProxy's checks report every one of `servers` as `status` (UP or DOWN)."""
        deadline = time.monotonic() + timeout
        stat = {}
        while time.monotonic() < deadline:
            assert self.haproxy.proc.poll() is None, f"haproxy exited:\n{self.haproxy.tail()}"
            try:
                stat = self.haproxy.show_stat()
            except OSError:
                stat = {}
            if stat and all(stat.get(s, {}).get("status") == status for s in servers):
                return stat
            time.sleep(0.2)
        rows = {s: {k: stat.get(s, {}).get(k) for k in ("status", "check_status", "check_desc")} for s in servers}
        raise AssertionError(f"haproxy never reported {status} for {servers}: {rows}\n{self.haproxy.tail()}")

    def stop(self):
        self.haproxy.stop()
        self.postfix.stop()
        for d in self.nodes:
            d.cleanup()

    # clients -----------------------------------------------------------------------------------
    def node_client(self, d: Daemon, token: str | None = None, client: str = CLIENT) -> ApiClient:
        """Talks to one API node directly, as HAProxy would (PROXY header naming `client`)."""
        return ApiClient(d.api_url, token, proxy_from=client)

    def login(self, d: Daemon, address: str = ALICE, client: str = CLIENT) -> ApiClient:
        c = self.node_client(d, client=client)
        r = c.post("/auth/login", {"address": address, "password": PASSWORD})
        assert r.status == 200, f"login on {d.dir.name}: {r}"
        c.token = r.json()["token"]
        return c

    def lmtp(self, d: Daemon) -> Lmtp:
        """An LMTP session with one ingest node, opened as HAProxy would."""
        c = Lmtp(d.port, proxy_header=proxy_v2_header(src=(HOST, 40000), dst=(HOST, d.port)))
        c.lhlo()
        return c

    def submit(self, messages: list[tuple[str, bytes]], pause: float = 0.0):
        """Hands (sender, message) pairs to Postfix through HAProxy's SMTP frontend."""
        with smtplib.SMTP(HOST, self.haproxy.smtp_port, local_hostname="client.example.test", timeout=120,
                          source_address=(CLIENT, 0)) as smtp:
            for sender, msg in messages:
                refused = smtp.sendmail(sender, [ALICE], msg)
                assert refused == {}, refused
                time.sleep(pause)

    def wait_queue_empty(self, timeout: float = 400):
        """Until Postfix holds no mail: everything was delivered with a 250 (or bounced)."""
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            r = subprocess.run([POSTQUEUE, "-c", str(self.postfix.etc), "-p"], capture_output=True, text=True,
                               timeout=60)
            out = r.stdout + r.stderr
            if "Mail queue is empty" in out:
                assert "status=bounced" not in self.postfix.log.read_text(errors="replace"), self.postfix.tail()
                return
            self.postfix.flush()
            time.sleep(1)
        raise AssertionError(f"postfix queue not empty after {timeout}s:\n{out}\n{self.postfix.tail()}")


@pytest.fixture(scope="module")
def cluster():
    need("haproxy")
    root = Path(tempfile.mkdtemp(prefix="palisade-cluster-"))
    root.chmod(0o755)
    (root / "haproxy").mkdir()
    c = Cluster(root)
    try:
        c.start()
        yield c
    finally:
        died = [(d.dir.name, d.died_unexpectedly()) for d in c.nodes]
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
    crashed = [(name, rc) for name, rc in died if rc is not None]
    assert not crashed, f"nodes died on their own: {crashed}"


@pytest.fixture
def report(request, cluster):
    """On failure, conftest attaches the tail of every node's stderr."""
    request.node.stash[DAEMONS] = cluster.nodes


def mail(subject: str, sender: str, *, msg_id: str | None = None, refs: list[str] = (), body: str = "") -> bytes:
    """One message as Postfix or an LMTP client hands it over (CRLF, final CRLF)."""
    head = [f"From: <{sender}>", f"To: <{ALICE}>", f"Subject: {subject}",
            "Date: Tue, 01 Dec 2026 03:00:00 +0000", f"Message-ID: <{msg_id or uuid.uuid4()}@remote.test>",
            "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    if refs:
        head += [f"In-Reply-To: <{refs[-1]}>", "References: " + " ".join(f"<{r}>" for r in refs)]
    return to_crlf(("\n".join(head) + "\n\n" + (body or f"Body of {subject}.") + "\n").encode())


def all_messages(client: ApiClient) -> list[dict]:
    items, cursor = [], None
    for _ in range(1000):
        r = client.get("/messages?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        page = r.json()
        items += page["items"]
        cursor = page.get("next")
        if not cursor:
            return items
    raise AssertionError("message list did not end")


def with_subjects(client: ApiClient, prefix: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for m in all_messages(client):
        if (m.get("subject") or "").startswith(prefix):
            out.setdefault(m["subject"], []).append(m)
    return out


def completed_jobs(worker: Daemon) -> int:
    """Jobs this worker finished, as its own /metrics counts them."""
    status, body = get(worker.admin_url + "/metrics")
    assert status == 200, body
    return int(total(parse_prometheus(body.decode()), "palisade_jobs_processed_total", outcome="done"))


def test_mail_through_haproxy_is_listed_and_searched_once_through_either_api_node(cluster, report):
    run = uuid.uuid4().hex[:10]
    n = 12
    sent = {f"batch{run} {i}": (f"sender{i}@s{run}.test", mail(f"batch{run} {i}", f"sender{i}@s{run}.test"))
            for i in range(n)}
    jobs_before = sum(completed_jobs(w) for w in cluster.workers)
    cluster.submit(list(sent.values()))
    cluster.wait_queue_empty()

    a, b = (cluster.login(d) for d in cluster.api)
    # A session opened through HAProxy works on both nodes directly too.
    status, _, body = https(cluster.haproxy, "POST", "/api/v1/auth/login",
                            json.dumps({"address": ALICE, "password": PASSWORD}).encode())
    assert status == 200, body
    edge_token = json.loads(body)["token"]
    views = []
    for client in (a, b, cluster.node_client(cluster.api[0], edge_token), cluster.node_client(cluster.api[1], edge_token)):
        found = with_subjects(client, f"batch{run} ")
        assert sorted(found) == sorted(sent), sorted(found)
        assert all(len(v) == 1 for v in found.values()), {s: len(v) for s, v in found.items() if len(v) != 1}
        views.append({s: v[0]["id"] for s, v in found.items()})
    assert all(v == views[0] for v in views), "API nodes disagree on message ids"

    # Both workers index: the index catches up, and every message is found once on either node.
    for client in (a, b):
        wait_until("the index to catch up", lambda c=client: c.get("/index/status").json()["up_to_date"], 240)
    for client in (a, b):
        def hits(c=client):
            r = c.get(f"/search?q=batch{run}&limit=100")
            assert r.status == 200, r
            ids = [h["id"] for h in r.json()["items"]]
            return ids if len(ids) >= n else None
        ids = wait_until("search to find the batch", hits, 240)
        assert sorted(ids) == sorted(views[0].values()), "search lists a message twice or misses one"
    # Each index job's other effect, learning the sender as a contact, happened exactly once.
    r = a.get("/contacts?limit=100")
    assert r.status == 200, r
    learned = [addr for c in r.json()["items"] for addr in c["addresses"] if addr.endswith(f"@s{run}.test")]
    assert sorted(learned) == sorted(s for s, _ in sent.values()), learned
    # The workers competed for the jobs: both took some, and together at least all of them.
    per_worker = [completed_jobs(w) for w in cluster.workers]
    assert sum(per_worker) - jobs_before >= n, per_worker
    assert all(done > 0 for done in per_worker), f"one worker did nothing: {per_worker}"


def open_stream(d: Daemon, token: str) -> tuple[socket.socket, bytes]:
    """GET /events on one API node: the open socket, and what followed the response head."""
    s = socket.create_connection((HOST, d.api_port), timeout=60)
    s.sendall(proxy_v2_header(src=(CLIENT, 40001), dst=(HOST, d.api_port)))
    s.sendall((f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, f"stream closed before its head: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return s, head.split(b"\r\n\r\n", 1)[1]


def read_until(s: socket.socket, needle: bytes, have: bytes = b"") -> bytes:
    while needle not in have:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no {needle!r} on the stream: {have!r}") from None
        assert chunk, f"stream closed without {needle!r}: {have!r}"
        have += chunk
    return have


def deliver(cluster: Cluster, d: Daemon, sender: str, msg: bytes, attempts: int = 30):
    """One LMTP transaction on one ingest node; a 4xx (load) is retried, like Postfix would."""
    t = None
    for _ in range(attempts):
        with cluster.lmtp(d) as c:
            t = c.data_transaction(sender, [ALICE], msg)
            c.quit()
        if [r.code for r in t.final] == [250]:
            return
        assert not any(r.cls == 5 for r in (t.mail, *t.rcpts, t.data, *t.final) if r), t
        time.sleep(1)
    raise AssertionError(f"{d.dir.name} kept deferring: {t}")


def test_sessions_login_limits_and_events_work_across_api_nodes(cluster, report):
    a_node, b_node = cluster.api
    a = cluster.login(a_node)
    b = cluster.node_client(b_node, a.token)
    assert b.get("/me").status == 200, "a session opened on one node must work on the other"

    # A delivery on ingest node 1 reaches a stream open on API node 2, and one on ingest node 2
    # a stream on API node 1: events go through the shared Redis, not a node's memory.
    for stream_node, ingest_node in ((b_node, cluster.ingest[0]), (a_node, cluster.ingest[1])):
        s, rest = open_stream(stream_node, a.token)
        try:
            subject = f"event {uuid.uuid4().hex[:8]}"
            deliver(cluster, ingest_node, "events@remote.test", mail(subject, "events@remote.test"))
            got = read_until(s, b"new_mail", rest)
            [m] = with_subjects(a, subject)[subject]
            read_until(s, m["id"].encode(), got)
        finally:
            s.close()

    # Login failures count per account across nodes: half on each node spend the budget.
    stranger = "192.0.2.77"
    for i in range(ACCOUNT_LIMIT):
        node = cluster.api[i % 2]
        r = cluster.node_client(node, client=stranger).post("/auth/login", {"address": MALLORY, "password": "no"})
        assert r.status == 401, r
    for node in cluster.api:
        r = cluster.node_client(node, client=stranger).post("/auth/login",
                                                            {"address": MALLORY, "password": PASSWORD})
        assert r.status == 429 and int(r.headers["retry-after"]) > 0, (node.dir.name, r)

    # Logging out on one node ends the session on every node.
    assert b.post("/auth/logout").status in (200, 204)
    assert a.get("/me").status == 401


def test_related_messages_delivered_at_once_on_both_ingest_nodes_share_one_discussion(cluster, report):
    run = uuid.uuid4().hex[:8]
    threads = 6
    jobs = []
    for t in range(threads):
        ids = [f"root{t}.{run}", f"first{t}.{run}", f"second{t}.{run}"]
        subjects = [f"thread{run} {t}", f"Re: thread{run} {t}", f"Re: Re: thread{run} {t}"]
        for i in range(3):
            sender = f"author{i}@t{run}.test"
            msg = mail(subjects[i], sender, msg_id=ids[i], refs=[f"{x}@remote.test" for x in ids[:i]])
            jobs.append((cluster.ingest[(t + i) % 2], sender, msg))
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run_one(node, sender, msg):
        try:
            start.wait(60)
            deliver(cluster, node, sender, msg)
        except BaseException as e:  # reported below
            errors.append(e)

    workers = [threading.Thread(target=run_one, args=job) for job in jobs]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert not errors, errors

    client = cluster.login(cluster.api[0])
    found = with_subjects(client, "")
    for t in range(threads):
        msgs = [found[s][0] for s in (f"thread{run} {t}", f"Re: thread{run} {t}", f"Re: Re: thread{run} {t}")]
        discussions = {m["discussion_id"] for m in msgs}
        assert len(discussions) == 1, f"thread {t} split into {discussions}"
        r = cluster.node_client(cluster.api[1], client.token).get(f"/discussions/{discussions.pop()}")
        assert r.status == 200, r
        d = r.json()
        assert d["message_count"] == 3, d
        authors = sorted(p["address"] for p in d["participants"] if p.get("address", "").endswith(f"@t{run}.test"))
        assert authors == [f"author{i}@t{run}.test" for i in range(3)], d["participants"]


def in_flight(d: Daemon) -> float:
    """LMTP transactions past DATA's 354 whose message is not yet stored (Postfix uses DATA)."""
    samples = parse_prometheus(get(d.admin_url + "/metrics")[1].decode())
    return (total(samples, "palisade_lmtp_replies_total", code="354")
            - total(samples, "palisade_lmtp_transactions_total"))


def raw_of(client: ApiClient, message_id: str) -> bytes:
    r = client.get(f"/messages/{message_id}/raw", headers={"Accept": "*/*"})
    assert r.status == 200, r
    return r.body


def test_killing_an_ingest_node_and_an_api_node_mid_stream_loses_nothing(cluster, report):
    run = uuid.uuid4().hex[:10]
    n = 30
    # Bodies of about 300 KiB: storing one takes long enough to be caught in flight.
    sent = {f"kill{run} {i}": mail(f"kill{run} {i}", f"k{i}@k{run}.test",
                                   body="".join(f"Line {j} of message {i} of {run}.\n" for j in range(9000)))
            for i in range(n)}
    token = cluster.login(cluster.api[1]).token
    victims = (cluster.ingest[0], cluster.api[0])

    # Readers poll the list through HAProxy all along; they must keep being answered.
    stop = threading.Event()
    answers: list[int] = []

    def poll():
        while not stop.is_set():
            try:
                status, _, _ = https(cluster.haproxy, "GET", "/api/v1/messages?limit=5", token=token)
            except OSError:
                status = 0
            answers.append(status)
            time.sleep(0.1)

    submitted: list[BaseException | None] = []

    def submit():
        try:
            cluster.submit([(f"k{i}@k{run}.test", m) for i, m in enumerate(sent.values())], pause=0.2)
            submitted.append(None)
        except BaseException as e:  # reported below
            submitted.append(e)

    reader = threading.Thread(target=poll)
    reader.start()
    sender = threading.Thread(target=submit)
    try:
        deferred = cluster.postfix.log.read_text(errors="replace").count("status=deferred")
        sender.start()
        # Kill the ingest node in the middle of a transaction: it has answered DATA with 354
        # more often than it has finished storing, so a message is on its way to storage.
        wait_until("a transaction in flight on lmtp1", lambda: in_flight(victims[0]) > 0, 180, 0.01)
        for d in victims:
            d.kill9()
        sender.join(300)
        assert submitted == [None], submitted
        cluster.wait_servers("DOWN", ("lmtp_nodes", "lmtp1"), ("api_nodes", "api1"))
        cluster.wait_queue_empty()
        # Postfix lost that transaction's reply, kept the message and delivered it again.
        assert cluster.postfix.log.read_text(errors="replace").count("status=deferred") > deferred, \
            cluster.postfix.tail()
        after_down = len(answers)
        wait_until("ten answers after the API node went down", lambda: len(answers) >= after_down + 10, 120, 0.2)
    finally:
        stop.set()
        reader.join(60)
        if sender.is_alive():
            sender.join(300)
    assert all(s == 200 for s in answers[after_down:]), f"HAProxy still sent requests to the dead node: {answers}"

    survivor = cluster.node_client(cluster.api[1], token)
    found = with_subjects(survivor, f"kill{run} ")
    assert sorted(found) == sorted(sent), f"missing: {sorted(set(sent) - set(found))}"
    twice = {s: len(v) for s, v in found.items() if len(v) != 1}
    assert not twice, f"stored more than once: {twice}"
    for subject, [m] in found.items():
        raw = raw_of(survivor, m["id"])
        assert raw.endswith(sent[subject]), f"{subject}: stored bytes differ from what was sent"
        shown = cluster.ingest[1].show("alice", m["id"])
        assert hashlib.sha256(raw).hexdigest() == shown["raw_sha256"], (subject, shown.get("raw_sha256"))

    # Both come back and rejoin the rotation.
    for d in victims:
        d.start(timeout=120)
    cluster.wait_servers("UP", ("lmtp_nodes", "lmtp1"), ("api_nodes", "api1"))


def test_a_draining_node_turns_unready_and_haproxy_stops_sending_to_it(cluster, report):
    lmtp2, api2 = cluster.ingest[1], cluster.api[1]
    for d in (lmtp2, api2):
        d.signal(signal.SIGTERM)
    for d in (lmtp2, api2):
        status, body = wait_for_status(d.admin_url + "/readyz", 503, timeout=20)
        assert status == 503 and json.loads(body)["status"] == "draining", body
    cluster.wait_servers("DOWN", ("lmtp_nodes", "lmtp2"), ("api_nodes", "api2"), timeout=DRAIN_SECS / 2)

    def counts():
        return (total(parse_prometheus(get(lmtp2.admin_url + "/metrics")[1].decode()), "palisade_lmtp_transactions_total"),
                total(parse_prometheus(get(api2.admin_url + "/metrics")[1].decode()), "palisade_api_requests_total"))

    before = counts()
    token = cluster.login(cluster.api[0]).token
    for i in range(4):
        with Lmtp(cluster.lmtp_port) as c:  # through HAProxy, which adds the PROXY header
            c.lhlo()
            t = c.data_transaction("drain@remote.test", [ALICE], mail(f"drain {uuid.uuid4().hex[:8]}",
                                                                        "drain@remote.test"))
            assert [r.code for r in t.final] in ([250], [451]), t
            c.quit()
        status, _, body = https(cluster.haproxy, "GET", "/api/v1/me", token=token)
        assert status == 200, body
    assert lmtp2.alive() and api2.alive(), "the drain window ended before the check"
    assert counts() == before, "HAProxy sent work to a draining node"
