"""Fixtures for the lmtp-ingest end-to-end suite.

Each test gets its own temporary data_dir and port. Daemons are always killed in teardown; a daemon
that died on its own during a test makes that test error out. When a test fails, the tail of every
daemon's stderr is attached to the report.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from palisade_e2e import ADMIN_BIN, BACKEND, BIN_DIR, DAEMON_BIN, REPO, Daemon

DAEMONS = pytest.StashKey[list]()


def pytest_report_header(config):
    return [f"palisade binaries: {BIN_DIR}", f"palisade backend: {BACKEND}"]


def pytest_configure(config):
    config.addinivalue_line("markers", "embedded_only: runs in the embedded pass only (SQLite faults, once-per-run checks)")
    config.addinivalue_line("markers", "distributed_only: needs the external services")
    config.addinivalue_line("markers", "stops_services: stops or kills the shared services "
                                       "(devtools/test runs these alone, after the rest)")


def pytest_sessionfinish(session, exitstatus):
    # Each distributed daemon declares its own queues under its tag's prefix and nothing deletes
    # them; dropped here, in one pass, so a long-lived RabbitMQ does not fill up run after run.
    # Best effort: a RabbitMQ that devtools/services does not run is left alone. Under
    # pytest-xdist only the controller drops them, once every worker is done.
    if BACKEND == "distributed" and not hasattr(session.config, "workerinput"):
        subprocess.run([str(REPO / "devtools" / "services"), "drop-queues", "palisade-e2e-"],
                       capture_output=True, timeout=300, check=False)


def pytest_terminal_summary(terminalreporter):
    # What a test reports with `record_property("summary", line)` (the fault run's lost,
    # duplicated, invisible and wrongly bounced counts): its own output is captured when it
    # passes, and pytest-xdist workers hand user properties to the controller, which prints here.
    lines = [f"{r.nodeid}: {value}"
             for outcome in ("passed", "failed")
             for r in terminalreporter.stats.get(outcome, [])
             if getattr(r, "when", None) == "call"
             for name, value in r.user_properties if name == "summary"]
    if lines:
        terminalreporter.section("summaries")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config, items):
    # devtools/test runs both passes at once, and test_ansible.py's deployments take turns (a
    # lock): the distributed pass deploys early in its run, the embedded pass at the end of its.
    if BACKEND == "embedded":
        items.sort(key=lambda item: item.path.name == "test_ansible.py")
    # Backend-specific fault injection has a counterpart on the other backend
    # (SQLite triggers here, cutting the network to a real service there).
    for item in items:
        if BACKEND != "embedded" and item.get_closest_marker("embedded_only"):
            item.add_marker(pytest.mark.skip(reason="embedded backend only"))
        if BACKEND != "distributed" and item.get_closest_marker("distributed_only"):
            item.add_marker(pytest.mark.skip(reason="distributed backend only"))


@pytest.fixture(scope="session")
def binaries():
    missing = [str(p) for p in (DAEMON_BIN, ADMIN_BIN) if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        pytest.fail(f"binaries missing: {missing}. Run `cargo build -p lmtp-ingest` or set PALISADE_BIN_DIR.",
                    pytrace=False)
    return BIN_DIR


@pytest.fixture
def make_daemon(request, tmp_path, binaries):
    """Factory: make_daemon(users={"alice": ["alice@example.test"]}, lmtp={...}, proxy=..., start=True)."""
    made: list[Daemon] = []
    request.node.stash[DAEMONS] = made

    def factory(*, users: dict | None = None, start: bool = True, name: str | None = None, **kw) -> Daemon:
        d = Daemon(tmp_path / (name or f"d{len(made)}"), **kw)
        made.append(d)
        if start:
            d.start()
        for user, addrs in (users or {}).items():
            d.add_user(user, *addrs)
        return d

    yield factory

    died = [(d, d.died_unexpectedly()) for d in made]
    for d in made:
        d.cleanup()
    crashed = [(d, rc) for d, rc in died if rc is not None]
    if crashed:
        pytest.fail("lmtp-ingest died during the test: "
                    + "; ".join(f"{d.dir} exit={rc}\n{d.tail()}" for d, rc in crashed), pytrace=False)


@pytest.fixture
def daemon(make_daemon):
    """A running daemon with users alice, bob and carol (one address each, @example.test)."""
    return make_daemon(users={"alice": ["alice@example.test"], "bob": ["bob@example.test"],
                              "carol": ["carol@example.test"]})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in item.stash.get(DAEMONS, []):
            rep.sections.append((f"lmtp-ingest stderr tail ({d.stderr_path})", d.tail()))
