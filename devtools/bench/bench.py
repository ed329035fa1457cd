#!/usr/bin/env python3
"""Palisade's benchmark against Dovecot LMTP, a durable floor and the smtp-sink ceiling (issue 12).

Run it through `devtools/bench/run`, which installs what is missing, builds in release mode and
passes its arguments here. Everything runs in this one process tree: Palisade embedded and
distributed (release), Dovecot's LMTP (Maildir, `mail_fsync = optimized`), the durable floor
(`DurableSink`) and `smtp-sink -L` all run at once and are measured one at a time, interleaved
round by round, with the order of the systems rotated each round; each figure is the median
over the rounds. Each measurement
starts once the machine is quiet (`settle`), so no system pays for another's leftover work.

A benchmark, never a test: nothing here asserts a time. It writes its table into
docs/benchmarks.md (between the `bench:begin`/`bench:end` markers) and all raw figures as JSON
into the work directory it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import pwd
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lmtp-ingest" / "e2e"))
import palisade_e2e as e2e  # noqa: E402
from palisade_e2e import HOST, Daemon, dot_stuff, free_port, stop_process, to_crlf  # noqa: E402

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
OHA = shutil.which("oha") or str(Path.home() / ".cargo" / "bin" / "oha")
BENCH_USER = "palisade-bench"  # Dovecot's mail owner and smtp-sink's user when run as root
PASSWORD = "bench passphrase, long enough"

EMBEDDED, DISTRIBUTED, DOVECOT_NAME, CEILING = "palisade-embedded", "palisade-distributed", "dovecot", "ceiling"
DURABLE = "durable-floor"
LABELS = {EMBEDDED: "Palisade embedded", DISTRIBUTED: "Palisade distributed",
          DOVECOT_NAME: "Dovecot LMTP", DURABLE: "durable floor", CEILING: "smtp-sink ceiling"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def wait_port(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                s.settimeout(5)
                if s.recv(512).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered 220 on port {port} after {timeout}s")


# ---------------------------------------------------------------------------------------------
# Systems


class BenchDaemon(Daemon):
    """An e2e daemon on a chosen backend: the e2e helpers read the backend from a global."""

    def __init__(self, backend: str, *a, **kw):
        self.backend = backend
        # The constructor takes the backend's keyspace as well as writing the config.
        self._as_backend(lambda: super(BenchDaemon, self).__init__(*a, **kw))

    def _as_backend(self, fn):
        old = e2e.BACKEND
        e2e.BACKEND = self.backend
        try:
            return fn()
        finally:
            e2e.BACKEND = old

    def write_config(self):
        self._as_backend(super().write_config)

    def cleanup(self):
        self._as_backend(super().cleanup)


@contextlib.contextmanager
def scratch_daemon(backend: str, prefix: str):
    """A started daemon on `backend`, in a temporary directory removed with it afterwards: a
    run leaves hundreds of megabytes, whose writeback would slow the next one."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    daemon = BenchDaemon(backend, work / "daemon")
    try:
        daemon.start(timeout=300)
        yield daemon
    finally:
        daemon.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def ensure_bench_user() -> None:
    """Creates BENCH_USER when running as root: Dovecot writes mail, and smtp-sink runs, as it."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(BENCH_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", BENCH_USER],
                       check=True)


class Dovecot:
    """Debian's Dovecot LMTP with its own config, base_dir and state under a temporary dir."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Dovecot":
        for d in ("run", "state", "mail"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # The master needs root to switch users; mail is written as an unprivileged user.
            internal, login, mail_user = "dovecot", "dovenull", BENCH_USER
            pw = pwd.getpwnam(BENCH_USER)
            # mkdtemp's 0700 would keep that user out of its own mail directory.
            for d in (self.dir.parent, self.dir):
                os.chmod(d, 0o711)
            os.chown(self.dir / "mail", pw.pw_uid, pw.pw_gid)
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            internal = login = mail_user = me
        conf = self.dir / "dovecot.conf"
        conf.write_text(f"""# Written by devtools/bench/bench.py: an LMTP-only Dovecot for the benchmark.
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
mail_fsync = optimized
default_internal_user = {internal}
default_login_user = {login}
auth_username_format = %Ln
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={self.dir}/mail/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "ab"))
        wait_port(self.port, proc=self.proc)
        return self

    def version(self) -> str:
        r = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True)
        return r.stdout.strip()

    def stop(self):
        stop_process(self.proc)


class Listener:
    """An LMTP server run as a child process on a free port; subclasses give its command."""

    stderr = None  # inherited unless a subclass silences a chatty server

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr)
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self):
        stop_process(self.proc)


class Sink(Listener):
    """`smtp-sink -L`: answers LMTP and stores nothing, the protocol's ceiling."""

    stderr = subprocess.DEVNULL

    def command(self) -> list[str]:
        user = ["-u", BENCH_USER] if os.geteuid() == 0 else []
        return [SMTP_SINK, *user, "-L", f"{HOST}:{self.port}", "256"]


class DurableSink(Listener):
    """`crates/palisade-lmtp/examples/durable_sink.rs`: Palisade's LMTP sessions answering 250
    once the message is written and `fdatasync`ed, one sync per batch of deliveries, and storing
    nothing else: the floor under a store that group-commits its syncs."""

    def __init__(self, ring: Path, mode: str = "fdatasync", pad_to: int = 0, rings: int = 1):
        super().__init__()
        self.args = [str(ring), mode, str(pad_to), str(rings)]

    def command(self) -> list[str]:
        return [str(e2e.BIN_DIR / "examples" / "durable_sink"), f"{HOST}:{self.port}", *self.args]


# ---------------------------------------------------------------------------------------------
# Load generators


# Share of all cores busy (iowait included) under which the machine counts as quiet.
QUIET_BUSY = 0.15
QUIET_WINDOW = 0.5  # seconds per sample
QUIET_SAMPLES = 2  # consecutive quiet samples needed


# A system is warm once a warm-up pass is less than this much faster than the pass before.
WARMUP_STEADY = 0.10


def warmed_up(rates: list) -> bool:
    """Whether the warm-up passes so far (msg/s, None for a failed pass) have stopped rising."""
    if rates and rates[-1] is None:
        return True
    return len(rates) >= 2 and rates[-2] is not None and rates[-1] < rates[-2] * (1 + WARMUP_STEADY)


def cpu_jiffies() -> tuple[int, int]:
    """Busy and total jiffies of all cores since boot (/proc/stat); iowait counts as busy,
    because a flush still running competes with the next system's fsyncs."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3]
    return sum(fields) - idle, sum(fields)


def settle(timeout: float = 180.0) -> dict:
    """Waits until the machine is quiet before a measurement.

    Every system keeps running between its rounds, and a Palisade daemon goes on indexing what
    it accepted, as Cassandra and Elasticsearch go on flushing and merging. Measured at once,
    the next system would pay for that work: its figure would depend on what ran before it.
    Returns the seconds waited and the busy share last seen.
    """
    if timeout <= 0:
        return {"waited_s": 0.0, "busy": None}
    start = time.monotonic()
    quiet = 0
    busy_share = 1.0
    b0, t0 = cpu_jiffies()
    while time.monotonic() - start < timeout:
        time.sleep(QUIET_WINDOW)
        b1, t1 = cpu_jiffies()
        busy_share = (b1 - b0) / max(t1 - t0, 1)
        b0, t0 = b1, t1
        quiet = quiet + 1 if busy_share < QUIET_BUSY else 0
        if quiet >= QUIET_SAMPLES:
            break
    waited = time.monotonic() - start
    if quiet < QUIET_SAMPLES:
        log(f"machine still busy after {timeout:.0f}s ({busy_share:.0%} of all cores): measuring anyway")
    return {"waited_s": round(waited, 1), "busy": round(busy_share, 3)}


def smtp_source(port: int, sessions: int, size: int, count: int, rcpt: str) -> dict:
    """One `smtp-source -L` run; msg/s over the wall time of the whole run."""
    cmd = [SMTP_SOURCE, "-L", "-s", str(sessions), "-d", "-m", str(count), "-l", str(size),
           "-f", "sender@remote.test", "-t", rcpt, f"{HOST}:{port}"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, timeout=3600)
    dt = time.monotonic() - t0
    err = r.stderr.decode("utf-8", "replace").strip()
    return {"msg_s": count / dt if r.returncode == 0 else None, "seconds": dt, "rc": r.returncode,
            "stderr": err[-500:]}


class Session:
    """One persistent, pipelining LMTP session for replaying prepared messages."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=300)
        self.f = self.sock.makefile("rb")
        self.reply()
        self.sock.sendall(b"LHLO bench.example.test\r\n")
        self.reply()

    def reply(self) -> int:
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("server closed the LMTP session")
            if line[3:4] != b"-":
                return int(line[:3])

    def deliver(self, rcpt: str, stuffed: bytes) -> int:
        """MAIL, RCPT and DATA in one write, then the content: the final reply's code."""
        self.sock.sendall(f"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        codes = [self.reply(), self.reply(), self.reply()]
        if codes[2] != 354:
            if codes[2] // 100 == 2:  # unlikely, but keep the session in step
                self.reply()
            self.sock.sendall(b"RSET\r\n")
            self.reply()
            return codes[1] if codes[1] != 250 else codes[2]
        self.sock.sendall(stuffed + b".\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, EOFError, ValueError):
            pass
        self.sock.close()


def replay(port: int, rcpt: str, messages: list[bytes], sessions: int) -> dict:
    """Delivers every prepared message once over `sessions` concurrent sessions."""
    codes: Counter = Counter()
    lock = threading.Lock()
    nxt = iter(range(len(messages)))

    def worker():
        s = Session(port)
        try:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                c = s.deliver(rcpt, messages[i])
                with lock:
                    codes[c] += 1
        finally:
            s.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    return {"msg_s": codes[250] / dt, "seconds": dt, "codes": dict(codes)}


def load_corpus(limit: int | None) -> list[bytes]:
    """The corpus as LMTP wants it on the wire: CRLF line ends, dot-stuffed."""
    manifest = e2e.CORPUS_DIR / "MANIFEST.tsv"
    names = [ln.split("\t", 1)[0] for ln in manifest.read_text().splitlines()[1:] if ln.strip()]
    out = []
    for name in sorted(names)[:limit]:
        try:
            out.append(dot_stuff(to_crlf((e2e.CORPUS_DIR / name).read_bytes())))
        except OSError:
            continue
    return out


HEADER_END = re.compile(rb"\r\n\r\n")
THREAD_HEADERS = re.compile(rb"(?im)^(message-id|in-reply-to|references):")


def unique_copy(stuffed: bytes, tag: str) -> bytes:
    """The message with a fresh Message-ID, its own one kept under another name, so copies of
    the corpus are new mail rather than redeliveries or replies in one endless thread."""
    m = HEADER_END.search(stuffed)
    head, body = (stuffed[:m.start()], stuffed[m.start():]) if m else (b"", b"\r\n\r\n" + stuffed)
    head = THREAD_HEADERS.sub(lambda x: b"X-Bench-Original-" + x.group(1) + b":", head)
    return f"Message-ID: <{tag}@bench.example.test>\r\n".encode() + head + body


# ---------------------------------------------------------------------------------------------
# API


class Api:
    """A keep-alive HTTP client for /api/v1 with a bearer token."""

    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def get(self, path: str) -> tuple[int, bytes]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        for attempt in range(2):
            try:
                self.conn.request("GET", "/api/v1" + path, headers=h)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def login(d: Daemon, user: str) -> Api:
    r = d.client().post("/auth/login", {"address": f"{user}@{e2e.DOMAIN}", "password": PASSWORD})
    if r.status != 200:
        raise RuntimeError(f"login as {user} failed: {r.status} {r.body[:300]!r}")
    return Api(d.api_port, r.json()["token"])


def wait_indexed(api: Api, timeout: float) -> float:
    """Seconds until the API's index watermark says search has caught up."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status, body = api.get("/index/status")
        if status == 200 and json.loads(body).get("up_to_date"):
            return time.monotonic() - t0
        time.sleep(0.2)
    raise RuntimeError(f"search did not catch up within {timeout}s")


def visibility_lag(d: Daemon, user: str, rate: float, seconds: float, sessions: int = 10) -> dict:
    """Paced delivery at `rate` msg/s; some messages carry a probe token that a poller searches
    for until it is found. Lag = first search response listing it - the 250 for it."""
    api = login(d, user)
    rcpt = f"{user}@{e2e.DOMAIN}"
    run = os.urandom(4).hex()
    total = max(int(rate * seconds), sessions)
    probe_every = max(total // max(int(seconds * 10), 1), 1)  # about ten probes a second
    accepted: dict[str, float] = {}
    lags: list[float] = []
    lock = threading.Lock()
    sending = threading.Event()
    sending.set()
    codes: Counter = Counter()
    t_start = time.monotonic() + 0.5
    interval = sessions / rate

    def sender(k: int):
        s = Session(d.port)
        try:
            for j in range(total // sessions):
                i = j * sessions + k
                due = t_start + j * interval + k * interval / sessions
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                token = f"lag{run}n{i}"
                msg = (f"From: <load@remote.test>\r\nTo: <{rcpt}>\r\nSubject: lag probe {i}\r\n"
                       f"Message-ID: <{token}@bench.example.test>\r\nMIME-Version: 1.0\r\n"
                       f"Content-Type: text/plain\r\n\r\nVisibility {token} " + "x" * 900 + "\r\n")
                c = s.deliver(rcpt, dot_stuff(msg.encode()))
                now = time.monotonic()
                with lock:
                    codes[c] += 1
                    if c == 250 and i % probe_every == 0:
                        accepted[token] = now
        finally:
            s.close()

    def poller():
        while sending.is_set() or accepted:
            with lock:
                pending = list(accepted.items())
            for token, t250 in pending:
                status, body = api.get(f"/search?q={token}")
                if status == 200 and json.loads(body).get("items"):
                    lags.append(time.monotonic() - t250)
                    with lock:
                        accepted.pop(token, None)
                elif time.monotonic() - t250 > 120:
                    with lock:
                        accepted.pop(token, None)  # counted as lost below
            time.sleep(0.005)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(sessions)]
    p = threading.Thread(target=poller)
    p.start()
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    achieved = codes[250] / (time.monotonic() - t0)
    sending.clear()
    p.join()
    lags.sort()
    probes = len(range(0, (total // sessions) * sessions, probe_every))

    def pct(q):
        return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else None

    return {"target_msg_s": rate, "achieved_msg_s": achieved, "probes": probes, "found": len(lags),
            "p50_ms": pct(0.50) and pct(0.50) * 1000, "p99_ms": pct(0.99) and pct(0.99) * 1000,
            "codes": dict(codes)}


def fill(d: Daemon, user: str, corpus: list[bytes], n: int, sessions: int = 10) -> dict:
    """Delivers `n` messages, the corpus repeated with fresh Message-IDs, then waits for search."""
    rcpt = f"{user}@{e2e.DOMAIN}"
    msgs = [unique_copy(corpus[i % len(corpus)], f"fill-{user}-{i}") for i in range(n)]
    r = replay(d.port, rcpt, msgs, sessions)
    api = login(d, user)
    r["index_catch_up_s"] = wait_indexed(api, timeout=max(600.0, n / 20))
    return r


def oha(url: str, token: str, seconds: float, connections: int) -> dict:
    cmd = [OHA, "-z", f"{seconds}s", "-c", str(connections), "--no-tui", "--output-format", "json",
           "-H", f"Authorization: Bearer {token}", url]
    r = subprocess.run(cmd, capture_output=True, timeout=seconds * 10 + 120)
    if r.returncode != 0:
        raise RuntimeError(f"oha failed: {r.stderr.decode()[-1000:]}")
    out = json.loads(r.stdout)
    codes = out.get("statusCodeDistribution", {})
    pc = out.get("latencyPercentiles", {})
    return {"req_s": out["summary"]["requestsPerSec"], "p50_ms": (pc.get("p50") or 0) * 1000,
            "p99_ms": (pc.get("p99") or 0) * 1000, "codes": codes}


# ---------------------------------------------------------------------------------------------
# Machine


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass

    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "?"

    commit = cmd("git", "rev-parse", "--short", "HEAD")
    if cmd("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "os": cmd("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
            "commit": commit, "rustc": cmd("rustc", "--version"),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ---------------------------------------------------------------------------------------------
# Report


def fmt(x, digits=0) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def ratio(a, b) -> str:
    return f"{a / b:.2f}×" if a and b else "–"


def render(res: dict) -> str:
    m = res["machine"]
    a = res["args"]
    systems = res["systems"]
    out = [
        f"Run: `devtools/bench/run {shlex.join(res['argv'])}`".rstrip() + f" on {m['date']}, commit `{m['commit']}`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, kernel {m['kernel']}, {m['os']}; "
        f"{m['rustc']}; {res['dovecot_version'] and 'Dovecot ' + res['dovecot_version']}. "
        f"Load average {res['load_before']} before the run, {res['load_after']} after.",
        "",
    ]
    if a["note"]:
        out += [f"**Note:** {a['note']}", ""]
    settling = (f" each measurement starts once the machine is quiet (under {QUIET_BUSY:.0%} of all cores busy"
                f" for {QUIET_SAMPLES * QUIET_WINDOW:g} s, waiting at most {a['settle_timeout']:g} s)"
                if a["settle_timeout"] > 0 else " measurements start without waiting for a quiet machine")
    # Said only when it happened: `--skip ingest` skips the warm-up too.
    warmup = (f" every system first took passes of {a['warmup']:,} untimed 1 KiB messages at 10 sessions into a"
              f" mailbox of its own until its rate rose less than {WARMUP_STEADY:.0%} from one pass to the next"
              f" (at most {a['warmup_passes']}; msg/s per pass: "
              + "; ".join(f"{LABELS[s].replace('Palisade ', '')} "
                          + ", ".join(fmt(p["msg_s"]) for p in passes)
                          for s, passes in res["warmup"].items()) + ");"
              if res.get("warmup") else "")
    out += [f"Medians over {a['rounds']} rounds; systems interleaved round by round, order rotated each round;"
            f"{warmup}{settling}.", ""]
    # Older results have no durable floor.
    floors = [s for s in (DURABLE, CEILING) if s in systems]
    if res["ingest"]:
        out += ["### LMTP ingest (`smtp-source -L -d`), msg/s", "",
            "| case | " + " | ".join(LABELS[s] for s in systems) + " | "
            + " | ".join(f"{LABELS[s].replace('Palisade ', '')} / Dovecot" for s in systems if s.startswith("palisade"))
            + " | " + " | ".join(f"{LABELS[s].replace('Palisade ', '')} / {LABELS[ref].replace('smtp-sink ', '')}" for ref in floors
                                 for s in systems if s.startswith("palisade"))
            + " |",
            "| --- |" + " --- |" * (len(systems) + (1 + len(floors)) * sum(s.startswith("palisade") for s in systems))]
    for case in res["cases"] if res["ingest"] else []:
        med = {s: median([r["msg_s"] for r in res["ingest"][case["name"]][s]]) for s in systems}
        row = [f"{case['sessions']} session{'s' if case['sessions'] > 1 else ''}, {case['size'] // 1024} KiB "
               f"({case['count']} msgs)"]
        row += [fmt(med[s]) for s in systems]
        row += [ratio(med[s], med.get(DOVECOT_NAME)) for s in systems if s.startswith("palisade")]
        row += [ratio(med[s], med.get(ref)) for ref in floors for s in systems if s.startswith("palisade")]
        out.append("| " + " | ".join(row) + " |")
    if DURABLE in systems and res["ingest"]:
        out += ["", "The durable floor is `crates/palisade-lmtp/examples/durable_sink.rs`: Palisade's LMTP sessions"
                " answering 250 once the message's bytes are written to a preallocated file and `fdatasync`ed, one"
                " sync per batch of deliveries, storing nothing else: a store that does more besides, with the same"
                " group-committed sync, is not expected to be faster."]
    failures = [f"{s} {c}: rc {r['rc']} {r['stderr'][:120]!r}" for c, per in res["ingest"].items()
                for s, runs in per.items() for r in runs if r["rc"] != 0]
    if failures:
        out += ["", "Failed runs (left out of the medians): " + "; ".join(failures[:5])]

    if res.get("corpus"):
        out += ["", f"### Corpus replay ({res['corpus_messages']} messages, {a['corpus_sessions']} sessions, "
                "pipelined, one new mailbox per round), msg/s", "",
                "| system | msg/s | replies (last round) | / Dovecot |", "| --- | --- | --- | --- |"]
        cm = {s: median([r["msg_s"] for r in runs]) for s, runs in res["corpus"].items()}
        for s, runs in res["corpus"].items():
            out.append(f"| {LABELS[s]} | {fmt(cm[s])} | {runs[-1]['codes']} | "
                       f"{ratio(cm[s], cm.get(DOVECOT_NAME)) if s != DOVECOT_NAME else '1.00×'} |")

    if res.get("parse"):
        p = res["parse"]
        b = median([x["bare_msg_per_s"] for x in p])
        q = median([x["palisade_msg_per_s"] for x in p])
        bm = median([x["bare_mib_per_s"] for x in p])
        qm = median([x["palisade_mib_per_s"] for x in p])
        tr = median([x["time_ratio"] for x in p])
        out += ["", f"### Parsing the corpus ({p[0]['messages']} messages, {p[0]['bytes'] / 1048576:.1f} MiB, "
                "in memory, one thread)", "",
                "| parser | msg/s | MiB/s | time / bare mail-parser |", "| --- | --- | --- | --- |",
                f"| bare mail-parser (`MessageParser::default().parse`) | {fmt(b)} | {fmt(bm, 1)} | 1.00× |",
                f"| palisade-mime (`parse_message`: parse and build the model) | {fmt(q)} | {fmt(qm, 1)} | {tr:.2f}× |"]

    if res.get("lag"):
        out += ["", "### Search visibility (250 → found by `GET /api/v1/search`) at half of peak ingest", "",
                "| system | target msg/s | achieved msg/s | probes found | p50 ms | p99 ms |",
                "| --- | --- | --- | --- | --- | --- |"]
        for s, r in res["lag"].items():
            out.append(f"| {LABELS[s]} | {fmt(r['target_msg_s'])} | {fmt(r['achieved_msg_s'])} | "
                       f"{r['found']}/{r['probes']} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} |")

    if res.get("rss"):
        out += ["", "### Peak RSS of lmtp-ingest, 10 sessions × 25 MiB (`devtools/bench/large_mail_rss.py`)", "",
                "| system | idle MiB | peak MiB | peak over offered | replies |", "| --- | --- | --- | --- | --- |"]
        for s, r in res["rss"].items():
            if "error" in r:
                out.append(f"| {LABELS[s]} | – | – | – | failed: {r['error'][:100]} |")
            else:
                out.append(f"| {LABELS[s]} | {r['idle_rss_mib']} | {r['peak_rss_mib']} | "
                           f"{r['peak_over_offered']} | {r['replies']} |")

    if res.get("api"):
        out += ["", f"### API with oha ({a['api_connections']} connections, {a['api_seconds']} s per run), "
                f"mailbox of {a['mailbox']:,} messages (the corpus repeated, fresh Message-IDs)", "",
                "| system | endpoint | req/s | p50 ms | p99 ms | fill msg/s | index catch-up s |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for s, r in res["api"].items():
            for ep, runs in r["endpoints"].items():
                out.append(f"| {LABELS[s]} | `{ep}` | {fmt(median([x['req_s'] for x in runs]))} | "
                           f"{fmt(median([x['p50_ms'] for x in runs]), 1)} | "
                           f"{fmt(median([x['p99_ms'] for x in runs]), 1)} | {fmt(r['fill']['msg_s'])} | "
                           f"{fmt(r['fill']['index_catch_up_s'], 1)} |")
    return "\n".join(out) + "\n"


def write_doc(table: str) -> Path:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    block = f"{begin}\n{table}{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n## Latest run\n\n" + block + "\n"
    doc.write_text(text)
    return doc


# ---------------------------------------------------------------------------------------------
# Main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: few messages, small mailbox, 1 round")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, --quick 1)")
    ap.add_argument("--messages", type=int, default=None,
                    help="messages per 10-session 1 KiB run (others scale down; default 3000, --quick 300)")
    ap.add_argument("--mailbox", type=int, default=None, help="messages in the API mailbox (default 10000, --quick 1000)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed 1 KiB messages each system takes first, into a mailbox of their own "
                         "(default 3000, --quick 100, 0 for none)")
    ap.add_argument("--warmup-passes", type=int, default=None,
                    help="most warm-up passes per system; passes stop once the rate stops rising "
                         "(default 6, --quick 1)")
    ap.add_argument("--no-distributed", action="store_true", help="skip Palisade distributed")
    ap.add_argument("--corpus-limit", type=int, default=None, help="replay only the first N corpus messages")
    ap.add_argument("--corpus-sessions", type=int, default=10)
    ap.add_argument("--lag-seconds", type=float, default=None, help="paced delivery per lag run (default 10, --quick 3)")
    ap.add_argument("--api-seconds", type=float, default=None, help="oha duration per run (default 10, --quick 3)")
    ap.add_argument("--api-connections", type=int, default=20)
    ap.add_argument("--api-backends", default=None,
                    help="comma-separated: embedded,distributed (default: both, or embedded with --no-distributed)")
    ap.add_argument("--settle-timeout", type=float, default=180.0,
                    help="longest wait for a quiet machine before each measurement, seconds (0: never wait)")
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: ingest,corpus,parse,lag,rss,api")
    ap.add_argument("--parse-bin", default=os.environ.get("PALISADE_PARSE_BENCH"), help="the parse_bench example binary")
    ap.add_argument("--note", default="", help="a sentence for the report, e.g. what else ran on the machine")
    ap.add_argument("--no-write", action="store_true", help="print the table; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    q = args.quick
    args.rounds = args.rounds or (1 if q else 3)
    args.messages = args.messages or (300 if q else 3000)
    args.mailbox = args.mailbox if args.mailbox is not None else (1000 if q else 10000)
    args.warmup = args.warmup if args.warmup is not None else (100 if q else 3000)
    args.warmup_passes = args.warmup_passes or (1 if q else 6)
    args.lag_seconds = args.lag_seconds or (3 if q else 10)
    args.api_seconds = args.api_seconds or (3 if q else 10)
    if args.api_backends is None:
        args.api_backends = "embedded" if args.no_distributed else "embedded,distributed"
    skip = set(filter(None, args.skip.split(",")))
    n = args.messages
    cases = [{"name": "s10-1k", "sessions": 10, "size": 1024, "count": n},
             {"name": "s1-1k", "sessions": 1, "size": 1024, "count": max(n // 3, 10)},
             {"name": "s10-100k", "sessions": 10, "size": 100 * 1024, "count": max(n // 6, 10)},
             {"name": "s1-100k", "sessions": 1, "size": 100 * 1024, "count": max(n // 10, 10)}]

    res: dict = {"argv": sys.argv[1:], "args": vars(args), "machine": machine(), "cases": cases,
                 "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                 "warmup": {}, "ingest": {}, "corpus": {}, "parse": [], "lag": {}, "rss": {}, "api": {}}
    ensure_bench_user()
    work = Path(tempfile.mkdtemp(prefix="palisade-bench-"))
    log(f"work directory {work}")
    daemons: dict[str, BenchDaemon] = {}
    dovecot = Dovecot(work / "dovecot")
    sink = Sink()
    floor = DurableSink(work / "durable-floor")
    try:
        systems = [EMBEDDED] + ([] if args.no_distributed else [DISTRIBUTED]) + [DOVECOT_NAME, DURABLE, CEILING]
        res["systems"] = systems
        for s in systems:
            if s.startswith("palisade"):
                backend = "embedded" if s == EMBEDDED else "distributed"
                d = BenchDaemon(backend, work / s)
                d.start(timeout=300)
                d.add_user("bench")
                daemons[s] = d
        dovecot.start()
        res["dovecot_version"] = dovecot.version()
        sink.start()
        floor.start()
        ports = {s: d.port for s, d in daemons.items()} | {DOVECOT_NAME: dovecot.port, DURABLE: floor.port,
                                                           CEILING: sink.port}
        log(f"systems up: {ports}")

        if args.warmup and "ingest" not in skip:
            # A freshly started JVM (Cassandra, Elasticsearch) runs its first thousands of
            # requests interpreted, and every system's first deliveries fault in its code and
            # files: the first round measured that, not the system. Each takes the same untimed
            # stream into a mailbox of its own, so no measured mailbox grows, pass after pass
            # until its rate stops rising: Cassandra's JIT took four passes of 3,000 to settle.
            for s in systems:
                if s in daemons:
                    daemons[s].add_user("warmup")
                passes = []
                for _ in range(args.warmup_passes):
                    settle(args.settle_timeout)
                    r = smtp_source(ports[s], 10, 1024, args.warmup, f"warmup@{e2e.DOMAIN}")
                    passes.append(r)
                    log(f"warm-up {s} pass {len(passes)}: {fmt(r['msg_s'])} msg/s"
                        + (f" rc {r['rc']}" if r["rc"] else ""))
                    if warmed_up([p["msg_s"] for p in passes]):
                        break
                res["warmup"][s] = passes
        corpus = load_corpus(args.corpus_limit if args.corpus_limit else (500 if q else None))
        res["corpus_messages"] = len(corpus)
        rcpt = f"bench@{e2e.DOMAIN}"
        for rnd in range(args.rounds):
            order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
            if "ingest" not in skip:
                for case in cases:
                    for s in order:
                        quiet = settle(args.settle_timeout)
                        r = smtp_source(ports[s], case["sessions"], case["size"], case["count"], rcpt)
                        r["settle"] = quiet
                        res["ingest"].setdefault(case["name"], {}).setdefault(s, []).append(r)
                        log(f"round {rnd + 1} {case['name']} {s}: {fmt(r['msg_s'])} msg/s"
                            f" (after {quiet['waited_s']}s settling)"
                            + (f" rc {r['rc']} {r['stderr'][:200]}" if r["rc"] else ""))
            if "corpus" not in skip:
                for s in order:
                    if s in (CEILING, DURABLE):
                        continue
                    user = f"corpus{rnd}"
                    if s in daemons:
                        daemons[s].add_user(user)
                    quiet = settle(args.settle_timeout)
                    r = replay(ports[s], f"{user}@{e2e.DOMAIN}", corpus, args.corpus_sessions)
                    r["settle"] = quiet
                    res["corpus"].setdefault(s, []).append(r)
                    log(f"round {rnd + 1} corpus {s}: {fmt(r['msg_s'])} msg/s {r['codes']}")
            if "parse" not in skip and args.parse_bin:
                settle(args.settle_timeout)
                r = subprocess.run([args.parse_bin, str(e2e.CORPUS_DIR), "3" if q else "5"],
                                   capture_output=True, text=True, timeout=3600)
                if r.returncode == 0:
                    res["parse"].append(json.loads(r.stdout))
                    log(f"round {rnd + 1} parse: {r.stdout.strip()}")
                else:
                    log(f"parse_bench failed: {r.stderr[-500:]}")

        if "lag" not in skip:
            for s, d in daemons.items():
                peak = median([r["msg_s"] for r in res["ingest"].get("s10-1k", {}).get(s, [])]) or 200.0
                d.add_user("lag", password=PASSWORD)
                wait_indexed(login(d, "lag"), 600)
                r = visibility_lag(d, "lag", peak / 2, args.lag_seconds)
                res["lag"][s] = r
                log(f"lag {s}: {r}")

        if "api" not in skip:
            for backend in filter(None, args.api_backends.split(",")):
                s = EMBEDDED if backend == "embedded" else DISTRIBUTED
                if s not in daemons:
                    continue
                d = daemons[s]
                d.add_user("api", password=PASSWORD)
                log(f"filling {s} with {args.mailbox} messages")
                f = fill(d, "api", corpus if len(corpus) >= 500 else load_corpus(None), args.mailbox)
                log(f"filled {s}: {fmt(f['msg_s'])} msg/s, index caught up {f['index_catch_up_s']:.1f}s later, {f['codes']}")
                api = login(d, "api")
                endpoints = {"GET /discussions": "/api/v1/discussions",
                             "GET /search?q=release": "/api/v1/search?q=release"}
                runs: dict = {ep: [] for ep in endpoints}
                for rnd in range(args.rounds):
                    for ep, path in (list(endpoints.items())[::1 if rnd % 2 == 0 else -1]):
                        r = oha(f"http://{HOST}:{d.api_port}{path}", api.token, args.api_seconds, args.api_connections)
                        runs[ep].append(r)
                        log(f"round {rnd + 1} api {s} {ep}: {r}")
                res["api"][s] = {"fill": f, "endpoints": runs}
    finally:
        sink.stop()
        floor.stop()
        dovecot.stop()
        for d in daemons.values():
            try:
                d.terminate(120)
            except Exception:  # noqa: BLE001 - a stuck daemon must not hide the results
                pass
            d.cleanup()

    if "rss" not in skip:
        # After the others stopped: this one measures memory and must not share the machine.
        for s in res["systems"]:
            if not s.startswith("palisade"):
                continue
            env = dict(os.environ, PALISADE_E2E_BACKEND="embedded" if s == EMBEDDED else "distributed")
            r = subprocess.run([sys.executable, str(ROOT / "devtools" / "bench" / "large_mail_rss.py"),
                                "--sessions", "10", "--mib", "25"], capture_output=True, text=True, env=env,
                               timeout=3600)
            try:
                res["rss"][s] = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                res["rss"][s] = {"error": r.stderr[-300:] or f"exit {r.returncode}"}
            log(f"rss {s}: {res['rss'][s]}")

    res["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    (work / "results.json").write_text(json.dumps(res, indent=1, default=str))
    table = render(res)
    print(table)
    if not args.no_write:
        log(f"wrote {write_doc(table)}")
    log(f"raw results in {work / 'results.json'}")
    shutil.rmtree(work / "dovecot" / "mail", ignore_errors=True)
    for s in daemons:
        shutil.rmtree(work / s / "data", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
