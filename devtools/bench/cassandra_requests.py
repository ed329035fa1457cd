#!/usr/bin/env python3
"""What a distributed delivery asks of Cassandra: requests per delivery, by table, as Cassandra counts them.

Starts a fresh distributed daemon (binaries from PALISADE_BIN_DIR, as devtools/bench/bench.py
does), delivers N messages of 1 KiB over 10 sessions with `smtp-source -L`, waits until the
machine is quiet (the worker has indexed them too) and prints, per table, how many reads and
writes each delivery cost: the difference of Cassandra's own counters in
`system_views.coordinator_read_latency` and friends before and after. It then prints the tasks
each stage ran per delivery (`system_views.thread_pools`): Native-Transport-Requests is the
client requests, where a batch counts once per table it writes in the views. The counts do not
depend on the machine's speed, so two builds compare exactly. Needs `devtools/services up` and
its environment.

    PALISADE_BIN_DIR=target/release devtools/bench/cassandra_requests.py -n 500

A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import scratch_daemon, settle, smtp_source  # noqa: E402
import palisade_e2e as e2e  # noqa: E402

# Coordinator views count what clients asked; local views what the replica did, Paxos and
# batch log included (system.paxos, system.batches).
VIEWS = ("coordinator_read_latency", "coordinator_write_latency", "local_read_latency", "local_write_latency")
# Tasks Cassandra ran per stage: Native-Transport-Requests counts client requests, where the
# views above count a batch once per table it writes.
POOLS = ("Native-Transport-Requests", "MutationStage", "ReadStage", "CounterMutationStage")


def counts(view: str) -> dict[str, int]:
    """Requests so far per table of Palisade's keyspaces (summed) and of `system`."""
    out: dict[str, int] = {}
    for keyspace, table, count in e2e.cql_cells(
            f"SELECT keyspace_name, table_name, count FROM system_views.{view}"):
        keyspace, table, count = keyspace.decode(), table.decode(), int.from_bytes(count, "big")
        if keyspace == "system":
            table = f"system.{table}"
        elif not keyspace.startswith("palisade"):
            continue
        out[table] = out.get(table, 0) + count
    return out


def pools() -> dict[str, int]:
    """Completed tasks so far per thread pool of POOLS."""
    return {name.decode(): int.from_bytes(done, "big")
            for name, done in e2e.cql_cells("SELECT name, completed_tasks FROM system_views.thread_pools")
            if name.decode() in POOLS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--messages", type=int, default=500)
    args = ap.parse_args()

    with scratch_daemon("distributed", "cassandra-requests-") as daemon:
        daemon.add_user("bench")
        settle()
        before = {v: counts(v) for v in VIEWS}
        pools_before = pools()
        r = smtp_source(daemon.port, 10, 1024, args.messages, f"bench@{e2e.DOMAIN}")
        settle()
        after = {v: counts(v) for v in VIEWS}
        pools_after = pools()
    if r["msg_s"] is None:
        sys.exit(f"smtp-source failed ({r['rc']}): {r['stderr']}")
    print(f"{args.messages} deliveries of 1 KiB over 10 sessions; requests per delivery:")
    for view in VIEWS:
        per = {t: (c - before[view].get(t, 0)) / args.messages for t, c in after[view].items()}
        per = {t: n for t, n in per.items() if n >= 0.005}
        print(f"  {view} (total {sum(per.values()):.2f})")
        for table, n in sorted(per.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {table:32s} {n:6.2f}")
    print("  tasks per delivery by stage (system_views.thread_pools)")
    for name in POOLS:
        n = (pools_after.get(name, 0) - pools_before.get(name, 0)) / args.messages
        print(f"    {name:32s} {n:6.2f}")


if __name__ == "__main__":
    main()
