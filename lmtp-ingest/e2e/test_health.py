"""The admin listener (/healthz, /readyz, /metrics) and node roles."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from palisade_e2e import BACKEND, DOMAIN, HOST, free_port, make_message

USERS = {"alice": [f"alice@{DOMAIN}"]}
PASSWORD = "health check password 1"
# The `backend` label of each kind of backend operation, by e2e backend.
BACKENDS = {
    "embedded": {"store": "sqlite", "queue": "sqlite-jobs", "index": "tantivy", "cache": "memory"},
    "distributed": {"store": "cassandra", "queue": "rabbitmq", "index": "elasticsearch",
                    "cache": "redis"},
}[BACKEND]


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# One sample line of the Prometheus text format: name, optional {labels}, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample, keyed by name and label set, as Prometheus' own parser reads the text.

    Each line must also be a comment, a blank or a plain sample, and every sample must belong
    to a family declared with `# TYPE`: prometheus_client alone accepts some lines a server
    would reject.
    """
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        pytest.fail("prometheus_client is not installed: run devtools/install-deps", pytrace=False)
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line.strip() and not line.startswith("# HELP "):
            assert SAMPLE.match(line), f"not Prometheus text: {line!r}"
    samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name in typed or family.name + "_total" in typed, \
            f"{family.name} has no # TYPE line"
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    assert samples, "no samples"
    return samples


def scrape(d) -> dict[tuple[str, frozenset], float]:
    status, body = get(d.admin_url + "/metrics")
    assert status == 200, body
    return parse_prometheus(body.decode())


def total(samples, name: str, **labels) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def wait_for_metric(d, name: str, ok, timeout: float = 60.0, **labels):
    """Scrapes until `ok(total(name, labels))` holds; returns the last scrape."""
    deadline = time.monotonic() + timeout
    samples = scrape(d)
    while not ok(total(samples, name, **labels)):
        assert time.monotonic() < deadline, \
            f"{name}{labels} = {total(samples, name, **labels)} after {timeout}s"
        time.sleep(0.3)
        samples = scrape(d)
    return samples


