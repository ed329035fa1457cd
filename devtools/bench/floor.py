#!/usr/bin/env python3
"""What a durable answer costs here, part by part: the floor under the embedded store.

`devtools/bench/bench.py` measures one durable floor (`DurableSink` syncing each message's own
bytes) beside the ceiling and the daemons. This tool takes the floor apart, interleaved round by
round (order rotated), each system taking N messages of S bytes from `smtp-source -L` over K
sessions after an untimed pass of 3,000, once the machine is quiet:
- `smtp-sink -L`, the protocol's ceiling, which stores nothing;
- `durable_sink none`: Palisade's LMTP sessions answering at once, storing nothing;
- `durable_sink fdatasync`: answering after the message's bytes are written and synced, one
  sync per batch of deliveries;
- the same writing 57,600 bytes per delivery, what an embedded delivery of 1 KiB writes to
  SQLite's WAL, with one file and with two synced side by side (as two databases would be);
- the embedded daemon.

Then it times the shortest sync there is, 4 KiB written and `fdatasync`ed in a loop, by one
thread and by two side by side: each delivery waits for at least one, so 10 sessions can be no
faster than 10 / (a round trip without a sync + one sync), however many files a store syncs.

Needs the release daemon and `cargo build --release -p palisade-lmtp --example durable_sink`:

    PALISADE_BIN_DIR=target/release devtools/bench/floor.py -n 20000 --rounds 3

A measurement, not a test: nothing is asserted.
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import DurableSink, Sink, ensure_bench_user, log, scratch_daemon, settle, smtp_source  # noqa: E402
import palisade_e2e as e2e  # noqa: E402

WAL_BYTES_PER_DELIVERY = 57_600
WARMUP = 3000


def sync_seconds(path: Path, syncs: int = 1000, size: int = 4096) -> float:
    """Mean seconds of one `size`-byte write and `fdatasync` into a preallocated file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, bytes(size * syncs), 0)
        os.fsync(fd)
        page = b"x" * size
        start = time.monotonic()
        for i in range(syncs):
            os.pwrite(fd, page, i * size)
            os.fdatasync(fd)
        return (time.monotonic() - start) / syncs
    finally:
        os.close(fd)


def side_by_side(directory: Path, threads: int) -> float:
    """Mean seconds per sync while `threads` loops of `sync_seconds` run at once."""
    results: list[float] = []
    loops = [threading.Thread(target=lambda i=i: results.append(sync_seconds(directory / f"sync-{i}")))
             for i in range(threads)]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.join()
    return statistics.mean(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--messages", type=int, default=20000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ensure_bench_user()

    wal = f"{WAL_BYTES_PER_DELIVERY:,} B"
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="floor-", dir="/var/tmp") as tmp:
        systems: dict = {"smtp-sink ceiling": Sink()}
        for label, mode, size, rings in (("durable_sink, no sync", "none", 0, 1),
                                         ("durable_sink, the message synced", "fdatasync", 0, 1),
                                         (f"durable_sink, {wal} per delivery synced", "fdatasync",
                                          WAL_BYTES_PER_DELIVERY, 1),
                                         (f"durable_sink, {wal} per delivery synced, two files", "fdatasync",
                                          WAL_BYTES_PER_DELIVERY, 2)):
            systems[label] = DurableSink(Path(tmp) / f"ring-{len(systems)}", mode, size, rings)
        for system in systems.values():
            stack.callback(system.stop)
            system.start()
        daemon = stack.enter_context(scratch_daemon("embedded", "floor-"))
        daemon.add_user("bench")
        systems["Palisade embedded"] = daemon
        rcpt = f"bench@{e2e.DOMAIN}"
        for system in systems.values():
            smtp_source(system.port, args.sessions, args.size, WARMUP, rcpt)
        rates: dict[str, list[float]] = {label: [] for label in systems}
        labels = list(systems)
        for round_ in range(args.rounds):
            order = labels[round_ % len(labels):] + labels[:round_ % len(labels)]
            for label in order:
                settle()
                r = smtp_source(systems[label].port, args.sessions, args.size, args.messages, rcpt)
                if r["msg_s"] is None:
                    sys.exit(f"{label}: smtp-source failed ({r['rc']}): {r['stderr']}")
                rates[label].append(r["msg_s"])
                log(f"round {round_ + 1}: {label} {r['msg_s']:,.0f} msg/s")
        settle()
        syncs = {n: side_by_side(Path(tmp), n) for n in (1, 2)}

    ceiling = statistics.median(rates["smtp-sink ceiling"])
    print(f"\n{args.messages:,} × {args.size:,} B, {args.sessions} sessions, median of {args.rounds} rounds\n")
    print("| system | msg/s, by round | median | / ceiling |")
    print("| --- | --- | --- | --- |")
    for label, xs in rates.items():
        med = statistics.median(xs)
        print(f"| {label} | {', '.join(f'{x:,.0f}' for x in xs)} | {med:,.0f} | {med / ceiling:.2f}× |")
    trip = args.sessions / statistics.median(rates["durable_sink, no sync"])
    bound = args.sessions / (trip + syncs[1])
    print(f"\nOne 4 KiB write and fdatasync: {syncs[1] * 1e6:.0f} µs alone, {syncs[2] * 1e6:.0f} µs with a second loop"
          f" beside it. A round trip without a sync: {trip * 1e6:.0f} µs. At most {bound:,.0f} msg/s for any store"
          f" that answers after a sync, even with no delivery ever waiting for another's, {bound / ceiling:.2f}× the ceiling.")


if __name__ == "__main__":
    main()
