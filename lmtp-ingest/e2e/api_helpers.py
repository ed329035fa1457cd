"""Shared helpers for the API tests: delivering fixture mail and waiting for the index."""

from __future__ import annotations

import time

from palisade_e2e import to_crlf

PASSWORD = "correct horse battery"


def deliver(daemon, rcpt: str, content: str | bytes, mail_from: str = "sender@remote.test") -> None:
    """Delivers one message over LMTP and requires a 250."""
    data = to_crlf(content.encode() if isinstance(content, str) else content)
    with daemon.session() as s:
        t = s.data_transaction(mail_from, [rcpt], data)
        assert [r.code for r in t.final] == [250], t


def message(subject: str, *, frm: str = "Bob <bob@remote.test>", to: str = "alice@example.test",
            msg_id: str | None = None, refs: str | None = None, body: str = "hello",
            html: str | None = None, date: str = "Mon, 02 Mar 2026 10:00:00 +0000",
            attachment: tuple[str, bytes] | None = None) -> str:
    """A small RFC 5322 message, plain, HTML or with one attachment."""
    head = [f"From: {frm}", f"To: {to}", f"Subject: {subject}", f"Date: {date}",
            f"Message-ID: <{msg_id or subject.replace(' ', '.') + '@remote.test'}>", "MIME-Version: 1.0"]
    if refs:
        head += [f"In-Reply-To: <{refs}>", f"References: <{refs}>"]
    if attachment:
        import base64
        name, data = attachment
        b64 = base64.encodebytes(data).decode()
        head.append('Content-Type: multipart/mixed; boundary="b1"')
        parts = ("--b1\nContent-Type: text/plain; charset=utf-8\n\n" + body + "\n"
                 + f'--b1\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="{name}"\n'
                 + "Content-Transfer-Encoding: base64\n\n" + b64 + "--b1--\n")
        return "\n".join(head) + "\n\n" + parts
    if html is not None:
        head.append("Content-Type: text/html; charset=utf-8")
        return "\n".join(head) + "\n\n" + html + "\n"
    head.append("Content-Type: text/plain; charset=utf-8")
    return "\n".join(head) + "\n\n" + body + "\n"


def wait_until(what: str, check, timeout: float = 120.0, interval: float = 0.2):
    """Polls `check` until it returns something truthy; fails with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value {last!r}")


def wait_indexed(client) -> dict:
    """Waits until search has caught up with stored mail, using the API's own watermark."""
    def caught_up():
        r = client.get("/index/status")
        assert r.status == 200, r
        s = r.json()
        return s if s["up_to_date"] else None
    return wait_until("the search index to catch up", caught_up)


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


def walk(client, path: str, limit: int = 2) -> list[dict]:
    """Follows `next` cursors through a list endpoint."""
    items, cursor = [], None
    sep = "&" if "?" in path else "?"
    for _ in range(1000):
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url)
        assert r.status == 200, r
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page.get("next")
        if not cursor:
            return items
    raise AssertionError("pagination did not end")
