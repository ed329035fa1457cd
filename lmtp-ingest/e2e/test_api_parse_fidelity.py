"""The issue-10 fixtures (fidelity/cases) delivered over LMTP and read back through the HTTP
API: the stored, served message must show what the parser must produce. Runs on both backends."""

from __future__ import annotations

import sys

import pytest

from api_helpers import PASSWORD, deliver, walk
from palisade_e2e import E2E_DIR, Daemon

sys.path.insert(0, str(E2E_DIR / "fidelity"))
import fidelity  # noqa: E402

CASES = fidelity.load_cases()


def api_view(message: dict) -> dict:
    """A `GET /messages/{id}` body in the shape `palisade-admin parse` prints."""
    people = {role: [{"name": p.get("name"), "address": p.get("address")}
                     for p in message["participants"] if p["role"] == role] for role in ("from", "to", "cc")}
    # The API shows the arrival time when the message has no usable date.
    date = None if message["date"] == message["received_at"] else message["date"]
    return {"subject": message.get("subject"), **people, "date": date,
            "attachments": message["attachments"], "text": message.get("text"), "html": message.get("html"),
            "multiple_from": message["privacy"].get("multiple_from"), "parse_error": message.get("parse_error")}


@pytest.fixture(scope="module")
def fidelity_daemon(tmp_path_factory, binaries):
    """One daemon for the whole module, so the fixtures are delivered once for all cases."""
    d = Daemon(tmp_path_factory.mktemp("fidelity-api") / "d")
    try:
        d.start()
        yield d
        died = d.died_unexpectedly()
        assert died is None, f"lmtp-ingest died during the test: exit={died}\n{d.tail()}"
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def delivered(fidelity_daemon) -> dict[str, dict]:
    """Every fixture delivered to alice once; its API view by file name."""
    d = fidelity_daemon
    d.add_user("alice", "alice@example.test", password=PASSWORD)
    c = d.login("alice@example.test", PASSWORD)
    views, seen = {}, set()
    for name in sorted(CASES):
        deliver(d, "alice@example.test", (fidelity.CASES_DIR / name).read_bytes())
        new = [m["id"] for m in walk(c, "/messages", limit=100) if m["id"] not in seen]
        assert len(new) == 1, f"{name}: expected one new message, found {new}"
        seen.update(new)
        r = c.get(f"/messages/{new[0]}")
        assert r.status == 200, r
        views[name] = api_view(r.json())
    return views


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_through_the_api(delivered, name):
    expected = CASES[name]
    problems = fidelity.check_case(expected, delivered[name])
    if expected.get("pending"):
        if problems:
            pytest.skip(f"pending, {expected['pending']}: " + "; ".join(problems))
        pytest.fail(f"{name} now meets its expectations through the API: remove its `pending`",
                    pytrace=False)
    assert not problems, f"{name} ({expected['what']}):\n  " + "\n  ".join(problems)
