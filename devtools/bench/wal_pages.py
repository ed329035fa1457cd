#!/usr/bin/env python3
"""Where the embedded store's write-ahead log goes: WAL frames per delivery, by B-tree.

Starts a fresh embedded daemon (binaries from PALISADE_BIN_DIR, as devtools/bench/bench.py
does), grows its mailbox with `--grow` messages of 1 KiB over 10 sessions (so that its B-trees
are bigger than one commit's spread, as in a mailbox in use), empties the WAL with a
checkpoint, delivers `-n` more and waits until the machine is quiet (the index worker has
finished too). It then reads the frames the WAL holds (each one a page written by a commit,
of the size the WAL's header gives: 4 KiB unless the database was made otherwise) and names the B-tree each page belongs to with SQLite's `dbstat` on a copy of the
database: a page that only the WAL has is "new". Every page a commit touches is written whole,
so a B-tree keyed by random ids costs about a page per delivery however small its row.

    PALISADE_BIN_DIR=target/release devtools/bench/wal_pages.py --grow 20000 -n 200

The WAL restarts from its start once a checkpoint has copied all of it home; the tool says so
when that happened during the measured deliveries, and then only the shares are exact. A
measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import scratch_daemon, settle, smtp_source  # noqa: E402
import palisade_e2e as e2e  # noqa: E402

WAL_HEADER = 32
FRAME_HEADER = 24


def wal_frames(wal: bytes) -> tuple[int, list[tuple[int, bool]]]:
    """The WAL's page size and its valid frames as (page, ends a commit): frames whose salts
    differ from the header's are left over from before a restart."""
    if len(wal) < WAL_HEADER:
        return 0, []
    page_size, _sequence, salt1, salt2 = struct.unpack(">IIII", wal[8:24])
    frames = []
    at = WAL_HEADER
    while at + FRAME_HEADER + page_size <= len(wal):
        page, commit_size, s1, s2 = struct.unpack(">IIII", wal[at:at + 16])
        if (s1, s2) != (salt1, salt2):
            break
        frames.append((page, commit_size != 0))
        at += FRAME_HEADER + page_size
    return page_size, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grow", type=int, default=20000, help="messages delivered before measuring")
    ap.add_argument("-n", "--messages", type=int, default=200, help="messages measured")
    args = ap.parse_args()

    with scratch_daemon("embedded", "wal-pages-") as daemon:
        daemon.add_user("bench")
        rcpt = f"bench@{e2e.DOMAIN}"
        db = daemon.data_dir / "palisade.sqlite3"
        wal_path = Path(f"{db}-wal")
        smtp_source(daemon.port, 10, 1024, args.grow, rcpt)
        settle()
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        r = smtp_source(daemon.port, 10, 1024, args.messages, rcpt)
        if r["msg_s"] is None:
            sys.exit(f"smtp-source failed: {r['stderr']}")
        settle()
        wal = wal_path.read_bytes()
        with tempfile.TemporaryDirectory(prefix="wal-pages-") as tmp:
            copy = Path(tmp) / "main.sqlite3"
            shutil.copyfile(db, copy)
            # The copy without its WAL: the pages as the last checkpoint left them.
            with sqlite3.connect(f"file:{copy}?immutable=1", uri=True) as conn:
                owner = {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}

    page_size, frames = wal_frames(wal)
    # A restart writes from the start again, under new salts: the file then goes on past the
    # frames that are valid.
    restarted = WAL_HEADER + len(frames) * (FRAME_HEADER + page_size) < len(wal)
    commits = sum(1 for _, ends in frames if ends)
    by_tree = collections.Counter(owner.get(page, "new") for page, _ in frames)
    n = args.messages
    print(f"{len(frames)} WAL frames of {page_size} B in {commits} commits for {n} deliveries "
          f"after {args.grow:,}: {len(frames) / n:.2f} frames ({len(frames) * page_size / n / 1000:.1f} KB) "
          "per delivery")
    if restarted:
        print("the WAL restarted during the measured deliveries: the shares are exact, the counts "
              "per delivery are not (try a smaller -n)")
    print(f"{'B-tree':40} {'frames':>7} {'per delivery':>13} {'share':>6}")
    for name, count in by_tree.most_common():
        print(f"{name:40} {count:7} {count / n:13.2f} {100 * count / len(frames):5.1f}%")


if __name__ == "__main__":
    main()
