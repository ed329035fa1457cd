#!/usr/bin/env python3
"""Parse-fidelity suite: Palisade's parse of a mail corpus against CPython's `email` package.

Palisade's side comes from `palisade-admin parse DIR` (one JSON line per file). The reference is
`email.message_from_bytes(raw, policy=email.policy.default)`. Both are normalised (whitespace,
address case, trailing newlines) and compared field by field: subject, from (name and address),
to and cc (addresses), date (the instant), attachments (count and names), text and HTML bodies.

Every disagreement is put into a named category by code that looks at the two values and, when
needed, at the raw header (see `classify_*`). `expectations.json` records, per category, which
side is right (`palisade`, `reference`, `equivalent`, or `pending` while a fix is under way), why,
and which files are in it now. The run fails on a disagreement not recorded for that file and
category; `--strict` also fails on recorded ones that no longer occur; `--update` rewrites the
file lists, keeping verdicts and reasons (new categories start as `pending`).

Reference attachments are the tree-wide form of `iter_attachments`: every leaf part (a nested
message counts as one part) other than the parts `get_body` picks as the text and HTML bodies.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import multiprocessing
import os
import quopri
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
DEFAULT_EXPECTATIONS = HERE / "expectations.json"
DEFAULT_CORPUS = Path(os.environ.get("PALISADE_CORPUS") or (REPO / ".." / "shared" / "corpus"))
DEFAULT_ADMIN = Path(os.environ.get("PALISADE_BIN_DIR") or (REPO / "target" / "debug")) / "palisade-admin"

FIELDS = ("subject", "from", "to", "cc", "date", "attachments", "text", "html")
VERDICTS = ("palisade", "reference", "equivalent", "pending")
NEW_REASON = "not yet reviewed"
REPLACEMENT = "\ufffd"
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
# Two encoded-words separated only by folding whitespace (RFC 2047 section 6.2: that space
# is not shown), both in one charset.
ADJACENT_WORDS = re.compile(r"=\?([^?\s]+)\?[bBqQ]\?[^?\s]*\?=\s+=\?([^?\s]+)\?[bBqQ]\?")


# ---------------------------------------------------------------------------------------------
# Raw header access, for classification only.

def header_block(raw: bytes) -> bytes:
    """The bytes before the first empty line (CRLF or LF), as RFC 5322 defines it."""
    m = re.search(rb"\r?\n\r?\n", raw)
    return raw[: m.start()] if m else raw


def raw_fields(raw: bytes) -> list[tuple[str, str]]:
    """Header fields (name lowercased, value unfolded), bytes read as latin-1 so nothing is lost."""
    fields: list[tuple[str, str]] = []
    for line in header_block(raw).decode("latin-1").splitlines():
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append((name.strip().lower(), value.strip()))
    return fields


def raw_values(raw: bytes, name: str) -> list[str]:
    return [v for n, v in raw_fields(raw) if n == name]


def has_8bit(text: str) -> bool:
    return any(ord(c) > 0x7F for c in text)


def has_split_encoded_word(value: str) -> bool:
    return any(a.lower() == b.lower() for a, b in ADJACENT_WORDS.findall(value))


def whitespace_line_in_headers(raw: bytes) -> bool:
    """A line of only spaces or tabs inside the header section, followed by another field."""
    lines = header_block(raw).split(b"\n")
    for i, line in enumerate(lines[:-1]):
        if line.strip(b"\r") and not line.strip():
            return re.match(rb"[!-9;-~]+[ \t]*:", lines[i + 1]) is not None
    return False


# ---------------------------------------------------------------------------------------------
# Normalisation.

def squash(text: str | None) -> str:
    """Whitespace collapsed and trimmed; None and empty are the same."""
    return " ".join((text or "").split())


def norm_address(addr: str | None) -> str:
    addr = (addr or "").strip().strip("<>").strip().lower()
    local, at, domain = addr.rpartition("@")
    if at and len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        addr = local[1:-1] + "@" + domain
    return addr


def norm_name(name: str | None) -> str:
    name = squash(name)
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = squash(name[1:-1])
    return name


def norm_people(people: list[dict]) -> list[dict]:
    return [{"name": norm_name(p.get("name")), "address": norm_address(p.get("address"))} for p in people]


# ---------------------------------------------------------------------------------------------
# The reference side (runs in worker processes).

def _content(part) -> str | None:
    try:
        return clean(part.get_content())
    except Exception:  # unknown charset, broken transfer encoding: decode what is there
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None


SURROGATES = re.compile("[\udc80-\udcff]")


def clean(text: str | None) -> str | None:
    """Raw 8-bit bytes the reference left undecoded (surrogate escapes) shown as U+FFFD, as a
    reader would see them."""
    return SURROGATES.sub(REPLACEMENT, text) if isinstance(text, str) else text


def _people(msg, name: str) -> list[dict]:
    out = []
    for header in msg.get_all(name) or []:
        for a in getattr(header, "addresses", ()):
            addr = a.addr_spec if a.addr_spec and a.addr_spec != "<>" else None
            out.append({"name": clean(a.display_name) or None, "address": clean(addr)})
    return out


def _leaves(part):
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for sub in part.get_payload():
            yield from _leaves(sub)
    else:
        yield part


def reference_view(raw: bytes) -> dict:
    """The reference parse of one message, in the shape `palisade-admin parse` prints."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    view: dict = {"errors": {}}

    def field(name, fn):
        try:
            view[name] = fn()
        except Exception as e:  # the reference gave up on this field
            view[name] = None
            view["errors"][name] = f"{type(e).__name__}: {e}"

    field("subject", lambda: clean(str(msg["subject"])) if msg["subject"] is not None else None)
    field("from", lambda: _people(msg, "from"))
    field("to", lambda: _people(msg, "to"))
    field("cc", lambda: _people(msg, "cc"))

    def date():
        header = msg["date"]
        when = getattr(header, "datetime", None) if header is not None else None
        if when is None:
            return None
        if when.tzinfo is None:  # `-0000`: UTC, with no claim about the local zone
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")

    field("date", date)
    bodies = {}

    def body(kind):
        part = msg.get_body((kind,))
        bodies[kind] = part
        return _content(part) if part is not None else None

    field("text", lambda: body("plain"))
    field("html", lambda: body("html"))

    def attachments():
        chosen = {id(p) for p in bodies.values() if p is not None}
        return [{"file_name": clean(p.get_filename()), "content_type": p.get_content_type(),
                 "disposition": p.get_content_disposition(),
                 "content": _content(p) if p.get_content_maintype() == "text" else None}
                for p in _leaves(msg) if id(p) not in chosen]

    field("attachments", attachments)
    return view


