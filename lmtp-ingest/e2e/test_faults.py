"""Fault injection through a real Postfix: no mail is lost, duplicated, altered, hidden or wrongly
bounced while every component is killed in the middle of the stream (issue 12).

A private Postfix accepts N messages over SMTP and delivers them over LMTP to lmtp-ingest, as in
production. The mix: single-recipient mail, mail to 2–5 recipients of which one is unknown, a few
messages of 5–20 MB, and real messages from the corpus (each given a unique token in its Subject
and its own Message-ID). While the stream runs, a fault thread kills (-9) and restarts, one at a
time and at random moments, lmtp-ingest and then, on the distributed backend, Cassandra,
Elasticsearch, RabbitMQ and Redis; on the embedded backend, after lmtp-ingest, the data directory
(a small tmpfs) fills up and is freed again.

Then, once Postfix's queue is empty and the search index has caught up, for every message Postfix
accepted and every known recipient, the message must be stored exactly once, byte for byte as
submitted after Postfix's own trace headers (sha256 of that suffix), listed by the API and found
by search on its token. Unknown recipients must have bounced with 5xx; nothing else may bounce.

PALISADE_FAULTS_N sets N (300 by default, as in CI); PALISADE_FAULTS_SEED replays a run (its
seed is printed). docs/reliability.md has the 10,000-message run and how to reproduce it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import random
import re
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api_helpers import PASSWORD, wait_until
from palisade_e2e import BACKEND, CORPUS_DIR, HOST, REPO, Daemon, to_crlf
from test_postfix import POSTQUEUE, Postfix

N = int(os.environ.get("PALISADE_FAULTS_N", "300"))
SEED = int(os.environ.get("PALISADE_FAULTS_SEED") or random.SystemRandom().randrange(1 << 32))
DOMAIN = "example.test"
USERS = [f"u{i}" for i in range(6)]
SERVICES = REPO / "devtools" / "services"
TOKEN = re.compile(rb"flt[0-9a-f]{16}")
# Bounce notices to the (fictional) sender domain are discarded rather than left queued.
SENDER = "robot@sender.test"
# Postfix settings that make it hand our bytes on unchanged, so the stored copy can be compared:
# no header rewriting for SMTP clients, no headers dropped (Bcc, Content-Length), no 8bit-to-7bit
# conversion, no line folding on output.
POSTFIX_EXTRA = """\
message_drop_headers =
message_size_limit = 41943040
local_header_rewrite_clients =
disable_mime_output_conversion = yes
lmtp_line_length_limit = 0
transport_maps = inline:{ sender.test=discard }
lmtp_destination_concurrency_limit = 10
"""


@dataclass
class Submitted:
    """One message handed to Postfix."""

    token: str
    kind: str
    known: list[str]
    unknown: list[str]
    data: bytes
    sha256: str = field(init=False)

    def __post_init__(self):
        self.sha256 = hashlib.sha256(self.data).hexdigest()


def token(rng: random.Random) -> str:
    return "flt" + "".join(rng.choice("0123456789abcdef") for _ in range(16))


def plain(tok: str, to: list[str], body: str) -> bytes:
    head = (f"From: Robot <{SENDER}>\r\nTo: {', '.join(f'<{a}>' for a in to)}\r\n"
            f"Subject: Fault run {tok}\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{tok}@sender.test>\r\nMIME-Version: 1.0\r\n")
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


def large(rng: random.Random, tok: str, to: list[str]) -> bytes:
    size = rng.randint(5, 20) * 1024 * 1024
    payload = base64.encodebytes(rng.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
    head = (f"From: Robot <{SENDER}>\r\nTo: <{to[0]}>\r\nSubject: Fault run {tok} (large)\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{tok}@sender.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            f"--b\r\nContent-Type: text/plain\r\n\r\nAttached, {tok}.\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"blob.bin\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    return head + payload + b"--b--\r\n"


def from_corpus(raw: bytes, tok: str) -> bytes:
    """A real message, with the token in its Subject and a Message-ID of its own (corpus copies
    of one list mail share theirs, and Palisade rightly stores a redelivery once). A bare CR
    becomes a space first: Postfix makes that change in transit (found by a 10,000 run), and
    the check compares what Palisade received with what was submitted."""
    data = re.sub(rb"\r(?!\n)", b" ", to_crlf(raw))
    end = data.find(b"\r\n\r\n")
    head, body = (data, b"") if end < 0 else (data[:end + 2], data[end + 2:])
    lines = re.split(rb"\r\n(?![ \t])", head.rstrip(b"\r\n"))
    kept = [ln for ln in lines if not re.match(rb"(?i)(subject|message-id)[ \t]*:", ln)]
    subject = next((ln.split(b":", 1)[1].strip() for ln in lines if re.match(rb"(?i)subject[ \t]*:", ln)), b"")
    kept += [b"Subject: " + tok.encode() + b" " + subject[:200], f"Message-ID: <{tok}@sender.test>".encode()]
    return b"\r\n".join(kept) + b"\r\n" + (body if body.startswith(b"\r\n") else b"\r\n" + body)


def corpus_files(rng: random.Random, k: int) -> list[bytes]:
    manifest = CORPUS_DIR / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.fail(f"corpus not found: {manifest} (set PALISADE_CORPUS)", pytrace=False)
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                if r["category"] == "ordinary" and int(r["bytes"]) < 2_000_000]
    return [(CORPUS_DIR / r["file"]).read_bytes() for r in rng.sample(rows, min(k, len(rows)))]


def build(rng: random.Random, n: int) -> list[Submitted]:
    """The stream, in submission order."""
    addresses = [f"{u}@{DOMAIN}" for u in USERS]
    n_large = max(2, n // 100)
    n_corpus = n * 3 // 10
    kinds = ["large"] * n_large + ["corpus"] * n_corpus
    kinds += ["multi" if rng.random() < 0.2 else "single" for _ in range(n - len(kinds))]
    rng.shuffle(kinds)
    corpus = iter(corpus_files(rng, n_corpus))
    out = []
    for kind in kinds:
        tok = token(rng)
        if kind == "multi":
            known = rng.sample(addresses, rng.randint(1, 4))
            unknown = [f"nobody-{tok}@{DOMAIN}"]
            rcpts = known + unknown
            rng.shuffle(rcpts)
            data = plain(tok, rcpts, f"To several, {tok}.\r\n")
        else:
            known, unknown = [rng.choice(addresses)], []
            if kind == "large":
                data = large(rng, tok, known)
            elif kind == "corpus":
                data = from_corpus(next(corpus), tok)
            else:
                data = plain(tok, known, f"Hello, {tok}.\r\n")
        out.append(Submitted(tok, kind, known, unknown, data))
    return out


def services(action: str, name: str) -> None:
    r = subprocess.run([str(SERVICES), action, name], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"devtools/services {action} {name} failed:\n{r.stdout}\n{r.stderr}"


class Faults(threading.Thread):
    """Kills one component at a time at random moments of the stream, and brings it back."""

    def __init__(self, rng: random.Random, daemon: Daemon, pf: Postfix, stream: list[Submitted],
                 faults: list[str], data_dir: Path | None):
        super().__init__(daemon=True)
        self.rng, self.d, self.pf, self.faults = rng, daemon, pf, faults
        self.data_dir = data_dir
        self.log: list[str] = []
        self.error: BaseException | None = None
        # The stream is cut into one segment per fault; segment i+1 is only submitted once
        # fault i is over, so each fault lands within its own segment, whatever a restart costs.
        self.done = [threading.Event() for _ in faults]
        known = [len(m.known) for m in stream]
        self.starts = [sum(known[:segment_start(i, len(faults), len(stream))]) for i in range(len(faults) + 1)]
        self.total = self.starts[-1]

    def gate(self, index: int, n: int) -> threading.Event | None:
        """The fault whose end message `index` of `n` waits for before it is submitted."""
        segment = index * len(self.faults) // n
        return self.done[segment - 1] if segment > 0 else None

    def delivered(self) -> int:
        text = self.pf.log.read_text(errors="replace") if self.pf.log.exists() else ""
        return text.count("status=sent (250")

    def run(self):
        try:
            for i, fault in enumerate(self.faults):
                # Each fault lands at a random point of its own segment's deliveries.
                length = self.starts[i + 1] - self.starts[i]
                at = self.starts[i] + int(length * self.rng.uniform(0.2, 0.8))
                deadline = time.monotonic() + 600
                while self.delivered() < at and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.inject(fault)
                self.done[i].set()
        except BaseException as e:  # reported by the test, which joins this thread
            self.error = e
        finally:
            # Never leave the submitter waiting on a fault that will not come.
            for event in self.done:
                event.set()

    def inject(self, fault: str):
        t0 = time.monotonic()
        before = self.delivered()
        if fault == "lmtp-ingest":
            self.d.kill9()
            time.sleep(self.rng.uniform(0.2, 2.0))
            self.d.start(timeout=120)
        elif fault == "disk-full":
            filler = self.data_dir / "filler"
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
                except OSError:
                    pass
            time.sleep(self.rng.uniform(3.0, 6.0))
            assert self.d.alive(), f"lmtp-ingest died on a full disk:\n{self.d.tail()}"
            filler.unlink()
        else:
            services("kill", fault)
            time.sleep(self.rng.uniform(0.5, 3.0))
            services("up", fault)
        # A fault after the last delivery would prove nothing.
        assert before < self.total, f"{fault} landed after the stream had ended ({before} deliveries)"
        self.log.append(f"{fault}: after {before} deliveries, back after {time.monotonic() - t0:.1f}s")


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk fault (needs root): {r.stderr.strip()}")


def segment_start(segment: int, segments: int, n: int) -> int:
    """Index of the first message of `segment` when `n` messages are cut into `segments`."""
    return -(-segment * n // segments)


def submit(pf: Postfix, stream: list[Submitted], seconds: float, faults: Faults) -> list[str]:
    """Hands the stream to Postfix's smtpd over at least `seconds`, each segment after the
    previous segment's fault, so that every fault lands mid-stream."""
    errors = []
    start = time.monotonic()
    with smtplib.SMTP(HOST, pf.smtp_port, timeout=120) as smtp:
        smtp.ehlo("submitter.test")
        for i, m in enumerate(stream):
            gate = faults.gate(i, len(stream))
            while gate is not None and not gate.wait(30):
                smtp.noop()  # smtpd drops a silent client after 300 s
            options = [] if m.data.isascii() else ["BODY=8BITMIME"]
            try:
                refused = smtp.sendmail(SENDER, m.known + m.unknown, m.data, mail_options=options)
                if refused:
                    errors.append(f"{m.token}: smtpd refused {refused}")
            except smtplib.SMTPException as e:
                errors.append(f"{m.token}: {e!r}")
            pause = start + seconds * (i + 1) / len(stream) - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    return errors


