"""The whole shared corpus through LMTP: BDAT byte-exact, DATA canonical, verified via export.

Also spot-checks decoding (attachment names, non-UTF-8 subjects) and threading via `message show`.
"""

from __future__ import annotations

import csv
import queue
import threading
import time
from pathlib import Path

import pytest

from palisade_e2e import CORPUS_DIR, Lmtp, make_message, sha256, to_crlf

THREADS = 4
MAX_ATTEMPTS = 5  # tries per message before a deferral counts as a failure
RETRY_PAUSE = 1.0  # seconds; Postfix waits minutes, a loaded backend needs far less
SENDER = "corpus@example.test"

# (file, what to check in `message show`)
SPOT_ATTACHMENTS = {
    "tricky/nodemailer-mailparser__nodemailer.eml": ("nyan cat \u2714.gif", "image/gif"),  # RFC 2231, utf-8
    "tricky/stalwart__legacy_045.eml": ("HasenundFr\u00f6sche.txt", "text/plain"),  # RFC 2231, iso-8859-1
}
SPOT_SUBJECTS = {
    "tricky/stalwart__legacy_002.eml": "Die Hasen und die Fr\u00f6sche",  # =?iso-8859-1?Q?...?=
    "tricky/mimekit__messages_japanese.eml": "\u65e5\u672c\u8a9e\u30e1\u30fc\u30eb\u30c6\u30b9\u30c8 (testing Japanese emails)",  # ISO-2022-JP, two words
}


def load_manifest() -> list[dict]:
    manifest = CORPUS_DIR / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.fail(f"corpus not found: {manifest} does not exist (set PALISADE_CORPUS to the corpus dir)",
                    pytrace=False)
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) > 100, f"MANIFEST.tsv looks truncated: {len(rows)} rows"
    for col in ("file", "bytes", "sha256"):
        assert col in rows[0], f"MANIFEST.tsv lacks column {col!r}"
    return rows


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes, str]]:
    out = []
    for row in load_manifest():
        data = (CORPUS_DIR / row["file"]).read_bytes()
        assert len(data) == int(row["bytes"]) and sha256(data) == row["sha256"], \
            f"corpus file differs from MANIFEST: {row['file']}"
        out.append((row["file"], data, row["sha256"]))
    return out


def deliver_all(port: int, rcpt: str, items: list[tuple[str, bytes]], mode: str) -> list[str]:
    """Deliver every (name, stored_bytes) over THREADS reused connections; returns failure strings.

    A transaction deferred with 4xx is tried again later, as Postfix would: a loaded backend may time
    out a write, and the daemon's right answer then is 451. Only the final outcome counts, and a message
    still deferred after MAX_ATTEMPTS is a failure; the export check then proves a retried message was
    stored once.
    """
    work: queue.Queue = queue.Queue()
    for name, content in items:
        work.put((name, content, 1))
    failures: list[str] = []
    deferrals: list[str] = []
    lock = threading.Lock()

    def worker():
        conn = None
        try:
            while True:
                try:
                    name, content, attempt = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    if conn is None:
                        conn = Lmtp(port, timeout=120)
                        conn.lhlo()
                    if mode == "bdat":
                        t = conn.bdat_transaction(SENDER, [rcpt], content, chunk_size=65536)
                    else:
                        t = conn.data_transaction(SENDER, [rcpt], content, pipeline=True)
                    codes = [t.mail.code] + [r.code for r in t.rcpts] + [r.code for r in t.chunks] + \
                            [r.code for r in t.final]
                    bad = [c for c in codes if c not in (250, 354)]
                    # The first refusal decides, as for Postfix: a 5xx to the data of a
                    # transaction whose recipient was deferred only says there was none left.
                    if bad and 400 <= bad[0] < 500 and attempt < MAX_ATTEMPTS:
                        with lock:
                            deferrals.append(f"{name} (attempt {attempt}): {t!r}")
                        time.sleep(RETRY_PAUSE)
                        work.put((name, content, attempt + 1))
                    elif bad or not t.final:
                        with lock:
                            failures.append(f"{name} (attempt {attempt}): {t!r}")
                except Exception as e:  # noqa: BLE001 - recorded and reported, connection replaced
                    with lock:
                        failures.append(f"{name}: {type(e).__name__}: {e}")
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.quit()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(1800)
    assert not any(t.is_alive() for t in threads), "delivery threads hung"
    if deferrals:
        print(f"{len(deferrals)} deferred transactions were tried again, e.g.:\n" + "\n".join(deferrals[:5]))
    return failures


def check_export(d, user: str, dest: Path, expected: dict[str, str]):
    """expected: sha256 -> corpus file name. Every message must be exported with exactly those bytes."""
    emls, meta = d.export(user, dest)
    got = {}
    for msg_id, data in emls.items():
        got.setdefault(sha256(data), []).append(msg_id)
    missing = sorted(expected[h] for h in expected.keys() - got.keys())
    unexpected = sorted(got.keys() - expected.keys())
    dups = {h: ids for h, ids in got.items() if len(ids) > 1}
    assert not missing, f"{user}: {len(missing)} messages lost or altered, e.g. {missing[:10]}"
    assert not unexpected, f"{user}: {len(unexpected)} exported messages match no sent message"
    assert not dups, f"{user}: duplicate stored messages: {list(dups.items())[:5]}"
    assert len(emls) == len(expected)
    assert isinstance(meta, list) and len(meta) == len(expected), \
        f"{user}: messages.json has {len(meta) if isinstance(meta, list) else meta!r} entries"
    for m in meta:
        assert m["id"] in emls, f"messages.json lists {m['id']} without an .eml"
        assert m["raw_sha256"] == sha256(emls[m["id"]]), f"{m['id']}: raw_sha256 disagrees with the .eml"
        assert m["raw_size"] == len(emls[m["id"]])
    listed = d.messages(user)
    assert len(listed) == len(expected), f"{user}: messages list shows {len(listed)}, expected {len(expected)}"
    return {m["raw_sha256"]: m for m in meta}


