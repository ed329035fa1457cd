#!/usr/bin/env python3
"""Where the CPU of LMTP ingest goes: CPU seconds per process while `smtp-source -L` delivers.

Starts a fresh daemon (release binaries from PALISADE_BIN_DIR, as devtools/bench/bench.py
does) on the chosen backend, warms it up with 300 messages, then delivers N messages of S bytes
over K sessions and prints msg/s and the CPU seconds each process spent meanwhile, summed by
service (Cassandra, Elasticsearch, RabbitMQ, Redis, the daemon, the kernel's worker threads;
smtp-source has exited by then and is not counted), then the daemon's I/O per message by
thread. The distributed backend needs `devtools/services up` and its environment.

    devtools/bench/ingest_cpu.py --backend distributed -n 3000
    devtools/bench/ingest_cpu.py --backend embedded -n 20000 --sessions 10 --size 1024
    devtools/bench/ingest_cpu.py --backend embedded -n 40000 --until-quiet   # indexing counted too

A measurement, not a test: nothing is asserted.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import scratch_daemon, settle, smtp_source  # noqa: E402
import palisade_e2e as e2e  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
SERVICES = ("cassandra", "elasticsearch", "rabbit", "redis")


def cpu_by_service() -> dict[tuple[int, str], float]:
    """CPU seconds of every live process, keyed by pid and the service it belongs to."""
    out = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").lower()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # Kernel threads rename themselves by the work they do: group them by kind.
        name = next((s for s in SERVICES if s in cmd), comm.split("/")[0] if comm.startswith("kworker") else comm)
        out[(int(p.name), name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def io_by_thread(pid: int) -> dict[tuple[int, str], dict[str, int]]:
    """The I/O counters of each of the daemon's threads (`/proc/PID/task/TID/io`), keyed by
    thread id and name: bytes asked of the kernel (`rchar`, `wchar`), bytes that reached or came
    from the disk (`read_bytes`, `write_bytes`) and the read and write calls (`syscr`, `syscw`).
    Byte counts do not depend on the machine's speed, so two builds compare exactly."""
    out: dict[tuple[int, str], dict[str, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = dict(line.split(": ") for line in (task / "io").read_text().splitlines())
        except (OSError, ValueError):
            continue
        # Pool threads are numbered (tantivy's merge threads): one row per kind.
        out[(int(task.name), name.rstrip("0123456789-_"))] = {k: int(v) for k, v in fields.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("embedded", "distributed"), default="embedded")
    ap.add_argument("-n", "--messages", type=int, default=3000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--until-quiet", action="store_true",
                    help="count the CPU until the machine is quiet again, so the indexing and job work "
                         "that follows the last 250 is counted too")
    args = ap.parse_args()

    with scratch_daemon(args.backend, "ingest-cpu-") as daemon:
        daemon.add_user("bench")
        rcpt = f"bench@{e2e.DOMAIN}"
        smtp_source(daemon.port, args.sessions, args.size, 300, rcpt)
        # The warm-up's indexing, and an earlier run's flushes and merges, finish first.
        quiet = settle()
        pid = daemon.proc.pid
        before, io_before = cpu_by_service(), io_by_thread(pid)
        r = smtp_source(daemon.port, args.sessions, args.size, args.messages, rcpt)
        if args.until_quiet:
            settle()
        after, io_after = cpu_by_service(), io_by_thread(pid)
    if r["msg_s"] is None:
        sys.exit(f"smtp-source failed ({r['rc']}): {r['stderr']}")
    spent: dict[str, float] = {}
    for (pid, name), seconds in after.items():
        # A process that started during the run counts from zero.
        spent[name] = spent.get(name, 0.0) + seconds - before.get((pid, name), 0.0)
    print(f"{args.backend}: {r['msg_s']:,.0f} msg/s ({args.messages} x {args.size} B, "
          f"{args.sessions} sessions, {r['seconds']:.1f} s, after {quiet['waited_s']} s settling)")
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.05:
            print(f"  {name:24s} {seconds:7.1f} CPU-s  {seconds * 1e6 / args.messages:8.0f} µs per message")
    print("  the daemon's I/O per message, by thread (threads that ended during the run are not counted):")
    io_spent: dict[str, dict[str, int]] = {}
    for key, counters in io_after.items():
        # As for CPU: a thread that started during the run counts from zero.
        sums = io_spent.setdefault(key[1], {})
        for k, v in counters.items():
            sums[k] = sums.get(k, 0) + v - io_before.get(key, {}).get(k, 0)
    for name, delta in sorted(io_spent.items()):
        if delta.get("wchar", 0) + delta.get("rchar", 0) < args.messages:
            continue
        per = {k: v / args.messages for k, v in delta.items()}
        print(f"  {name:24s} wrote {per['wchar']:8.0f} B ({per['write_bytes']:8.0f} B to disk) in {per['syscw']:5.1f} calls;"
              f" read {per['rchar']:8.0f} B ({per['read_bytes']:8.0f} B from disk) in {per['syscr']:5.1f} calls")


if __name__ == "__main__":
    main()