def queue_empty(pf: Postfix) -> bool:
    r = subprocess.run([POSTQUEUE, "-c", str(pf.etc), "-p"], capture_output=True, text=True, timeout=60)
    return "Mail queue is empty" in r.stdout


def statuses(pf: Postfix) -> dict[str, list[str]]:
    """Each recipient's final Postfix statuses (sent, bounced), with the reply text."""
    out: dict[str, list[str]] = {}
    for m in re.finditer(r"to=<([^>]+)>,.*? status=(sent|bounced) \((.*)\)", pf.log.read_text(errors="replace")):
        out.setdefault(m.group(1), []).append(f"{m.group(2)} {m.group(3)}")
    return out


def trail(d: Daemon, pf: Postfix, bad: dict[str, list[str]], most: int = 3) -> str:
    """What Postfix and lmtp-ingest logged about the first few messages that went wrong: the
    Postfix queue ids that carried each token, their log lines, and the daemon's lines for the
    LMTP transactions Postfix was told about."""
    maillog = pf.log.read_text(errors="replace") if pf.log.exists() else ""
    daemon = d.stderr_path.read_text(errors="replace") if d.stderr_path.exists() else ""
    out = []
    tokens = [t.group() for entry in sum(bad.values(), []) if (t := re.search(r"flt[0-9a-f]{16}", entry))]
    for tok in list(dict.fromkeys(tokens))[:most]:
        queue_ids = re.findall(rf"\b([0-9A-F]{{6,}}): message-id=<{tok}@sender\.test>", maillog)
        lines = [ln for ln in maillog.splitlines() if any(f" {q}: " in ln for q in queue_ids)]
        txns = re.findall(r"delivery as ([0-9a-f]+\.\d+)", "\n".join(lines))
        sessions = {t.split(".")[0] for t in txns}
        ours = [ln for ln in daemon.splitlines() if any(s in ln for s in sessions)]
        out.append(f"--- {tok}: queue ids {queue_ids}\n" + "\n".join(lines[-20:])
                   + f"\n--- lmtp-ingest lines for sessions {sorted(sessions)}:\n" + "\n".join(ours[-20:]))
    return "\n".join(out)


