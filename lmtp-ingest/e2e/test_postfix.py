"""A real Postfix delivering to lmtp-ingest over LMTP, as in production.

Postfix runs as a private instance (its own config, queue and log directories under the test's
temp dir, no chroot, no system service). Mail is submitted to its smtpd with swaks; Postfix
queues it and delivers over LMTP. This proves what Postfix actually does with our replies:
250 ends its responsibility, 550 bounces, and 451 keeps the message queued for a retry.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from palisade_e2e import HOST, free_port

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"

MASTER_CF = """\
{smtp} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix instance whose smtpd hands example.test to an LMTP port."""

    def __init__(self, root: Path, lmtp_port: int, extra: str = ""):
        self.root = root
        self.etc = root / "etc"
        self.log = root / "maillog"
        self.smtp_port = free_port()
        for d in ("etc", "spool", "data"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.chown(root / "data", user="postfix")
        for name in ("dynamicmaps.cf", "postfix-files"):
            src = Path("/etc/postfix") / name
            if src.exists():
                shutil.copy(src, self.etc / name)
        for name in ("dynamicmaps.cf.d", "postfix-files.d"):
            src = Path("/etc/postfix") / name
            if src.is_dir():
                shutil.copytree(src, self.etc / name, dirs_exist_ok=True)
        (self.etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
myhostname = mx.palisade-test.localhost
mydestination =
inet_interfaces = {HOST}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {self.log}
maillog_file_prefixes = {root}
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:{HOST}:{lmtp_port}
smtpd_reject_unlisted_recipient = no
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
alias_maps =
alias_database =
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
""" + extra)
        (self.etc / "master.cf").write_text(MASTER_CF.format(smtp=f"{HOST}:{self.smtp_port}"))

    def postfix(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([POSTFIX, "-c", str(self.etc), *args], capture_output=True, text=True,
                              timeout=60)

    def start(self):
        r = self.postfix("start")
        assert r.returncode == 0, f"postfix start failed: {r.stdout}{r.stderr}{self.tail()}"

    def stop(self):
        self.postfix("stop")

    def flush(self):
        subprocess.run([POSTQUEUE, "-c", str(self.etc), "-f"], capture_output=True, timeout=60)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else "(no maillog)"

    def send(self, to: list[str], subject: str) -> None:
        r = subprocess.run(["swaks", "--server", HOST, "--port", str(self.smtp_port),
                            "--from", "someone@sender.test", "--to", ",".join(to),
                            "--header", f"Subject: {subject}", "--body", f"Body of {subject}\n"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"swaks to postfix failed:\n{r.stdout}\n{r.stderr}"

    def wait_log(self, needle: str, count: int = 1, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if text.count(needle) >= count:
                return text
            time.sleep(0.2)
        raise AssertionError(f"postfix log never showed {needle!r} x{count}:\n{self.tail()}")


@pytest.fixture
def postfix(daemon):
    # Postfix daemons drop to the postfix user: pytest's private (0700) tmp dirs are out of reach.
    root = Path(tempfile.mkdtemp(prefix="palisade-postfix-"))
    root.chmod(0o755)
    pf = Postfix(root, daemon.port)
    pf.start()
    yield pf
    pf.stop()
    shutil.rmtree(root, ignore_errors=True)


def wait_messages(daemon, user: str, subject: str, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in daemon.messages(user) if m.get("subject") == subject]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{subject!r} never reached {user}")


def test_postfix_delivers_per_recipient(daemon, postfix):
    postfix.send(["alice@example.test", "bob@example.test", "nobody@example.test"], "via postfix")
    # One LMTP transaction with three recipients: two stored, the unknown one bounced by Postfix.
    log = postfix.wait_log("status=", count=3)
    assert log.count("status=sent (250") == 2, log
    assert "to=<nobody@example.test>" in log and "status=bounced (host" in log, log
    for user in ("alice", "bob"):
        [message] = wait_messages(daemon, user, "via postfix")
        raw = daemon.raw(user, message["id"])
        assert b"Received: from" in raw and b"mx.palisade-test.localhost" in raw, raw[:400]


@pytest.mark.embedded_only
def test_store_fault_keeps_mail_queued_in_postfix_until_it_recovers(daemon, postfix):
    db = sqlite3.connect(daemon.data_dir / "palisade.sqlite3")
    db.execute("CREATE TRIGGER palisade_test_fault BEFORE INSERT ON messages "
               "BEGIN SELECT RAISE(ABORT, 'injected store fault'); END;")
    db.commit()
    postfix.send(["alice@example.test"], "survives an outage")
    log = postfix.wait_log("status=deferred")
    assert "451 4.3.0" in log, log
    assert not [m for m in daemon.messages("alice") if m.get("subject") == "survives an outage"]

    db.execute("DROP TRIGGER palisade_test_fault")
    db.commit()
    db.close()
    postfix.flush()
    postfix.wait_log("status=sent (250")
    assert len(wait_messages(daemon, "alice", "survives an outage")) == 1
