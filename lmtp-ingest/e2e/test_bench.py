"""The benchmark command still works: one small round of devtools/bench/bench.py (issue 12),
and the measurement tools beside it read what they measure correctly.

A smoke run, never a measurement: it checks that every system took every message and that the
table was produced, not how fast anything was. Embedded only, with the binaries under test and
a few messages; `devtools/bench/run` is the same script with release builds and full sizes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from palisade_e2e import REPO

pytestmark = pytest.mark.embedded_only
SYSTEMS = ("palisade-embedded", "dovecot", "durable-floor", "ceiling")


def test_the_benchmark_measures_every_system_and_writes_its_table(binaries):
    r = subprocess.run(
        [sys.executable, str(REPO / "devtools" / "bench" / "bench.py"), "--quick", "--no-distributed",
         "--messages", "60", "--skip", "corpus,parse,lag,rss,api", "--no-write",
         # The other pass shares the machine: it is never quiet, and no figure here is kept.
         "--settle-timeout", "0"],
        capture_output=True, text=True, timeout=900)
    found = re.search(r"raw results in (\S+)/results\.json", r.stderr)
    try:
        assert r.returncode == 0, f"bench.py exited {r.returncode}:\n{r.stderr[-3000:]}"
        assert found, f"bench.py named no results file:\n{r.stderr[-3000:]}"
        results = json.loads((Path(found.group(1)) / "results.json").read_text())
        assert set(results["systems"]) == set(SYSTEMS), results["systems"]
        for system in SYSTEMS:
            # `--quick` warms up with one pass; a full run repeats it until the rate settles.
            (warmup,) = results["warmup"][system]
            assert warmup["rc"] == 0 and warmup["msg_s"], f"warm-up of {system}: {warmup}"
        assert "untimed 1 KiB messages" in r.stdout, f"the table does not say it warmed up:\n{r.stdout}"
        cases = {c["name"]: c["count"] for c in results["cases"]}
        assert set(results["ingest"]) == set(cases), results["ingest"].keys()
        for case, runs in results["ingest"].items():
            for system in SYSTEMS:
                (run,) = runs[system]
                # smtp-source exits non-zero on any reply but 250: every message was taken.
                assert run["rc"] == 0 and run["msg_s"], f"{case} {system}: {run}"
        for label in ("Palisade embedded", "Dovecot LMTP", "durable floor", "smtp-sink ceiling", "embedded / Dovecot",
                      "embedded / durable floor", "embedded / ceiling"):
            assert label in r.stdout, f"the table lacks {label!r}:\n{r.stdout}"
    finally:
        if found:
            shutil.rmtree(found.group(1), ignore_errors=True)


def test_the_warm_up_stops_once_the_rate_stops_rising():
    sys.path.insert(0, str(REPO / "devtools" / "bench"))
    from bench import warmed_up

    assert not warmed_up([])
    assert not warmed_up([140])
    assert not warmed_up([140, 199]), "a JIT still warming up"
    assert not warmed_up([140, 199, 265])
    assert warmed_up([140, 199, 265, 281]), "less than 10% faster than the pass before"
    assert warmed_up([237, 197]), "slower: already warm"
    assert warmed_up([237, None]), "a failed pass ends the warm-up"


def test_the_wal_reader_reads_only_the_frames_of_the_current_wal(tmp_path):
    sys.path.insert(0, str(REPO / "devtools" / "bench"))
    import sqlite3

    from wal_pages import FRAME_HEADER, WAL_HEADER, wal_frames

    db = tmp_path / "t.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for i in range(3):
        conn.execute("INSERT INTO t VALUES (?, ?)", (f"key{i}", b"x" * 5000))
    wal = (tmp_path / "t.sqlite3-wal").read_bytes()
    page_size, frames = wal_frames(wal)
    assert page_size == 4096
    assert sum(1 for _, ends in frames if ends) == 3, "one commit per insert"
    # Each row overflows into a page of its own, written once; the leaf and the key's index
    # are written again by every commit.
    assert len(frames) >= 3 * 3
    assert WAL_HEADER + len(frames) * (FRAME_HEADER + page_size) == len(wal)

    # Frames under other salts are left from before a restart: not counted.
    stale = bytearray(wal)
    second = WAL_HEADER + FRAME_HEADER + page_size
    stale[second + 8] ^= 0xFF
    _, kept = wal_frames(bytes(stale))
    assert len(kept) == 1
    conn.close()