@pytest.mark.stops_services
def test_no_mail_lost_duplicated_or_wrongly_bounced_under_faults(tmp_path, record_property):
    def report(line: str) -> None:
        # Printed now (seen with -s) and at the end of the run's log (conftest's "summaries"),
        # where CI shows it although the test's own output is captured.
        print(line)
        record_property("summary", line)

    rng = random.Random(SEED)
    report(f"fault run: backend={BACKEND} N={N} seed={SEED} (PALISADE_FAULTS_SEED={SEED} replays it)")
    stream = build(rng, N)
    data_dir = None
    if BACKEND == "embedded":
        data_dir = tmp_path / "d" / "data"
        # Room for the stream stored three times over (raw, index, spool); full only when the
        # fault fills it. It lives in memory, so it is not made larger than that.
        stored = sum(len(m.data) * len(m.known) for m in stream)
        mount_tmpfs(data_dir, f"{max(512, 3 * stored // (1 << 20))}m")
    d = Daemon(tmp_path / "d", api={"login_attempts_per_account": 100000})
    root = Path(tempfile.mkdtemp(prefix="palisade-faults-"))
    root.chmod(0o755)
    pf = None
    try:
        d.start()
        for u in USERS:
            d.add_user(u, f"{u}@{DOMAIN}", password=PASSWORD)
        pf = Postfix(root, d.port, extra=POSTFIX_EXTRA)
        pf.start()
        t0 = time.monotonic()
        faults = ["lmtp-ingest"] + (["disk-full"] if BACKEND == "embedded" else
                                    ["cassandra", "elasticsearch", "rabbitmq", "redis"])
        injector = Faults(rng, d, pf, stream, faults, data_dir)
        injector.start()
        errors = submit(pf, stream, seconds=max(20.0, N / 10), faults=injector)
        assert not errors, f"Postfix's smtpd refused mail: {errors[:5]}"
        injector.join(timeout=1800)
        assert not injector.is_alive(), "the fault thread hung"
        assert injector.error is None, f"fault injection failed: {injector.error!r}"
        report("faults: " + "; ".join(injector.log))
        assert len(injector.log) == len(faults), injector.log

        def drained():
            subprocess.run([POSTQUEUE, "-c", str(pf.etc), "-f"], capture_output=True, timeout=60)
            return queue_empty(pf)
        wait_until("Postfix's queue to drain", drained, timeout=900, interval=3)
        t_drained = time.monotonic()
        assert d.alive(), f"lmtp-ingest died:\n{d.tail()}"

        deferred = re.findall(r"status=deferred \((.{0,120})", pf.log.read_text(errors="replace"))
        print(f"deferred deliveries (retried by Postfix): {len(deferred)}; for example: {sorted(set(deferred))[:6]}")
        report(f"deferred deliveries (retried by Postfix): {len(deferred)}")
        verdict = verify(d, pf, stream)
        report(f"timings: stream drained after {t_drained - t0:.0f}s, checked in {time.monotonic() - t_drained:.0f}s")
        report("fault run result: " + ", ".join(f"{k}={len(v)}" for k, v in verdict.items()))
        bad = {k: v[:5] for k, v in verdict.items() if v}
        assert not bad, f"seed {SEED}: {bad}\n{trail(d, pf, bad)}\n{pf.tail()}\n{d.tail(20)}"
    finally:
        if pf is not None:
            pf.stop()
        d.cleanup()
        shutil.rmtree(root, ignore_errors=True)
        if data_dir is not None:
            subprocess.run(["umount", "-l", str(data_dir)], capture_output=True)


