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


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# One sample line of the Prometheus text format: name, optional {labels}, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample, keyed by name and label set; fails on any line that is not the format."""
    samples = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        name, labels, value = m.groups()
        pairs = frozenset(LABEL.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def scrape(d) -> dict[tuple[str, frozenset], float]:
    status, body = get(d.admin_url + "/metrics")
    assert status == 200, body
    return parse_prometheus(body.decode())


def total(samples, name: str, **labels) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


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
