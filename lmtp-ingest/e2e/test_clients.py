"""Interoperability with real LMTP clients: swaks and Postfix's smtp-source."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from palisade_e2e import clean_env


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if not path:
        pytest.fail(f"{tool} is not installed (apt-get install {'swaks' if tool == 'swaks' else 'postfix'})",
                    pytrace=False)
    return path


@pytest.mark.parametrize("pipeline", [False, True], ids=["plain", "pipeline"])
def test_swaks_delivers(daemon, pipeline):
    swaks = need("swaks")
    subject = f"swaks {uuid.uuid4()}"
    cmd = [swaks, "--protocol", "LMTP", "--server", "127.0.0.1", "--port", str(daemon.port),
           "--to", "alice@example.test,bob@example.test", "--from", "sender@example.test",
           "--header", f"Subject: {subject}", "--body", "Sent by swaks.", "--timeout", "30"]
    if pipeline:
        cmd.append("--pipeline")
    r = subprocess.run(cmd, capture_output=True, timeout=120, env=clean_env())
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, f"swaks exited {r.returncode}\n{out}\n{r.stderr.decode()}"
    # swaks must have seen one 250 per recipient after the data (its transcript marks replies "<-  ").
    after_data = out.split("<-  354", 1)[-1].split(" -> QUIT", 1)[0]
    assert after_data.count("<-  250 ") == 2, f"expected two per-recipient 250s after DATA:\n{out}"
    for user in ("alice", "bob"):
        msgs = daemon.messages(user)
        assert [m["subject"] for m in msgs] == [subject], f"{user}: {msgs}"
        assert b"Sent by swaks." in daemon.raw(user, msgs[0]["id"])


def test_swaks_unknown_recipient_is_rejected(daemon):
    swaks = need("swaks")
    r = subprocess.run([swaks, "--protocol", "LMTP", "--server", "127.0.0.1", "--port", str(daemon.port),
                        "--to", "nobody@example.test", "--from", "sender@example.test", "--timeout", "30"],
                       capture_output=True, timeout=120, env=clean_env())
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode != 0, f"swaks should fail for an unknown recipient\n{out}"
    assert "550 5.1.1" in out, out


def test_smtp_source_1000_messages(daemon):
    smtp_source = need("smtp-source")
    cmd = [smtp_source, "-L", "-s", "10", "-d", "-m", "1000", "-t", "alice@example.test",
           f"127.0.0.1:{daemon.port}"]
    r = subprocess.run(cmd, capture_output=True, timeout=600, env=clean_env())
    assert r.returncode == 0, (f"{' '.join(cmd)} exited {r.returncode}\nstdout: {r.stdout.decode()[-2000:]}\n"
                               f"stderr: {r.stderr.decode()[-2000:]}")
    msgs = daemon.messages("alice")
    assert len(msgs) == 1000, f"expected 1000 messages after smtp-source, got {len(msgs)}"
    assert len({m["id"] for m in msgs}) == 1000
    assert daemon.alive()