def verify(d: Daemon, pf: Postfix, stream: list[Submitted]) -> dict[str, list[str]]:
    by_token = {m.token: m for m in stream}
    verdict: dict[str, list[str]] = {k: [] for k in
                                     ("lost", "duplicated", "altered", "invisible", "wrongly_bounced",
                                      "unknown_not_bounced")}
    final = statuses(pf)
    for m in stream:
        for rcpt in m.unknown:
            st = final.get(rcpt, [])
            if not any(s.startswith("bounced") and re.search(r"said: 55\d", s) for s in st):
                verdict["unknown_not_bounced"].append(f"{m.token} {rcpt}: {st}")
    for rcpt, st in final.items():
        if rcpt.endswith(f"@{DOMAIN}") and not rcpt.startswith("nobody-"):
            verdict["wrongly_bounced"] += [f"{rcpt}: {s}" for s in st if s.startswith("bounced")]

    for u in USERS:
        # Sessions held only in the crashed Redis are gone: sign in again. The first request
        # after the crash must be served too (the cache retries it on a new connection).
        c = d.login(f"{u}@{DOMAIN}", PASSWORD)
        wait_until(f"{u}'s search index to catch up",
                   lambda: c.get("/index/status").json().get("up_to_date"), timeout=600, interval=1)
        copies: dict[str, list[str]] = {}
        cursor = None
        while True:
            r = c.get("/messages?limit=100" + (f"&cursor={cursor}" if cursor else ""))
            assert r.status == 200, r
            page = r.json()
            for item in page["items"]:
                raw = c.get(f"/messages/{item['id']}/raw", timeout=300)
                assert raw.status == 200, raw
                found = TOKEN.search(raw.body[:65536])
                if found is None:
                    continue
                tok = found.group().decode()
                copies.setdefault(tok, []).append(item["id"])
                m = by_token.get(tok)
                if m is not None and not (raw.body.endswith(m.data)
                                          and hashlib.sha256(raw.body[-len(m.data):]).hexdigest() == m.sha256):
                    verdict["altered"].append(f"{u} {tok} ({m.kind}, {len(raw.body)} vs {len(m.data)} bytes)")
            cursor = page.get("next")
            if not cursor:
                break
        for m in stream:
            if f"{u}@{DOMAIN}" not in m.known:
                continue
            ids = copies.get(m.token, [])
            if not ids:
                verdict["lost"].append(f"{u} {m.token} ({m.kind})")
                continue
            if len(ids) > 1:
                verdict["duplicated"].append(f"{u} {m.token} x{len(ids)}")
            r = c.get(f"/search?q={m.token}")
            assert r.status == 200, r
            if not set(ids) & {item["id"] for item in r.json()["items"]}:
                verdict["invisible"].append(f"{u} {m.token} ({m.kind})")
    return verdict
