"""Durability: every delivery acknowledged with 250 survives `kill -9`."""

from __future__ import annotations

import threading
import time

from palisade_e2e import Lmtp, make_message, sha256

WRITERS = 4
MAX_PER_WRITER = 3000  # bounded loops


def test_acknowledged_messages_survive_kill9(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"], "bob": ["bob@example.test"]})
    acked: dict[str, tuple[str, bytes]] = {}  # subject -> (user, bytes)
    attempted: dict[str, tuple[str, bytes]] = {}  # every message a writer started to send
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def writer(w: int):
        user = "alice" if w % 2 == 0 else "bob"
        try:
            conn = Lmtp(d.port, timeout=30)
            conn.lhlo()
            for i in range(MAX_PER_WRITER):
                if stop.is_set():
                    break
                subject = f"crash-{w}-{i}"
                msg = make_message(subject, f"writer {w} message {i}\r\n" + "z" * (i % 4000) + "\r\n",
                                   to=f"{user}@example.test")
                with lock:
                    attempted[subject] = (user, msg)
                if i % 2:
                    t = conn.bdat_transaction("sender@example.test", [f"{user}@example.test"], msg)
                else:
                    t = conn.data_transaction("sender@example.test", [f"{user}@example.test"], msg)
                if t.final and t.final[0].code == 250:
                    with lock:
                        acked[subject] = (user, msg)
                elif t.final and t.final[0].code // 100 != 4:
                    errors.append(f"{subject}: {t!r}")
        except (OSError, EOFError) as e:  # the kill cuts us off; that is the point
            if not stop.is_set():
                errors.append(f"writer {w} lost its connection before the kill: {e!r}")
        except Exception as e:  # noqa: BLE001
            errors.append(f"writer {w}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    d.kill9()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, "\n".join(errors[:10])
    assert len(acked) > 20, f"only {len(acked)} deliveries acknowledged in 3 s; the test proves little"

    d.new_port()
    d.start()
    listed = {u: {m["subject"]: m for m in d.messages(u)} for u in ("alice", "bob")}
    lost = [s for s, (u, _) in acked.items() if s not in listed[u]]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages lost after kill -9, e.g. {lost[:10]}"
    # Stored bytes are intact (sampled), and nothing half-written shows up.
    for s, (u, msg) in list(acked.items())[:: max(1, len(acked) // 25)]:
        assert d.raw(u, listed[u][s]["id"]) == msg, f"{s}: raw bytes differ after the crash"
    for u in ("alice", "bob"):
        for s, m in listed[u].items():
            assert s.startswith("crash-"), f"unexpected message {s!r}"
            assert m["raw_size"] > 0

    # The restarted daemon serves. Like Postfix, redeliver whatever never got a 250: a crash
    # between storing and acknowledging may have stored it already (redelivery must then be
    # harmless) or not at all.
    with d.session() as c:
        for s, (u, m) in attempted.items():
            if s not in acked:
                t = c.data_transaction("sender@example.test", [f"{u}@example.test"], m)
                assert t.final[0].code == 250, t
        msg = make_message("after restart")
        t = c.data_transaction("sender@example.test", ["alice@example.test"], msg)
        assert t.final[0].code == 250, t
    for u in ("alice", "bob"):
        subjects = [m["subject"] for m in d.messages(u)]
        assert len(subjects) == len(set(subjects)), f"redelivery after the crash duplicated mail for {u}"
    # Bounded: jobs interrupted by the crash are resumed, and the index catches up with every
    # stored message (wait_jobs_idle checks indexed == stored per user).
    st = d.wait_jobs_idle(120)
    assert st.get("dead") == 0, f"jobs died after the crash/restart: {st}"
    assert d.show("alice", [m for m in d.messages("alice") if m["subject"] == "after restart"][0]["id"])[
        "raw_sha256"] == sha256(msg)
