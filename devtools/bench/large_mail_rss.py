#!/usr/bin/env python3
"""Peak memory of lmtp-ingest under concurrent large messages.

Starts a daemon (embedded by default; PALISADE_E2E_BACKEND=distributed for the distributed
backends, with `devtools/services up`), sends N concurrent LMTP transactions of S MiB each,
and samples the daemon's resident memory every 20 ms. It prints one JSON line: the peak RSS,
the replies by code, and the RSS per in-flight MiB. A message deferred with 452 (memory budget
spent) is retried, as Postfix would, until every message is stored.

    devtools/bench/large_mail_rss.py --sessions 10 --mib 25
    devtools/bench/large_mail_rss.py --sessions 30 --mib 25 --budget-mib 128
    devtools/bench/large_mail_rss.py --sessions 10 --mib 25 --spill-kib 0   # no spilling

No timing is asserted anywhere: this measures, tests prove behaviour.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lmtp-ingest" / "e2e"))
from palisade_e2e import Daemon, Lmtp  # noqa: E402


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def message(i: int, mib: int) -> bytes:
    """A text/plain message of about `mib` MiB with base64-looking lines (the common case)."""
    head = (f"From: bench{i}@example.test\r\nTo: rss@example.test\r\n"
            f"Subject: large {i}\r\nMessage-ID: <large-{i}-{time.time_ns()}@bench>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n").encode()
    line = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" * 1)[:76] + b"\r\n"
    return head + line * (mib * 1024 * 1024 // len(line))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--mib", type=int, default=25)
    ap.add_argument("--budget-mib", type=int, default=None, help="lmtp.max_in_flight_bytes in MiB")
    ap.add_argument("--spill-kib", type=int, default=None,
                    help="lmtp.spill_threshold_bytes in KiB (0: keep every message in memory)")
    args = ap.parse_args()

    lmtp = {"max_message_bytes": max(args.mib + 1, 50) * 1024 * 1024}
    if args.budget_mib is not None:
        lmtp["max_in_flight_bytes"] = max(args.budget_mib, args.mib + 1) * 1024 * 1024
    if args.spill_kib is not None:
        lmtp["spill_threshold_bytes"] = args.spill_kib * 1024
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(Path(tmp), lmtp=lmtp)
        d.start()
        try:
            d.add_user("rss")
            idle = rss_kib(d.proc.pid)
            peak = idle
            stop = threading.Event()

            def sample():
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, rss_kib(d.proc.pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            codes: Counter = Counter()
            lock = threading.Lock()

            def send(i: int):
                body = message(i, args.mib)
                while True:
                    with Lmtp(d.port, timeout=600) as c:
                        c.lhlo()
                        t = c.data_transaction("bench@example.test", ["rss@example.test"], body,
                                               mail_params=f"SIZE={len(body)}")
                        c.quit()
                    code = (t.final[0].code if t.final else t.mail.code if t.mail.code != 250
                            else t.data.code)
                    with lock:
                        codes[code] += 1
                    if code // 100 != 4:
                        return
                    time.sleep(0.5)  # Postfix would wait minutes; the budget frees in seconds

            started = time.monotonic()
            threads = [threading.Thread(target=send, args=(i,)) for i in range(args.sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            stop.set()
            sampler.join()
            stored = len(d.messages("rss"))
        finally:
            d.terminate()
            d.cleanup()
    in_flight_mib = args.sessions * args.mib
    print(json.dumps({
        "backend": os.environ.get("PALISADE_E2E_BACKEND", "embedded"),
        "sessions": args.sessions, "message_mib": args.mib, "budget_mib": args.budget_mib,
        "spill_kib": args.spill_kib,
        "idle_rss_mib": round(idle / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
        "replies": dict(codes), "stored": stored, "seconds": round(elapsed, 1),
        "peak_over_offered": round((peak - idle) / 1024 / in_flight_mib, 2),
    }))
    return 0 if stored == args.sessions else 1


if __name__ == "__main__":
    sys.exit(main())