def _reference_worker(args: tuple[str, str]) -> tuple[str, dict]:
    name, path = args
    raw = Path(path).read_bytes()
    try:
        return name, reference_view(raw)
    except Exception as e:  # the whole message defeated the reference
        return name, {"errors": {"message": f"{type(e).__name__}: {e}"}}


# ---------------------------------------------------------------------------------------------
# Palisade's side.

def palisade_views(admin: Path, corpus: Path) -> dict[str, dict]:
    """Runs `palisade-admin parse` once over the corpus; `.eml` files only."""
    proc = subprocess.Popen([str(admin), "parse", str(corpus)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    views = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        view = json.loads(line)
        if view["file"].endswith(".eml"):
            views[view["file"]] = view
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.wait() != 0:
        raise SystemExit(f"palisade-admin parse {corpus} failed ({proc.returncode}): {err}")
    return views


# ---------------------------------------------------------------------------------------------
# Comparison and classification: each returns None (agree) or a category name.

def classify_subject(p, r, raw) -> str | None:
    ps, rs = squash(p), squash(r)
    if ps == rs:
        return None
    rawv = " ".join(raw_values(raw, "subject"))
    if not ps:
        return "subject.palisade_missing"
    if not rs:
        return "subject.reference_missing"
    if has_split_encoded_word(rawv) and ps.count(REPLACEMENT) > rs.count(REPLACEMENT):
        return "subject.encoded_word_split"
    if has_8bit(rawv):
        return "subject.raw_8bit"
    if _ascii(ps) == _ascii(rs) and re.search("[\x80-\x9f]", r or ""):
        return "subject.charset.c1_controls_as_windows_1252"
    if "=?" in rs and "=?" not in ps:
        return "subject.encoded_word.reference_undecoded"
    if "=?" in ps and "=?" not in rs:
        return "subject.encoded_word.palisade_undecoded"
    if ENCODED_WORD.search(rawv):
        if ps.replace(" ", "") == rs.replace(" ", ""):
            return "subject.encoded_word.spacing"
        return "subject.encoded_word.decoded_differently"
    return "subject.differs"


def _people_category(field: str, p: list[dict], r: list[dict], raw: bytes) -> str | None:
    pa = [x for x in norm_people(p) if x["address"]]
    ra = [x for x in norm_people(r) if x["address"]]
    rawv = " ".join(raw_values(raw, field))
    if [x["address"] for x in pa] == [x["address"] for x in ra]:
        if field != "from":
            return None
        for x, y in zip(pa, ra):
            if x["name"] != y["name"]:
                return _name_category(x["name"], y["name"], rawv)
        return None
    if has_8bit(rawv):
        return f"{field}.raw_8bit"
    if re.search(r"<\s*@[^<>]*:", rawv):
        return f"{field}.address.source_route"
    if re.search(r'"[^"]*[()<>\[\]:;@\\,.][^"]*"\s*@', rawv):
        return f"{field}.address.quoted_local_part"
    if re.search(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=@", rawv):
        return f"{field}.address.encoded_word_in_local_part"
    if re.search(r":\s*(@[^;,<>]*)?;", rawv):
        return f"{field}.address.empty_group_syntax"
    if re.search(r">\s*[^,\s>][^,<>]*<", rawv):
        return f"{field}.address.missing_separator"
    # Names without an address on Palisade's side that the reference took as a bare local part.
    bare_p = sorted(norm_name(x.get("name")).lower() for x in p if not x.get("address") and x.get("name"))
    bare_r = sorted(x["address"] for x in ra if "@" not in x["address"])
    if bare_r and bare_p == bare_r and [x for x in ra if "@" in x["address"]] == pa:
        return f"{field}.bare_word_without_domain"
    dropped = sum(1 for x in r if not x.get("address"))
    if len(pa) > len(ra) and len(pa) - len(ra) <= dropped:
        return f"{field}.invalid_address.reference_dropped"
    if not pa and ra:
        return f"{field}.palisade_missing"
    if pa and not ra:
        return f"{field}.reference_missing"
    if len(pa) < len(ra):
        return f"{field}.count.reference_more"
    if len(pa) > len(ra):
        return f"{field}.count.palisade_more"
    if re.search(r"<\s*[^<>@\s:]+:[^<>]*@", rawv):
        # `<C:x@y>`: a bogus prefix inside the brackets, read by the reference as a group name.
        return f"{field}.address.prefix_in_brackets"
    return f"{field}.address.differs"


def _name_category(pn: str, rn: str, rawv: str) -> str:
    if not rn and pn and f"({pn}" in squash(rawv):
        return "from.name.comment_as_name"
    if has_split_encoded_word(rawv) and pn.count(REPLACEMENT) > rn.count(REPLACEMENT):
        return "from.name.encoded_word_split"
    if has_8bit(rawv):
        return "from.name.raw_8bit"
    if not pn:
        return "from.name.palisade_missing"
    if not rn:
        return "from.name.reference_missing"
    if ENCODED_WORD.search(rawv):
        return "from.name.encoded_word.decoded_differently"
    if pn.lower() == rn.lower():
        return "from.name.case"
    return "from.name.differs"


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def classify_date(p, r, raw) -> str | None:
    if p == r or (p and r and instant(p) == instant(r)):
        return None
    rawv = " ".join(raw_values(raw, "date"))
    time_part = re.search(r"\d{1,2}\s*(\([^)]*\)\s*)?:\s*(\([^)]*\)\s*)?\d{1,2}", rawv)
    if time_part and "(" in time_part.group(0):
        return "date.comment_in_time"
    if p is None:
        if re.match(r"\s*[A-Za-z]{3} [A-Za-z]{3} +\d{1,2} \d{1,2}:\d\d:\d\d \d{4}\s*$", rawv):
            return "date.palisade_missing.asctime"
        return "date.palisade_missing"
    if r is None:
        if not re.search(r"\d{1,2}:\d{1,2}(:\d{1,2})?\s*([+-]\d{4}|[A-Za-z]+|\()", rawv):
            return "date.reference_missing.malformed_time"
        return "date.reference_missing"
    pd, rd = instant(p), instant(r)
    if pd.year != rd.year and abs(pd.year - rd.year) % 100 == 0:
        return "date.two_digit_year"
    delta = abs((pd - rd).total_seconds())
    if delta <= 26 * 3600 and delta % 900 == 0:
        if re.search(r"[+-]\s*[+-]\s*\d{4}", rawv):
            return "date.zone.doubled_sign"
        if re.search(r"\([^)]*\)\s*[+-]\d{4}", rawv):
            return "date.zone.comment_before_offset"
        if re.search(r"\d:\d\d\s+[A-Za-z]{1,5}\s*$", rawv):
            return "date.zone.named"
        return "date.zone.differs"
    return "date.differs"


def _is_inline_text(a: dict) -> bool:
    return a["content_type"] in ("text/plain", "text/html") and a.get("disposition") != "attachment"


BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*"?([^";\r\n]+)', re.IGNORECASE)
FOLDED_BOUNDARY = re.compile(rb"boundary\s*=\s*\r?\n[ \t]", re.IGNORECASE)
DOUBLE_CONTENT_TYPE = re.compile(rb"(?im)^content-type:[^\n]*\n(?:[ \t][^\n]*\n)*content-type:")


def part_without_headers(raw: bytes) -> bool:
    """A declared boundary line followed at once by text that is neither a field nor blank."""
    for b in set(BOUNDARY_PARAM.findall(raw)):
        b = b.strip()
        if re.search(rb"\n--" + re.escape(b) + rb"[ \t]*\r?\n(?![ \t]*\r?\n)(?![!-9;-~]+[ \t]*:)", raw):
            return True
    return False


def _shown(content: str | None, body: str) -> bool:
    """Whether a part's text is in the body, line by line, ignoring MIME lines the reference
    kept because it split the parts differently, and binary junk decoded differently."""
    if squash(content) in body:
        return True
    for line in (content or "").splitlines():
        # A closing delimiter glued to the last line (`text--1--`) is MIME, not text.
        line = re.sub(r"--\S*--$", "", squash(line))
        if not line or line.startswith("--") or re.match(r"content-[\w-]+:", line, re.IGNORECASE):
            continue
        if REPLACEMENT in line or re.search("[\x00-\x08]", line):
            continue
        try:
            decoded = quopri.decodestring(line.encode()).decode("utf-8")
        except UnicodeDecodeError:
            decoded = line
        if line not in body and decoded not in body:
            return False
    return True


def classify_attachments(pv: dict, rv: dict, raw: bytes = b"") -> str | None:
    p, r = pv["attachments"], rv["attachments"]
    pn = sorted(squash(a["file_name"]) for a in p)
    rn = sorted(squash(a["file_name"]) for a in r)
    if len(p) == len(r) and pn == rn:
        return None
    if any(a["content_type"].startswith("multipart/") for a in p):
        return "attachments.palisade_lists_multipart"
    if any(a["content_type"].startswith("multipart/") for a in r):
        return "attachments.reference_lists_multipart"
    if len(p) == len(r):
        if any(REPLACEMENT in n for n in pn) and not any(REPLACEMENT in n for n in rn):
            return "attachments.name.palisade_replaced"
        if any(REPLACEMENT in n for n in rn) and not any(REPLACEMENT in n for n in pn):
            return "attachments.name.reference_replaced"
        if pn.count("") > rn.count(""):
            return "attachments.name.palisade_missing"
        if rn.count("") > pn.count(""):
            return "attachments.name.reference_missing"
        return "attachments.name.differs"
    if len(p) > len(r):
        extra = _unmatched(p, r)
        if any(a["content_type"] == "text/html" for a in extra) and not pv.get("html") and rv.get("html"):
            if any(a["content_type"] == "text/html" and a["file_name"] for a in extra):
                return "attachments.html_body_as_attachment.named_part"
            return "attachments.html_body_as_attachment"
        if not r and rv.get("text") is not None and not pv.get("text") and not pv.get("html"):
            return "attachments.palisade_lists_reference_body"
        return "attachments.count.palisade_more"
    extra = _unmatched(r, p)
    if FOLDED_BOUNDARY.search(raw):
        return "attachments.boundary_parameter_folded"
    if extra and all(_is_inline_text(a) for a in extra):
        body = squash((pv.get("text") or "") + " " + (pv.get("html") or ""))
        if all(squash(a.get("content")) in body for a in extra):
            return "attachments.inline_text_shown_in_body"
        if all(_shown(a.get("content"), body) for a in extra):
            return "attachments.inline_text_shown_in_body.split_differently"
        if part_without_headers(raw):
            return "attachments.inline_text_part_dropped.part_without_headers"
        return "attachments.inline_text_part_dropped"
    if extra and all(" " in a["content_type"] or "/" not in a["content_type"] for a in extra):
        return "attachments.count.reference_more.malformed_content_type"
    if any(a["content_type"] == "message/rfc822" or a.get("disposition") == "attachment" for a in extra):
        return "attachments.count.reference_more.attachment_lost"
    return "attachments.count.reference_more"


def _unmatched(more: list[dict], fewer: list[dict]) -> list[dict]:
    """The parts of `more` left over once each part of `fewer` is matched by type and name."""
    left = list(more)
    for a in fewer:
        for i, b in enumerate(left):
            if b["content_type"] == a["content_type"] and squash(b["file_name"]) == squash(a["file_name"]):
                del left[i]
                break
    return left


BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]{40,}")


