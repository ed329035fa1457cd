"""Helpers for the lmtp-ingest end-to-end suite: daemon lifecycle, admin CLI, a strict LMTP client.

Only the standard library is used. Everything talks to real processes over real sockets.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parent.parent
BIN_DIR = Path(os.environ.get("PALISADE_BIN_DIR") or (E2E_DIR / ".." / ".." / "target" / "debug")).resolve()
DAEMON_BIN = BIN_DIR / "lmtp-ingest"
ADMIN_BIN = BIN_DIR / "palisade-admin"
CORPUS_DIR = Path(os.environ.get("PALISADE_CORPUS") or (REPO / ".." / "shared" / "corpus")).resolve()

HOST = "127.0.0.1"
DOMAIN = "example.test"

# The same suite runs on both backends: `embedded` (SQLite + tantivy + in-process queue) or
# `distributed` (Cassandra + Elasticsearch + RabbitMQ + Redis, started by devtools/services).
BACKEND = os.environ.get("PALISADE_E2E_BACKEND", "embedded")
if BACKEND not in ("embedded", "distributed"):
    raise RuntimeError(f"PALISADE_E2E_BACKEND must be embedded or distributed, not {BACKEND!r}")
CASSANDRA = os.environ.get("PALISADE_CASSANDRA_NODES", "127.0.0.1:9042")
ELASTICSEARCH = os.environ.get("PALISADE_ELASTICSEARCH_URL", "http://127.0.0.1:9200")
AMQP = os.environ.get("PALISADE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
REDIS = os.environ.get("PALISADE_REDIS_URL", "redis://127.0.0.1:6379/")


def _cql(query: str, timeout: float = 120.0, skip_metadata: bool = False) -> bytes:
    """Runs one CQL statement over the native protocol v4 (stdlib only; no driver needed) and
    returns the body of its RESULT."""
    host, port = CASSANDRA.split(",")[0].rsplit(":", 1)

    def exact(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("cassandra closed the connection")
            buf += chunk
        return buf

    def request(sock, opcode, body=b""):
        sock.sendall(struct.pack(">BBhBi", 4, 0, 1, opcode, len(body)) + body)
        _, _, _, op, length = struct.unpack(">BBhBi", exact(sock, 9))
        payload = exact(sock, length)
        if op == 0:
            raise RuntimeError(f"CQL error: {payload[6:].decode(errors='replace')}")
        return payload

    def string(v: str) -> bytes:
        return struct.pack(">H", len(v)) + v.encode()

    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        request(sock, 0x01, struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0"))
        q = query.encode()
        # Consistency ONE; flag 0x02 asks for rows without their column metadata.
        flags = 0x02 if skip_metadata else 0
        return request(sock, 0x07, struct.pack(">i", len(q)) + q + struct.pack(">HB", 0x0001, flags))


def _cql_rows(query: str) -> tuple[bytes, int, int, int]:
    """The RESULT body of a rows query, its column count, row count and where its rows start."""
    body = _cql(query, skip_metadata=True)
    kind, flags, columns = struct.unpack(">iii", body[:12])
    assert kind == 0x0002, f"not a rows result: {kind}"
    at = 12
    if flags & 0x0002:  # has more pages: skip the paging state
        (n,) = struct.unpack(">i", body[at:at + 4])
        at += 4 + max(n, 0)
    assert flags & 0x0004, "the server sent column metadata"
    (rows,) = struct.unpack(">i", body[at:at + 4])
    return body, columns, rows, at + 4


def cql_row_count(query: str) -> int:
    """How many rows a CQL query returns (unpaged: for small test keyspaces)."""
    return _cql_rows(query)[2]


def cql_cells(query: str) -> list[list[bytes]]:
    """Every row a CQL query returns, as the raw bytes of its cells (unpaged; null is empty)."""
    body, columns, rows, at = _cql_rows(query)
    out = []
    for _ in range(rows):
        row = []
        for _ in range(columns):
            (n,) = struct.unpack(">i", body[at:at + 4])
            at += 4
            row.append(body[at:at + max(n, 0)])
            at += max(n, 0)
        out.append(row)
    return out


def cql_texts(query: str) -> list[str]:
    """The first column of every row a CQL query returns, as text (unpaged)."""
    return [row[0].decode() for row in cql_cells(query)]


# Creating a keyspace costs Cassandra about 7 s of CPU (forty schema changes, each flushing the
# schema tables) and dropping it one more, against half a second to empty its tables. With
# PALISADE_E2E_KEYSPACE_POOL set to a directory shared by the suite's processes (devtools/test
# sets it), a daemon of the build under test takes an emptied keyspace from the pool and its
# last node gives it back emptied. A keyspace that cannot be emptied is dropped instead, and
# daemons of another build (the upgrade tests' older release) always get a fresh one.
KEYSPACE_POOL = os.environ.get("PALISADE_E2E_KEYSPACE_POOL")
_KEYSPACES: dict[str, str] = {}   # tag -> keyspace of the daemons sharing that tag
_HOLDERS: dict[str, int] = {}     # tag -> how many of those daemons are not cleaned up yet


def _pool_dir(state: str) -> Path:
    d = Path(KEYSPACE_POOL) / state
    d.mkdir(parents=True, exist_ok=True)
    return d


def hold_keyspace(tag: str) -> str:
    """The keyspace of the daemons tagged `tag`, claimed from the pool by the first of them."""
    if tag not in _KEYSPACES:
        name = f"palisade_e2e_{tag}"
        if KEYSPACE_POOL and DAEMON_BIN == BIN_DIR / "lmtp-ingest":
            for free in sorted(_pool_dir("free").iterdir()):
                try:  # rename is atomic: of two processes claiming one keyspace, one wins
                    free.rename(_pool_dir("held") / free.name)
                except FileNotFoundError:
                    continue
                name = free.name
                break
            else:
                (_pool_dir("held") / name).touch()
        _KEYSPACES[tag] = name
    _HOLDERS[tag] = _HOLDERS.get(tag, 0) + 1
    return _KEYSPACES[tag]


def _empty_keyspace(keyspace: str) -> bool:
    """Truncates every table but the migration record; False if any could not be."""
    try:
        tables = cql_texts("SELECT table_name FROM system_schema.tables "
                           f"WHERE keyspace_name = '{keyspace}'")
        for table in tables:
            if table != "schema_migrations":
                _cql(f"TRUNCATE {keyspace}.{table}")
        return True
    except (OSError, RuntimeError, EOFError, AssertionError):
        return False


def release_keyspace(tag: str) -> None:
    """Called as each daemon tagged `tag` is cleaned up: the last one empties the keyspace
    back into the pool, or drops it."""
    _HOLDERS[tag] -= 1
    if _HOLDERS[tag] > 0:
        return
    del _HOLDERS[tag]
    keyspace = _KEYSPACES.pop(tag)
    held = Path(KEYSPACE_POOL) / "held" / keyspace if KEYSPACE_POOL else None
    if held is not None and held.exists() and _empty_keyspace(keyspace):
        held.rename(_pool_dir("free") / keyspace)
        return
    drop_keyspace(keyspace)
    if held is not None:
        held.unlink(missing_ok=True)


def drop_keyspace(keyspace: str) -> None:
    """Best effort: a service stopped by an outage test comes back without it."""
    try:
        _cql(f"DROP KEYSPACE IF EXISTS {keyspace}")
    except (OSError, RuntimeError, EOFError):
        pass


def drop_keyspace_pool() -> None:
    """Drops every keyspace of the pool, at the end of the suite."""
    for state in ("free", "held"):
        for entry in _pool_dir(state).iterdir():
            drop_keyspace(entry.name)
            entry.unlink()


def drop_distributed_data(tag: str) -> None:
    """Gives back one daemon's keyspace and removes its index: every test creating its own
    would otherwise accumulate hundreds of tables in one Cassandra heap."""
    release_keyspace(tag)
    try:
        req = urllib.request.Request(f"{ELASTICSEARCH}/palisade-e2e-{tag}-v1", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()
    except OSError:
        pass


def backend_config(tag: str, keyspace: str) -> dict:
    """Config sections selecting the backends under test; `tag` and `keyspace` isolate this
    daemon's data."""
    if BACKEND == "embedded":
        return {}
    return {
        "storage": {"backend": "cassandra",
                    "cassandra": {"nodes": CASSANDRA.split(","), "keyspace": keyspace,
                                  "replication_factor": 1, "consistency": "one"}},
        "index": {"backend": "elasticsearch",
                  "elasticsearch": {"url": ELASTICSEARCH, "alias": f"palisade-e2e-{tag}"}},
        "queue": {"backend": "rabbitmq", "rabbitmq": {"url": AMQP, "prefix": f"palisade-e2e-{tag}"}},
        "cache": {"backend": "redis", "redis_url": REDIS, "prefix": f"e2e-{tag}:"},
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Ports handed out by this process, so two daemons of one test never get the same one.
_HANDED_OUT: set[int] = set()
# Ports handed out by any process of the suite: devtools/test runs both passes at once, the
# distributed one on two workers, and a port one process checked free could be bound by another
# before the first daemon binds it (seen in CI: "binding API listener ...: Address already in
# use"). A reservation is a file created exclusively; one older than RESERVATION_TTL is left
# from an earlier run and may be taken over.
PORT_RESERVATIONS = Path(os.environ.get("TMPDIR") or "/tmp") / "palisade-e2e-ports"
RESERVATION_TTL = 3 * 3600


def _reserve(port: int) -> bool:
    """Whether this process now holds the suite-wide reservation of `port`."""
    PORT_RESERVATIONS.mkdir(exist_ok=True)
    path = PORT_RESERVATIONS / str(port)
    try:
        if time.time() - path.stat().st_mtime < RESERVATION_TTL:
            return False
        path.unlink()
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def free_port() -> int:
    """A bindable port below the kernel's ephemeral range, reserved for this whole suite run.

    Asking the kernel for port 0 returns an ephemeral port, and an outgoing connection (to
    Cassandra, Redis, ...) may take that same port as its local end before the daemon binds it.
    Ports below 32768 are never chosen for outgoing connections.
    """
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        if not _reserve(port):
            continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


def clean_env(extra: dict | None = None) -> dict:
    """The caller's environment without any PALISADE_* variable (those are config overrides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE_")}
    env.setdefault("RUST_BACKTRACE", "1")
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Config


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot render {v!r} as TOML")


def render_toml(cfg: dict) -> str:
    out: list[str] = []

    def emit(table: dict, prefix: str):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in table.items() if isinstance(v, dict)}
        if prefix:
            out.append(f"[{prefix}]")
        for k, v in scalars.items():
            out.append(f"{k} = {_toml_value(v)}")
        out.append("")
        for k, v in tables.items():
            emit(v, f"{prefix}.{k}" if prefix else k)

    emit(cfg, "")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# PROXY protocol v2

PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_header(src=("192.0.2.10", 40000), dst=("127.0.0.1", 2424), command: int = 0x1,
                    tlvs: bytes = b"") -> bytes:
    """A PROXY protocol v2 header: version 2, PROXY (0x1) or LOCAL (0x0), TCP over IPv4."""
    if command == 0x0:
        body = tlvs
        fam = 0x00  # UNSPEC
    else:
        body = (socket.inet_aton(src[0]) + socket.inet_aton(dst[0])
                + struct.pack("!HH", src[1], dst[1]) + tlvs)
        fam = 0x11  # AF_INET, STREAM
    return PROXY_V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(body)) + body


# --------------------------------------------------------------------------------------------
# LMTP client


class ProtocolError(AssertionError):
    pass


class Reply:
    def __init__(self, code: int, lines: list[str]):
        self.code = code
        self.lines = lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str | None:
        m = re.match(r"([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)", self.lines[0] if self.lines else "")
        return m.group(0) if m else None

    @property
    def cls(self) -> int:
        return self.code // 100

    def __repr__(self) -> str:
        return f"<{self.code} {self.text!r}>"


def dot_stuff(content: bytes) -> bytes:
    """RFC 5321 transparency: double a leading '.' on every CRLF-delimited line."""
    if content.startswith(b"."):
        content = b"." + content
    return content.replace(b"\r\n.", b"\r\n..")


def stop_process(proc: "subprocess.Popen | None", timeout: float = 30) -> None:
    """TERM, then KILL if it has not exited within `timeout`; nothing if it already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def to_crlf(data: bytes) -> bytes:
    """Canonicalize line endings: every LF not preceded by CR becomes CRLF; ensure a final CRLF."""
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


class Lmtp:
    """A small, strict LMTP client on a raw socket (so tests control every byte)."""

    def __init__(self, port: int, host: str = HOST, timeout: float = 60.0, proxy_header: bytes | None = None,
                 read_greeting: bool = True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = bytearray()
        self.greeting: Reply | None = None
        if proxy_header is not None:
            self.sock.sendall(proxy_header)
        if read_greeting:
            self.greeting = self.reply()
            if self.greeting.code != 220:
                raise ProtocolError(f"expected 220 greeting, got {self.greeting!r}")

    # raw I/O -------------------------------------------------------------------------------
    def settimeout(self, t: float):
        self.sock.settimeout(t)

    def send(self, data: bytes | str):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line.rstrip(b"\r\n")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed by server (pending bytes {bytes(self.buf)!r})")
            self.buf += chunk

    def reply(self) -> Reply:
        code = None
        lines: list[str] = []
        while True:
            raw = self.read_line()
            if len(raw) < 3 or not raw[:3].isdigit() or raw[3:4] not in (b"", b" ", b"-"):
                raise ProtocolError(f"malformed reply line {raw!r}")
            c = int(raw[:3])
            if code is None:
                code = c
            elif c != code:
                raise ProtocolError(f"multiline reply changed code {code} -> {c}")
            lines.append(raw[4:].decode("latin-1"))
            if raw[3:4] != b"-":
                return Reply(code, lines)

    def replies(self, n: int) -> list[Reply]:
        return [self.reply() for _ in range(n)]

    def cmd(self, line: str | bytes) -> Reply:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def read_until_eof(self, timeout: float = 15.0) -> bytes:
        """Everything the server sends until it closes; raises socket.timeout if it never closes."""
        self.sock.settimeout(timeout)
        data = bytes(self.buf)
        self.buf.clear()
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def quit(self):
        try:
            self.cmd("QUIT")
        except (OSError, EOFError, ProtocolError):
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # protocol --------------------------------------------------------------------------------
    def lhlo(self, name: str = "client.example.test") -> Reply:
        r = self.cmd(f"LHLO {name}")
        if r.code != 250:
            raise ProtocolError(f"LHLO refused: {r!r}")
        return r

    def data_transaction(self, mail_from: str, rcpts: list[str], content: bytes, *, pipeline: bool = False,
                         mail_params: str = "") -> "Txn":
        """MAIL/RCPT*/DATA, then the dot-stuffed content and the terminator.

        `content` is what the server should store (it must end with CRLF)."""
        t = Txn()
        mail = f"MAIL FROM:<{mail_from}>{(' ' + mail_params) if mail_params else ''}\r\n".encode()
        rcpt_lines = [f"RCPT TO:<{r}>\r\n".encode() for r in rcpts]
        if pipeline:
            self.send(mail + b"".join(rcpt_lines) + b"DATA\r\n")
            t.mail = self.reply()
            t.rcpts = self.replies(len(rcpts))
            t.data = self.reply()
        else:
            self.send(mail)
            t.mail = self.reply()
            for line in rcpt_lines:
                self.send(line)
                t.rcpts.append(self.reply())
            t.data = self.cmd("DATA")
        if t.data.code == 354:
            self.send(dot_stuff(content) + b".\r\n")
            t.final = self.replies(t.accepted)
        return t

    def bdat_transaction(self, mail_from: str, rcpts: list[str], content: bytes, *, chunk_size: int | None = None,
                         mail_params: str = "") -> "Txn":
        """MAIL/RCPT*/BDAT... LAST, all pipelined in one write; content is sent byte-exact."""
        t = Txn()
        if chunk_size and len(content) > chunk_size:
            chunks = [content[i:i + chunk_size] for i in range(0, len(content), chunk_size)]
        else:
            chunks = [content]
        wire = f"MAIL FROM:<{mail_from}>{(' ' + mail_params) if mail_params else ''}\r\n".encode()
        wire += b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts)
        for i, c in enumerate(chunks):
            last = i == len(chunks) - 1
            wire += f"BDAT {len(c)}{' LAST' if last else ''}\r\n".encode() + c
        self.send(wire)
        t.mail = self.reply()
        t.rcpts = self.replies(len(rcpts))
        t.chunks = self.replies(len(chunks) - 1)
        t.final = self.replies(max(t.accepted, 1))
        return t


class Txn:
    def __init__(self):
        self.mail: Reply | None = None
        self.rcpts: list[Reply] = []
        self.data: Reply | None = None
        self.chunks: list[Reply] = []
        self.final: list[Reply] = []

    @property
    def accepted(self) -> int:
        if self.mail is None or self.mail.code != 250:
            return 0
        return sum(1 for r in self.rcpts if r.code == 250)

    def __repr__(self):
        return f"Txn(mail={self.mail}, rcpts={self.rcpts}, data={self.data}, chunks={self.chunks}, final={self.final})"


def refused(sock: socket.socket, timeout: float = 10.0) -> tuple[bool, bytes]:
    """Read what a server sends on a connection it should refuse.

    Refused means: closed/reset without a 220 greeting, or a 421 reply. Returns (refused, bytes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return (not data.startswith(b"220"), data)
            data += chunk
            if data.startswith(b"421"):
                return True, data
            if data.startswith(b"220"):
                return False, data
    except ConnectionResetError:
        return (not data.startswith(b"220"), data)
    except socket.timeout:
        return False, data


# --------------------------------------------------------------------------------------------
# Daemon


class AdminError(AssertionError):
    pass


class Daemon:
    def __init__(self, workdir: Path, *, lmtp: dict | None = None, proxy: dict | None = None,
                 log: dict | None = None, env: dict | None = None, ready: str = "greeting",
                 api: dict | None = None, submission: dict | None = None,
                 admin: dict | None = None, roles: list[str] | None = None,
                 cache: dict | None = None, tag: str | None = None,
                 privacy: dict | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "data"
        self.port = free_port()
        self.lmtp = {"listen": f"{HOST}:{self.port}", "hostname": "palisade.localhost"}
        self.lmtp.update(lmtp or {})
        self.proxy = proxy
        self.log = log
        # Every daemon serves the API on its own port; tests that do not use it just ignore it.
        self.api_port = free_port()
        self.api = {"listen": f"{HOST}:{self.api_port}",
                    # High limits by default; the rate-limit tests set their own.
                    "login_attempts_per_address": 10000, "login_attempts_per_account": 1000}
        self.api.update(api or {})
        self.submission = submission
        # The admin listener (health, metrics) only when asked for, like a real config.
        self.admin_port = free_port() if admin is not None else None
        self.admin_cfg = None
        if admin is not None:
            self.admin_cfg = {"listen": f"{HOST}:{self.admin_port}"}
            self.admin_cfg.update(admin)
        self.roles = roles
        self.cache_override = cache
        # [privacy]: our authserv-id and relays, whose headers the privacy index believes.
        self.privacy = privacy
        # One keyspace/alias/queue prefix per daemon, kept across restarts of that daemon;
        # the nodes of one cluster pass the same tag to share their data.
        self.tag = tag or uuid.uuid4().hex[:12]
        # The Cassandra keyspace, held until cleanup() (see KEYSPACE_POOL).
        self.keyspace = hold_keyspace(self.tag) if BACKEND == "distributed" else None
        self.extra_env = env or {}
        # "greeting" | "proxy" | "tcp" | "api" (the API port answers) | "admin" (/healthz
        # answers: a node with neither the lmtp nor the api role)
        self.ready = ready
        self.config_path = self.dir / "palisade.toml"
        self.stderr_path = self.dir / "daemon-stderr.log"
        self.stdout_path = self.dir / "daemon-stdout.log"
        self.proc: subprocess.Popen | None = None
        self.stopped_on_purpose = False
        self.users: dict[str, dict] = {}
        self.write_config()

    # config ------------------------------------------------------------------------------------
    def write_config(self):
        cfg: dict = {"data_dir": str(self.data_dir), "lmtp": dict(self.lmtp),
                     # Short retry delays so outage tests see recovery quickly.
                     "jobs": {"initial_backoff_ms": 200, "max_backoff_ms": 2000}}
        cfg.update(backend_config(self.tag, self.keyspace))
        cfg["api"] = dict(self.api)
        if self.submission is not None:
            cfg["submission"] = dict(self.submission)
        if self.proxy is not None:
            cfg["lmtp"]["proxy_protocol"] = dict(self.proxy)
        if self.log is not None:
            cfg["log"] = dict(self.log)
        if self.admin_cfg is not None:
            cfg["admin"] = dict(self.admin_cfg)
        if self.roles is not None:
            cfg["roles"] = list(self.roles)
        if self.cache_override is not None:
            cfg["cache"] = {**cfg.get("cache", {}), **self.cache_override}
        if self.privacy is not None:
            cfg["privacy"] = dict(self.privacy)
        self.config_path.write_text(render_toml(cfg))

    def new_port(self):
        self.port = free_port()
        self.lmtp["listen"] = f"{HOST}:{self.port}"
        self.write_config()

    @property
    def env(self) -> dict:
        return clean_env(self.extra_env)

    # lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self.stopped_on_purpose = False
        with open(self.stderr_path, "ab") as f:
            f.write(f"\n===== e2e: starting lmtp-ingest on port {self.port} =====\n".encode())
        self._err = open(self.stderr_path, "ab")
        self._out = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen([str(DAEMON_BIN), "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                     env=self.env, cwd=self.dir)
        deadline = time.monotonic() + timeout
        self.wait_ready(timeout)
        self.wait_search_index(deadline)
        return self

    def wait_search_index(self, deadline: float):
        """On Elasticsearch, waits for what /readyz checks of the index: a count every shard
        answers. A node opens its listeners while it creates the index (mail is accepted
        meanwhile), and search answers 503 until then, which a test searching at once would
        take for a failure. Nodes without the api or worker role never touch the index."""
        if BACKEND != "distributed" or not ({"api", "worker"} & set(self.roles or ["api"])):
            return
        url = f"{ELASTICSEARCH}/palisade-e2e-{self.tag}/_count"
        last = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    shards = json.loads(r.read())["_shards"]
                    if shards["failed"] == 0:
                        return
                    last = shards
            except (OSError, ValueError, KeyError) as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"the search index of {self.tag} did not answer in time ({last})\n{self.tail()}")

    def wait_ready(self, timeout: float):
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"lmtp-ingest exited with {rc} before it was ready\n{self.tail()}")
            try:
                if self.ready == "api":
                    with socket.create_connection((HOST, self.api_port), timeout=2):
                        return
                if self.ready == "admin":
                    with urllib.request.urlopen(f"{self.admin_url}/healthz", timeout=2) as r:
                        if r.status == 200:
                            return
                with socket.create_connection((HOST, self.port), timeout=2) as s:
                    if self.ready == "tcp":
                        return
                    if self.ready == "proxy":
                        s.sendall(proxy_v2_header(dst=(HOST, self.port)))
                    s.settimeout(5)
                    line = s.recv(512)
                    if line.startswith(b"220"):
                        try:
                            s.sendall(b"QUIT\r\n")
                        except OSError:
                            pass
                        return
                    last_err = f"unexpected greeting {line!r}"
            except OSError as e:
                last_err = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"lmtp-ingest not ready on port {self.port} after {timeout}s ({last_err})\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.stopped_on_purpose = True
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._close_files()
        return rc

    def kill9(self):
        self.stopped_on_purpose = True
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._close_files()

    def terminate(self, timeout: float = 60.0) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.stopped_on_purpose = True
            self.proc.kill()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self._close_files()
        if self.keyspace is not None:
            drop_distributed_data(self.tag)
            self.keyspace = None

    def _close_files(self):
        for f in (getattr(self, "_err", None), getattr(self, "_out", None)):
            if f is not None and not f.closed:
                f.close()

    def died_unexpectedly(self) -> int | None:
        if self.proc is not None and not self.stopped_on_purpose:
            return self.proc.poll()
        return None

    def tail(self, n: int = 60) -> str:
        try:
            lines = self.stderr_path.read_bytes().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return "(no stderr file)"
        return "\n".join(lines[-n:])

    # clients -----------------------------------------------------------------------------------
    def connect(self, **kw) -> Lmtp:
        return Lmtp(self.port, **kw)

    def session(self, name: str = "client.example.test", **kw) -> Lmtp:
        c = Lmtp(self.port, **kw)
        c.lhlo(name)
        return c

    # admin CLI -----------------------------------------------------------------------------------
    def admin_run(self, *args, timeout: float = 600.0) -> subprocess.CompletedProcess:
        return subprocess.run([str(ADMIN_BIN), "--config", str(self.config_path), *map(str, args)],
                              capture_output=True, env=self.env, timeout=timeout, cwd=self.dir)

    def admin(self, *args, timeout: float = 600.0):
        r = self.admin_run(*args, timeout=timeout)
        if r.returncode != 0:
            raise AdminError(f"palisade-admin {' '.join(map(str, args))} exited {r.returncode}\n"
                             f"stderr: {r.stderr.decode('utf-8', 'replace')[-3000:]}")
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise AdminError(f"palisade-admin {' '.join(map(str, args))} printed non-JSON ({e}): "
                             f"{r.stdout[:2000]!r}") from None

    def add_user(self, name: str, *addresses: str, password: str | None = None) -> dict:
        args = ["user", "add", name]
        for a in addresses or (f"{name}@{DOMAIN}",):
            args += ["--address", a]
        if password is None:
            u = self.admin(*args)
        else:
            r = subprocess.run([str(ADMIN_BIN), "--config", str(self.config_path), *args, "--password-stdin"],
                               input=(password + "\n").encode(), capture_output=True, env=self.env,
                               cwd=self.dir, timeout=120)
            if r.returncode != 0:
                raise AdminError(f"user add exited {r.returncode}: {r.stderr.decode('utf-8', 'replace')}")
            u = json.loads(r.stdout)
        self.users[name] = u
        return u

    @property
    def admin_url(self) -> str:
        assert self.admin_port is not None, "this daemon has no admin listener"
        return f"http://{HOST}:{self.admin_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    def client(self, token: str | None = None) -> "ApiClient":
        return ApiClient(self.api_url, token)

    def login(self, address: str, password: str) -> "ApiClient":
        c = self.client()
        r = c.post("/auth/login", {"address": address, "password": password})
        assert r.status == 200, f"login as {address} failed: {r.status} {r.body!r}"
        c.token = r.json()["token"]
        return c

    def messages(self, user: str) -> list[dict]:
        out = self.admin("messages", "list", "--user", user)
        assert isinstance(out, list), f"messages list did not print a JSON array: {out!r}"
        return out

    def show(self, user: str, msg_id: str) -> dict:
        return self.admin("message", "show", "--user", user, msg_id)

    def raw(self, user: str, msg_id: str) -> bytes:
        r = self.admin_run("message", "raw", "--user", user, msg_id)
        if r.returncode != 0:
            raise AdminError(f"message raw exited {r.returncode}: {r.stderr.decode('utf-8', 'replace')}")
        return r.stdout

    def jobs(self) -> dict:
        return self.admin("jobs", "status")

    def wait_jobs_idle(self, timeout: float = 240.0) -> dict:
        """Bounded poll until no job is pending or retrying and every known user's index has
        caught up with its stored mail (a broker cannot count deliveries a worker holds)."""
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.jobs()
            if st.get("pending") == 0 and st.get("retrying") == 0 and all(
                    self.admin("index", "status", "--user", user)["caught_up"] for user in self.users):
                return st
            time.sleep(0.25)
        raise AssertionError(f"jobs still not idle after {timeout}s: {st}\n{self.tail()}")

    def export(self, user: str, dest: Path) -> tuple[dict[str, bytes], list[dict]]:
        r = self.admin_run("export", "--user", user, "--dir", dest)
        if r.returncode != 0:
            raise AdminError(f"export exited {r.returncode}: {r.stderr.decode('utf-8', 'replace')[-3000:]}")
        emls = {p.stem: p.read_bytes() for p in (Path(dest) / "messages").glob("*.eml")}
        meta = json.loads((Path(dest) / "messages.json").read_text())
        return emls, meta


def make_message(subject: str | None = None, body: str = "Hello.\r\n", *, sender: str = f"sender@{DOMAIN}",
                 to: str = f"alice@{DOMAIN}", extra_headers: str = "", message_id: str | None = None,
                 date: str = "Mon, 02 Mar 2026 10:00:00 +0000") -> bytes:
    subject = subject if subject is not None else f"e2e {uuid.uuid4()}"
    message_id = message_id or f"{uuid.uuid4()}@{DOMAIN}"
    head = (f"From: Sender <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{message_id}>\r\n{extra_headers}MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n")
    return head.encode() + body.encode()


class ApiResponse:
    """One HTTP response from the API."""

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class ApiClient:
    """A minimal HTTP client for /api/v1, with an optional bearer token."""

    def __init__(self, base: str, token: str | None = None, source: str | None = None,
                 proxy_from: str | None = None):
        self.base = base
        self.token = token
        self.source = source  # local address to connect from, e.g. "127.0.0.2"
        # Speak as a trusted proxy: open each connection with a PROXY v2 header naming this
        # client address (an API behind HAProxy accepts nothing else).
        self.proxy_from = proxy_from

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                timeout: float = 60.0) -> ApiResponse:
        import http.client
        import urllib.parse
        u = urllib.parse.urlsplit(self.base)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout,
                                          source_address=(self.source, 0) if self.source else None)
        if self.proxy_from:
            conn.connect()
            conn.sock.sendall(proxy_v2_header(src=(self.proxy_from, 40000), dst=(u.hostname, u.port)))
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        full = path if path.startswith("/api/") else "/api/v1" + path
        try:
            conn.request(method, full, body=data, headers=h)
            r = conn.getresponse()
            return ApiResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> ApiResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> ApiResponse:
        return self.request("POST", path, body if body is not None else {}, **kw)

    def put(self, path: str, body=None, **kw) -> ApiResponse:
        return self.request("PUT", path, body if body is not None else {}, **kw)

    def patch(self, path: str, body=None, **kw) -> ApiResponse:
        return self.request("PATCH", path, body if body is not None else {}, **kw)

    def delete(self, path: str, **kw) -> ApiResponse:
        return self.request("DELETE", path, **kw)