def test_corpus_bdat_exact_and_data_canonical(make_daemon, corpus, tmp_path):
    d = make_daemon(users={"exact": ["exact@example.test"], "canon": ["canon@example.test"]})

    # 1. BDAT, byte-exact: stored sha256 must equal the MANIFEST sha256.
    failures = deliver_all(d.port, "exact@example.test", [(f, data) for f, data, _ in corpus], "bdat")
    assert not failures, f"{len(failures)} BDAT deliveries failed, e.g.:\n" + "\n".join(failures[:10])

    # 2. DATA, after canonicalizing line endings to CRLF with a final CRLF.
    canon = [(f, to_crlf(data)) for f, data, _ in corpus]
    failures = deliver_all(d.port, "canon@example.test", canon, "data")
    assert not failures, f"{len(failures)} DATA deliveries failed, e.g.:\n" + "\n".join(failures[:10])
    assert d.alive()

    exact_expected = {h: f for f, _, h in corpus}
    assert len(exact_expected) == len(corpus)
    by_hash = check_export(d, "exact", tmp_path / "export-exact", exact_expected)
    canon_expected: dict[str, str] = {}
    for f, data in canon:
        canon_expected.setdefault(sha256(data), f)  # identical canonical bytes are one message (idempotent)
    check_export(d, "canon", tmp_path / "export-canon", canon_expected)

    # 3. Spot checks through `message show`.
    sha_of = {f: h for f, _, h in corpus}
    problems = []
    for f, (name, ctype) in SPOT_ATTACHMENTS.items():
        full = d.show("exact", by_hash[sha_of[f]]["id"])
        atts = full["content"]["attachments"]
        if not any(a.get("file_name") == name and a.get("content_type", "").lower() == ctype for a in atts):
            problems.append(f"{f}: expected attachment {name!r} ({ctype}), got "
                            f"{[(a.get('file_name'), a.get('content_type')) for a in atts]}")
    for f, subject in SPOT_SUBJECTS.items():
        full = d.show("exact", by_hash[sha_of[f]]["id"])
        if full["content"]["subject"] != subject:
            problems.append(f"{f}: expected subject {subject!r}, got {full['content']['subject']!r}")
    assert not problems, "\n".join(problems)

    # 4. Every message gets indexed; no index job dead-letters on real-world mail.
    st = d.wait_jobs_idle(240)
    assert st["dead"] == 0, f"index jobs dead-lettered on corpus mail: {st}"
    hits = d.admin("search", "--user", "exact", "--subject", "Hasen")
    assert by_hash[sha_of["tricky/stalwart__legacy_002.eml"]]["id"] in {h["id"] for h in hits}, hits


def test_threading_by_references_and_subject_fallback(make_daemon):
    d = make_daemon(users={"thread": ["thread@example.test"]})
    a = make_message("Quarterly plan", "Here is the plan.\r\n", message_id="plan-1@example.test",
                     date="Mon, 02 Mar 2026 09:00:00 +0000")
    b = make_message("Re: Quarterly plan", "Looks good.\r\n", message_id="plan-2@example.test",
                     extra_headers="In-Reply-To: <plan-1@example.test>\r\nReferences: <plan-1@example.test>\r\n",
                     date="Mon, 02 Mar 2026 10:00:00 +0000")
    c = make_message("Re: Quarterly plan", "Agreed.\r\n", message_id="plan-3@example.test",
                     extra_headers="In-Reply-To: <plan-2@example.test>\r\n"
                                   "References: <plan-1@example.test> <plan-2@example.test>\r\n",
                     date="Mon, 02 Mar 2026 11:00:00 +0000")
    fallback = make_message("Re: Quarterly plan", "Replying without references.\r\n",
                            message_id="plan-4@example.test", date="Mon, 02 Mar 2026 12:00:00 +0000")
    other = make_message("Lunch on Friday?", "Unrelated.\r\n", message_id="lunch-1@example.test",
                         date="Mon, 02 Mar 2026 12:30:00 +0000")
    with d.session() as conn:
        for msg in (a, b, c, fallback, other):
            t = conn.data_transaction("peer@example.test", ["thread@example.test"], msg)
            assert t.final and t.final[0].code == 250, t
    by_mid = {}
    for m in d.messages("thread"):
        full = d.show("thread", m["id"])
        assert full["discussion_id"] == m["discussion_id"]
        by_mid[full["content"]["message_id_header"]] = full
    assert set(by_mid) == {"plan-1@example.test", "plan-2@example.test", "plan-3@example.test",
                           "plan-4@example.test", "lunch-1@example.test"}, set(by_mid)
    assert by_mid["plan-2@example.test"]["content"]["in_reply_to"] == ["plan-1@example.test"]
    assert by_mid["plan-3@example.test"]["content"]["references"] == ["plan-1@example.test", "plan-2@example.test"]
    root = by_mid["plan-1@example.test"]["discussion_id"]
    assert by_mid["plan-2@example.test"]["discussion_id"] == root, "reply (In-Reply-To) not threaded"
    assert by_mid["plan-3@example.test"]["discussion_id"] == root, "reply (References) not threaded"
    assert by_mid["plan-4@example.test"]["discussion_id"] == root, "subject-only 'Re:' fallback not threaded"
    assert by_mid["lunch-1@example.test"]["discussion_id"] != root, "unrelated message joined the thread"