def wait_for_status(url: str, wanted: int, timeout: float = 60.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    status, body = get(url)
    while status != wanted and time.monotonic() < deadline:
        time.sleep(0.3)
        status, body = get(url)
    return status, body


def refuses(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=5):
            return False
    except OSError:
        return True


def test_health_ready_and_metrics_move_with_mail_and_api_calls(make_daemon):
    d = make_daemon(users=USERS, admin={})
    status, body = get(d.admin_url + "/healthz")
    assert status == 200, body
    status, body = wait_for_status(d.admin_url + "/readyz", 200)
    assert status == 200, body
    assert json.loads(body)["status"] == "ready"

    before = scrape(d)
    with d.session() as c:
        t = c.data_transaction(f"s@{DOMAIN}", [f"alice@{DOMAIN}"], make_message("metrics"))
        assert [r.code for r in t.final] == [250], t
    # An API call with an id in its path: counted under the route template, never the id.
    some_id = str(uuid.uuid4())
    assert d.client().get(f"/messages/{some_id}").status == 401
    after = scrape(d)

    assert total(after, "palisade_lmtp_transactions_total") == \
        total(before, "palisade_lmtp_transactions_total") + 1
    assert total(after, "palisade_lmtp_replies_total", code="250") > \
        total(before, "palisade_lmtp_replies_total", code="250")
    assert total(after, "palisade_lmtp_received_bytes_total") > \
        total(before, "palisade_lmtp_received_bytes_total")
    assert total(after, "palisade_lmtp_delivery_seconds_count") == \
        total(before, "palisade_lmtp_delivery_seconds_count") + 1
    route = "/api/v1/messages/{id}"
    assert total(after, "palisade_api_requests_total", route=route, status="401") == \
        total(before, "palisade_api_requests_total", route=route, status="401") + 1
    assert total(after, "palisade_api_request_seconds_count", route=route) >= 1
    assert ("palisade_jobs_dead", frozenset()) in after
    text = get(d.admin_url + "/metrics")[1].decode()
    assert some_id not in text and "alice" not in text and DOMAIN not in text


def test_backend_operations_jobs_sessions_and_index_lag_are_measured(make_daemon):
    d = make_daemon(users=USERS, admin={"index_lag_interval_secs": 1})
    d.add_user("bob", f"bob@{DOMAIN}", password=PASSWORD)
    assert wait_for_status(d.admin_url + "/readyz", 200)[0] == 200
    store, queue, index, cache = (BACKENDS[k] for k in ("store", "queue", "index", "cache"))
    op_count = "palisade_backend_operation_seconds_count"

    before = scrape(d)
    with d.session() as c:
        t = c.data_transaction(f"s@{DOMAIN}", [f"alice@{DOMAIN}", f"bob@{DOMAIN}"],
                               make_message("backend metrics"))
        assert [r.code for r in t.final] == [250, 250], t
    # Both copies are stored by the store and indexed by the worker, one job each.
    after = wait_for_metric(d, "palisade_jobs_processed_total",
                            lambda n: n >= total(before, "palisade_jobs_processed_total",
                                                 outcome="done") + 2,
                            kind="index", outcome="done")
    assert total(after, op_count, backend=store, op="deliver") == \
        total(before, op_count, backend=store, op="deliver") + 2
    assert total(after, op_count, backend=store, op="resolve_address") >= \
        total(before, op_count, backend=store, op="resolve_address") + 2
    assert total(after, op_count, backend=queue, op="claim") > \
        total(before, op_count, backend=queue, op="claim")
    assert total(after, op_count, backend=index, op="index") > \
        total(before, op_count, backend=index, op="index")
    assert total(after, "palisade_backend_operation_seconds_bucket", backend=store, op="deliver",
                 le="+Inf") == total(after, op_count, backend=store, op="deliver")

    # A signed-in session is active; its calls reach the cache and the index.
    bob = d.login(f"bob@{DOMAIN}", PASSWORD)
    assert bob.get("/search?q=backend").status == 200
    after_api = scrape(d)
    assert total(after_api, "palisade_api_active_sessions") >= 1
    assert total(after_api, op_count, backend=cache, op="get") > total(after, op_count,
                                                                        backend=cache, op="get")
    assert total(after_api, op_count, backend=index, op="search") == \
        total(after, op_count, backend=index, op="search") + 1
    assert total(after_api, "palisade_api_requests_total", route="/api/v1/search",
                 method="GET", status="200") == 1

    # A login that fails is an API error, not a backend error; a backend error is counted.
    assert d.client().post("/auth/login", {"address": f"bob@{DOMAIN}", "password": "wrong"}) \
        .status == 401
    errors = scrape(d)
    assert total(errors, "palisade_backend_operation_errors_total", backend=store) == \
        total(before, "palisade_backend_operation_errors_total", backend=store)

    # Once the worker has caught up, the sampled lag is zero over both users' mail.
    lag = wait_for_metric(d, "palisade_index_indexed_messages", lambda n: n >= 2)
    lag = wait_for_metric(d, "palisade_index_lag_messages", lambda n: n == 0)
    assert total(lag, "palisade_index_stored_messages") == \
        total(lag, "palisade_index_indexed_messages") >= 2
    assert total(lag, "palisade_index_lagging_users") == 0
    assert total(lag, "palisade_index_lag_sampled_timestamp_seconds") > time.time() - 600


def test_index_lag_counts_mail_no_worker_has_indexed(make_daemon):
    # No worker role: mail is stored and its jobs wait, so the index stays behind.
    d = make_daemon(users=USERS, roles=["lmtp", "api"],
                    admin={"index_lag_interval_secs": 1})
    d.add_user("bob", f"bob@{DOMAIN}")
    with d.session() as c:
        for n in range(3):
            t = c.data_transaction(f"s@{DOMAIN}", [f"alice@{DOMAIN}"], make_message(f"lag {n}"))
            assert [r.code for r in t.final] == [250], t
    samples = wait_for_metric(d, "palisade_index_lag_messages", lambda n: n == 3)
    assert total(samples, "palisade_index_stored_messages") == 3
    assert total(samples, "palisade_index_indexed_messages") == 0
    assert total(samples, "palisade_index_lagging_users") == 1
    assert total(samples, "palisade_jobs_processed_total") == 0


def log_lines(d) -> list[dict]:
    """The daemon's JSON log lines so far."""
    lines = []
    for line in d.stderr_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_api_requests_carry_a_request_id_in_logs_and_response(make_daemon):
    d = make_daemon(users=USERS, admin={}, log={"format": "json", "level": "info"})
    d.add_user("bob", f"bob@{DOMAIN}", password=PASSWORD)
    bob = d.login(f"bob@{DOMAIN}", PASSWORD)

    # A plain id from the caller (or HAProxy) is kept and returned.
    r = bob.get("/discussions", headers={"X-Request-Id": "e2e-req.42_a"})
    assert r.status == 200 and r.headers["x-request-id"] == "e2e-req.42_a", r.headers
    # Otherwise, or when it could forge log fields, a fresh one is made; errors carry it too.
    minted = []
    for headers, client in (({}, bob), ({"X-Request-Id": 'x" level=error'}, bob),
                            ({"X-Request-Id": "a" * 65}, d.client())):
        r = client.get(f"/messages/{uuid.uuid4()}", headers=headers)
        assert r.status in (401, 404), r
        rid = r.headers.get("x-request-id", "")
        assert re.fullmatch(r"[0-9a-f]{32}", rid), r.headers
        minted.append((rid, r.status))
    assert len({rid for rid, _ in minted}) == 3
    # Refused before it reaches a handler, a request still gets its id back.
    r = d.client().request("POST", "/auth/login", b"",
                           headers={"Content-Length": str(10**12), "X-Request-Id": "too-big-1"})
    assert r.status == 413 and r.headers.get("x-request-id") == "too-big-1", r

    # Each request's log line names its id, route template and status, never the raw path.
    deadline = time.monotonic() + 20
    while True:
        served = {line["span"]["id"]: line for line in log_lines(d)
                  if line.get("fields", {}).get("message") == "request served"}
        if all(rid in served for rid, _ in minted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    line = served["e2e-req.42_a"]
    assert line["span"]["route"] == "/api/v1/discussions" and line["fields"]["status"] == 200
    for rid, status in minted:
        assert served[rid]["span"]["route"] == "/api/v1/messages/{id}", served[rid]
        assert served[rid]["fields"]["status"] == status
    # The login's own log line sits in its request's span.
    login = [line for line in log_lines(d) if line.get("fields", {}).get("message") == "login"]
    assert login and all(line["span"]["name"] == "request" and line["span"]["id"] for line in login)


def test_lmtp_transactions_are_named_in_replies_and_logs_keep_mail_out(make_daemon):
    # Our crates at debug, where the most detail is; dependencies' debug output is theirs.
    ours = ["palisade_lmtp", "palisade_ingest", "palisade_store", "palisade_worker",
            "palisade_api", "palisade_index", "palisade_jobs", "palisade_cache", "lmtp_ingest"]
    level = ",".join(["info"] + [f"{crate}=debug" for crate in ours])
    d = make_daemon(users=USERS, admin={}, log={"format": "json", "level": level})
    d.add_user("bob", f"bob@{DOMAIN}", password=PASSWORD)
    subject, body = f"secret-subject-{uuid.uuid4().hex}", f"secret-body-{uuid.uuid4().hex}"
    with d.session() as c:
        t = c.data_transaction(f"sender-{uuid.uuid4().hex[:8]}@{DOMAIN}", [f"alice@{DOMAIN}"],
                               make_message(subject, body + "\r\n"))
        assert [r.code for r in t.final] == [250], t
    reply = t.final[0].text
    m = re.search(r"accepted for delivery as ([0-9a-f]{16}\.1)\b", reply)
    assert m, reply
    txn = m.group(1)
    bob = d.login(f"bob@{DOMAIN}", PASSWORD)
    assert bob.get("/discussions").status == 200

    deadline = time.monotonic() + 20
    while True:
        done = [line for line in log_lines(d)
                if line.get("fields", {}).get("message") == "transaction complete"]
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [line["span"]["id"] for line in done] == [txn], done
    assert all(s.get("session") == txn.split(".")[0] for s in done[0]["spans"] if s["name"] == "lmtp")
    # No bodies, subjects or mail addresses in the log, even at debug level.
    text = d.stderr_path.read_text(errors="replace")
    for secret in (subject, body, "sender-", f"alice@{DOMAIN}", f"bob@{DOMAIN}", PASSWORD):
        assert secret not in text, secret


def test_readyz_fails_first_while_draining(make_daemon):
    d = make_daemon(users=USERS, admin={"drain_secs": 30})
    assert wait_for_status(d.admin_url + "/readyz", 200)[0] == 200
    d.signal(signal.SIGTERM)
    status, body = wait_for_status(d.admin_url + "/readyz", 503, timeout=20)
    assert status == 503 and json.loads(body)["status"] == "draining", body
    # Still alive and still taking mail while the load balancer notices.
    assert get(d.admin_url + "/healthz")[0] == 200
    with d.session() as c:
        t = c.data_transaction(f"s@{DOMAIN}", [f"alice@{DOMAIN}"], make_message("draining"))
        assert [r.code for r in t.final] == [250], t
    d.proc.kill()
    d.wait(30)


def test_an_api_only_node_serves_the_api_and_no_lmtp(make_daemon):
    d = make_daemon(roles=["api"], ready="api", admin={})
    assert d.client().get("/messages").status == 401
    assert refuses(d.port), "an api-only node must not listen for LMTP"
    assert wait_for_status(d.admin_url + "/readyz", 200)[0] == 200


def test_an_ingest_node_takes_mail_and_refuses_api_connections(make_daemon):
    d = make_daemon(users=USERS, roles=["lmtp", "worker"])
    with d.session() as c:
        t = c.data_transaction(f"s@{DOMAIN}", [f"alice@{DOMAIN}"], make_message("ingest only"))
        assert [r.code for r in t.final] == [250], t
    assert refuses(d.api_port), "an ingest node must not serve the API"


@pytest.mark.distributed_only
def test_readyz_follows_a_required_backend(make_daemon, tmp_path):
    # A private Redis, so stopping it touches no other test's services.
    port = free_port()

    def start_redis():
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                              "--appendonly", "no", "--dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while refuses(port):
            assert p.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.1)
        return p

    redis = start_redis()
    try:
        d = make_daemon(users=USERS, admin={}, cache={"redis_url": f"redis://{HOST}:{port}/"})
        status, body = wait_for_status(d.admin_url + "/readyz", 200)
        assert status == 200, body

        redis.kill()
        redis.wait(30)
        status, body = wait_for_status(d.admin_url + "/readyz", 503)
        assert status == 503, body
        assert json.loads(body)["failing"] == ["cache"], body
        assert get(d.admin_url + "/healthz")[0] == 200
        samples = scrape(d)
        assert total(samples, "palisade_backend_up", backend="cache") == 0

        redis = start_redis()
        status, body = wait_for_status(d.admin_url + "/readyz", 200)
        assert status == 200, body
    finally:
        redis.kill()
        redis.wait(30)
