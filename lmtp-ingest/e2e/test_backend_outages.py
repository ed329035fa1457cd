"""Distributed backends going down for real, and what Postfix and users see.

Each test stops one real service with devtools/services, exercises the daemon, and starts the
service again (always, even when the test fails):
- Cassandra down: recipients get 451 (Postfix retries), never 250.
- Elasticsearch down: mail is still accepted; indexing catches up by itself afterwards.
- RabbitMQ down: 451 (our chosen semantics; Postfix's queue is the buffer), and after recovery
  the redelivery is stored once and indexed: nothing lost.
- Redis down: ingest is unaffected; the API answers 503 with a reason, and works again after.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from palisade_e2e import REPO, make_message

pytestmark = [pytest.mark.distributed_only, pytest.mark.stops_services]

SERVICES = REPO / "devtools" / "services"


def services(action: str, name: str) -> None:
    r = subprocess.run([str(SERVICES), action, name], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"devtools/services {action} {name} failed:\n{r.stdout}\n{r.stderr}"


class Outage:
    """Stops a service for the duration of a with-block and always brings it back."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        services("down", self.name)
        return self

    def restore(self):
        services("up", self.name)

    def __exit__(self, *exc):
        self.restore()


def transaction(d, rcpt: str, content: bytes) -> list[int]:
    """Every reply code of one MAIL/RCPT/DATA transaction, stopping at the first refusal."""
    codes = []
    with d.session() as c:
        r = c.cmd("MAIL FROM:<sender@example.test>")
        codes.append(r.code)
        if r.code != 250:
            return codes
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        codes.append(r.code)
        if r.code != 250:
            return codes
        r = c.cmd("DATA")
        codes.append(r.code)
        if r.code != 354:
            return codes
        c.send(content.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        codes.append(c.reply().code)
    return codes


def wait_for(predicate, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except AssertionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def subjects(d, user: str) -> list[str]:
    return [m["subject"] for m in d.messages(user)]


def test_cassandra_outage_is_451_never_250(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]},
                    env={"PALISADE_STORAGE__CASSANDRA__REQUEST_TIMEOUT_SECS": "3"})
    subject = f"during cassandra outage {uuid.uuid4().hex}"
    msg = make_message(subject, "kept by postfix\r\n")
    with Outage("cassandra") as outage:
        codes = transaction(d, "alice@example.test", msg)
        assert codes[-1] // 100 == 4, f"expected a temporary failure, got {codes}"
        outage.restore()
        # Postfix's retry: the same bytes once Cassandra is back.
        wait_for(lambda: transaction(d, "alice@example.test", msg)[-1] == 250, "delivery after recovery")
    assert subjects(d, "alice").count(subject) == 1


def test_elasticsearch_outage_accepts_mail_and_catches_up(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]})
    token = uuid.uuid4().hex
    with Outage("elasticsearch") as outage:
        codes = transaction(d, "alice@example.test", make_message(f"indexed later {token}", f"needle{token}\r\n"))
        assert codes[-1] == 250, f"mail must be accepted while the index is down: {codes}"
        assert f"indexed later {token}" in subjects(d, "alice")
        outage.restore()
    wait_for(lambda: d.admin("search", "--user", "alice", f"needle{token}") != [],
             "the index to catch up after Elasticsearch returned", timeout=180)


def test_rabbitmq_outage_is_451_then_nothing_is_lost(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]})
    token = uuid.uuid4().hex
    msg = make_message(f"queued later {token}", f"needle{token}\r\n")
    with Outage("rabbitmq") as outage:
        codes = transaction(d, "alice@example.test", msg)
        assert codes[-1] // 100 == 4, f"no 250 without a confirmed job: {codes}"
        outage.restore()
        wait_for(lambda: transaction(d, "alice@example.test", msg)[-1] == 250, "delivery after recovery")
    assert subjects(d, "alice").count(f"queued later {token}") == 1
    wait_for(lambda: d.admin("search", "--user", "alice", f"needle{token}") != [],
             "the job published on redelivery to be processed", timeout=180)


def test_redis_outage_does_not_affect_ingest(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]})
    token = uuid.uuid4().hex
    with Outage("redis"):
        codes = transaction(d, "alice@example.test", make_message(f"no redis {token}", "fine\r\n"))
        assert codes[-1] == 250, codes
        assert f"no redis {token}" in subjects(d, "alice")


def test_api_answers_503_while_redis_is_down_and_recovers(make_daemon):
    # Sessions and rate limits live in Redis: without it the API cannot tell who is asking, so
    # it says so (503 with a reason) instead of failing open or crashing.
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password="long enough password")
    c = d.login("alice@example.test", "long enough password")
    with Outage("redis"):
        r = c.get("/discussions")
        assert r.status == 503, r
        assert r.json()["error"] == "unavailable"
        r = d.client().post("/auth/login", {"address": "alice@example.test", "password": "long enough password"})
        assert r.status == 503, r
    # This test Redis keeps nothing on disk, so sessions did not survive its restart; signing in
    # again works as soon as it is back.
    def signed_in_again():
        fresh = d.client().post("/auth/login", {"address": "alice@example.test",
                                                "password": "long enough password"})
        return fresh.status == 200
    wait_for(signed_in_again, "login to work again with Redis back", timeout=60)


def test_the_first_request_after_a_redis_crash_is_served(make_daemon):
    # Nothing talks to Redis while it is down, so the daemon only learns of the crash when its
    # next command fails on the dead socket; the cache retries that command once on a new
    # connection, so the user who comes first does not get a 503 for nothing.
    d = make_daemon()
    d.add_user("alice", "alice@example.test", password="long enough password")
    d.login("alice@example.test", "long enough password")
    services("kill", "redis")
    try:
        time.sleep(0.5)
    finally:
        services("up", "redis")
    fresh = d.client().post("/auth/login", {"address": "alice@example.test", "password": "long enough password"})
    assert fresh.status == 200, fresh