def _ascii(text: str) -> str:
    return "".join(c for c in text if ord(c) < 0x80)


def _base64_of(encoded: str, decoded: str) -> bool:
    import base64
    letters = re.sub(r"[^A-Za-z0-9+/]", "", encoded)
    try:
        data = base64.b64decode(letters[: len(letters) // 4 * 4])
    except ValueError:
        return False
    return bool(decoded) and squash(decoded)[:40] in squash(data.decode("utf-8", "replace"))


def classify_body(kind: str, pv: dict, rv: dict, raw: bytes) -> str | None:
    p, r = squash(pv.get(kind)), squash(rv.get(kind))
    if p == r:
        return None
    if FOLDED_BOUNDARY.search(raw):
        return f"body.{kind}.boundary_parameter_folded"
    if not p:
        if kind == "html" and any(a["content_type"] == "text/html" and a["file_name"] for a in pv["attachments"]):
            return "body.html.palisade_missing.named_part_listed"
        if DOUBLE_CONTENT_TYPE.search(raw):
            return f"body.{kind}.palisade_missing.duplicate_content_type"
        if any(a["content_type"].startswith("multipart/") for a in pv["attachments"]):
            return f"body.{kind}.palisade_missing.container_listed"
        if pv["attachments"] and not any(v.lower().startswith("multipart/") for v in raw_values(raw, "content-type")):
            return f"body.{kind}.palisade_missing.root_listed_as_attachment"
        return f"body.{kind}.palisade_missing"
    if not r:
        if kind == "text" and rv.get("html"):
            return "body.text.derived_from_html"
        if any(squash(a.get("content")) and squash(a.get("content")) in p for a in rv["attachments"]):
            return f"body.{kind}.reference_part_not_body"
        return f"body.{kind}.reference_missing"
    if len((pv.get(kind) or "").encode()) >= 1_000_000 and r.startswith(p[: len(p) - 16]):
        return f"body.{kind}.palisade_truncated"
    if _ascii(p) == _ascii(r):
        if re.search("[\x80-\x9f]", r) and not re.search("[\x80-\x9f]", p):
            return f"body.{kind}.charset.c1_controls_as_windows_1252"
        if r.count(REPLACEMENT) > p.count(REPLACEMENT):
            return f"body.{kind}.charset.reference_replaced"
        if p.count(REPLACEMENT) > r.count(REPLACEMENT):
            return f"body.{kind}.charset.palisade_replaced"
        return f"body.{kind}.charset.decoded_differently"
    if r.count(REPLACEMENT) > p.count(REPLACEMENT) and abs(len(_ascii(p)) - len(_ascii(r))) < 0.05 * len(r):
        return f"body.{kind}.charset.reference_replaced"
    # A part left encoded has many escapes; one `=3D` is a sender's broken escape both keep.
    if p.count("=3D") > 1 and "=3D" not in r:
        return f"body.{kind}.quoted_printable.palisade_undecoded"
    if "=3D" in r and "=3D" not in p:
        return f"body.{kind}.quoted_printable.reference_undecoded"
    if _base64_of(r, p) or (BASE64_TEXT.fullmatch(r) and not BASE64_TEXT.fullmatch(p)):
        return f"body.{kind}.base64.reference_undecoded"
    if BASE64_TEXT.fullmatch(p) and not BASE64_TEXT.fullmatch(r):
        return f"body.{kind}.base64.palisade_undecoded"
    if _base64_of(p, r):
        return f"body.{kind}.base64.palisade_undecoded"
    if "=" in p + r and re.sub(r"[=\s]|3D|20", "", p) == re.sub(r"[=\s]|3D|20", "", r):
        return f"body.{kind}.quoted_printable"
    if r in p:
        return f"body.{kind}.palisade_more"
    if p in r:
        return f"body.{kind}.palisade_missing_part"
    return f"body.{kind}.differs"


HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")


def structural_category(raw: bytes) -> str | None:
    """Faults of the header section itself, which change every field at once."""
    first = raw.split(b"\n", 1)[0]
    if first.startswith(b"From "):
        return None
    if first.strip() == b"" and first.strip(b"\r"):
        return "message.whitespace_only_line_in_headers"
    if first[:1] in (b" ", b"\t") and HEADER_LINE.match(first.lstrip()):
        return "message.first_header_indented"
    if not HEADER_LINE.match(first):
        return "message.no_header_section"
    if whitespace_line_in_headers(raw):
        return "message.whitespace_only_line_in_headers"
    lines = [line.rstrip(b"\r") for line in header_block(raw).split(b"\n")]
    for i, line in enumerate(lines[1:], 1):
        if line and line[:1] not in (b" ", b"\t") and not HEADER_LINE.match(line):
            # Body text (or a MIME boundary) before any further field: the blank line is missing.
            for later in lines[i + 1:]:
                if later.startswith(b"--"):
                    return "message.body_without_blank_line"
                if HEADER_LINE.match(later):
                    return "message.broken_line_inside_headers"
            return "message.body_without_blank_line"
    return None


def compare(name: str, raw: bytes, pv: dict, rv: dict) -> list[dict]:
    """Every disagreement of one message, each with its category."""
    if "error" in pv:
        return [{"file": name, "category": "message.palisade_refused", "field": "message",
                 "palisade": pv["error"], "reference": None}]
    if "message" in rv.get("errors", {}):
        return [{"file": name, "category": "message.reference_failed", "field": "message",
                 "palisade": None, "reference": rv["errors"]["message"]}]
    found = []

    def add(field, category, p, r):
        if category:
            found.append({"file": name, "category": category, "field": field, "palisade": p, "reference": r})

    for field in FIELDS:
        if field in rv["errors"]:
            if pv.get(field) not in (None, []):
                add(field, f"{field}.reference_error", pv.get(field), rv["errors"][field])
            continue
        if field == "subject":
            add(field, classify_subject(pv["subject"], rv["subject"], raw), pv["subject"], rv["subject"])
        elif field in ("from", "to", "cc"):
            add(field, _people_category(field, pv[field], rv[field], raw), pv[field], rv[field])
        elif field == "date":
            add(field, classify_date(pv["date"], rv["date"], raw), pv["date"], rv["date"])
        elif field == "attachments":
            add(field, classify_attachments(pv, rv, raw), pv["attachments"],
                [{k: v for k, v in a.items() if k != "content"} for a in rv["attachments"]])
        else:
            add(field, classify_body(field, pv, rv, raw), pv.get(field), rv.get(field))
    structural = structural_category(raw) if found else None
    if structural:
        return [{"file": name, "category": structural, "field": ",".join(d["field"] for d in found),
                 "palisade": {d["field"]: d["palisade"] for d in found},
                 "reference": {d["field"]: d["reference"] for d in found}}]
    return found


# ---------------------------------------------------------------------------------------------
# Fixtures: cases/*.eml against cases/expected.json.

CASES_DIR = HERE / "cases"


def load_cases() -> dict[str, dict]:
    """The fixtures' expected values, by file name."""
    return json.loads((CASES_DIR / "expected.json").read_text(encoding="utf-8"))["cases"]


def check_case(expected: dict, view: dict) -> list[str]:
    """Every way `view` (the shape `palisade-admin parse` prints) misses `expected`; empty when
    it meets it."""
    problems = []

    def fail(what, want, got):
        problems.append(f"{what}: expected {want!r}, got {got!r}")

    if "subject" in expected and squash(view.get("subject")) != squash(expected["subject"]):
        fail("subject", expected["subject"], view.get("subject"))
    if "from" in expected:
        got = norm_people(view.get("from") or [])
        want = norm_people(expected["from"])
        if [g["address"] for g in got] != [w["address"] for w in want]:
            fail("from addresses", expected["from"], view.get("from"))
        else:
            for w, g, raw_w in zip(want, got, expected["from"]):
                if "name" in raw_w and g["name"] != w["name"]:
                    fail("from name", raw_w["name"], g["name"])
    if "from_addresses_include" in expected:
        got = {norm_address(p.get("address")) for p in view.get("from") or []}
        if any(norm_address(a) not in got for a in expected["from_addresses_include"]):
            fail("from addresses include", expected["from_addresses_include"], view.get("from"))
    if "date" in expected and not _same_instant(view.get("date"), expected["date"]):
        fail("date", expected["date"], view.get("date"))
    if "date_one_of" in expected and not any(_same_instant(view.get("date"), d) for d in expected["date_one_of"]):
        fail("date", expected["date_one_of"], view.get("date"))
    names = sorted(squash(a.get("file_name")) for a in view.get("attachments") or [])
    if "attachments" in expected and names != sorted(squash(n) for n in expected["attachments"]):
        fail("attachment names", expected["attachments"], names)
    for part in expected.get("attachment_names_contain", []):
        if not any(part in n for n in names):
            fail("an attachment name containing", part, names)
    if any((a.get("content_type") or "").startswith("multipart/") for a in view.get("attachments") or []):
        fail("no multipart/* container among attachments", [], view.get("attachments"))
    for kind in ("text", "html"):
        body = squash(view.get(kind))
        for part in expected.get(f"{kind}_contains", []):
            if squash(part) not in body:
                fail(f"{kind} body containing", part, view.get(kind))
    if "multiple_from" in expected and view.get("multiple_from") != expected["multiple_from"]:
        fail("multiple_from", expected["multiple_from"], view.get("multiple_from"))
    if not expected.get("parse_error_allowed") and view.get("parse_error"):
        fail("parse_error", None, view.get("parse_error"))
    return problems


def _same_instant(got: str | None, want: str | None) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return instant(got) == instant(want)


# ---------------------------------------------------------------------------------------------
# Driver.

def run(corpus: Path, admin: Path, jobs: int) -> tuple[dict[str, dict], list[dict], dict[str, int]]:
    pal = palisade_views(admin, corpus)
    names = sorted(pal)
    work = [(n, str(corpus / n)) for n in names]
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            ref = dict(pool.imap_unordered(_reference_worker, work, chunksize=32))
    else:
        ref = dict(map(_reference_worker, work))
    disagreements: list[dict] = []
    agree = {f: 0 for f in FIELDS}
    for n in names:
        raw = (corpus / n).read_bytes()
        found = compare(n, raw, pal[n], ref[n])
        disagreements += found
        bad = {f for d in found for f in d["field"].split(",")}
        for f in FIELDS:
            if f not in bad and "message" not in bad:
                agree[f] += 1
    return pal, disagreements, agree


def load_expectations(path: Path) -> dict:
    if not path.exists():
        return {"categories": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    for cat, entry in data["categories"].items():
        if entry.get("verdict") not in VERDICTS:
            raise SystemExit(f"{path}: category {cat} has verdict {entry.get('verdict')!r}, not one of {VERDICTS}")
    return data


def short(value, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def show(corpus: Path, admin: Path, name: str) -> None:
    pal = palisade_views(admin, corpus / name if (corpus / name).is_file() else Path(name))
    pv = next(iter(pal.values()))
    raw_path = corpus / name if (corpus / name).is_file() else Path(name)
    raw = raw_path.read_bytes()
    rv = reference_view(raw)
    for field in FIELDS:
        r = rv.get(field)
        if field == "attachments" and r:
            r = [{k: v for k, v in a.items() if k != "content"} for a in r]
        print(f"== {field}\n  palisade : {short(pv.get(field), 2000)}\n  reference: {short(r, 2000)}")
    print(f"== parse_error: {pv.get('parse_error')}; reference errors: {rv['errors']}")
    for d in compare(name, raw, pv, rv):
        print(f"-> {d['category']} ({d['field']})")


def run_cases(admin: Path) -> int:
    """Prints each fixture's result; fails on a case that is not pending and is not met."""
    views = palisade_views(admin, CASES_DIR)
    status = 0
    for name, expected in sorted(load_cases().items()):
        problems = check_case(expected, views[name]) if name in views else ["no such fixture"]
        if expected.get("pending"):
            state = "pending (" + expected["pending"] + ")" + (", now met: un-pend it" if not problems else "")
        else:
            state = "ok" if not problems else "FAIL"
            status = status or (1 if problems else 0)
        print(f"{name:<40} {state}")
        for p in problems:
            print(f"    {p}")
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Verdicts: palisade | reference | equivalent | pending. "
                                        "See lmtp-ingest/e2e/README.md.")
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS,
                    help="directory of .eml files (default: $PALISADE_CORPUS or ../shared/corpus)")
    ap.add_argument("--admin", type=Path, default=DEFAULT_ADMIN,
                    help="palisade-admin binary (default: $PALISADE_BIN_DIR/palisade-admin or target/debug)")
    ap.add_argument("--expectations", type=Path, default=DEFAULT_EXPECTATIONS)
    ap.add_argument("--update", action="store_true",
                    help="rewrite the file lists of the expectations (verdicts and reasons kept; new categories pending)")
    ap.add_argument("--strict", action="store_true",
                    help="also fail when a recorded disagreement no longer occurs")
    ap.add_argument("--show", metavar="FILE", help="print both parses of one file (relative to the corpus) and its categories")
    ap.add_argument("--list", metavar="CATEGORY", help="print every disagreement of one category")
    ap.add_argument("--cases", action="store_true",
                    help="check the fixtures in cases/ against cases/expected.json instead of a corpus")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="reference parser processes")
    args = ap.parse_args(argv)

    if not args.admin.is_file():
        print(f"palisade-admin not found at {args.admin} (build it, or pass --admin / PALISADE_BIN_DIR)",
              file=sys.stderr)
        return 2
    if args.show:
        show(args.corpus, args.admin, args.show)
        return 0
    if args.cases:
        return run_cases(args.admin)
    if not args.corpus.is_dir():
        print(f"corpus not found: {args.corpus} (pass it, or set PALISADE_CORPUS)", file=sys.stderr)
        return 2

    pal, disagreements, agree = run(args.corpus, args.admin, max(1, args.jobs))
    if args.list:
        for d in disagreements:
            if d["category"] == args.list:
                print(f"{d['file']} [{d['field']}]\n  palisade : {short(d['palisade'])}\n  reference: {short(d['reference'])}")
        return 0

    expectations = load_expectations(args.expectations)
    cats = expectations["categories"]
    current: dict[str, set[str]] = {}
    for d in disagreements:
        current.setdefault(d["category"], set()).add(d["file"])
    recorded = {c: set(e.get("files", [])) for c, e in cats.items()}
    unexpected = [d for d in disagreements if d["file"] not in recorded.get(d["category"], set())]
    gone = sorted((c, f) for c, files in recorded.items() for f in files - current.get(c, set()))

    print(f"messages compared: {len(pal)}")
    print("agreements per field:")
    for f in FIELDS:
        print(f"  {f:<12} {agree[f]:>6} / {len(pal)}")
    print("disagreements per category:")
    for c in sorted(set(current) | set(cats)):
        verdict = cats.get(c, {}).get("verdict", "NEW")
        n = len(current.get(c, ()))
        if n or recorded.get(c):
            print(f"  {c:<52} {n:>5}  {verdict}")

    if args.update:
        for c in set(current) | set(cats):
            entry = cats.setdefault(c, {"verdict": "pending", "reason": NEW_REASON})
            entry["files"] = sorted(current.get(c, ()))
        expectations["categories"] = dict(sorted(cats.items()))
        args.expectations.write_text(json.dumps(expectations, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"updated {args.expectations}")
        return 0

    status = 0
    if unexpected:
        status = 1
        print(f"\nFAIL: {len(unexpected)} disagreement(s) not in {args.expectations}:")
        for d in unexpected[:200]:
            print(f"  {d['file']}: {d['field']} [{d['category']}]\n"
                  f"    palisade : {short(d['palisade'])}\n    reference: {short(d['reference'])}")
        print("Review them (--show FILE); if reasoned, record them with --update and give a verdict.")
    if gone:
        print(f"\n{len(gone)} recorded disagreement(s) no longer occur (run --update to drop them):")
        for c, f in gone[:200]:
            print(f"  {f}: {c}")
        if args.strict:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
